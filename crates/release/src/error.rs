//! What can go wrong while publishing, killing, rolling back or keeping the audit log.

use std::path::PathBuf;

pub use promptflag_contracts::admin::Problem;

/// Everything that can go wrong in the release stage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The build or the repository it came from failed.
    #[error(transparent)]
    Authoring(#[from] promptflag_authoring::Error),
    /// Reading or writing a local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
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
    /// Gates that cannot be overridden refused prompts of the ruleset: one problem each
    /// (`path` is `prompts.<sha256>`, `code` names the gate), all in the message too.
    #[error("refused: {}", problems.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; "))]
    RefusedPrompts {
        /// One entry per refusal.
        problems: Vec<Problem>,
    },
    /// The store answered with an error, or could not be reached.
    #[error("{context}: {message}")]
    Remote {
        /// Which request.
        context: String,
        /// What went wrong.
        message: String,
    },
    /// The Worker did not serve the expected revision before the deadline. The write itself
    /// was acknowledged: the revision is live in KV.
    #[error(
        "the pointer write was acknowledged (revision {revision} is live in KV), but the Worker \
         did not serve it within {waited_ms} ms"
    )]
    NotServed {
        /// The revision waited for.
        revision: u64,
        /// How long the command waited.
        waited_ms: u128,
    },
    /// The Worker refused the ruleset's content (`422`): every problem with its path, or the
    /// prompt bodies it names but does not hold. Nothing was written.
    #[error("{0}")]
    Rejected(Box<Rejection>),
    /// The audit log's database failed.
    #[error("audit log: {0}")]
    Audit(#[from] rusqlite::Error),
}

/// What the Worker said when it refused a ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Which request.
    pub context: String,
    /// The Worker's error code (`invalid_ruleset`, `missing_prompt`).
    pub code: String,
    /// The Worker's message.
    pub message: String,
    /// Each problem of the ruleset.
    pub problems: Vec<Problem>,
    /// The prompt bodies the ruleset names that the store does not hold.
    pub missing: Vec<String>,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {}{}{}",
            self.context,
            self.code,
            self.message,
            problem_lines(&self.problems),
            missing_line(&self.missing)
        )
    }
}

fn problem_lines(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|problem| format!("\n  {}: {}", problem.path, problem.message))
        .collect()
}

fn missing_line(missing: &[String]) -> String {
    if missing.is_empty() {
        String::new()
    } else {
        format!(" (missing bodies: {})", missing.join(", "))
    }
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

/// The release stage's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
