//! The rollout control loop run by `promptflag serve` and steered by `promptflag rollout …`.
//!
//! Each [`Controller::tick`] processes queued commands (start, pause, resume, abort), finishes or
//! reconciles any action a crash interrupted, and runs every check that is due: per-variant
//! metrics from a [`MetricsSource`], a pure [`decide::decide`], and for a decision that changes
//! the allocation a new ruleset revision through the [`Store`] (the Worker admin API or KV), an
//! audit entry with the decision, its metrics and statistics, and for a rollback a POST to the
//! alert webhook. A rollback's audit entry and alert carry its attribution (`attribution`): when
//! the rolled-back arm's metric degraded, and the prompt version, revision and publish behind it.
//!
//! Crash safety (intent → done): before publishing, the controller stores the *intent* (the
//! decision, the change and the target revision) in the rollout's row and commits. Then it
//! publishes with `expected_live`, appends the audit entry (unless one for that revision already
//! exists), and commits the new state with the intent cleared. A restart that finds an intent
//! reconciles it with the store: the target revision live → finish the bookkeeping without
//! publishing again; the revision never written → publish it now (it never happened, so this is
//! not a repeat); the revision number taken but not live (someone else published or moved the
//! pointer) → pause for a person rather than contradict them. Before acting, a check also
//! compares the live flag with what the rollout last set; a flag killed or re-weighted by hand
//! pauses the rollout.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod attribution;
pub mod clock;
pub mod error;

use std::sync::Arc;
use std::time::{Duration, Instant};

use promptflag_contracts::runtime::{self, RawRuntimeDecision};
use promptflag_core::model::{RawRuleset, RawTreatment};
use promptflag_stats::Xoshiro256StarStar;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use promptflag_authoring::build::{content_hash, ruleset_publish_bytes};
use promptflag_authoring::policy::RolloutPolicy;
use promptflag_contracts::digest::sha256_hex;
use promptflag_release::audit::{Action, AuditLog, NewEntry};
use promptflag_release::ops;
use promptflag_release::publish::live_ruleset;
use promptflag_release::store::{Http, Store};
use promptflag_rollout::decide;
use promptflag_rollout::metrics::VariantMetrics;
use promptflag_telemetry::read::{self, Window};

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use promptflag_rollout::decide::{CheckOutcome, Decision};

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Checked on schedule.
    Running,
    /// Not checked until resumed.
    Paused,
    /// The treatment went back to weight 0 (a guardrail or hard limit fired).
    RolledBack,
    /// The treatment became the baseline.
    Promoted,
    /// A person aborted it (treatment back to 0).
    Aborted,
}

impl Status {
    /// The name it is stored and printed under (`running`, `rolled_back`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Paused => "paused",
            Status::RolledBack => "rolled_back",
            Status::Promoted => "promoted",
            Status::Aborted => "aborted",
        }
    }

    /// True while the rollout may still act.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// A change to the live ruleset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RulesetChange {
    /// Set these treatments' lane weights in the flag's default split (others untouched).
    SetWeights(Vec<(String, u32)>),
    /// The variant becomes the flag's baseline and the default split is removed.
    Promote(String),
}

/// What to record once an intended publish is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct After {
    /// The status afterwards.
    pub status: Status,
    /// The stage afterwards.
    pub stage: usize,
    /// The arms' weights afterwards.
    pub weights: Vec<u32>,
    /// Whether the stage clock restarts.
    pub restart_stage: bool,
    /// The status reason.
    pub reason: String,
}

/// An action recorded before publishing, so a crash cannot repeat or lose it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// The decision.
    pub decision: Decision,
    /// The ruleset change.
    pub change: RulesetChange,
    /// The revision the publish creates.
    pub target_revision: u64,
    /// The live revision it was planned against.
    pub expected_live: Option<u64>,
    /// SHA-256 of the bytes to publish (kept in the audit database).
    pub ruleset_hash: String,
    /// Content hash of the ruleset.
    pub content_hash: String,
    /// The check that decided (0 for commands).
    pub check_seq: u64,
    /// The audit summary (decision, metrics, statistics).
    pub summary: Value,
    /// The state to record when done.
    pub after: After,
}

/// A rollout's persistent state (one row per flag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutState {
    /// The flag.
    pub flag: String,
    /// The environment.
    pub environment: String,
    /// The policy it runs.
    pub policy: RolloutPolicy,
    /// The flag's baseline variant.
    pub baseline: String,
    /// The treatment variants, in lane order.
    pub arms: Vec<String>,
    /// The arms' current weights (slots of 100 000).
    pub weights: Vec<u32>,
    /// Where it stands.
    pub status: Status,
    /// Why (the last decision's reason).
    pub reason: String,
    /// Current stage (index).
    pub stage: usize,
    /// When the rollout started (ms).
    pub started_ms: i64,
    /// When the current stage started (ms).
    pub stage_started_ms: i64,
    /// When the next check is due (ms).
    pub next_check_ms: i64,
    /// The revision this rollout last published, or saw live.
    pub revision: Option<u64>,
    /// Checks run.
    pub checks: u64,
    /// Who started it.
    pub actor: String,
    /// An action in flight.
    pub pending: Option<Intent>,
}

/// One check, as returned by [`Controller::tick`] and stored in `rollout_checks`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRecord {
    /// Sequence number of the check (database id).
    pub seq: u64,
    /// The flag.
    pub flag: String,
    /// Clock time of the check (ms).
    pub time_ms: i64,
    /// Stage index when checked.
    pub stage: usize,
    /// The arms' weights when checked.
    pub weights: Vec<u32>,
    /// The decision.
    pub decision: Decision,
    /// Why.
    pub reason: String,
    /// The baseline's metrics since the start.
    pub baseline: Option<VariantMetrics>,
    /// Each arm's metrics since the start.
    pub arms: Vec<VariantMetrics>,
    /// The statistics.
    pub outcome: Option<CheckOutcome>,
    /// The revision published, when the decision published one.
    pub revision: Option<u64>,
    /// Milliseconds from the decision to the Worker serving the new revision.
    pub served_ms: Option<u128>,
    /// The alert webhook's answer, for a rollback.
    pub alert: Option<String>,
}

/// What a check needs from the telemetry.
#[derive(Debug, Clone)]
pub struct SnapshotQuery {
    /// The flag.
    pub flag: String,
    /// The environment.
    pub environment: String,
    /// The baseline variant.
    pub baseline: String,
    /// The arms.
    pub arms: Vec<String>,
    /// Rollout start (ms).
    pub since_ms: i64,
    /// Stage start (ms).
    pub stage_since_ms: i64,
    /// Now (ms, exclusive).
    pub until_ms: i64,
}

/// The telemetry of a check.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The baseline since the rollout started.
    pub baseline: VariantMetrics,
    /// Each arm since the rollout started.
    pub arms: Vec<VariantMetrics>,
    /// Each arm's calls in this stage.
    pub stage_requests: Vec<u64>,
    /// Units in this stage: baseline, then each arm.
    pub stage_units: Vec<u64>,
}

/// Where checks get their metrics: the telemetry database, or a script in tests.
pub trait MetricsSource: Send {
    /// The metrics for a check.
    fn snapshot(&mut self, query: &SnapshotQuery) -> Result<Snapshot>;

    /// The per-window series and onsets a rollback's attribution reads; a source without them
    /// gives none, and the rollback then carries no attribution.
    fn attribution_inputs(
        &mut self,
        _query: &attribution::AttributionQuery,
    ) -> Result<attribution::AttributionInputs> {
        Ok(attribution::AttributionInputs::default())
    }
}

/// How far before a rollout's start a unit's calls count as its pre-exposure history.
pub const COVARIATE_LOOKBACK_MS: i64 = 14 * 24 * 3600 * 1000;

/// Metrics from the collector's SQLite database.
pub struct SqlMetrics {
    connection: Connection,
}

impl SqlMetrics {
    /// Reads from this connection.
    pub fn new(connection: Connection) -> SqlMetrics {
        SqlMetrics { connection }
    }
}

fn pick(all: &[VariantMetrics], variant: &str) -> VariantMetrics {
    all.iter()
        .find(|m| m.variant == variant)
        .cloned()
        .unwrap_or_else(|| VariantMetrics::from_aggregate(variant, Default::default()))
}

impl MetricsSource for SqlMetrics {
    fn snapshot(&mut self, query: &SnapshotQuery) -> Result<Snapshot> {
        let window = Window {
            flag_key: query.flag.clone(),
            environment: Some(query.environment.clone()),
            from_ms: query.since_ms,
            to_ms: query.until_ms,
        };
        // The success rate's pre-exposure covariate (CUPED) comes from each unit's calls in the
        // 14 days before the rollout started, GrowthBook's default lookback.
        let all: Vec<VariantMetrics> =
            read::aggregates_with_history(&self.connection, &window, COVARIATE_LOOKBACK_MS)?
                .into_iter()
                .map(|(variant, aggregate)| VariantMetrics::from_aggregate(&variant, aggregate))
                .collect();
        let stage_window = Window {
            from_ms: query.stage_since_ms,
            ..window
        };
        let stage_counts = read::calls_per_variant(&self.connection, &stage_window)?;
        let units = read::units_per_variant(&self.connection, &stage_window)?;
        let count_of = |list: &[(String, u64)], variant: &str| {
            list.iter()
                .find(|(v, _)| v == variant)
                .map_or(0, |(_, n)| *n)
        };
        let mut stage_units = vec![count_of(&units, &query.baseline)];
        stage_units.extend(query.arms.iter().map(|a| count_of(&units, a)));
        Ok(Snapshot {
            baseline: pick(&all, &query.baseline),
            arms: query.arms.iter().map(|a| pick(&all, a)).collect(),
            stage_requests: query
                .arms
                .iter()
                .map(|a| count_of(&stage_counts, a))
                .collect(),
            stage_units,
        })
    }

    fn attribution_inputs(
        &mut self,
        query: &attribution::AttributionQuery,
    ) -> Result<attribution::AttributionInputs> {
        attribution::read_inputs(&self.connection, query)
    }
}

/// Where a crash is injected (tests of the intent → done protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After the intent is stored, before publishing.
    AfterIntent,
    /// After publishing, before the audit entry.
    AfterPublish,
    /// After the audit entry, before the state is updated.
    AfterAudit,
}

/// How the controller acts.
#[derive(Debug, Clone, Default)]
pub struct ControllerConfig {
    /// Recorded in the audit log.
    pub actor: String,
    /// Where to poll `GET /v1/ruleset` after a publish (the revert cycle time).
    pub serve_url: Option<String>,
    /// The Worker's server read key, sent with that poll.
    pub serve_read_key: Option<String>,
    /// POSTed on every rollback.
    pub alert_webhook: Option<String>,
    /// How long to wait for the Worker to serve a change.
    pub wait_timeout: Duration,
    /// Seed of the bandit's random numbers.
    pub seed: u64,
    /// Never roll back: record in each check what would have fired and go on (the power
    /// measurement of `promptflag simulate --power`). Off in production.
    pub shadow_rollbacks: bool,
    /// On a promotion, write it back into this prompt repository's files as `promptflag sync`
    /// does (files written, not committed), so the close-out is a reviewable change at once.
    pub sync_repo: Option<std::path::PathBuf>,
}

const STATE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rollouts (
    flag TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rollout_checks (
    seq INTEGER PRIMARY KEY,
    flag TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    stage INTEGER NOT NULL,
    decision TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rollout_checks_flag ON rollout_checks (flag, seq);
CREATE TABLE IF NOT EXISTS rollout_commands (
    id INTEGER PRIMARY KEY,
    flag TEXT NOT NULL,
    command TEXT NOT NULL,
    payload TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    done_ms INTEGER,
    result TEXT
);
";

/// Creates the control loop's tables in a database (the telemetry database by default).
/// Opens (creating it and its folder when missing) the loop's own state database: its rollouts,
/// checks and queued commands. It is a file of its own, apart from telemetry's events, so the
/// loop's state has one owner; `promptflag serve --control` and `promptflag rollout` open the
/// same one.
pub fn open_state(path: &std::path::Path) -> Result<Connection> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::Invalid(format!("cannot create {}: {e}", parent.display())))?;
    }
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(30))?;
    init_state(&connection)?;
    Ok(connection)
}

pub fn init_state(connection: &Connection) -> Result<()> {
    connection.execute_batch(STATE_SCHEMA)?;
    Ok(())
}

/// A rollout command for the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Start with the policy in the payload.
    Start,
    /// Stop checking.
    Pause,
    /// Check again.
    Resume,
    /// Take the treatment back to 0 and stop.
    Abort,
}

impl Command {
    fn as_str(self) -> &'static str {
        match self {
            Command::Start => "start",
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Abort => "abort",
        }
    }

    fn parse(text: &str) -> Option<Command> {
        [
            Command::Start,
            Command::Pause,
            Command::Resume,
            Command::Abort,
        ]
        .into_iter()
        .find(|c| c.as_str() == text)
    }
}

/// Queues a command for the loop; returns its id.
pub fn enqueue_command(
    connection: &Connection,
    flag: &str,
    command: Command,
    payload: &Value,
    actor: &str,
    reason: &str,
    now_ms: i64,
) -> Result<i64> {
    init_state(connection)?;
    connection.execute(
        "INSERT INTO rollout_commands (flag, command, payload, actor, reason, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![flag, command.as_str(), payload.to_string(), actor, reason, now_ms],
    )?;
    Ok(connection.last_insert_rowid())
}

/// A command's result once the loop processed it: `(ok, message)`.
pub fn command_result(connection: &Connection, id: i64) -> Result<Option<Value>> {
    let result: Option<Option<String>> = connection
        .query_row(
            "SELECT result FROM rollout_commands WHERE id = ?1",
            [id],
            |row| row.get(0),
        )
        .optional()?;
    Ok(result
        .flatten()
        .map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

/// Reads a rollout's state.
pub fn load_state(connection: &Connection, flag: &str) -> Result<Option<RolloutState>> {
    init_state(connection)?;
    let text: Option<String> = connection
        .query_row(
            "SELECT state FROM rollouts WHERE flag = ?1",
            [flag],
            |row| row.get(0),
        )
        .optional()?;
    match text {
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Invalid(format!("the stored state of {flag} is unreadable: {e}"))),
        None => Ok(None),
    }
}

/// The last `limit` checks of a flag, newest last.
pub fn recent_checks(connection: &Connection, flag: &str, limit: usize) -> Result<Vec<Value>> {
    init_state(connection)?;
    let mut statement = connection.prepare(
        "SELECT record FROM (SELECT seq, record FROM rollout_checks WHERE flag = ?1 ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
    )?;
    let rows = statement.query_map(params![flag, limit as i64], |row| row.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(serde_json::from_str(&row?).unwrap_or(Value::Null));
    }
    Ok(out)
}

fn save_state(connection: &Connection, state: &RolloutState, now_ms: i64) -> Result<()> {
    let text = serde_json::to_string(state).map_err(|e| Error::Invalid(e.to_string()))?;
    connection.execute(
        "INSERT INTO rollouts (flag, state, updated_ms) VALUES (?1, ?2, ?3) ON CONFLICT(flag) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
        params![state.flag, text, now_ms],
    )?;
    Ok(())
}

/// Applies a change to a flag of a ruleset.
pub fn apply_change(ruleset: &mut RawRuleset, flag: &str, change: &RulesetChange) -> Result<()> {
    let Some((_, raw)) = ruleset.flags.0.iter_mut().find(|(key, _)| key == flag) else {
        return Err(Error::Invalid(format!(
            "{} has no flag {flag:?}",
            ruleset.environment
        )));
    };
    match change {
        RulesetChange::SetWeights(weights) => runtime::set_weights(raw, &treatments(weights)),
        RulesetChange::Promote(variant) => runtime::promote(raw, variant),
    }
    Ok(())
}

fn treatments(weights: &[(String, u32)]) -> Vec<RawTreatment> {
    weights
        .iter()
        .map(|(variant, weight)| RawTreatment {
            variant: variant.clone(),
            weight: *weight,
        })
        .collect()
}

/// The runtime record of a decision that changes the live split (a canary's start or advance,
/// rollback, abort, promotion, a bandit's reallocation): what the next publish from git must
/// keep. A canary's record names no ramp step here; the caller, which knows the policy, adds it.
/// `None` for decisions that publish nothing (hold, pause, resume).
pub fn runtime_decision(
    decision: Decision,
    change: &RulesetChange,
    by: &str,
    at_ms: i64,
    revision: u64,
    reason: &str,
    details: &Value,
) -> Option<RawRuntimeDecision> {
    let action = match decision {
        Decision::Rollback => runtime::ROLLBACK,
        Decision::Abort => runtime::ABORT,
        Decision::Promote => runtime::PROMOTE,
        Decision::Reallocate => runtime::REALLOCATE,
        Decision::Start | Decision::Advance => runtime::CANARY,
        Decision::Hold | Decision::Pause | Decision::Resume => return None,
    };
    let (baseline, weights) = match change {
        RulesetChange::Promote(variant) => (Some(variant.clone()), Vec::new()),
        RulesetChange::SetWeights(weights) => (None, treatments(weights)),
    };
    Some(RawRuntimeDecision {
        action: String::from(action),
        by: String::from(by),
        at: promptflag_core::literal::format_rfc3339_millis(at_ms),
        reason: String::from(reason),
        revision,
        baseline,
        weights,
        details: details.clone(),
        ..RawRuntimeDecision::default()
    })
}

/// The weights a live flag gives the arms (0 for an arm not in its default split), and whether
/// the flag is enabled.
pub fn live_weights(ruleset: &RawRuleset, flag: &str, arms: &[String]) -> Option<(bool, Vec<u32>)> {
    let raw = ruleset.flags.get(flag)?;
    let split = raw.default.as_ref().and_then(|s| s.split.as_ref());
    let weights = arms
        .iter()
        .map(|arm| {
            split
                .and_then(|s| s.treatments.iter().find(|t| t.variant == *arm))
                .map_or(0, |t| t.weight)
        })
        .collect();
    Some((raw.enabled, weights))
}

/// The control loop.
pub struct Controller {
    state_db: Connection,
    audit: AuditLog,
    store: Box<dyn Store>,
    metrics: Box<dyn MetricsSource>,
    clock: Arc<dyn Clock>,
    config: ControllerConfig,
    http: Http,
    rng: Xoshiro256StarStar,
    /// Injects a crash (tests of the intent → done protocol); cleared once it fires.
    pub crash_at: Option<CrashPoint>,
}

fn crash(point: CrashPoint) -> Error {
    Error::Invalid(format!("injected crash at {point:?}"))
}

impl Controller {
    /// A controller over its state database, the audit log, a store and a metrics source.
    pub fn new(
        state_db: Connection,
        audit: AuditLog,
        store: Box<dyn Store>,
        metrics: Box<dyn MetricsSource>,
        clock: Arc<dyn Clock>,
        config: ControllerConfig,
        http: Http,
    ) -> Result<Controller> {
        init_state(&state_db)?;
        let rng = Xoshiro256StarStar::seed_from_u64(config.seed);
        Ok(Controller {
            state_db,
            audit,
            store,
            metrics,
            clock,
            config,
            http,
            rng,
            crash_at: None,
        })
    }

    /// The state database (for status queries in-process).
    pub fn state_db(&self) -> &Connection {
        &self.state_db
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    fn fire(&mut self, point: CrashPoint) -> Result<()> {
        if self.crash_at == Some(point) {
            self.crash_at = None;
            return Err(crash(point));
        }
        Ok(())
    }

    fn states(&self) -> Result<Vec<RolloutState>> {
        let mut statement = self
            .state_db
            .prepare("SELECT state FROM rollouts ORDER BY flag")?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            let text = row?;
            match serde_json::from_str(&text) {
                Ok(state) => out.push(state),
                Err(e) => {
                    return Err(Error::Invalid(format!(
                        "a stored rollout state is unreadable: {e}"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// One pass: commands, interrupted actions, due checks. Returns the checks and actions run.
    pub fn tick(&mut self) -> Result<Vec<CheckRecord>> {
        let mut records = Vec::new();
        for state in self.states()? {
            if state.pending.is_some() {
                let mut state = state;
                records.extend(self.reconcile(&mut state)?);
            }
        }
        records.extend(self.process_commands()?);
        let now = self.clock.now_ms();
        for state in self.states()? {
            if state.status == Status::Running
                && state.pending.is_none()
                && state.next_check_ms <= now
            {
                let mut state = state;
                records.push(self.check(&mut state)?);
            }
        }
        Ok(records)
    }

    /// Finishes an action a crash interrupted, without repeating or contradicting it.
    fn reconcile(&mut self, state: &mut RolloutState) -> Result<Vec<CheckRecord>> {
        let Some(intent) = state.pending.clone() else {
            return Ok(Vec::new());
        };
        let env = self.store.state(&state.environment)?;
        let started = Instant::now();
        if env.live == Some(intent.target_revision) {
            // The revision number alone could be another publisher's: compare the bytes.
            let ours = match self
                .store
                .fetch_ruleset(&state.environment, intent.target_revision)?
            {
                Some(bytes) => sha256_hex(&bytes) == intent.ruleset_hash,
                None => true,
            };
            if ours {
                let record = self.complete(state, started)?;
                return Ok(vec![record]);
            }
        }
        if env
            .latest
            .is_some_and(|latest| latest >= intent.target_revision)
        {
            state.pending = None;
            state.status = Status::Paused;
            state.reason = format!(
                "an interrupted {} aimed at revision {} of {}, which is taken but not live (live: {:?}); paused for a person to look",
                intent.decision.as_str(),
                intent.target_revision,
                state.environment,
                env.live
            );
            let now = self.clock.now_ms();
            save_state(&self.state_db, state, now)?;
            self.audit_decision(
                state,
                Decision::Pause,
                None,
                None,
                json!({"reason": state.reason}),
            )?;
            return Ok(vec![self.simple_record(state, Decision::Pause)]);
        }
        // Never published: do it now, planned afresh against the live revision.
        state.pending = None;
        let record = self.execute(
            state,
            intent.decision,
            intent.change,
            intent.after,
            intent.check_seq,
            intent.summary,
        )?;
        Ok(vec![record])
    }

    fn simple_record(&self, state: &RolloutState, decision: Decision) -> CheckRecord {
        CheckRecord {
            seq: 0,
            flag: state.flag.clone(),
            time_ms: self.clock.now_ms(),
            stage: state.stage,
            weights: state.weights.clone(),
            decision,
            reason: state.reason.clone(),
            baseline: None,
            arms: Vec::new(),
            outcome: None,
            revision: state.revision,
            served_ms: None,
            alert: None,
        }
    }

    fn audit_decision(
        &mut self,
        state: &RolloutState,
        decision: Decision,
        revision: Option<u64>,
        previous: Option<u64>,
        details: Value,
    ) -> Result<()> {
        self.audit.append(NewEntry {
            actor: self.config.actor.clone(),
            action: Action::Rollout,
            environment: state.environment.clone(),
            revision,
            previous_revision: previous,
            reason: state.reason.clone(),
            content_hash: None,
            ruleset_hash: None,
            summary: json!({
                "flag": state.flag,
                "decision": decision.as_str(),
                "stage": state.stage,
                "weights": state.weights,
                "details": details,
            }),
        })?;
        Ok(())
    }

    fn process_commands(&mut self) -> Result<Vec<CheckRecord>> {
        let mut statement = self.state_db.prepare(
            "SELECT id, flag, command, payload, actor, reason FROM rollout_commands WHERE done_ms IS NULL ORDER BY id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
            ))
        })?;
        let mut commands = Vec::new();
        for row in rows {
            commands.push(row?);
        }
        drop(statement);
        let mut records = Vec::new();
        for (id, flag, command, payload, actor, reason) in commands {
            let result = match Command::parse(&command) {
                Some(command) => self.run_command(&flag, command, &payload, &actor, &reason),
                None => Err(Error::Invalid(format!("unknown command {command:?}"))),
            };
            let (value, record) = match result {
                Ok(record) => (
                    json!({"ok": true, "decision": record.decision.as_str(), "reason": record.reason, "revision": record.revision}),
                    Some(record),
                ),
                Err(error) => (json!({"ok": false, "error": error.to_string()}), None),
            };
            self.state_db.execute(
                "UPDATE rollout_commands SET done_ms = ?2, result = ?3 WHERE id = ?1",
                params![id, self.clock.now_ms(), value.to_string()],
            )?;
            records.extend(record);
        }
        Ok(records)
    }

    fn run_command(
        &mut self,
        flag: &str,
        command: Command,
        payload: &str,
        actor: &str,
        reason: &str,
    ) -> Result<CheckRecord> {
        let now = self.clock.now_ms();
        let existing = load_state(&self.state_db, flag)?;
        match command {
            Command::Start => {
                if let Some(state) = &existing
                    && state.status.is_active()
                {
                    return Err(Error::Invalid(format!(
                        "a rollout of {flag} is already {:?}; abort it first",
                        state.status
                    )));
                }
                let value: Value =
                    serde_json::from_str(payload).map_err(|e| Error::Invalid(e.to_string()))?;
                let policy: RolloutPolicy = serde_json::from_value(value["policy"].clone())
                    .map_err(|e| {
                        Error::Invalid(format!("the start command's policy is unreadable: {e}"))
                    })?;
                self.start(flag, policy, actor, reason)
            }
            Command::Pause | Command::Resume | Command::Abort => {
                let Some(mut state) = existing.filter(|s| s.status.is_active()) else {
                    return Err(Error::Invalid(format!("{flag} has no active rollout")));
                };
                if state.pending.is_some() {
                    return Err(Error::Invalid(format!(
                        "{flag} has an action in flight; retry"
                    )));
                }
                let who = if reason.is_empty() {
                    format!("by {actor}")
                } else {
                    format!("by {actor}: {reason}")
                };
                match command {
                    Command::Pause => {
                        state.status = Status::Paused;
                        state.reason = format!("paused {who}");
                        save_state(&self.state_db, &state, now)?;
                        self.audit_decision(
                            &state,
                            Decision::Pause,
                            None,
                            None,
                            json!({"command": "pause"}),
                        )?;
                        Ok(self.simple_record(&state, Decision::Pause))
                    }
                    Command::Resume => {
                        state.status = Status::Running;
                        state.reason = format!("resumed {who}");
                        // A fresh stage window: the sample-ratio check restarts on clean data.
                        state.stage_started_ms = now;
                        state.next_check_ms = now;
                        save_state(&self.state_db, &state, now)?;
                        self.audit_decision(
                            &state,
                            Decision::Resume,
                            None,
                            None,
                            json!({"command": "resume"}),
                        )?;
                        Ok(self.simple_record(&state, Decision::Resume))
                    }
                    _ => {
                        let after = After {
                            status: Status::Aborted,
                            stage: state.stage,
                            weights: vec![0; state.arms.len()],
                            restart_stage: false,
                            reason: format!("aborted {who}"),
                        };
                        let change = RulesetChange::SetWeights(
                            state.arms.iter().map(|a| (a.clone(), 0)).collect(),
                        );
                        self.execute(
                            &mut state,
                            Decision::Abort,
                            change,
                            after,
                            0,
                            json!({"command": "abort"}),
                        )
                    }
                }
            }
        }
    }

    /// Starts a rollout: checks the flag, then publishes the first stage.
    fn start(
        &mut self,
        flag: &str,
        policy: RolloutPolicy,
        actor: &str,
        reason: &str,
    ) -> Result<CheckRecord> {
        let env = self.store.state(&policy.environment)?;
        let live = env.live.ok_or_else(|| {
            Error::Invalid(format!(
                "{} has no live ruleset; publish one first",
                policy.environment
            ))
        })?;
        let ruleset = live_ruleset(self.store.as_ref(), &self.audit, &policy.environment, live)?
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "cannot read revision {live} of {}",
                    policy.environment
                ))
            })?;
        let raw = ruleset.flags.get(flag).ok_or_else(|| {
            Error::Invalid(format!("{} has no flag {flag:?}", policy.environment))
        })?;
        if !raw.enabled {
            return Err(Error::Invalid(format!(
                "{flag} is disabled (killed) in {}; enable it before a rollout",
                policy.environment
            )));
        }
        let arms = match &policy.bandit {
            Some(bandit) => bandit.arms.clone(),
            None => vec![policy.treatment.clone()],
        };
        for arm in &arms {
            if raw.variants.get(arm).is_none() || *arm == raw.baseline {
                return Err(Error::Invalid(format!(
                    "{arm:?} is not a treatment variant of {flag} (baseline {:?})",
                    raw.baseline
                )));
            }
        }
        let first = policy
            .stages
            .first()
            .ok_or_else(|| Error::Invalid(String::from("the policy has no stages")))?;
        let width = decide::lane_width(arms.len());
        let weights = vec![first.weight.min(width); arms.len()];
        let now = self.clock.now_ms();
        let mut state = RolloutState {
            flag: flag.to_string(),
            environment: policy.environment.clone(),
            baseline: raw.baseline.clone(),
            arms: arms.clone(),
            weights: vec![0; arms.len()],
            status: Status::Running,
            reason: String::new(),
            stage: 0,
            started_ms: now,
            stage_started_ms: now,
            next_check_ms: now + (policy.check_interval_seconds as i64) * 1000,
            revision: Some(live),
            checks: 0,
            actor: actor.to_string(),
            pending: None,
            policy,
        };
        let after = After {
            status: Status::Running,
            stage: 0,
            weights: weights.clone(),
            restart_stage: true,
            reason: format!(
                "started by {actor}{}: stage 1 at {} %",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({reason})")
                },
                state.policy.stages.first().map_or(0.0, |s| s.percent)
            ),
        };
        let change = RulesetChange::SetWeights(arms.iter().cloned().zip(weights).collect());
        let summary = json!({"command": "start", "policy": state.policy});
        self.execute(&mut state, Decision::Start, change, after, 0, summary)
    }

    /// Runs one check of a running rollout.
    fn check(&mut self, state: &mut RolloutState) -> Result<CheckRecord> {
        let now = self.clock.now_ms();
        let started = Instant::now();
        // A flag changed by hand (killed, re-weighted) pauses the rollout rather than fight it.
        let env = self.store.state(&state.environment)?;
        if env.live != state.revision
            && let Some(live) = env.live
        {
            let ruleset = live_ruleset(self.store.as_ref(), &self.audit, &state.environment, live)?;
            let seen = ruleset
                .as_ref()
                .and_then(|r| live_weights(r, &state.flag, &state.arms));
            match seen {
                Some((true, weights)) if weights == state.weights => state.revision = Some(live),
                other => {
                    state.status = Status::Paused;
                    state.reason = match other {
                        Some((false, _)) => format!(
                            "{} was killed outside the rollout (revision {live}); paused",
                            state.flag
                        ),
                        Some((true, weights)) => format!(
                            "{}'s weights were changed outside the rollout (revision {live}: {weights:?}, expected {:?}); paused",
                            state.flag, state.weights
                        ),
                        None => format!(
                            "revision {live} of {} is unreadable or lacks {}; paused",
                            state.environment, state.flag
                        ),
                    };
                    save_state(&self.state_db, state, now)?;
                    self.audit_decision(
                        state,
                        Decision::Pause,
                        None,
                        None,
                        json!({"outside_change": live}),
                    )?;
                    return Ok(self.simple_record(state, Decision::Pause));
                }
            }
        }
        let snapshot = self.metrics.snapshot(&SnapshotQuery {
            flag: state.flag.clone(),
            environment: state.environment.clone(),
            baseline: state.baseline.clone(),
            arms: state.arms.clone(),
            since_ms: state.started_ms,
            stage_since_ms: state.stage_started_ms,
            until_ms: now,
        })?;
        let outcome = decide::decide(
            &decide::CheckInput {
                policy: &state.policy,
                stage: state.stage,
                held_ms: now - state.stage_started_ms,
                baseline: &snapshot.baseline,
                arms: &snapshot.arms,
                stage_requests: &snapshot.stage_requests,
                stage_units: &snapshot.stage_units,
                weights: &state.weights,
                shadow: self.config.shadow_rollbacks,
            },
            &mut self.rng,
        );
        state.checks += 1;
        state.next_check_ms = now + (state.policy.check_interval_seconds as i64) * 1000;
        let mut record = CheckRecord {
            seq: 0,
            flag: state.flag.clone(),
            time_ms: now,
            stage: state.stage,
            weights: state.weights.clone(),
            decision: outcome.decision,
            reason: outcome.reason.clone(),
            baseline: Some(snapshot.baseline.clone()),
            arms: snapshot.arms.clone(),
            outcome: Some(outcome.clone()),
            revision: None,
            served_ms: None,
            alert: None,
        };
        let text = serde_json::to_string(&record).map_err(|e| Error::Invalid(e.to_string()))?;
        self.state_db.execute(
            "INSERT INTO rollout_checks (flag, time_ms, stage, decision, record) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![state.flag, now, state.stage as i64, outcome.decision.as_str(), text],
        )?;
        record.seq = self.state_db.last_insert_rowid() as u64;
        let mut summary = json!({
            "check": record.seq,
            "baseline": snapshot.baseline,
            "arms": snapshot.arms,
            "statistics": outcome,
        });
        if outcome.decision == Decision::Rollback {
            summary["attribution"] = self.attribute(state, now)?;
        }
        let new_weights = outcome
            .new_weights
            .clone()
            .unwrap_or_else(|| state.weights.clone());
        let (change, after) = match outcome.decision {
            Decision::Hold => {
                state.reason = outcome.reason.clone();
                save_state(&self.state_db, state, now)?;
                return Ok(record);
            }
            Decision::Pause => {
                state.status = Status::Paused;
                state.reason = outcome.reason.clone();
                save_state(&self.state_db, state, now)?;
                self.audit_decision(state, Decision::Pause, None, None, summary)?;
                return Ok(record);
            }
            Decision::Promote => (
                RulesetChange::Promote(state.arms.first().cloned().unwrap_or_default()),
                After {
                    status: Status::Promoted,
                    stage: state.stage,
                    weights: vec![0; state.arms.len()],
                    restart_stage: false,
                    reason: outcome.reason.clone(),
                },
            ),
            decision => {
                let all_out = new_weights.iter().all(|w| *w == 0);
                let status = if decision == Decision::Rollback && all_out {
                    Status::RolledBack
                } else {
                    Status::Running
                };
                (
                    RulesetChange::SetWeights(
                        state
                            .arms
                            .iter()
                            .cloned()
                            .zip(new_weights.iter().copied())
                            .collect(),
                    ),
                    After {
                        status,
                        stage: outcome.next_stage,
                        weights: new_weights.clone(),
                        // New weights start a new window, so the sample-ratio check never
                        // mixes two allocations.
                        restart_stage: status == Status::Running,
                        reason: outcome.reason.clone(),
                    },
                )
            }
        };
        save_state(&self.state_db, state, now)?;
        let published = self.execute_timed(
            state,
            outcome.decision,
            change,
            after,
            record.seq,
            summary,
            started,
        )?;
        record.revision = published.revision;
        record.served_ms = published.served_ms;
        record.alert = published.alert;
        Ok(record)
    }

    fn execute(
        &mut self,
        state: &mut RolloutState,
        decision: Decision,
        change: RulesetChange,
        after: After,
        check_seq: u64,
        summary: Value,
    ) -> Result<CheckRecord> {
        self.execute_timed(
            state,
            decision,
            change,
            after,
            check_seq,
            summary,
            Instant::now(),
        )
    }

    /// Plans the revision, records the intent, publishes, then completes.
    #[allow(clippy::too_many_arguments)]
    fn execute_timed(
        &mut self,
        state: &mut RolloutState,
        decision: Decision,
        change: RulesetChange,
        after: After,
        check_seq: u64,
        summary: Value,
        started: Instant,
    ) -> Result<CheckRecord> {
        let now = self.clock.now_ms();
        let env = self.store.state(&state.environment)?;
        let live = env
            .live
            .ok_or_else(|| Error::Invalid(format!("{} has no live ruleset", state.environment)))?;
        let mut ruleset = live_ruleset(self.store.as_ref(), &self.audit, &state.environment, live)?
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "cannot read revision {live} of {}",
                    state.environment
                ))
            })?;
        // An operator's rollback this write builds on is recorded in it, so it outlives the
        // revision state that shows it.
        ops::record_rollback_in_force(
            self.store.as_ref(),
            &self.audit,
            &state.environment,
            &env,
            &mut ruleset,
        )?;
        apply_change(&mut ruleset, &state.flag, &change)?;
        let target = promptflag_contracts::revision::next(env.latest, Some(live))
            .map_err(promptflag_release::store::contract_error)?;
        ruleset.revision = target;
        // Every step the loop publishes is runtime state, a ramp step included: a publish from
        // git keeps the canary's split where the loop has taken it.
        if let Some(mut recorded) = runtime_decision(
            decision,
            &change,
            &self.config.actor,
            now,
            target,
            &after.reason,
            &summary,
        ) {
            if recorded.action == runtime::CANARY {
                // A ramp step's statistics stay in its audit entry: the record, carried in every
                // revision while the canary runs, says only where the ramp stands.
                recorded.details = Value::Null;
                recorded.step = u32::try_from(after.stage + 1).unwrap_or(u32::MAX);
                recorded.steps = u32::try_from(state.policy.stages.len()).unwrap_or(u32::MAX);
            }
            runtime::record(&mut ruleset, &state.flag, recorded);
        }
        promptflag_core::compile(&ruleset).map_err(|e| Error::Invalid(e.to_string()))?;
        let bytes = ruleset_publish_bytes(&ruleset)?;
        let ruleset_hash = self.audit.store_ruleset(&bytes)?;
        state.pending = Some(Intent {
            decision,
            change,
            target_revision: target,
            expected_live: Some(live),
            ruleset_hash,
            content_hash: content_hash(&ruleset)?,
            check_seq,
            summary,
            after,
        });
        save_state(&self.state_db, state, now)?;
        self.fire(CrashPoint::AfterIntent)?;
        let intent = promptflag_release::store::WriteIntent {
            action: "rollout",
            reason: format!("rollout {}", decision.as_str()),
            override_gates: false,
            approvals: None,
        };
        match self
            .store
            .put_ruleset_with(&state.environment, target, &bytes, Some(live), &intent)
        {
            Ok(_) => {}
            Err(promptflag_release::Error::Conflict { message }) => {
                state.pending = None;
                state.status = Status::Paused;
                state.reason = format!(
                    "{} was not published: another publisher changed {} first ({message}); paused",
                    decision.as_str(),
                    state.environment
                );
                save_state(&self.state_db, state, now)?;
                self.audit_decision(
                    state,
                    Decision::Pause,
                    None,
                    None,
                    json!({"conflict": message}),
                )?;
                return Ok(self.simple_record(state, Decision::Pause));
            }
            // Anything else may or may not have landed: the intent stays and the next tick
            // reconciles it against the store.
            Err(error) => return Err(error.into()),
        }
        self.fire(CrashPoint::AfterPublish)?;
        self.complete(state, started)
    }

    /// Records a published intent: the audit entry (once), the new state, then waits for the
    /// Worker and alerts on a rollback.
    fn complete(&mut self, state: &mut RolloutState, started: Instant) -> Result<CheckRecord> {
        let Some(intent) = state.pending.clone() else {
            return Err(Error::Invalid(String::from("no action in flight")));
        };
        let already = self
            .audit
            .list(Some(&state.environment))?
            .iter()
            .any(|entry| {
                entry.action == Action::Rollout
                    && entry.revision == Some(intent.target_revision)
                    && entry.summary["flag"] == json!(state.flag)
            });
        if !already {
            self.audit.append(NewEntry {
                actor: self.config.actor.clone(),
                action: Action::Rollout,
                environment: state.environment.clone(),
                revision: Some(intent.target_revision),
                previous_revision: intent.expected_live,
                reason: intent.after.reason.clone(),
                content_hash: Some(intent.content_hash.clone()),
                ruleset_hash: Some(intent.ruleset_hash.clone()),
                summary: json!({
                    "flag": state.flag,
                    "decision": intent.decision.as_str(),
                    "stage": intent.after.stage,
                    "weights": intent.after.weights,
                    "change": intent.change,
                    "details": intent.summary,
                }),
            })?;
        }
        self.fire(CrashPoint::AfterAudit)?;
        // Wait for the Worker first, so the new stage's window starts when it is really served.
        let served_ms = match &self.config.serve_url {
            Some(url) => ops::wait_until_served(
                &self.http,
                url,
                self.config.serve_read_key.as_deref(),
                &state.environment,
                intent.target_revision,
                started,
                self.config.wait_timeout,
                Duration::from_millis(10),
            )
            .ok(),
            None => None,
        };
        let now = self.clock.now_ms();
        state.status = intent.after.status;
        state.stage = intent.after.stage;
        state.weights = intent.after.weights.clone();
        state.reason = intent.after.reason.clone();
        state.revision = Some(intent.target_revision);
        if intent.after.restart_stage {
            state.stage_started_ms = now;
        }
        state.pending = None;
        save_state(&self.state_db, state, now)?;
        let alert = if matches!(intent.decision, Decision::Rollback) {
            self.alert(state, &intent, served_ms)
        } else {
            None
        };
        if matches!(intent.decision, Decision::Promote)
            && let Some(repo) = self.config.sync_repo.clone()
            && let Err(error) = self.sync_repo(&repo, &state.environment)
        {
            // The promotion stands either way; a failed write-back is told, and `promptflag
            // sync` can do it later.
            state.reason = format!(
                "{}; writing it back to {} failed: {error}",
                state.reason,
                repo.display()
            );
            save_state(&self.state_db, state, now)?;
        }
        Ok(CheckRecord {
            seq: intent.check_seq,
            flag: state.flag.clone(),
            time_ms: now,
            stage: state.stage,
            weights: state.weights.clone(),
            decision: intent.decision,
            reason: state.reason.clone(),
            baseline: None,
            arms: Vec::new(),
            outcome: None,
            revision: Some(intent.target_revision),
            served_ms,
            alert,
        })
    }

    /// `promptflag sync` of one environment into a repository, after a promotion.
    fn sync_repo(&self, repo: &std::path::Path, environment: &str) -> Result<()> {
        let invalid = |e: promptflag_authoring::error::Error| Error::Invalid(e.to_string());
        let (loaded, diagnostics) = promptflag_authoring::lint::check(repo).map_err(invalid)?;
        let build = promptflag_authoring::build::build(
            &loaded,
            &diagnostics,
            &promptflag_authoring::build::BuildOptions {
                source: Some(String::from("sync")),
                environments: vec![environment.to_string()],
                owner_keys: None,
            },
        )
        .map_err(invalid)?;
        let live = self
            .store
            .state(environment)?
            .live
            .ok_or_else(|| Error::Invalid(format!("{environment} has no live ruleset")))?;
        let live = live_ruleset(self.store.as_ref(), &self.audit, environment, live)?.ok_or_else(
            || Error::Invalid(format!("cannot read the live ruleset of {environment}")),
        )?;
        let plan = promptflag_authoring::sync::plan(
            &loaded,
            environment,
            &live,
            &build.environments[environment].ruleset,
        )
        .map_err(invalid)?;
        plan.write(&loaded).map_err(invalid)
    }

    /// What explains a rollback: the first degradation of the arms' metrics since the rollout
    /// started (a window a check interval long), with its version, revision and publish; `null`
    /// when the series shows none yet (a hard limit can fire before a change-point does).
    fn attribute(&mut self, state: &RolloutState, now: i64) -> Result<Value> {
        let step_ms = (state.policy.check_interval_seconds.max(1) as i64) * 1000;
        let inputs = self
            .metrics
            .attribution_inputs(&attribution::AttributionQuery {
                flag: state.flag.clone(),
                environment: Some(state.environment.clone()),
                history_from_ms: state.started_ms,
                from_ms: state.started_ms,
                to_ms: now,
                step_ms,
            })?;
        let publishes = attribution::publishes(&self.audit, Some(&state.environment))?;
        let mut metrics: Vec<promptflag_authoring::policy::Metric> = state
            .policy
            .hard_limits
            .iter()
            .map(|limit| limit.metric)
            .chain(state.policy.guardrails.iter().map(|g| g.metric))
            .collect();
        metrics.extend(promptflag_rollout::attribution::DEFAULT_METRICS);
        metrics.dedup();
        let found =
            attribution::investigate(&state.flag, &inputs, &publishes, &metrics, &state.arms, now);
        Ok(match found {
            Some(found) => {
                let mut value =
                    serde_json::to_value(&found).map_err(|e| Error::Invalid(e.to_string()))?;
                value["text"] = json!(promptflag_rollout::attribution::describe(&found));
                value
            }
            None => Value::Null,
        })
    }

    fn alert(
        &self,
        state: &RolloutState,
        intent: &Intent,
        served_ms: Option<u128>,
    ) -> Option<String> {
        let url = self.config.alert_webhook.as_ref()?;
        let attribution = intent
            .summary
            .get("attribution")
            .cloned()
            .unwrap_or(Value::Null);
        let mut text = format!(
            "promptflag rolled back {} in {}: {}",
            state.flag, state.environment, state.reason
        );
        if let Some(explained) = attribution.get("text").and_then(Value::as_str) {
            text.push_str("; ");
            text.push_str(explained);
        }
        let body = json!({
            "text": text,
            "attribution": attribution,
            "flag": state.flag,
            "environment": state.environment,
            "decision": intent.decision.as_str(),
            "revision": intent.target_revision,
            "reason": state.reason,
            "revert_cycle_ms": served_ms,
            "details": intent.summary,
        });
        let bytes = serde_json::to_vec(&body).ok()?;
        let answer = self.http.send(
            "POST",
            url,
            &[("Content-Type", String::from("application/json"))],
            Some(&bytes),
            true,
        );
        Some(match answer {
            Ok(reply) => format!("HTTP {}", reply.status),
            Err(error) => format!("failed: {error}"),
        })
    }
}

/// The content of a ruleset change for messages.
pub fn describe_weights(arms: &[String], weights: &[u32]) -> String {
    arms.iter()
        .zip(weights)
        .map(|(arm, weight)| format!("{arm} {}%", f64::from(*weight) / 1000.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The SHA-256 of bytes, re-exported for callers that check an intent's ruleset.
pub fn ruleset_hash(bytes: &[u8]) -> String {
    sha256_hex(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_prints_under_the_name_it_is_stored_under() {
        for status in [
            Status::Running,
            Status::Paused,
            Status::RolledBack,
            Status::Promoted,
            Status::Aborted,
        ] {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
    }
}
