//! The audit log: an append-only, hash-chained record of every publish, kill, rollback,
//! override and rollout decision, in a SQLite file.
//!
//! Each entry stores the SHA-256 of the previous entry (`prev_hash`) and its own `hash`, the
//! SHA-256 of the canonical JSON of all its fields including `prev_hash`. Editing an entry breaks
//! its hash; removing or reordering entries breaks the chain of `prev_hash` and the `seq`
//! numbering; removing the newest entries is caught by the `head` row (and, against someone who
//! also rewrites `head`, by comparing with a head hash kept elsewhere: `audit verify
//! --expect-head`). Triggers refuse `UPDATE` and `DELETE` on entries, so only deliberate
//! tampering (dropping the triggers) can change history, and `verify` finds it.
//!
//! The exact ruleset bytes of each publish are kept in `rulesets` (keyed by their SHA-256), so
//! kill and diff summaries can start from what was really published.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

use crate::error::{Error, Result};
use promptflag_contracts::authority;
use promptflag_contracts::digest::{canonical_json, sha256_hex};

/// The `prev_hash` of the first entry: the contracts' constant, which the Worker's log uses too.
pub use promptflag_contracts::authority::GENESIS;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A ruleset revision was published.
    Publish,
    /// A flag's kill switch was turned off (a revision with the flag disabled).
    Kill,
    /// The pointer went back to a kept revision.
    Rollback,
    /// A governance gate was overridden with `--force --reason`.
    Override,
    /// A rollout control-loop decision (start, advance, rollback, promote, pause, resume,
    /// abort); `summary` holds the decision, its metrics and its statistics. When it published,
    /// `revision` and `ruleset_hash` name the revision.
    Rollout,
}

impl Action {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Kill => "kill",
            Action::Rollback => "rollback",
            Action::Override => "override",
            Action::Rollout => "rollout",
        }
    }

    fn parse(text: &str) -> Option<Action> {
        [
            Action::Publish,
            Action::Kill,
            Action::Rollback,
            Action::Override,
            Action::Rollout,
        ]
        .into_iter()
        .find(|a| a.as_str() == text)
    }
}

/// An entry to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    /// Who did it.
    pub actor: String,
    /// What.
    pub action: Action,
    /// Where.
    pub environment: String,
    /// The revision live afterwards.
    pub revision: Option<u64>,
    /// The revision live before.
    pub previous_revision: Option<u64>,
    /// Why (empty when none was given).
    pub reason: String,
    /// The content hash of the ruleset now live (see `build::content_hash`).
    pub content_hash: Option<String>,
    /// SHA-256 of the exact ruleset bytes now live.
    pub ruleset_hash: Option<String>,
    /// A JSON summary of what changed.
    pub summary: Value,
}

impl NewEntry {
    fn to_json(&self) -> Value {
        serde_json::json!({
            "actor": self.actor, "action": self.action.as_str(), "environment": self.environment,
            "revision": self.revision, "previous_revision": self.previous_revision,
            "reason": self.reason, "content_hash": self.content_hash,
            "ruleset_hash": self.ruleset_hash, "summary": self.summary,
        })
    }

    fn from_json(value: &Value) -> Option<NewEntry> {
        let text = |key: &str| value[key].as_str().map(str::to_string);
        Some(NewEntry {
            actor: text("actor")?,
            action: Action::parse(value["action"].as_str()?)?,
            environment: text("environment")?,
            revision: value["revision"].as_u64(),
            previous_revision: value["previous_revision"].as_u64(),
            reason: text("reason").unwrap_or_default(),
            content_hash: text("content_hash"),
            ruleset_hash: text("ruleset_hash"),
            summary: value["summary"].clone(),
        })
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entry {
    /// 1, 2, 3, … in append order.
    pub seq: u64,
    /// RFC 3339 UTC, milliseconds.
    pub time: String,
    /// Who did it.
    pub actor: String,
    /// What.
    pub action: Action,
    /// Where.
    pub environment: String,
    /// The revision live afterwards.
    pub revision: Option<u64>,
    /// The revision live before.
    pub previous_revision: Option<u64>,
    /// Why.
    pub reason: String,
    /// Content hash of the live ruleset.
    pub content_hash: Option<String>,
    /// Hash of the live ruleset bytes.
    pub ruleset_hash: Option<String>,
    /// What changed.
    pub summary: Value,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

impl Entry {
    /// The hash an entry with these fields must have (the contracts' formula,
    /// `promptflag_contracts::authority::Entry::hash_input`).
    pub fn compute_hash(&self) -> String {
        sha256_hex(self.contract(self.action.as_str()).hash_input().as_bytes())
    }

    /// The entry in the contracts' shape, with `action` as given (a verifier passes the text
    /// it read).
    fn contract(&self, action: &str) -> promptflag_contracts::authority::Entry {
        promptflag_contracts::authority::Entry {
            seq: self.seq,
            time: self.time.clone(),
            actor: self.actor.clone(),
            action: action.to_string(),
            environment: self.environment.clone(),
            revision: self.revision,
            previous_revision: self.previous_revision,
            reason: self.reason.clone(),
            content_hash: self.content_hash.clone(),
            ruleset_hash: self.ruleset_hash.clone(),
            summary: self.summary.clone(),
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        }
    }
}

/// One break in the chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Break {
    /// The entry (`seq`) where it shows.
    pub seq: u64,
    /// `edited`, `removed_or_reordered`, `truncated`, `head_mismatch`, `unreadable`.
    pub kind: &'static str,
    /// What was found.
    pub message: String,
}

/// The outcome of [`AuditLog::verify`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    /// Entries read.
    pub entries: u64,
    /// The hash of the last entry.
    pub head: String,
    /// Every break found; empty when the log is intact.
    pub breaks: Vec<Break>,
}

impl Verification {
    /// True when nothing was found.
    pub fn is_intact(&self) -> bool {
        self.breaks.is_empty()
    }
}

/// An open audit log.
pub struct AuditLog {
    connection: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    environment TEXT NOT NULL,
    revision INTEGER,
    previous_revision INTEGER,
    reason TEXT NOT NULL,
    content_hash TEXT,
    ruleset_hash TEXT,
    summary TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rulesets (
    hash TEXT PRIMARY KEY,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    environment TEXT NOT NULL,
    revision INTEGER NOT NULL,
    entries TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS served (
    source TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (source, seq)
);
CREATE TRIGGER IF NOT EXISTS served_no_update BEFORE UPDATE ON served
BEGIN SELECT RAISE(ABORT, 'the mirror of the served log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS served_no_delete BEFORE DELETE ON served
BEGIN SELECT RAISE(ABORT, 'the mirror of the served log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// Where the local mirror of a served log and the served log first disagree: the entry `seq`,
/// with the hash the mirror holds and the one the server now serves at that place (`None` when
/// the served log ends before it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Divergence {
    /// The first entry that differs.
    pub seq: u64,
    /// Its hash in the mirror.
    pub mirrored: String,
    /// The hash served in its place, if the served log reaches it.
    pub served: Option<String>,
}

/// What checking the mirror against a served log found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MirrorCheck {
    /// The entries the mirror held that the served log still holds, unchanged.
    pub matched: usize,
    /// The served entries newly copied into the mirror.
    pub appended: usize,
    /// The first disagreement, if any (then nothing is appended).
    pub divergence: Option<Divergence>,
}

/// Compares a mirror's `(seq, hash)` list with a served log, entry by entry from the first: the
/// first entry the served log no longer holds as mirrored, or `None` when the served log
/// extends the mirror. Comparing hashes is enough: each one covers its entry and, through
/// `prev_hash`, every entry before it.
pub fn first_divergence(
    mirrored: &[(u64, String)],
    served: &[authority::Entry],
) -> Option<Divergence> {
    mirrored
        .iter()
        .enumerate()
        .find_map(|(index, (seq, hash))| match served.get(index) {
            Some(entry) if entry.seq == *seq && entry.hash == *hash => None,
            other => Some(Divergence {
                seq: *seq,
                mirrored: hash.clone(),
                served: other.map(|entry| entry.hash.clone()),
            }),
        })
}

/// RFC 3339 UTC with milliseconds, from the system clock.
pub fn now_rfc3339() -> String {
    format_rfc3339(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO),
    )
}

/// Formats a time since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (core's formatter).
pub fn format_rfc3339(since_epoch: Duration) -> String {
    let millis = i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX);
    promptflag_core::literal::format_rfc3339_millis(millis)
}

fn read_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Entry, String)> {
    let action: String = row.get(3)?;
    let summary: String = row.get(10)?;
    let entry = Entry {
        seq: row.get::<_, i64>(0)? as u64,
        time: row.get(1)?,
        actor: row.get(2)?,
        action: Action::parse(&action).unwrap_or(Action::Override),
        environment: row.get(4)?,
        revision: row.get::<_, Option<i64>>(5)?.map(|r| r as u64),
        previous_revision: row.get::<_, Option<i64>>(6)?.map(|r| r as u64),
        reason: row.get(7)?,
        content_hash: row.get(8)?,
        ruleset_hash: row.get(9)?,
        summary: serde_json::from_str(&summary).unwrap_or(Value::String(summary.clone())),
        prev_hash: row.get(11)?,
        hash: row.get(12)?,
    };
    // The raw action and summary text, so verify hashes what is stored, not a re-parse of it.
    Ok((entry, format!("{action}\u{0}{summary}")))
}

const COLUMNS: &str = "seq, time, actor, action, environment, revision, previous_revision, reason, content_hash, ruleset_hash, summary, prev_hash, hash";

impl AuditLog {
    /// Opens (creating if needed) the log at `path`.
    pub fn open(path: &Path) -> Result<AuditLog> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let connection = Connection::open(path)?;
        connection.busy_timeout(Duration::from_secs(10))?;
        connection.execute_batch(SCHEMA)?;
        Ok(AuditLog {
            connection,
            path: path.to_path_buf(),
        })
    }

    /// Records, before a write, the entries it will append once the store has moved
    /// `environment` to `revision`: if the command dies between the store's write and the
    /// append, the next command finds the intent and [`crate::reconcile`] appends them.
    pub fn record_intent(
        &self,
        environment: &str,
        revision: u64,
        entries: &[NewEntry],
    ) -> Result<()> {
        let entries: Vec<Value> = entries.iter().map(NewEntry::to_json).collect();
        self.connection.execute(
            "INSERT INTO intents (id, environment, revision, entries) VALUES (1, ?1, ?2, ?3) \
             ON CONFLICT(id) DO UPDATE SET environment = excluded.environment, \
             revision = excluded.revision, entries = excluded.entries",
            params![
                environment,
                revision as i64,
                Value::Array(entries).to_string()
            ],
        )?;
        Ok(())
    }

    /// The intent a command left behind: the environment, the revision and the entries.
    pub fn pending_intent(&self) -> Result<Option<(String, u64, Vec<NewEntry>)>> {
        let row: Option<(String, i64, String)> = self
            .connection
            .query_row(
                "SELECT environment, revision, entries FROM intents WHERE id = 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        let Some((environment, revision, text)) = row else {
            return Ok(None);
        };
        let values: Vec<Value> = serde_json::from_str(&text).unwrap_or_default();
        let entries = values.iter().filter_map(NewEntry::from_json).collect();
        Ok(Some((environment, revision as u64, entries)))
    }

    /// Forgets the intent (its write was recorded, or never happened).
    pub fn clear_intent(&self) -> Result<()> {
        self.connection.execute("DELETE FROM intents", [])?;
        Ok(())
    }

    /// Where the log lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an entry, chained to the current head, in one immediate transaction so concurrent
    /// writers serialize instead of forking the chain.
    pub fn append(&mut self, new: NewEntry) -> Result<Entry> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last: Option<(i64, String)> = transaction
            .query_row(
                "SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let (seq, prev_hash) = match last {
            Some((seq, hash)) => (seq as u64 + 1, hash),
            None => (1, GENESIS.to_string()),
        };
        let mut entry = Entry {
            seq,
            time: now_rfc3339(),
            actor: new.actor,
            action: new.action,
            environment: new.environment,
            revision: new.revision,
            previous_revision: new.previous_revision,
            reason: new.reason,
            content_hash: new.content_hash,
            ruleset_hash: new.ruleset_hash,
            summary: new.summary,
            prev_hash,
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        transaction.execute(
            &format!("INSERT INTO entries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
            params![
                entry.seq as i64,
                entry.time,
                entry.actor,
                entry.action.as_str(),
                entry.environment,
                entry.revision.map(|r| r as i64),
                entry.previous_revision.map(|r| r as i64),
                entry.reason,
                entry.content_hash,
                entry.ruleset_hash,
                canonical_json(&entry.summary),
                entry.prev_hash,
                entry.hash,
            ],
        )?;
        transaction.execute(
            "INSERT INTO head (id, seq, hash) VALUES (1, ?1, ?2) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            params![entry.seq as i64, entry.hash],
        )?;
        transaction.commit()?;
        Ok(entry)
    }

    /// Keeps the exact bytes of a published ruleset.
    pub fn store_ruleset(&self, bytes: &[u8]) -> Result<String> {
        let hash = sha256_hex(bytes);
        self.connection.execute(
            "INSERT OR IGNORE INTO rulesets (hash, body) VALUES (?1, ?2)",
            params![hash, bytes],
        )?;
        Ok(hash)
    }

    /// The bytes of a kept ruleset.
    pub fn ruleset(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        let body: Option<Vec<u8>> = self
            .connection
            .query_row("SELECT body FROM rulesets WHERE hash = ?1", [hash], |row| {
                row.get(0)
            })
            .optional()?;
        Ok(body.filter(|bytes| sha256_hex(bytes) == hash))
    }

    /// The bytes of revision `revision` of `environment`, if this log recorded its publish.
    pub fn ruleset_of_revision(&self, environment: &str, revision: u64) -> Result<Option<Vec<u8>>> {
        let hash: Option<String> = self
            .connection
            .query_row(
                "SELECT ruleset_hash FROM entries WHERE environment = ?1 AND revision = ?2 AND action IN ('publish', 'kill', 'rollout') AND ruleset_hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
                params![environment, revision as i64],
                |row| row.get(0),
            )
            .optional()?;
        match hash {
            Some(hash) => self.ruleset(&hash),
            None => Ok(None),
        }
    }

    /// True when a ruleset with this content hash was published to `environment`.
    pub fn was_published(&self, environment: &str, content_hash: &str) -> Result<bool> {
        let count: i64 = self.connection.query_row(
            "SELECT COUNT(*) FROM entries WHERE environment = ?1 AND content_hash = ?2 AND action = 'publish'",
            params![environment, content_hash],
            |row| row.get(0),
        )?;
        Ok(count > 0)
    }

    /// Entries in append order, optionally for one environment.
    pub fn list(&self, environment: Option<&str>) -> Result<Vec<Entry>> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {COLUMNS} FROM entries WHERE (?1 IS NULL OR environment = ?1) ORDER BY seq"
        ))?;
        let rows = statement.query_map([environment], read_entry)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.0);
        }
        Ok(out)
    }

    /// The mirror of the log `source` serves, as `(seq, hash)` in order.
    pub fn mirrored(&self, source: &str) -> Result<Vec<(u64, String)>> {
        let mut statement = self
            .connection
            .prepare("SELECT seq, hash FROM served WHERE source = ?1 ORDER BY seq")?;
        let rows = statement.query_map(params![source], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get::<_, String>(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Checks the mirror of `source`'s log against what it serves now ([`first_divergence`]),
    /// and, when they agree and `extend` is true (the served chain verified), copies the served
    /// entries the mirror lacks into it, in one transaction. The mirror is append-only: a
    /// server that rewrites or loses an entry this machine has seen diverges from it for good.
    pub fn mirror(
        &mut self,
        source: &str,
        served: &[authority::Entry],
        extend: bool,
    ) -> Result<MirrorCheck> {
        let mirrored = self.mirrored(source)?;
        if let Some(divergence) = first_divergence(&mirrored, served) {
            return Ok(MirrorCheck {
                matched: usize::try_from(divergence.seq.saturating_sub(1)).unwrap_or(usize::MAX),
                appended: 0,
                divergence: Some(divergence),
            });
        }
        let new = served.get(mirrored.len()..).unwrap_or_default();
        let appended = if extend { new.len() } else { 0 };
        if appended > 0 {
            let transaction = self
                .connection
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            for entry in new {
                let text = serde_json::to_string(entry)
                    .map_err(|e| Error::Invalid(format!("an audit entry: {e}")))?;
                transaction.execute(
                    "INSERT INTO served (source, seq, hash, entry) VALUES (?1, ?2, ?3, ?4)",
                    params![source, entry.seq as i64, entry.hash, text],
                )?;
            }
            transaction.commit()?;
        }
        Ok(MirrorCheck {
            matched: mirrored.len(),
            appended,
            divergence: None,
        })
    }

    /// Walks the chain and reports every break. `expect_head` is a head hash recorded elsewhere
    /// (a CI log, a ticket); when given, the log must still end there or later with it in the
    /// chain.
    pub fn verify(&self, expect_head: Option<&str>) -> Result<Verification> {
        // Rows in storage order, not by seq: a reorder shows as seq out of sequence.
        let mut statement = self
            .connection
            .prepare(&format!("SELECT {COLUMNS} FROM entries ORDER BY rowid"))?;
        let rows = statement.query_map([], read_entry)?;
        let mut breaks = Vec::new();
        let mut expected_prev = GENESIS.to_string();
        let mut expected_seq = 1u64;
        let mut count = 0u64;
        let mut seen_expected_head = false;
        for row in rows {
            let (entry, raw) = match row {
                Ok(row) => row,
                Err(error) => {
                    breaks.push(Break {
                        seq: expected_seq,
                        kind: "unreadable",
                        message: format!("an entry cannot be read: {error}"),
                    });
                    break;
                }
            };
            count += 1;
            // Hash what is stored: the action and summary exactly as their columns hold them.
            let (action_text, summary_text) = raw.split_once('\u{0}').unwrap_or(("", ""));
            let recomputed = sha256_hex(
                entry
                    .contract(action_text)
                    .hash_input_with_summary_text(summary_text.to_string())
                    .as_bytes(),
            );
            if entry.seq != expected_seq || entry.prev_hash != expected_prev {
                breaks.push(Break {
                    seq: entry.seq,
                    kind: "removed_or_reordered",
                    message: format!(
                        "entry {} follows entry {} but its prev_hash does not match that entry; entries were removed or reordered",
                        entry.seq,
                        expected_seq - 1
                    ),
                });
            }
            if recomputed != entry.hash {
                breaks.push(Break {
                    seq: entry.seq,
                    kind: "edited",
                    message: format!("entry {} does not hash to its recorded hash; it was edited after it was written", entry.seq),
                });
            }
            if expect_head == Some(entry.hash.as_str()) {
                seen_expected_head = true;
            }
            expected_prev = entry.hash.clone();
            expected_seq = entry.seq + 1;
        }
        let head: Option<(i64, String)> = self
            .connection
            .query_row("SELECT seq, hash FROM head WHERE id = 1", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        match head {
            Some((seq, hash)) if hash != expected_prev => breaks.push(Break {
                seq: seq as u64,
                kind: "truncated",
                message: format!(
                    "the head records entry {seq} ({hash}) but the chain ends at {expected_prev}; the newest entries were removed or changed"
                ),
            }),
            None if count > 0 => breaks.push(Break {
                seq: 0,
                kind: "truncated",
                message: String::from("the head row is missing"),
            }),
            _ => {}
        }
        if let Some(expected) = expect_head
            && !seen_expected_head
        {
            breaks.push(Break {
                seq: 0,
                kind: "head_mismatch",
                message: format!("the chain does not contain the expected head {expected}"),
            });
        }
        Ok(Verification {
            entries: count,
            head: expected_prev,
            breaks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A served chain of `count` entries, each hashed with the contracts' formula; `reason`
    /// varies the content.
    fn served_chain(count: u64, reason: &str) -> Vec<authority::Entry> {
        let mut entries: Vec<authority::Entry> = Vec::new();
        for seq in 1..=count {
            let mut entry = authority::Entry {
                seq,
                time: String::from("2026-01-01T00:00:00.000Z"),
                actor: String::from("ci-prod"),
                action: String::from("publish"),
                environment: String::from("prod"),
                revision: Some(seq),
                previous_revision: seq.checked_sub(1).filter(|r| *r > 0),
                reason: String::from(reason),
                content_hash: None,
                ruleset_hash: None,
                summary: serde_json::json!({"role": "publisher"}),
                prev_hash: entries
                    .last()
                    .map_or_else(|| GENESIS.to_string(), |e| e.hash.clone()),
                hash: String::new(),
            };
            entry.hash = sha256_hex(entry.hash_input().as_bytes());
            entries.push(entry);
        }
        entries
    }

    #[test]
    fn the_mirror_grows_with_the_served_log_and_reports_where_it_was_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(&dir.path().join("audit.sqlite3")).unwrap();
        let source = "http://127.0.0.1:8787";
        let served = served_chain(3, "ship");
        let first = log.mirror(source, &served[..2], true).unwrap();
        assert_eq!(
            (first.matched, first.appended, first.divergence),
            (0, 2, None)
        );
        // Not extended while the served chain does not verify, yet still compared.
        let unverified = log.mirror(source, &served, false).unwrap();
        assert_eq!((unverified.matched, unverified.appended), (2, 0));
        let second = log.mirror(source, &served, true).unwrap();
        assert_eq!(
            (second.matched, second.appended, second.divergence),
            (2, 1, None)
        );
        assert_eq!(log.mirrored(source).unwrap().len(), 3);
        // Another Worker's log is its own mirror.
        assert!(log.mirrored("http://127.0.0.1:9999").unwrap().is_empty());

        // A log rebuilt with a rewritten reason diverges from the first entry on.
        let rewritten = served_chain(3, "routine");
        let check = log.mirror(source, &rewritten, true).unwrap();
        let divergence = check.divergence.unwrap();
        assert_eq!(divergence.seq, 1);
        assert_eq!(divergence.mirrored, served[0].hash);
        assert_eq!(
            divergence.served.as_deref(),
            Some(rewritten[0].hash.as_str())
        );
        // A truncated one, where it ends.
        let truncated = log.mirror(source, &served[..1], true).unwrap();
        assert_eq!(
            truncated.divergence,
            Some(Divergence {
                seq: 2,
                mirrored: served[1].hash.clone(),
                served: None
            })
        );
        assert_eq!(truncated.matched, 1);
        // Nothing was appended by the diverging checks.
        assert_eq!(log.mirrored(source).unwrap().len(), 3);
    }

    #[test]
    fn civil_dates_format_correctly() {
        assert_eq!(format_rfc3339(Duration::ZERO), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339(Duration::from_millis(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            format_rfc3339(Duration::from_secs(1_747_304_625)),
            "2025-05-15T10:23:45.000Z"
        );
    }
}
