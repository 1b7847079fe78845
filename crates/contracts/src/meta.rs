//! The publish metadata `meta:<env>`: JSON `{"kept": [5, 6, 7, 8, 9], "latest": 9, "undo": [6, 8]}`,
//! the highest revision ever published, the revisions kept for rollback (the last
//! [`KEPT_REVISIONS`], ascending), and the undo stack: the revision that was live before each
//! publish or named rollback, most recent last. Written after `ruleset:<env>:<rev>` and before
//! the pointer on every publish and rollback.
//!
//! A plain rollback pops the undo stack: it returns to the revision that was live before the
//! current one, and a revision it leaves is not gone back to by the next plain rollback. So
//! after kill (r4), rollback (to r3) and publish (r5), a plain rollback returns to r3, never to
//! the kill it undid.

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
    /// The revision live before each publish or named rollback, most recent last; only kept
    /// revisions, at most [`KEPT_REVISIONS`].
    pub undo: Vec<u64>,
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
        // Metadata written before the undo stack existed has none: plain rollbacks then step
        // back through the kept revisions.
        let undo = match object.get("undo") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(Value::as_u64)
                .collect::<Option<Vec<u64>>>()
                .ok_or(Error::InvalidMeta {
                    reason: "`undo` holds something that is not a revision",
                })?,
            Some(_) => {
                return Err(Error::InvalidMeta {
                    reason: "`undo` is not a list",
                });
            }
        };
        Ok(Meta { latest, kept, undo })
    }

    /// The stored JSON: `{"kept":[8,9],"latest":9,"undo":[8]}` (keys sorted, no spaces).
    #[allow(clippy::single_char_add_str)]
    pub fn to_json(&self) -> String {
        // `push_str` only: `push` of a char would link its UTF-8 encoder into the Worker.
        let mut out = String::from("{\"kept\":");
        write_list(&mut out, &self.kept);
        out.push_str(",\"latest\":");
        match self.latest {
            // Writing into a String cannot fail.
            Some(latest) => {
                let _ = write!(out, "{latest}");
            }
            None => out.push_str("null"),
        }
        out.push_str(",\"undo\":");
        write_list(&mut out, &self.undo);
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

    /// Where a rollback goes: the named revision when it is kept; otherwise the top of the undo
    /// stack (the revision live before the current one), skipping entries no longer kept or
    /// equal to the live one; with no such entry, or a live pointer that is not a kept revision
    /// (moved outside promptflag, so outside the undo history), [`revision::rollback_target`]
    /// over [`Meta::kept`] (the highest kept revision below the live one).
    pub fn rollback_target(&self, live: Option<u64>, requested: Option<u64>) -> Result<u64, Error> {
        if requested.is_none()
            && let Some(position) = self.undo_position(live)
        {
            return Ok(self.undo[position]);
        }
        revision::rollback_target(&self.kept, live, requested)
    }

    /// The undo entry a plain rollback returns to, when the live revision is one the history
    /// knows.
    fn undo_position(&self, live: Option<u64>) -> Option<usize> {
        let live = live.filter(|live| self.kept.contains(live))?;
        self.undo
            .iter()
            .rposition(|revision| self.kept.contains(revision) && *revision != live)
    }

    /// The metadata after a rollback from `live` to `target`: a plain rollback (`requested`
    /// `None`) pops the undo stack down to the entry it returned to; a named one is a move like
    /// a publish and pushes `live`.
    pub fn after_rollback(&self, live: Option<u64>, requested: Option<u64>, target: u64) -> Meta {
        let mut next = self.clone();
        match requested {
            None => match self.undo_position(live) {
                Some(position) if self.undo[position] == target => next.undo.truncate(position),
                _ => {}
            },
            Some(_) => next.push_undo(live),
        }
        next
    }

    /// The metadata after publishing `revision` over `live`, and the revisions that fall out of
    /// the kept list (their `ruleset:<env>:<rev>` keys may be deleted). Refuses a revision out
    /// of range.
    pub fn after_publish(
        &self,
        revision: u64,
        live: Option<u64>,
    ) -> Result<(Meta, Vec<u64>), Error> {
        revision::check(revision)?;
        let mut kept = self.kept.clone();
        kept.push(revision);
        kept.sort_unstable();
        kept.dedup();
        let excess = kept.len().saturating_sub(KEPT_REVISIONS);
        let dropped: Vec<u64> = kept.drain(..excess).collect();
        let latest = Some(self.latest.map_or(revision, |latest| latest.max(revision)));
        let mut next = Meta {
            latest,
            kept,
            undo: self.undo.clone(),
        };
        next.push_undo(live);
        Ok((next, dropped))
    }

    /// Records that `live` was live before a move, keeping only kept revisions and at most
    /// [`KEPT_REVISIONS`] entries.
    fn push_undo(&mut self, live: Option<u64>) {
        if let Some(live) = live {
            self.undo.push(live);
        }
        let kept = &self.kept;
        self.undo.retain(|revision| kept.contains(revision));
        let excess = self.undo.len().saturating_sub(KEPT_REVISIONS);
        self.undo.drain(..excess);
    }
}

/// Writes `[1,2,3]`.
#[allow(clippy::single_char_add_str)]
fn write_list(out: &mut String, revisions: &[u64]) {
    out.push_str("[");
    for (index, revision) in revisions.iter().enumerate() {
        if index > 0 {
            out.push_str(",");
        }
        let _ = write!(out, "{revision}");
    }
    out.push_str("]");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_last_ten_revisions() {
        let mut meta = Meta::default();
        let mut all_dropped = Vec::new();
        let mut live = None;
        for revision in 1..=12 {
            let (next, dropped) = meta.after_publish(revision, live).unwrap();
            meta = next;
            live = Some(revision);
            all_dropped.extend(dropped);
        }
        assert_eq!(meta.latest, Some(12));
        assert_eq!(meta.kept, (3..=12).collect::<Vec<_>>());
        assert_eq!(meta.undo, (3..=11).collect::<Vec<_>>());
        assert_eq!(all_dropped, vec![1, 2]);
        assert_eq!(
            meta.after_publish(revision::MAX_REVISION + 1, live)
                .unwrap_err()
                .code(),
            "revision_out_of_range"
        );
    }

    /// Publishes, kills and rollbacks as the stores apply them: the new meta and live revision.
    fn publish(meta: &Meta, live: Option<u64>) -> (Meta, Option<u64>) {
        let revision = meta.next_revision(live).unwrap();
        (
            meta.after_publish(revision, live).unwrap().0,
            Some(revision),
        )
    }

    fn rollback(meta: &Meta, live: Option<u64>, requested: Option<u64>) -> (Meta, Option<u64>) {
        let target = meta.rollback_target(live, requested).unwrap();
        (meta.after_rollback(live, requested, target), Some(target))
    }

    #[test]
    fn a_plain_rollback_never_returns_to_a_kill_it_undid() {
        let (meta, live) = (Meta::default(), None);
        let (meta, live) = publish(&meta, live); // r1
        let (meta, live) = publish(&meta, live); // r2
        let (meta, live) = publish(&meta, live); // r3
        let (meta, live) = publish(&meta, live); // r4: the kill
        let (meta, live) = rollback(&meta, live, None);
        assert_eq!(live, Some(3), "the rollback undoes the kill");
        let (meta, live) = publish(&meta, live); // r5
        let (meta, live) = rollback(&meta, live, None);
        assert_eq!(
            live,
            Some(3),
            "back to what was live before r5, not to the kill r4"
        );
        let (meta, live) = rollback(&meta, live, None);
        assert_eq!(live, Some(2), "and on back through what was live before");
        // A named rollback is a move of its own, which a plain rollback then undoes.
        let (meta, live) = rollback(&meta, live, Some(5));
        assert_eq!(live, Some(5));
        let (_, live) = rollback(&meta, live, None);
        assert_eq!(live, Some(2));
    }

    #[test]
    fn metadata_without_an_undo_stack_steps_back_through_the_kept_revisions() {
        let meta = Meta::parse(br#"{"latest": 9, "kept": [5, 7, 9]}"#).unwrap();
        assert_eq!(meta.undo, Vec::<u64>::new());
        assert_eq!(meta.rollback_target(Some(9), None), Ok(7));
        // An undo entry that is no longer kept is skipped.
        let meta = Meta::parse(br#"{"latest": 9, "kept": [5, 7, 9], "undo": [7, 3]}"#).unwrap();
        assert_eq!(meta.rollback_target(Some(9), None), Ok(7));
    }

    #[test]
    fn history_round_trips_and_garbage_is_refused() {
        let meta = Meta {
            latest: Some(9),
            kept: vec![8, 9],
            undo: vec![8],
        };
        assert_eq!(meta.to_json(), r#"{"kept":[8,9],"latest":9,"undo":[8]}"#);
        assert_eq!(Meta::parse(meta.to_json().as_bytes()), Ok(meta));
        assert_eq!(
            Meta::default().to_json(),
            r#"{"kept":[],"latest":null,"undo":[]}"#
        );
        assert_eq!(Meta::parse(b"{}"), Ok(Meta::default()));
        assert_eq!(
            Meta::parse(br#"{"latest": 9, "kept": [9, 8, 9]}"#),
            Ok(Meta {
                latest: Some(9),
                kept: vec![8, 9],
                undo: Vec::new(),
            })
        );
        for bad in [
            &br#"{"latest": "9"}"#[..],
            br#"{"kept": [1, -2]}"#,
            br#"{"kept": 3}"#,
            br#"{"latest": 1.5}"#,
            br#"{"undo": [true]}"#,
            br#"{"undo": 2}"#,
            b"nope",
            b"[]",
        ] {
            assert_eq!(Meta::parse(bad).unwrap_err().code(), "invalid_meta");
        }
        // What serde_json writes for the same history is what `to_json` writes.
        let through_serde =
            serde_json::to_string(&serde_json::json!({"latest": 9, "kept": [8, 9], "undo": [8]}))
                .unwrap();
        assert_eq!(
            through_serde,
            Meta::parse(through_serde.as_bytes()).unwrap().to_json()
        );
    }
}
