//! What can go wrong in the control loop: its own state, or a stage it drives.

/// Everything that can go wrong in the control loop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the repository or a policy failed.
    #[error(transparent)]
    Authoring(#[from] promptflag_authoring::Error),
    /// Publishing, the store or the audit log failed.
    #[error(transparent)]
    Release(#[from] promptflag_release::Error),
    /// Reading telemetry failed.
    #[error(transparent)]
    Telemetry(#[from] promptflag_telemetry::Error),
    /// The loop's own state database failed.
    #[error("rollout state: {0}")]
    State(#[from] rusqlite::Error),
    /// A command, a stored state or a policy is unusable.
    #[error("{0}")]
    Invalid(String),
}

/// The control loop's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
