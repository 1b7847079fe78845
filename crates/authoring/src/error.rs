//! The library's error type and the process exit codes the binary derives from it.
//!
//! Exit codes are part of the CLI contract (CI scripts branch on them), so they are defined here,
//! next to the errors that produce them, and documented in `docs/companion.md`.

use std::path::PathBuf;

use crate::diagnostic::Diagnostic;

/// Process exit codes of `promptflag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// Success.
    Ok = 0,
    /// The command ran and found problems: lint errors, an invalid build, a broken audit chain.
    Problems = 1,
    /// Bad usage or local I/O failure: unknown flags, unreadable files, malformed input.
    Usage = 2,
    /// Another publisher changed the environment first (HTTP 409); nothing was overwritten.
    Conflict = 3,
    /// A governance gate refused: prod before staging, a missing approval, a draft in prod.
    Refused = 4,
    /// The remote store failed or the Worker did not serve the change in time.
    Remote = 5,
}

impl ExitCode {
    /// The numeric code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Everything that can go wrong in the companion.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The repository or a build has problems (each with file and line).
    #[error("{} problem(s) found", diagnostics.iter().filter(|d| d.is_error()).count())]
    Problems {
        /// Every problem, errors and warnings.
        diagnostics: Vec<Diagnostic>,
    },
    /// Input given on the command line or in a file is unusable.
    #[error("{0}")]
    Invalid(String),
    /// A concurrent publisher won: the remote state is not the one this command planned against.
    #[error("conflict: {message}")]
    Conflict {
        /// What the store said.
        message: String,
    },
    /// A governance gate refused the change.
    #[error("refused: {0}")]
    Refused(String),
    /// The store answered with an error, or could not be reached.
    #[error("{context}: {message}")]
    Remote {
        /// Which request.
        context: String,
        /// What went wrong.
        message: String,
    },
    /// The Worker did not serve the expected revision before the deadline.
    #[error("the Worker did not serve revision {revision} within {waited_ms} ms")]
    NotServed {
        /// The revision waited for.
        revision: u64,
        /// How long the command waited.
        waited_ms: u128,
    },
    /// The audit database failed.
    #[error("audit log: {0}")]
    Audit(#[from] rusqlite::Error),
    /// A git command failed.
    #[error("git: {0}")]
    Git(String),
}

impl Error {
    /// The exit code the binary uses for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Problems { .. } => ExitCode::Problems,
            Error::Io { .. } | Error::Invalid(_) | Error::Git(_) | Error::Audit(_) => {
                ExitCode::Usage
            }
            Error::Conflict { .. } => ExitCode::Conflict,
            Error::Refused(_) => ExitCode::Refused,
            Error::Remote { .. } | Error::NotServed { .. } => ExitCode::Remote,
        }
    }

    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
