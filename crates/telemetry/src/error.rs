//! What can go wrong in the collector and its store.

use std::path::PathBuf;

/// Everything that can go wrong in telemetry.
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
    /// The configuration or an address is unusable.
    #[error("{0}")]
    Invalid(String),
    /// The telemetry database failed.
    #[error("telemetry store: {0}")]
    Store(#[from] rusqlite::Error),
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

/// Telemetry's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
