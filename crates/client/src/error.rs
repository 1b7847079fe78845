//! The client's errors: what a refresh or a body fetch can run into.

use promptflag_core::RulesetError;

/// Why a refresh or a body fetch failed. A failed refresh never replaces the serving ruleset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The edge could not be reached, or timed out.
    #[error("the edge at {url} could not be reached: {message}")]
    Network {
        /// The URL requested.
        url: String,
        /// What the HTTP client said.
        message: String,
    },
    /// The edge answered with an unexpected status.
    #[error("the edge answered {status} for {url}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The ruleset the edge served failed validation; the previous one keeps serving.
    #[error("the edge served an invalid ruleset; keeping the last known good one: {0}")]
    InvalidRuleset(#[from] RulesetError),
    /// The ruleset is for another environment than the client was configured for.
    #[error(
        "the edge served environment {served:?}, but this client is configured for {expected:?}"
    )]
    WrongEnvironment {
        /// The configured environment.
        expected: String,
        /// The environment in the ruleset.
        served: String,
    },
    /// The client verifies signed rulesets and this one's signature is missing, does not
    /// verify, or goes back without a higher epoch; the previous one keeps serving.
    #[error(
        "the edge served a ruleset whose signature is refused; keeping the last known good one: {0}"
    )]
    Signature(String),
    /// A prompt body's SHA-256 is not the hash it was fetched by.
    #[error("the body fetched for {expected} hashes to {actual}; rejected")]
    BodyHashMismatch {
        /// The hash asked for.
        expected: String,
        /// The hash of what arrived.
        actual: String,
    },
    /// A hash that is not 64 lowercase hex digits.
    #[error("{0:?} is not a SHA-256 hash (64 lowercase hex digits)")]
    BadHash(String),
    /// The fallback ruleset could not be read.
    #[error("the fallback ruleset at {path} could not be read: {message}")]
    Fallback {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The fallback bundle does not verify (a hash that does not match, a missing body, a
    /// ruleset that does not validate); nothing of it serves.
    #[error("{0}")]
    InvalidBundle(promptflag_contracts::Error),
}
