//! What can go wrong when the statistics are asked something they cannot answer.

/// Everything that can go wrong in the rollout maths.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is unusable (a missing field, a wrong type, an unknown key).
    #[error("{0}")]
    Invalid(String),
}

/// The rollout crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
