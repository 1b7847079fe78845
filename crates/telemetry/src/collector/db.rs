//! The telemetry database: SQLite in WAL mode holding calls and exposures (and, in tables the
//! control loop owns, rollout state; see `controller`).
//!
//! Durability: the collector acknowledges a batch only after the transaction holding it has
//! committed. With `synchronous = FULL` (the default) SQLite syncs the WAL at every commit, so an
//! acknowledged event survives a process crash *and* a power loss or OS crash. With
//! `synchronous = NORMAL` the WAL is synced only at checkpoints: an acknowledged event survives a
//! process crash (`kill -9`: the commit is in the OS page cache, and SQLite recovers the WAL on
//! the next open) but the last commits before a power loss may be lost. See `docs/collector.md`.

use std::path::Path;
use std::time::Duration;

use promptflag_contracts::digest::sha256_hex;
use rusqlite::{Connection, params};

use super::event::{CallRecord, ExposureRecord, Record};
use crate::error::{Error, Result};

/// How hard SQLite syncs a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Sync the WAL at every commit: acknowledged events survive power loss.
    #[default]
    Full,
    /// Sync at checkpoints only: acknowledged events survive a process crash, not power loss.
    Normal,
}

impl Synchronous {
    /// The pragma value.
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    ts_ms INTEGER NOT NULL,
    environment TEXT,
    flag_key TEXT NOT NULL,
    variant TEXT NOT NULL,
    prompt_id TEXT,
    prompt_version TEXT,
    prompt_hash TEXT,
    user_id TEXT,
    model TEXT,
    temperature REAL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    latency_ms REAL,
    ttft_ms REAL,
    status TEXT NOT NULL,
    parser_valid INTEGER,
    refused INTEGER,
    hallucinated INTEGER,
    cost_usd REAL,
    content_hash TEXT,
    citation_mismatch INTEGER,
    tool_call_mismatch INTEGER,
    unsupported_numeric_claims INTEGER,
    judge_score REAL,
    response_hash TEXT
);
CREATE INDEX IF NOT EXISTS calls_flag_time ON calls (flag_key, ts_ms);
CREATE TABLE IF NOT EXISTS exposures (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    ts_ms INTEGER NOT NULL,
    environment TEXT,
    flag_key TEXT NOT NULL,
    variant TEXT NOT NULL,
    prompt_hash TEXT,
    revision INTEGER,
    unit TEXT,
    reason TEXT,
    prompt_id TEXT,
    prompt_version TEXT
);
";

/// Opens (creating if needed) the telemetry database with WAL and the chosen sync level.
pub fn open(path: &Path, synchronous: Synchronous) -> Result<Connection> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(30))?;
    // journal_mode returns a row, so it is read rather than executed.
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Invalid(format!(
            "{}: SQLite refused WAL mode (got {mode}); use a local file system",
            path.display()
        )));
    }
    connection.execute_batch(&format!(
        "PRAGMA synchronous = {}; PRAGMA foreign_keys = ON;",
        synchronous.as_str()
    ))?;
    connection.execute_batch(SCHEMA)?;
    add_missing_call_columns(&connection)?;
    add_column(&connection, "exposures", "prompt_id")?;
    add_column(&connection, "exposures", "prompt_version")?;
    connection.execute_batch(INDEXES)?;
    Ok(connection)
}

/// Files written before calls kept their content hash, or their hallucination signals, gain
/// the columns; their old rows have none, so a resend of one of them is a duplicate, never a
/// conflict, and its signals count as not computed.
fn add_missing_call_columns(connection: &Connection) -> Result<()> {
    let mut statement = connection.prepare("PRAGMA table_info(calls)")?;
    let columns = statement
        .query_map([], |row| row.get::<_, String>(1))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    for (column, kind) in [
        ("content_hash", "TEXT"),
        ("response_hash", "TEXT"),
        ("citation_mismatch", "INTEGER"),
        ("tool_call_mismatch", "INTEGER"),
        ("unsupported_numeric_claims", "INTEGER"),
        ("judge_score", "REAL"),
    ] {
        if !columns.iter().any(|existing| existing == column) {
            connection.execute_batch(&format!("ALTER TABLE calls ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}

/// The exposure indexes. Every read of exposures filters one flag over a time range and reads
/// the variant, version, unit, reason and environment, so an index on the flag and time that
/// also holds those columns answers each read from the index alone, without visiting the rows.
/// It replaces the earlier `(flag_key, ts_ms)` index, a prefix of it. The second, in unit order,
/// lets "who saw what" over a long window stream each unit's exposures together instead of
/// hashing and sorting millions of rows (`telemetry::forensics`; `docs/benchmarks.md` has the
/// figures on ten million exposures). Together they cost the collector two index writes an
/// exposure.
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS exposures_flag_time_cover ON exposures
    (flag_key, ts_ms, variant, prompt_version, unit, reason, environment);
CREATE INDEX IF NOT EXISTS exposures_flag_unit_cover ON exposures
    (flag_key, unit, variant, prompt_version, ts_ms);
DROP INDEX IF EXISTS exposures_flag_time;
";

/// Adds a nullable text column to a table that lacks it.
fn add_column(connection: &Connection, table: &str, column: &str) -> Result<()> {
    let mut statement = connection.prepare(&format!("PRAGMA table_info({table})"))?;
    let columns = statement.query_map([], |row| row.get::<_, String>(1))?;
    for existing in columns {
        if existing? == column {
            return Ok(());
        }
    }
    connection.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} TEXT"))?;
    Ok(())
}

/// What happened to one stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Newly written.
    Accepted,
    /// The same event (same id, same content) was already stored; nothing was written.
    Duplicate,
    /// An event with this id but other content was already stored; nothing was written. A
    /// retry resends the same content, so this is a caller reusing an id, not a retry.
    Conflict,
}

/// The SHA-256 of everything a call says besides its id, in a fixed order, so a resend of the
/// same call matches and a reused id with other content does not.
fn call_content_hash(call: &CallRecord) -> String {
    let fields = serde_json::json!([
        call.timestamp_millis,
        call.environment,
        call.flag_key,
        call.variant,
        call.prompt_id,
        call.prompt_version,
        call.prompt_hash,
        call.user_id,
        call.model,
        call.temperature,
        call.input_tokens,
        call.output_tokens,
        call.latency_ms,
        call.ttft_ms,
        call.status.as_str(),
        call.parser_valid,
        call.refused,
        call.hallucinated,
        call.cost_usd,
    ]);
    // The signals join the hashed fields only when a call carries any, so calls stored before
    // they existed keep their hash and a resend of one stays a duplicate.
    let signals = [
        call.citation_mismatch.map(serde_json::Value::from),
        call.tool_call_mismatch.map(serde_json::Value::from),
        call.unsupported_numeric_claims.map(serde_json::Value::from),
        call.judge_score.map(serde_json::Value::from),
    ];
    let fields = if signals.iter().any(Option::is_some) {
        let mut fields = fields;
        if let Some(array) = fields.as_array_mut() {
            array.extend(signals.into_iter().map(Option::unwrap_or_default));
        }
        fields
    } else {
        fields
    };
    // The response hash joined the schema later: it is hashed only when present, so a call
    // stored before it (or sent without it) keeps the hash it always had.
    let mut text = fields.to_string();
    if let Some(response_hash) = &call.response_hash {
        text.push_str(response_hash);
    }
    sha256_hex(text.as_bytes())
}

const INSERT_CALL: &str = "INSERT OR IGNORE INTO calls (request_id, ts_ms, environment, flag_key, variant, prompt_id, prompt_version, prompt_hash, user_id, model, temperature, input_tokens, output_tokens, latency_ms, ttft_ms, status, parser_valid, refused, hallucinated, cost_usd, content_hash, citation_mismatch, tool_call_mismatch, unsupported_numeric_claims, judge_score, response_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)";
const STORED_CALL_HASH: &str = "SELECT content_hash FROM calls WHERE request_id = ?1";
const INSERT_EXPOSURE: &str = "INSERT OR IGNORE INTO exposures (key, ts_ms, environment, flag_key, variant, prompt_hash, revision, unit, reason, prompt_id, prompt_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

fn insert_call(
    statement: &mut rusqlite::CachedStatement<'_>,
    stored_hash: &mut rusqlite::CachedStatement<'_>,
    call: &CallRecord,
) -> rusqlite::Result<Stored> {
    let content_hash = call_content_hash(call);
    let changed = statement.execute(params![
        call.request_id,
        call.timestamp_millis,
        call.environment,
        call.flag_key,
        call.variant,
        call.prompt_id,
        call.prompt_version,
        call.prompt_hash,
        call.user_id,
        call.model,
        call.temperature,
        call.input_tokens.map(|t| t.min(i64::MAX as u64) as i64),
        call.output_tokens.map(|t| t.min(i64::MAX as u64) as i64),
        call.latency_ms,
        call.ttft_ms,
        call.status.as_str(),
        call.parser_valid,
        call.refused,
        call.hallucinated,
        call.cost_usd,
        content_hash,
        call.citation_mismatch,
        call.tool_call_mismatch,
        call.unsupported_numeric_claims,
        call.judge_score,
        call.response_hash,
    ])?;
    if changed > 0 {
        return Ok(Stored::Accepted);
    }
    let existing: Option<String> =
        stored_hash.query_row(params![call.request_id], |row| row.get(0))?;
    Ok(match existing {
        Some(existing) if existing != content_hash => Stored::Conflict,
        _ => Stored::Duplicate,
    })
}

fn insert_exposure(
    statement: &mut rusqlite::CachedStatement<'_>,
    exposure: &ExposureRecord,
) -> rusqlite::Result<usize> {
    statement.execute(params![
        exposure.key,
        exposure.timestamp_ms,
        exposure.environment,
        exposure.flag_key,
        exposure.variant,
        exposure.prompt_hash,
        exposure.revision.map(|r| r.min(i64::MAX as u64) as i64),
        exposure.unit,
        exposure.reason,
        exposure.prompt_id,
        exposure.prompt_version,
    ])
}

/// Writes several batches in one transaction (a group commit) and returns, per batch, what
/// happened to each event. Nothing is visible, or acknowledged, before the commit returns.
pub fn insert_batches(
    connection: &mut Connection,
    batches: &[&[Record]],
) -> rusqlite::Result<Vec<Vec<Stored>>> {
    let transaction = connection.transaction()?;
    let mut outcomes = Vec::with_capacity(batches.len());
    {
        let mut calls = transaction.prepare_cached(INSERT_CALL)?;
        let mut stored_hashes = transaction.prepare_cached(STORED_CALL_HASH)?;
        let mut exposures = transaction.prepare_cached(INSERT_EXPOSURE)?;
        for batch in batches {
            let mut stored = Vec::with_capacity(batch.len());
            for record in *batch {
                stored.push(match record {
                    Record::Call(call) => insert_call(&mut calls, &mut stored_hashes, call)?,
                    // An exposure's key is the hash of its content, so a key stored again is
                    // always the same exposure.
                    Record::Exposure(exposure) => {
                        match insert_exposure(&mut exposures, exposure)? {
                            0 => Stored::Duplicate,
                            _ => Stored::Accepted,
                        }
                    }
                });
            }
            outcomes.push(stored);
        }
    }
    transaction.commit()?;
    Ok(outcomes)
}
