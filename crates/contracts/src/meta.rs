//! The publish metadata `meta:<env>`: JSON `{"kept": [5, 6, 7, 8, 9], "latest": 9}`, the highest
//! revision ever published and the revisions kept for rollback (the last [`KEPT_REVISIONS`],
//! ascending). Written after `ruleset:<env>:<rev>` and before the pointer on every publish.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use serde_json::Value;

use crate::error::Error;
use crate::revision;

/// How many revisions are kept for rollback.
pub const KEPT_REVISIONS: usize = 10;

/// `meta:<env>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// The highest revision ever published; a new publish must exceed it.
    pub latest: Option<u64>,
    /// The revisions kept for rollback, ascending and without repeats.
    pub kept: Vec<u64>,
}

impl Meta {
    /// Reads the stored JSON. Absent or `null` fields are empty; `kept` is sorted. Anything else
    /// (not an object, a field of the wrong type, a negative or fractional revision) is
    /// [`Error::InvalidMeta`]. Revisions above the bound are read as stored: the revision rules
    /// refuse to publish past them.
    pub fn parse(bytes: &[u8]) -> Result<Meta, Error> {
        // Through `Value`, which the Worker links already: a derived deserializer would add its
        // own code to the Wasm.
        let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(bytes) else {
            return Err(Error::InvalidMeta {
                reason: "not a JSON object",
            });
        };
        let latest = match object.get("latest") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_u64().ok_or(Error::InvalidMeta {
                reason: "`latest` is not a revision",
            })?),
        };
        let mut kept = match object.get("kept") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(Value::as_u64)
                .collect::<Option<Vec<u64>>>()
                .ok_or(Error::InvalidMeta {
                    reason: "`kept` holds something that is not a revision",
                })?,
            Some(_) => {
                return Err(Error::InvalidMeta {
                    reason: "`kept` is not a list",
                });
            }
        };
        kept.sort_unstable();
        kept.dedup();
        Ok(Meta { latest, kept })
    }

    /// The stored JSON: `{"kept":[8,9],"latest":9}` (keys sorted, no spaces).
    #[allow(clippy::single_char_add_str)]
    pub fn to_json(&self) -> String {
        // `push_str` only: `push` of a char would link its UTF-8 encoder into the Worker.
        let mut out = String::from("{\"kept\":[");
        for (index, revision) in self.kept.iter().enumerate() {
            if index > 0 {
                out.push_str(",");
            }
            // Writing into a String cannot fail.
            let _ = write!(out, "{revision}");
        }
        out.push_str("],\"latest\":");
        match self.latest {
            Some(latest) => {
                let _ = write!(out, "{latest}");
            }
            None => out.push_str("null"),
        }
        out.push_str("}");
        out
    }

    /// The next revision to publish, given the live one ([`revision::next`]).
    pub fn next_revision(&self, live: Option<u64>) -> Result<u64, Error> {
        revision::next(self.latest, live)
    }

    /// Whether `revision` may be published ([`revision::check_publish`]).
    pub fn check_publish(
        &self,
        live: Option<u64>,
        revision: u64,
        expected_live: Option<Option<u64>>,
    ) -> Result<(), Error> {
        revision::check_publish(self.latest, live, revision, expected_live)
    }

    /// Where a rollback goes ([`revision::rollback_target`] over [`Meta::kept`]).
    pub fn rollback_target(&self, live: Option<u64>, requested: Option<u64>) -> Result<u64, Error> {
        revision::rollback_target(&self.kept, live, requested)
    }

    /// The metadata after publishing `revision`, and the revisions that fall out of the kept
    /// list (their `ruleset:<env>:<rev>` keys may be deleted). Refuses a revision out of range.
    pub fn after_publish(&self, revision: u64) -> Result<(Meta, Vec<u64>), Error> {
        revision::check(revision)?;
        let mut kept = self.kept.clone();
        kept.push(revision);
        kept.sort_unstable();
        kept.dedup();
        let excess = kept.len().saturating_sub(KEPT_REVISIONS);
        let dropped: Vec<u64> = kept.drain(..excess).collect();
        let latest = Some(self.latest.map_or(revision, |latest| latest.max(revision)));
        Ok((Meta { latest, kept }, dropped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_last_ten_revisions() {
        let mut meta = Meta::default();
        let mut all_dropped = Vec::new();
        for revision in 1..=12 {
            let (next, dropped) = meta.after_publish(revision).unwrap();
            meta = next;
            all_dropped.extend(dropped);
        }
        assert_eq!(meta.latest, Some(12));
        assert_eq!(meta.kept, (3..=12).collect::<Vec<_>>());
        assert_eq!(all_dropped, vec![1, 2]);
        assert_eq!(
            meta.after_publish(revision::MAX_REVISION + 1)
                .unwrap_err()
                .code(),
            "revision_out_of_range"
        );
    }

    #[test]
    fn history_round_trips_and_garbage_is_refused() {
        let meta = Meta {
            latest: Some(9),
            kept: vec![8, 9],
        };
        assert_eq!(meta.to_json(), r#"{"kept":[8,9],"latest":9}"#);
        assert_eq!(Meta::parse(meta.to_json().as_bytes()), Ok(meta));
        assert_eq!(Meta::default().to_json(), r#"{"kept":[],"latest":null}"#);
        assert_eq!(Meta::parse(b"{}"), Ok(Meta::default()));
        assert_eq!(
            Meta::parse(br#"{"latest": 9, "kept": [9, 8, 9]}"#),
            Ok(Meta {
                latest: Some(9),
                kept: vec![8, 9]
            })
        );
        for bad in [
            &br#"{"latest": "9"}"#[..],
            br#"{"kept": [1, -2]}"#,
            br#"{"kept": 3}"#,
            br#"{"latest": 1.5}"#,
            b"nope",
            b"[]",
        ] {
            assert_eq!(Meta::parse(bad).unwrap_err().code(), "invalid_meta");
        }
        // What serde_json writes for the same history is what `to_json` writes.
        let through_serde =
            serde_json::to_string(&serde_json::json!({"latest": 9, "kept": [8, 9]})).unwrap();
        assert_eq!(
            through_serde,
            Meta::parse(through_serde.as_bytes()).unwrap().to_json()
        );
    }
}
