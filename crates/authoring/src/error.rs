//! What can go wrong while reading, checking and building a prompt repository.

use std::path::PathBuf;

use crate::diagnostic::Diagnostic;

/// Everything that can go wrong in authoring.
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
    /// A ruleset file does not validate: every problem with its path.
    #[error("{source_name}: {summary}")]
    Ruleset {
        /// The file.
        source_name: String,
        /// Core's summary with every problem, for people.
        summary: String,
        /// Every problem, for machines.
        problems: Vec<promptflag_contracts::admin::Problem>,
    },
    /// A git command failed.
    #[error("git: {0}")]
    Git(String),
}

impl Error {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Authoring's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
