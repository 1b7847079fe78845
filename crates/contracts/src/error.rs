//! Why a contract rule refused: one error type for every rule of the crate, each with the
//! machine-readable code the admin API and the collector report ([`Error::code`]).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A rule of the contracts refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An environment name outside `[A-Za-z0-9_.-]{1,64}`.
    InvalidEnvironment {
        /// The name given.
        name: String,
    },
    /// A revision above [`crate::revision::MAX_REVISION`].
    RevisionOutOfRange {
        /// The revision given.
        revision: u64,
    },
    /// The highest revision is at the bound: no revision can follow it.
    RevisionsExhausted {
        /// The highest revision published or live.
        highest: u64,
    },
    /// A publish at or below the highest revision published or live.
    StaleRevision {
        /// The revision the publish asked for.
        revision: u64,
        /// The highest revision published or live.
        highest: u64,
    },
    /// The live revision is not the one the writer expected.
    LiveMoved {
        /// The live revision expected (`None`: no live revision).
        expected: Option<u64>,
        /// The live revision found.
        live: Option<u64>,
    },
    /// A rollback to a revision that is not kept, or with no kept revision before the live one.
    RevisionNotKept {
        /// The revision asked for (`None`: the kept revision before the live one).
        requested: Option<u64>,
        /// The live revision.
        live: Option<u64>,
        /// The revisions kept, ascending.
        kept: Vec<u64>,
    },
    /// `meta:<env>` does not hold a revision history.
    InvalidMeta {
        /// What is wrong.
        reason: &'static str,
    },
    /// `ruleset:<env>` does not hold a revision.
    InvalidPointer {
        /// The text found.
        text: String,
    },
    /// An admin API request that is not of the documented shape.
    InvalidRequest {
        /// What the request must look like.
        reason: &'static str,
    },
    /// An event is not valid JSON.
    InvalidJson {
        /// The parser's message.
        reason: String,
    },
    /// An event is JSON but not an object of the schema's types.
    InvalidEvent {
        /// The decoder's message.
        reason: String,
    },
    /// An event lacks a required field (or has it `null`).
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// An event field has a value the schema refuses.
    InvalidValue {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An event `type` the schema does not know.
    UnknownType {
        /// The type given.
        kind: String,
    },
    /// A ruleset's runtime record that is not of the contracts' shape.
    InvalidRuntime {
        /// What is wrong.
        reason: String,
    },
    /// A fallback bundle that does not verify: a hash that does not match, a missing body, a
    /// ruleset that does not validate.
    InvalidBundle {
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// The machine-readable code: the admin API's error code for the revision rules
    /// (`stale_revision`, `conflict`, `revision_not_kept`, …) and the collector's per-event code
    /// for the event schemas (`missing_field`, `invalid_value`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidEnvironment { .. } => "bad_request",
            Error::RevisionOutOfRange { .. } => "revision_out_of_range",
            Error::RevisionsExhausted { .. } => "revisions_exhausted",
            Error::StaleRevision { .. } => "stale_revision",
            Error::LiveMoved { .. } => "conflict",
            Error::RevisionNotKept { .. } => "revision_not_kept",
            Error::InvalidMeta { .. } => "invalid_meta",
            Error::InvalidPointer { .. } => "invalid_pointer",
            Error::InvalidRequest { .. } => "bad_request",
            Error::InvalidJson { .. } => "invalid_json",
            Error::InvalidEvent { .. } => "invalid_event",
            Error::MissingField { .. } => "missing_field",
            Error::InvalidValue { .. } => "invalid_value",
            Error::UnknownType { .. } => "unknown_type",
            Error::InvalidRuntime { .. } => "invalid_runtime",
            Error::InvalidBundle { .. } => "invalid_bundle",
        }
    }
}

/// A revision, or `none`.
struct Revision(Option<u64>);

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(revision) => write!(f, "{revision}"),
            None => f.write_str("none"),
        }
    }
}

/// Revisions as `[5, 6, 7]`.
struct List<'a>(&'a [u64]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (index, revision) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{revision}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::revision::MAX_REVISION;
        match self {
            Error::InvalidEnvironment { name } => write!(
                f,
                "{name:?} is not an environment name (letters, digits, `_`, `-`, `.`; at most 64)"
            ),
            Error::RevisionOutOfRange { revision } => write!(
                f,
                "revision {revision} is above the highest revision allowed ({MAX_REVISION})"
            ),
            Error::RevisionsExhausted { highest } => write!(
                f,
                "the highest revision is {highest}: no revision can follow it (revisions end at {MAX_REVISION})"
            ),
            Error::StaleRevision { revision, highest } => write!(
                f,
                "revision {revision} is not above the latest published revision {highest}"
            ),
            Error::LiveMoved { expected, live } => write!(
                f,
                "the live revision is {}, not {} as expected",
                Revision(*live),
                Revision(*expected)
            ),
            Error::RevisionNotKept {
                requested: Some(revision),
                kept,
                ..
            } => write!(f, "revision {revision} is not kept; kept: {}", List(kept)),
            Error::RevisionNotKept {
                requested: None,
                live,
                kept,
            } => write!(
                f,
                "no kept revision precedes the live one ({}); kept: {}",
                Revision(*live),
                List(kept)
            ),
            Error::InvalidMeta { reason } => write!(f, "not a revision history: {reason}"),
            Error::InvalidPointer { text } => write!(f, "{text:?} is not a revision"),
            Error::InvalidRequest { reason } => f.write_str(reason),
            Error::InvalidJson { reason } => write!(f, "not JSON: {reason}"),
            Error::InvalidEvent { reason } => f.write_str(reason),
            Error::MissingField { field } => write!(f, "`{field}` is required"),
            Error::InvalidValue { field, reason } => write!(f, "`{field}` {reason}"),
            Error::UnknownType { kind } => write!(
                f,
                "`type` {kind:?} is not `llm_call` (the default) or `exposure`"
            ),
            Error::InvalidRuntime { reason } => {
                write!(f, "a runtime decision does not read: {reason}")
            }
            Error::InvalidBundle { reason } => {
                write!(f, "the fallback bundle is refused: {reason}")
            }
        }
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn messages_name_the_revisions() {
        let error = Error::RevisionNotKept {
            requested: None,
            live: Some(5),
            kept: alloc::vec![5, 6, 18_446_744_073_709_551_615],
        };
        assert_eq!(
            error.to_string(),
            "no kept revision precedes the live one (5); kept: [5, 6, 18446744073709551615]"
        );
        assert_eq!(error.code(), "revision_not_kept");
        let moved = Error::LiveMoved {
            expected: None,
            live: Some(3),
        };
        assert_eq!(
            moved.to_string(),
            "the live revision is 3, not none as expected"
        );
        assert_eq!(moved.code(), "conflict");
    }
}
