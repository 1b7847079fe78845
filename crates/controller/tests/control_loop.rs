//! The rollout control loop on scripted metric streams, against an in-memory store with the
//! Worker's semantics and a manual clock: advance, rollback (with the alert webhook), hard limit,
//! promote, sample-ratio pause and resume, a flag changed by hand, a bandit, and crashes at each
//! step of the intent → done protocol without a repeated or lost action. Then runtime state
//! against git: a promotion, a rollback, a kill and a canary the loop is ramping survive a
//! publish from the unchanged repository, and `status` explains the difference.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use promptflag_authoring::build::content_hash;
use promptflag_authoring::policy::{
    BanditPolicy, Change, Guardrail, HardLimit, Metric, PrimaryMetric, Promotion, PromotionAction,
    Requirement, RolloutPolicy, Stage,
};
use promptflag_controller::Result;
use promptflag_controller::attribution::{AttributionInputs, AttributionQuery};
use promptflag_controller::{
    self, Command, Controller, ControllerConfig, CrashPoint, Decision, ManualClock, MetricsSource,
    Snapshot, SnapshotQuery, Status,
};
use promptflag_release::audit::{Action, AuditLog};
use promptflag_release::drift::{self, FlagStatus};
use promptflag_release::memstore::MemoryStore;
use promptflag_release::ops;
use promptflag_release::publish::{self, PublishOptions, RuntimeOutcome};
use promptflag_release::store::{Http, NoProgress, RetryPolicy, Store};
use promptflag_rollout::metrics::VariantMetrics;
use promptflag_telemetry::forensics::{VariantOnset, WindowAggregates};
use promptflag_telemetry::read::{Aggregate, Observation};
use serde_json::json;

const MINUTE: i64 = 60_000;
const START: i64 = 1_800_000_000_000;

/// Metrics the test sets before each tick, and the telemetry a rollback's attribution reads.
#[derive(Clone, Default)]
struct Script(Arc<Mutex<Option<Snapshot>>>, Arc<Mutex<AttributionInputs>>);

impl Script {
    fn set(&self, snapshot: Snapshot) {
        *self.0.lock().unwrap() = Some(snapshot);
    }

    fn set_series(&self, inputs: AttributionInputs) {
        *self.1.lock().unwrap() = inputs;
    }
}

impl MetricsSource for Script {
    fn snapshot(&mut self, query: &SnapshotQuery) -> Result<Snapshot> {
        Ok(self.0.lock().unwrap().clone().unwrap_or_else(|| Snapshot {
            baseline: arm(&query.baseline, 0, 0.8, 0.0, 0.01),
            arms: query
                .arms
                .iter()
                .map(|a| arm(a, 0, 0.8, 0.0, 0.01))
                .collect(),
            stage_requests: vec![0; query.arms.len()],
            stage_units: vec![0; query.arms.len() + 1],
        }))
    }

    fn attribution_inputs(&mut self, _query: &AttributionQuery) -> Result<AttributionInputs> {
        Ok(self.1.lock().unwrap().clone())
    }
}

/// A variant with `n` calls: deterministic, evenly spread outcomes at the given rates.
fn arm(name: &str, n: u64, success: f64, error: f64, cost: f64) -> VariantMetrics {
    let mut aggregate = Aggregate::default();
    for i in 0..n {
        let u = (i as f64 * 0.618_033_988_7).fract();
        let v = (i as f64 * 0.414_213_562_3).fract();
        aggregate.push(&Observation {
            success: u < success,
            error: u >= success && u < success + error,
            latency_ms: 800.0 + 400.0 * v,
            ttft_ms: 200.0 + 100.0 * v,
            cost_usd: cost * (0.5 + v),
            input_tokens: 300.0,
            output_tokens: 100.0 + 50.0 * v,
            ..Observation::default()
        });
    }
    VariantMetrics::from_aggregate(name, aggregate)
}

fn snapshot(
    baseline: VariantMetrics,
    arms: Vec<VariantMetrics>,
    stage_requests: Vec<u64>,
    stage_units: Vec<u64>,
) -> Snapshot {
    Snapshot {
        baseline,
        arms,
        stage_requests,
        stage_units,
    }
}

fn policy() -> RolloutPolicy {
    let stage = |percent: f64, hold_minutes: u64, samples: u64| Stage {
        percent,
        weight: (percent * 1000.0) as u32,
        min_hold_seconds: hold_minutes * 60,
        min_samples: samples,
    };
    RolloutPolicy {
        flag: String::from("support"),
        environment: String::from("dev"),
        treatment: String::from("concise"),
        check_interval_seconds: 300,
        stages: vec![
            stage(1.0, 30, 100),
            stage(5.0, 60, 200),
            stage(50.0, 60, 400),
            stage(100.0, 0, 0),
        ],
        guardrails: vec![
            Guardrail {
                metric: Metric::SuccessRate,
                max_regression: Change::Absolute(0.02),
            },
            Guardrail {
                metric: Metric::ErrorRate,
                max_regression: Change::Absolute(0.01),
            },
            Guardrail {
                metric: Metric::LatencyP95Ms,
                max_regression: Change::Relative(0.10),
            },
            Guardrail {
                metric: Metric::CostPerRequestUsd,
                max_regression: Change::Relative(0.15),
            },
        ],
        hard_limits: vec![HardLimit {
            metric: Metric::ErrorRate,
            threshold: 0.05,
            min_samples: 50,
            alpha: 0.01,
        }],
        primary_metric: PrimaryMetric {
            metric: Metric::SuccessRate,
            minimum_effect: Change::Absolute(0.01),
        },
        promotion: Promotion {
            require: Requirement::Better,
            confidence: 0.95,
            action: PromotionAction::Promote,
        },
        sample_ratio_alpha: 0.001,
        alpha: 0.05,
        tuning_parameter: 5000.0,
        bandit: None,
    }
}

fn ruleset(revision: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schema": 1, "environment": "dev", "revision": revision, "source": "test",
        "flags": {
            "support": {"kind": "string", "baseline": "stable",
                "variants": {"stable": {"value": "s"}, "concise": {"value": "c"}, "brief": {"value": "b"}}},
            "other": {"kind": "boolean", "baseline": "off", "variants": {"off": {"value": false}, "on": {"value": true}}}
        }
    }))
    .unwrap()
}

struct Rig {
    environment: &'static str,
    flag: &'static str,
    _dir: tempfile::TempDir,
    state_path: std::path::PathBuf,
    audit_path: std::path::PathBuf,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    script: Script,
    webhook: Option<String>,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemoryStore::new());
        store.put_ruleset("dev", 1, &ruleset(1), None).unwrap();
        Rig {
            environment: "dev",
            flag: "support",
            state_path: dir.path().join("telemetry.sqlite3"),
            audit_path: dir.path().join("audit.sqlite3"),
            _dir: dir,
            store,
            clock: Arc::new(ManualClock::new(START)),
            script: Script::default(),
            webhook: None,
        }
    }

    fn config(&self) -> ControllerConfig {
        ControllerConfig {
            actor: String::from("loop@test"),
            alert_webhook: self.webhook.clone(),
            wait_timeout: Duration::from_secs(5),
            seed: 7,
            ..ControllerConfig::default()
        }
    }

    fn controller(&self) -> Controller {
        self.controller_with(self.config())
    }

    fn controller_with(&self, config: ControllerConfig) -> Controller {
        Controller::new(
            rusqlite::Connection::open(&self.state_path).unwrap(),
            AuditLog::open(&self.audit_path).unwrap(),
            Box::new(self.store.clone()),
            Box::new(self.script.clone()),
            self.clock.clone(),
            config,
            Http::new(
                Duration::from_secs(5),
                RetryPolicy {
                    attempts: 1,
                    ..RetryPolicy::default()
                },
            ),
        )
        .unwrap()
    }

    fn command(&self, command: Command, payload: serde_json::Value) {
        let connection = rusqlite::Connection::open(&self.state_path).unwrap();
        promptflag_controller::enqueue_command(
            &connection,
            self.flag,
            command,
            &payload,
            "ops@test",
            "",
            self.clock.now(),
        )
        .unwrap();
    }

    fn start(&self, policy: &RolloutPolicy) {
        self.command(Command::Start, json!({ "policy": policy }));
    }

    fn state(&self) -> promptflag_controller::RolloutState {
        let connection = rusqlite::Connection::open(&self.state_path).unwrap();
        promptflag_controller::load_state(&connection, self.flag)
            .unwrap()
            .unwrap()
    }

    fn live_flag(&self) -> serde_json::Value {
        let bytes = self.store.live_bytes(self.environment).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        value["flags"][self.flag].clone()
    }

    fn rollout_entries(&self) -> Vec<promptflag_release::audit::Entry> {
        AuditLog::open(&self.audit_path)
            .unwrap()
            .list(Some(self.environment))
            .unwrap()
            .into_iter()
            .filter(|e| e.action == Action::Rollout)
            .collect()
    }
}

trait Now {
    fn now(&self) -> i64;
}

impl Now for ManualClock {
    fn now(&self) -> i64 {
        use promptflag_controller::Clock;
        self.now_ms()
    }
}

fn treatment_weight(flag: &serde_json::Value, variant: &str) -> u64 {
    flag["default"]["split"]["treatments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["variant"] == variant)
        .unwrap()["weight"]
        .as_u64()
        .unwrap()
}

fn decisions(records: &[promptflag_controller::CheckRecord]) -> Vec<Decision> {
    records.iter().map(|r| r.decision).collect()
}

/// Stage-1 data: equal arms, enough calls, the split as configured.
fn healthy(n_treatment: u64, stage: u64, weight_percent: f64) -> Snapshot {
    let baseline_units = (stage as f64 * (100.0 - weight_percent) / weight_percent) as u64;
    snapshot(
        arm("stable", n_treatment * 20, 0.8, 0.005, 0.01),
        vec![arm("concise", n_treatment, 0.8, 0.005, 0.01)],
        vec![stage],
        vec![baseline_units, stage],
    )
}

#[test]
fn start_holds_until_the_stage_has_held_and_sampled_then_advances() {
    let rig = Rig::new();
    let mut controller = rig.controller();
    rig.start(&policy());
    let records = controller.tick().unwrap();
    assert_eq!(decisions(&records), vec![Decision::Start]);
    assert_eq!(treatment_weight(&rig.live_flag(), "concise"), 1000);
    assert_eq!(rig.store.writes().len(), 2);

    // Five minutes in: enough calls but not enough time.
    rig.clock.advance(5 * MINUTE);
    rig.script.set(healthy(150, 150, 1.0));
    assert_eq!(decisions(&controller.tick().unwrap()), vec![Decision::Hold]);
    // Twenty-five more: held 30 minutes, 150 calls ≥ 100: advance to 5 %.
    for _ in 0..4 {
        rig.clock.advance(5 * MINUTE);
        assert_eq!(decisions(&controller.tick().unwrap()), vec![Decision::Hold]);
    }
    rig.clock.advance(5 * MINUTE);
    let records = controller.tick().unwrap();
    assert_eq!(
        decisions(&records),
        vec![Decision::Advance],
        "{:?}",
        records[0].reason
    );
    assert_eq!(treatment_weight(&rig.live_flag(), "concise"), 5000);
    let state = rig.state();
    assert_eq!(
        (state.stage, state.status, state.weights.clone()),
        (1, Status::Running, vec![5000])
    );
    // Not due again until the check interval has passed.
    assert!(controller.tick().unwrap().is_empty());
    let entries = rig.rollout_entries();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].summary["decision"], "advance");
    assert!(
        entries[1].summary["details"]["statistics"]["guardrails"]
            .as_array()
            .unwrap()
            .len()
            >= 4
    );
    assert!(
        AuditLog::open(&rig.audit_path)
            .unwrap()
            .verify(None)
            .unwrap()
            .is_intact()
    );
}

/// A one-shot HTTP server on 127.0.0.1 that records the body it gets.
fn webhook_server() -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/alert", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut data = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let read = stream.read(&mut buffer).unwrap();
            data.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some(split) = text.find("\r\n\r\n") {
                let length = text[..split]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if data.len() >= split + 4 + length {
                    stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .unwrap();
                    return text[split + 4..].to_string();
                }
            }
            if read == 0 {
                return text;
            }
        }
    });
    (url, handle)
}

#[test]
fn a_guardrail_violation_rolls_back_and_alerts() {
    let mut rig = Rig::new();
    let (url, server) = webhook_server();
    rig.webhook = Some(url);
    let mut controller = rig.controller();
    rig.start(&policy());
    controller.tick().unwrap();
    rig.clock.advance(5 * MINUTE);
    rig.script.set(guardrail_breach());
    let records = controller.tick().unwrap();
    assert_eq!(decisions(&records), vec![Decision::Rollback]);
    assert!(
        records[0].reason.contains("success_rate"),
        "{}",
        records[0].reason
    );
    assert_eq!(records[0].alert.as_deref(), Some("HTTP 200"));
    let alert: serde_json::Value = serde_json::from_str(&server.join().unwrap()).unwrap();
    assert_eq!(alert["decision"], "rollback");
    assert_eq!(alert["flag"], "support");
    assert_eq!(treatment_weight(&rig.live_flag(), "concise"), 0);
    assert_eq!(rig.state().status, Status::RolledBack);
    // A rolled-back rollout is never checked again.
    rig.clock.advance(60 * MINUTE);
    assert!(controller.tick().unwrap().is_empty());
}

/// One minute's calls of a variant: `calls` calls, the first `failures` of them failed.
fn window_of(calls: usize, failures: usize) -> Aggregate {
    let mut aggregate = Aggregate::default();
    for call in 0..calls {
        aggregate.push(&Observation {
            success: call >= failures,
            latency_ms: 100.0,
            cost_usd: 0.01,
            ..Observation::default()
        });
    }
    aggregate
}

#[test]
fn a_rollback_names_the_version_revision_and_publish_in_its_audit_entry_and_alert() {
    let mut rig = Rig::new();
    let (url, server) = webhook_server();
    rig.webhook = Some(url);
    let mut controller = rig.controller();
    rig.start(&policy());
    controller.tick().unwrap();
    let started = rig.state();
    let start_revision = started.revision.unwrap();
    let start_entry = rig.rollout_entries().remove(0);
    // Telemetry: the treatment served support@2.0.0 under the start's revision from its first
    // minute, and its success rate fell from 80 % to 68 % from minute 2 on.
    let series = (0..5)
        .map(|minute| WindowAggregates {
            start_ms: START + minute * MINUTE,
            end_ms: START + (minute + 1) * MINUTE,
            variants: vec![
                (
                    String::from("concise"),
                    window_of(400, if minute >= 2 { 128 } else { 80 }),
                ),
                (String::from("stable"), window_of(4_000, 800)),
            ],
        })
        .collect();
    let onset = |variant: &str, version: &str, revision: u64, first_ms: i64| VariantOnset {
        variant: variant.to_string(),
        prompt_id: Some(String::from("support")),
        prompt_version: Some(version.to_string()),
        prompt_hash: Some(format!("hash-{version}")),
        revision: Some(revision),
        first_ms,
    };
    rig.script.set_series(AttributionInputs {
        history: Vec::new(),
        series,
        onsets: vec![
            onset("stable", "1.0.0", 1, START - 60 * MINUTE),
            onset("concise", "2.0.0", start_revision, START),
        ],
    });
    rig.clock.advance(5 * MINUTE);
    rig.script.set(snapshot(
        arm("stable", 40_000, 0.80, 0.005, 0.01),
        vec![arm("concise", 2_000, 0.68, 0.005, 0.01)],
        vec![2_000],
        vec![198_000, 2_000],
    ));
    let records = controller.tick().unwrap();
    assert_eq!(decisions(&records), vec![Decision::Rollback]);
    let rollback = rig.rollout_entries().pop().unwrap();
    let attribution = &rollback.summary["details"]["attribution"];
    assert_eq!(attribution["degradation"]["variant"], "concise");
    assert_eq!(attribution["degradation"]["onset_ms"], START + 2 * MINUTE);
    assert_eq!(attribution["onset"]["prompt_version"], "2.0.0");
    assert_eq!(attribution["onset"]["revision"], start_revision);
    assert_eq!(attribution["publish"]["seq"], start_entry.seq);
    assert_eq!(attribution["publish"]["hash"], start_entry.hash.as_str());
    assert_eq!(
        attribution["time_to_attribution_ms"],
        (5 * MINUTE - 2 * MINUTE)
    );
    let alert: serde_json::Value = serde_json::from_str(&server.join().unwrap()).unwrap();
    assert_eq!(alert["attribution"], *attribution);
    let text = alert["text"].as_str().unwrap();
    assert!(
        text.contains("after support@2.0.0")
            && text.contains(&format!("audit entry {}", start_entry.seq)),
        "{text}"
    );
}

#[test]
fn a_hard_limit_rolls_back_before_the_stage_has_held() {
    let rig = Rig::new();
    let mut controller = rig.controller();
    rig.start(&policy());
    controller.tick().unwrap();
    rig.clock.advance(5 * MINUTE);
    rig.script.set(snapshot(
        arm("stable", 6_000, 0.8, 0.005, 0.01),
        vec![arm("concise", 60, 0.7, 0.30, 0.01)],
        vec![60],
        vec![5_940, 60],
    ));
    let records = controller.tick().unwrap();
    assert_eq!(decisions(&records), vec![Decision::Rollback]);
    assert!(
        records[0].reason.contains("hard limit"),
        "{}",
        records[0].reason
    );
}

/// Ticks the loop on a treatment ten points better on success, with big samples, until it
/// stops running: every stage passes, then promotion. Returns the decisions that acted.
fn drive_to_promotion(rig: &Rig, controller: &mut Controller) -> Vec<Decision> {
    drive_while(rig, controller, |state| state.status == Status::Running)
}

/// Ticks the loop on the better treatment of [`drive_to_promotion`] while `go_on` holds of the
/// rollout's state (at most sixty checks). Returns the decisions that acted.
fn drive_while(
    rig: &Rig,
    controller: &mut Controller,
    go_on: impl Fn(&promptflag_controller::RolloutState) -> bool,
) -> Vec<Decision> {
    let mut seen = Vec::new();
    for _ in 0..60 {
        rig.clock.advance(5 * MINUTE);
        let state = rig.state();
        if !go_on(&state) {
            break;
        }
        let percent = f64::from(state.weights[0]) / 1000.0;
        rig.script.set(snapshot(
            arm("stable", 20_000, 0.80, 0.005, 0.01),
            vec![arm("concise", 5_000, 0.90, 0.005, 0.01)],
            vec![1_000],
            vec![(1_000.0 * (100.0 - percent) / percent) as u64, 1_000],
        ));
        seen.extend(decisions(&controller.tick().unwrap()));
    }
    seen.into_iter().filter(|d| *d != Decision::Hold).collect()
}

/// A guardrail breach: the treatment's success rate 12 points lower over 2 000 calls.
fn guardrail_breach() -> Snapshot {
    snapshot(
        arm("stable", 40_000, 0.80, 0.005, 0.01),
        vec![arm("concise", 2_000, 0.68, 0.005, 0.01)],
        vec![2_000],
        vec![198_000, 2_000],
    )
}

#[test]
fn a_better_treatment_is_promoted_after_the_last_stage() {
    let rig = Rig::new();
    let mut controller = rig.controller();
    rig.start(&policy());
    controller.tick().unwrap();
    let acted = drive_to_promotion(&rig, &mut controller);
    assert_eq!(
        acted,
        vec![Decision::Advance, Decision::Advance, Decision::Promote]
    );
    let flag = rig.live_flag();
    assert_eq!(flag["baseline"], "concise");
    assert!(flag.get("default").is_none() || flag["default"].is_null());
    assert_eq!(rig.state().status, Status::Promoted);
}

#[test]
fn a_sample_ratio_mismatch_pauses_until_resumed() {
    let rig = Rig::new();
    let mut controller = rig.controller();
    rig.start(&policy());
    controller.tick().unwrap();
    rig.clock.advance(5 * MINUTE);
    // 1 % configured, 3 % observed.
    rig.script.set(snapshot(
        arm("stable", 10_000, 0.8, 0.005, 0.01),
        vec![arm("concise", 300, 0.8, 0.005, 0.01)],
        vec![300],
        vec![9_700, 300],
    ));
    let records = controller.tick().unwrap();
    assert_eq!(decisions(&records), vec![Decision::Pause]);
    assert!(records[0].reason.contains("sample-ratio mismatch"));
    assert_eq!(rig.state().status, Status::Paused);
    assert_eq!(
        treatment_weight(&rig.live_flag(), "concise"),
        1000,
        "a pause publishes nothing"
    );
    rig.clock.advance(60 * MINUTE);
    assert!(
        controller.tick().unwrap().is_empty(),
        "a paused rollout is not checked"
    );
    rig.command(Command::Resume, json!({}));
    rig.script.set(healthy(150, 150, 1.0));
    let records = controller.tick().unwrap();
    assert_eq!(decisions(&records), vec![Decision::Resume, Decision::Hold]);
    assert_eq!(rig.state().status, Status::Running);
}

#[test]
fn a_flag_killed_by_hand_pauses_the_rollout_instead_of_fighting_it() {
    let rig = Rig::new();
    let mut controller = rig.controller();
    rig.start(&policy());
    controller.tick().unwrap();
    let mut audit = AuditLog::open(&rig.audit_path).unwrap();
    promptflag_release::ops::kill(
        &rig.store.clone(),
        &mut audit,
        "dev",
        "support",
        &promptflag_release::ops::Actor {
            actor: String::from("oncall"),
            reason: String::from("incident"),
        },
        std::time::Instant::now(),
    )
    .unwrap();
    let writes = rig.store.writes().len();
    rig.clock.advance(5 * MINUTE);
    rig.script.set(healthy(150, 150, 1.0));
    let records = controller.tick().unwrap();
    assert_eq!(decisions(&records), vec![Decision::Pause]);
    assert!(
        rig.state().reason.contains("killed outside"),
        "{}",
        rig.state().reason
    );
    assert_eq!(rig.store.writes().len(), writes);
}

#[test]
fn abort_takes_the_treatment_back_to_zero() {
    let rig = Rig::new();
    let mut controller = rig.controller();
    rig.start(&policy());
    controller.tick().unwrap();
    rig.command(Command::Abort, json!({}));
    let records = controller.tick().unwrap();
    assert_eq!(decisions(&records), vec![Decision::Abort]);
    assert_eq!(treatment_weight(&rig.live_flag(), "concise"), 0);
    assert_eq!(rig.state().status, Status::Aborted);
    // A second start is allowed once the first is over.
    rig.start(&policy());
    assert_eq!(
        decisions(&controller.tick().unwrap()),
        vec![Decision::Start]
    );
}

fn crash_and_resume(point: CrashPoint) {
    let rig = Rig::new();
    let mut controller = rig.controller();
    rig.start(&policy());
    controller.tick().unwrap();
    rig.clock.advance(30 * MINUTE);
    rig.script.set(healthy(150, 150, 1.0));
    controller.crash_at = Some(point);
    let error = controller.tick().unwrap_err();
    assert!(error.to_string().contains("injected crash"), "{error}");
    drop(controller);
    assert!(
        rig.state().pending.is_some(),
        "the intent survives the crash"
    );

    // A restart on the same databases finishes the action exactly once.
    let mut restarted = rig.controller();
    let records = restarted.tick().unwrap();
    assert_eq!(decisions(&records)[0], Decision::Advance, "{point:?}");
    let writes = rig.store.writes();
    let advance_revision = writes.last().unwrap().1;
    assert_eq!(
        writes.len(),
        3,
        "{point:?}: start, then one advance: {writes:?}"
    );
    assert_eq!(treatment_weight(&rig.live_flag(), "concise"), 5000);
    let state = rig.state();
    assert_eq!(
        (state.stage, state.pending.is_none(), state.revision),
        (1, true, Some(advance_revision))
    );
    let entries = rig.rollout_entries();
    let for_revision = entries
        .iter()
        .filter(|e| e.revision == Some(advance_revision))
        .count();
    assert_eq!(
        for_revision, 1,
        "{point:?}: one audit entry for the advance"
    );
    // And nothing more happens until the next check is due.
    assert!(restarted.tick().unwrap().is_empty());
    assert_eq!(rig.store.writes().len(), 3);
}

#[test]
fn crash_after_the_intent_publishes_once_on_restart() {
    crash_and_resume(CrashPoint::AfterIntent);
}

#[test]
fn crash_after_publishing_does_not_publish_again_on_restart() {
    crash_and_resume(CrashPoint::AfterPublish);
}

#[test]
fn crash_after_the_audit_entry_does_not_audit_twice_on_restart() {
    crash_and_resume(CrashPoint::AfterAudit);
}

#[test]
fn an_interrupted_action_whose_revision_was_taken_pauses() {
    let rig = Rig::new();
    let mut controller = rig.controller();
    rig.start(&policy());
    controller.tick().unwrap();
    rig.clock.advance(30 * MINUTE);
    rig.script.set(healthy(150, 150, 1.0));
    controller.crash_at = Some(CrashPoint::AfterIntent);
    controller.tick().unwrap_err();
    drop(controller);
    // Someone else publishes the revision the intent aimed at.
    let target = rig.state().pending.unwrap().target_revision;
    rig.store
        .put_ruleset("dev", target, &ruleset(target), None)
        .unwrap();
    let mut restarted = rig.controller();
    assert_eq!(decisions(&restarted.tick().unwrap()), vec![Decision::Pause]);
    assert_eq!(rig.state().status, Status::Paused);
    assert_eq!(
        rig.store.writes().last().unwrap().1,
        target,
        "nothing published over it"
    );
}

#[test]
fn a_bandit_moves_lanes_toward_the_better_arm_and_drops_a_failing_one() {
    let rig = Rig::new();
    let mut controller = rig.controller();
    let mut bandit = policy();
    bandit.bandit = Some(BanditPolicy {
        arms: vec![String::from("concise"), String::from("brief")],
        floor_percent: 1.0,
    });
    rig.start(&bandit);
    controller.tick().unwrap();
    assert_eq!(treatment_weight(&rig.live_flag(), "concise"), 1000);
    assert_eq!(treatment_weight(&rig.live_flag(), "brief"), 1000);
    rig.clock.advance(30 * MINUTE);
    rig.script.set(snapshot(
        arm("stable", 20_000, 0.80, 0.005, 0.01),
        vec![
            arm("concise", 400, 0.80, 0.005, 0.01),
            arm("brief", 400, 0.90, 0.005, 0.01),
        ],
        vec![400, 400],
        vec![39_200, 400, 400],
    ));
    let records = controller.tick().unwrap();
    assert_eq!(
        decisions(&records),
        vec![Decision::Reallocate],
        "{}",
        records[0].reason
    );
    let flag = rig.live_flag();
    assert!(
        treatment_weight(&flag, "brief") > treatment_weight(&flag, "concise"),
        "{flag}"
    );
    // Then `concise` breaks a guardrail: only its lane goes to 0.
    let weights = rig.state().weights;
    rig.clock.advance(5 * MINUTE);
    let total = 100_000 - weights.iter().sum::<u32>();
    rig.script.set(snapshot(
        arm("stable", 40_000, 0.80, 0.005, 0.01),
        vec![
            arm("concise", 4_000, 0.60, 0.005, 0.01),
            arm("brief", 4_000, 0.90, 0.005, 0.01),
        ],
        vec![4_000, 4_000],
        vec![
            u64::from(total),
            u64::from(weights[0]),
            u64::from(weights[1]),
        ],
    ));
    let records = controller.tick().unwrap();
    assert_eq!(
        decisions(&records),
        vec![Decision::Rollback],
        "{}",
        records[0].reason
    );
    let flag = rig.live_flag();
    assert_eq!(treatment_weight(&flag, "concise"), 0);
    assert!(treatment_weight(&flag, "brief") > 0);
    assert_eq!(rig.state().status, Status::Running);
}

#[test]
fn status_helpers_read_the_stored_state() {
    let rig = Rig::new();
    let mut controller = rig.controller();
    rig.start(&policy());
    controller.tick().unwrap();
    let connection = rusqlite::Connection::open(&rig.state_path).unwrap();
    let state = promptflag_controller::load_state(&connection, "support")
        .unwrap()
        .unwrap();
    assert_eq!(state.policy, policy());
    assert!(Path::new(&rig.state_path).exists());
    let result = promptflag_controller::command_result(&connection, 1)
        .unwrap()
        .unwrap();
    assert_eq!(result["ok"], true);
}

// Runtime state against git: the example repository's `support_prompt` in prod, published from
// a build; the loop (or a person) decides on the live environment; a publish from the unchanged
// repository keeps the decision, and `status` says why git and live differ.

/// A writable copy of the example repository (sync edits it).
fn example_repo() -> (tempfile::TempDir, std::path::PathBuf) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/prompts-repo"),
        &repo,
    );
    (dir, repo)
}

/// `promptflag sync --env prod`, then a build: it must reproduce what is live exactly, and the
/// next publish ends the runtime record (git holds the decision now).
fn sync_then_build_equals_live(rig: &Rig, repo: &Path) -> promptflag_authoring::sync::SyncPlan {
    let audit = AuditLog::open(&rig.audit_path).unwrap();
    let live = drift::live_of(rig.store.as_ref(), &audit, "prod")
        .unwrap()
        .unwrap();
    let (loaded, _) = promptflag_authoring::lint::check(repo).unwrap();
    let built = example_build(repo);
    let plan = promptflag_authoring::sync::plan(
        &loaded,
        "prod",
        &live,
        &built.environments["prod"].ruleset,
    )
    .unwrap();
    plan.write(&loaded).unwrap();
    let (_, diagnostics) = promptflag_authoring::lint::check(repo).unwrap();
    let errors: Vec<_> = diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let rebuilt = example_build(repo);
    assert_eq!(
        rebuilt.environments["prod"].ruleset.flags, live.flags,
        "the build reproduces the live flags"
    );
    assert_eq!(
        rebuilt.environments["prod"].content_hash,
        content_hash(&live).unwrap(),
        "the build reproduces what is live"
    );
    assert!(rig.status_of_flag(repo).in_sync);
    drop(audit);
    let outcome = rig.publish(repo, false, "after sync");
    assert_eq!((outcome.kept.len(), outcome.converged.len()), (0, 1));
    let audit = AuditLog::open(&rig.audit_path).unwrap();
    let live = drift::live_of(rig.store.as_ref(), &audit, "prod")
        .unwrap()
        .unwrap();
    assert!(
        live.runtime.is_empty(),
        "git holds the decision, so its record ends"
    );
    plan
}

fn example_build(repo: &Path) -> promptflag_authoring::build::Build {
    let (loaded, diagnostics) = promptflag_authoring::lint::check(repo).unwrap();
    promptflag_authoring::build::build(
        &loaded,
        &diagnostics,
        &promptflag_authoring::build::BuildOptions {
            source: Some(String::from("test")),
            environments: vec![String::from("prod")],
            owner_keys: None,
        },
    )
    .unwrap()
}

fn publish_options(repo: &Path, revert_runtime: bool, reason: &str) -> PublishOptions {
    PublishOptions {
        eval_results: Some(repo.join(promptflag_authoring::evals::RESULTS_DIR)),
        approvals: None,
        environment: String::from("prod"),
        actor: String::from("ci@test"),
        reason: String::from(reason),
        // The staging gate is not what these tests are about.
        force: true,
        revert_runtime,
    }
}

impl Rig {
    /// The example repository's prod build published as revision 1.
    fn from_repo(repo: &Path) -> Rig {
        let mut rig = Rig::new();
        rig.environment = "prod";
        rig.flag = "support_prompt";
        rig.publish(repo, false, "first publish");
        rig
    }

    fn publish(&self, repo: &Path, revert_runtime: bool, reason: &str) -> RuntimeOutcome {
        let mut audit = AuditLog::open(&self.audit_path).unwrap();
        publish::publish(
            self.store.as_ref(),
            &mut audit,
            &example_build(repo),
            &publish_options(repo, revert_runtime, reason),
            &NoProgress,
        )
        .unwrap()
        .runtime
    }

    fn kill(&self) {
        ops::kill(
            self.store.as_ref(),
            &mut AuditLog::open(&self.audit_path).unwrap(),
            "prod",
            self.flag,
            &ops::Actor {
                actor: String::from("oncall@test"),
                reason: String::from("bad answers"),
            },
            std::time::Instant::now(),
        )
        .unwrap();
    }

    fn status_of_flag(&self, repo: &Path) -> FlagStatus {
        let audit = AuditLog::open(&self.audit_path).unwrap();
        let status =
            drift::status(self.store.as_ref(), &audit, &example_build(repo), "prod").unwrap();
        status
            .flags
            .into_iter()
            .find(|f| f.flag == self.flag)
            .unwrap()
    }
}

fn prod_policy() -> RolloutPolicy {
    RolloutPolicy {
        flag: String::from("support_prompt"),
        environment: String::from("prod"),
        ..policy()
    }
}

#[test]
fn a_promotion_by_the_loop_survives_a_publish_from_the_unchanged_repo_and_status_explains_it() {
    let (_dir, repo) = example_repo();
    // Without the EU holdout rule, the loser is served to no one once the winner is promoted.
    let flag_file = repo.join("flags/support_prompt.yaml");
    let text = std::fs::read_to_string(&flag_file).unwrap();
    let holdout = text.find("  - id: eu-enterprise-holdout").unwrap();
    let default = text.find("default:\n").unwrap();
    std::fs::write(
        &flag_file,
        format!("{}{}", &text[..holdout], &text[default..]),
    )
    .unwrap();
    let rig = Rig::from_repo(&repo);
    let mut controller = rig.controller();
    rig.start(&prod_policy());
    controller.tick().unwrap();
    assert_eq!(
        drive_to_promotion(&rig, &mut controller).last(),
        Some(&Decision::Promote)
    );
    assert_eq!(rig.live_flag()["baseline"], "concise");

    let outcome = rig.publish(&repo, false, "routine publish");
    assert_eq!(outcome.kept.len(), 1, "{outcome:?}");
    assert!(outcome.kept[0].starts_with("support_prompt: promoted concise at "));
    let flag = rig.live_flag();
    assert_eq!(flag["baseline"], "concise", "the promotion stays");
    assert!(flag.get("default").is_none());

    let status = rig.status_of_flag(&repo);
    assert!(!status.in_sync);
    assert_eq!(
        status.intent.as_deref(),
        Some("on, baseline stable, split concise 5%, 1 rule(s)")
    );
    assert_eq!(
        status.live.as_deref(),
        Some("on, baseline concise, 1 rule(s)")
    );
    assert!(
        status
            .why
            .starts_with("promoted concise at 2027-01-15T10:30:00.000Z by loop@test")
            && status.why.contains(" because success_rate improvement "),
        "{}",
        status.why
    );

    let plan = sync_then_build_equals_live(&rig, &repo);
    let metadata =
        std::fs::read_to_string(repo.join("prompts/support_reply/metadata.yaml")).unwrap();
    assert!(metadata.contains("  \"1.1.0\":\n    author: alice@acme.example\n    reviewers: [bob@acme.example, dana@acme.example]\n    risk: medium\n    status: archived\n"), "{metadata}");
    let flag = std::fs::read_to_string(repo.join("flags/support_prompt.yaml")).unwrap();
    assert!(
        flag.contains("\nbaseline: concise\n") && !flag.contains("\ndefault:"),
        "{flag}"
    );
    assert!(
        flag.contains("\nenabled: true\n"),
        "the flag stays as a kill switch"
    );
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo.join("rollouts/support_prompt.results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(results["decision"], "promote");
    assert_eq!(results["winner"], "concise");
    assert_eq!(results["baseline_before"], "stable");
    assert!(results["details"]["statistics"].is_object(), "{results}");
    assert_eq!(plan.summary.len(), 1);
}

#[test]
fn the_loop_writes_a_promotion_back_into_the_repo_when_configured_to() {
    let (_dir, repo) = example_repo();
    let rig = Rig::from_repo(&repo);
    let mut controller = rig.controller_with(ControllerConfig {
        sync_repo: Some(repo.clone()),
        ..rig.config()
    });
    rig.start(&prod_policy());
    controller.tick().unwrap();
    assert_eq!(
        drive_to_promotion(&rig, &mut controller).last(),
        Some(&Decision::Promote)
    );
    let flag = std::fs::read_to_string(repo.join("flags/support_prompt.yaml")).unwrap();
    assert!(flag.contains("\nbaseline: concise\n"), "{flag}");
    assert!(repo.join("rollouts/support_prompt.results.json").is_file());
    // The holdout rule still serves the loser, so it is not archived; the build equals live.
    let audit = AuditLog::open(&rig.audit_path).unwrap();
    let live = drift::live_of(rig.store.as_ref(), &audit, "prod")
        .unwrap()
        .unwrap();
    assert_eq!(
        example_build(&repo).environments["prod"].content_hash,
        content_hash(&live).unwrap()
    );
}

#[test]
fn a_rollback_by_the_loop_survives_a_publish_and_status_names_the_guardrail() {
    let (_dir, repo) = example_repo();
    let rig = Rig::from_repo(&repo);
    let mut controller = rig.controller();
    rig.start(&prod_policy());
    controller.tick().unwrap();
    rig.clock.advance(5 * MINUTE);
    rig.script.set(guardrail_breach());
    assert_eq!(
        decisions(&controller.tick().unwrap()),
        vec![Decision::Rollback]
    );

    rig.publish(&repo, false, "routine publish");
    assert_eq!(
        treatment_weight(&rig.live_flag(), "concise"),
        0,
        "the rolled-back canary stays closed"
    );
    let status = rig.status_of_flag(&repo);
    assert!(status.why.starts_with("rolled back at "), "{}", status.why);
    assert!(status.why.contains("success_rate"), "{}", status.why);

    sync_then_build_equals_live(&rig, &repo);
    let flag = std::fs::read_to_string(repo.join("flags/support_prompt.yaml")).unwrap();
    assert!(
        flag.contains("  prod:\n    default: {split: {bucket_by: targetingKey, treatments: [{variant: concise, weight: 0}]}}\n"),
        "{flag}"
    );
}

#[test]
fn a_kill_survives_a_publish_until_reverted_with_a_reason_which_is_audited() {
    let (_dir, repo) = example_repo();
    let rig = Rig::from_repo(&repo);
    rig.kill();
    rig.publish(&repo, false, "routine publish");
    assert_eq!(rig.live_flag()["enabled"], false, "the kill stays");
    let status = rig.status_of_flag(&repo);
    assert!(
        status.why.starts_with("killed at ")
            && status.why.contains(" by oncall@test ")
            && status.why.ends_with("because bad answers"),
        "{}",
        status.why
    );

    let outcome = rig.publish(&repo, true, "fixed upstream");
    assert_eq!(outcome.reverted.len(), 1);
    assert!(
        rig.live_flag().get("enabled").is_none(),
        "git's flag is live again"
    );
    assert!(rig.status_of_flag(&repo).in_sync);
    let overrides: Vec<_> = AuditLog::open(&rig.audit_path)
        .unwrap()
        .list(Some("prod"))
        .unwrap()
        .into_iter()
        .filter(|e| e.action == Action::Override && e.summary.get("reverted_runtime").is_some())
        .collect();
    assert_eq!(overrides.len(), 1);
    assert_eq!(overrides[0].reason, "fixed upstream");
    assert_eq!(overrides[0].actor, "ci@test");
}

#[test]
fn a_kill_synced_into_the_repo_builds_to_what_is_live() {
    let (_dir, repo) = example_repo();
    let rig = Rig::from_repo(&repo);
    rig.kill();
    sync_then_build_equals_live(&rig, &repo);
    let flag = std::fs::read_to_string(repo.join("flags/support_prompt.yaml")).unwrap();
    assert!(flag.ends_with("  prod:\n    enabled: false\n"), "{flag}");
    assert!(!repo.join("rollouts/support_prompt.results.json").exists());
}

#[test]
fn a_running_canary_survives_a_publish_from_the_unchanged_repo_and_status_says_where_it_stands() {
    let (_dir, repo) = example_repo();
    let rig = Rig::from_repo(&repo);
    let mut controller = rig.controller();
    rig.start(&prod_policy());
    controller.tick().unwrap();
    // Two steps up the ramp: 1 %, 5 %, then 50 % (step 3 of 4); git's split is 5 %.
    assert_eq!(
        drive_while(&rig, &mut controller, |state| state.stage < 2),
        vec![Decision::Advance, Decision::Advance]
    );
    assert_eq!(treatment_weight(&rig.live_flag(), "concise"), 50_000);

    let outcome = rig.publish(&repo, false, "routine publish");
    assert_eq!(
        (outcome.kept.len(), outcome.running.len()),
        (0, 1),
        "{outcome:?}"
    );
    assert!(
        outcome.running[0].starts_with("support_prompt: canary at 50% since "),
        "{outcome:?}"
    );
    assert_eq!(
        treatment_weight(&rig.live_flag(), "concise"),
        50_000,
        "the canary's split stays where the loop took it"
    );
    let status = rig.status_of_flag(&repo);
    assert!(!status.in_sync);
    assert_eq!(
        status.intent.as_deref(),
        Some("on, baseline stable, split concise 5%, 2 rule(s)")
    );
    assert_eq!(
        status.live.as_deref(),
        Some("on, baseline stable, split concise 50%, 2 rule(s)")
    );
    assert!(
        status.why.starts_with("canary at 50% since 2027-01-15T")
            && status
                .why
                .contains(", step 3 of 4, by loop@test (revision "),
        "{}",
        status.why
    );

    // A running canary is not written back: it has no outcome yet.
    let audit = AuditLog::open(&rig.audit_path).unwrap();
    let live = drift::live_of(rig.store.as_ref(), &audit, "prod")
        .unwrap()
        .unwrap();
    let (loaded, _) = promptflag_authoring::lint::check(&repo).unwrap();
    let plan = promptflag_authoring::sync::plan(
        &loaded,
        "prod",
        &live,
        &example_build(&repo).environments["prod"].ruleset,
    )
    .unwrap();
    assert!(plan.files.is_empty() && plan.summary.is_empty(), "{plan:?}");
    assert_eq!(plan.running.len(), 1);
    assert!(plan.running[0].starts_with("support_prompt in prod: canary at 50% since "));
    drop(audit);

    // The loop sees its own split after the publish and goes on rather than pausing; its
    // promotion then replaces the canary's record.
    assert_eq!(
        drive_to_promotion(&rig, &mut controller),
        vec![Decision::Promote]
    );
    let audit = AuditLog::open(&rig.audit_path).unwrap();
    let live = drift::live_of(rig.store.as_ref(), &audit, "prod")
        .unwrap()
        .unwrap();
    let record = promptflag_contracts::runtime::decision_of(&live, "support_prompt").unwrap();
    assert_eq!(record.action, "promote");
    drop(audit);
    sync_then_build_equals_live(&rig, &repo);
}

/// Replaces `from` with `to` in the example flag's file.
fn edit_flag(repo: &Path, from: &str, to: &str) {
    let path = repo.join("flags/support_prompt.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{text}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn an_operators_rollback_is_recorded_by_a_loop_step_on_it_and_ends_with_a_fix_in_git() {
    let (_dir, repo) = example_repo();
    let rig = Rig::from_repo(&repo);
    edit_flag(&repo, "        percent: 5\n", "        percent: 30\n");
    rig.publish(&repo, false, "wider canary");
    let moved = ops::rollback(
        rig.store.as_ref(),
        &mut AuditLog::open(&rig.audit_path).unwrap(),
        "prod",
        None,
        &ops::Actor {
            actor: String::from("oncall@test"),
            reason: String::from("too many complaints"),
        },
        std::time::Instant::now(),
    )
    .unwrap();
    assert_eq!((moved.previous, moved.revision), (Some(2), 1));
    let status = rig.status_of_flag(&repo);
    assert!(
        status.why.starts_with("rolled back from revision 2 to 1 at ")
            && status.why.ends_with(
                " by oncall@test because too many complaints; git still has what it took away (publishing it needs --revert-runtime)"
            ),
        "{}",
        status.why
    );
    let refused = publish::publish(
        rig.store.as_ref(),
        &mut AuditLog::open(&rig.audit_path).unwrap(),
        &example_build(&repo),
        &publish_options(&repo, false, "routine publish"),
        &NoProgress,
    )
    .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("(flags.support_prompt as revision 2 had it)"),
        "{refused}"
    );

    // The loop's first step builds on the rolled-back revision, and records the rollback in
    // the revision it writes, where the live revision is the latest again.
    let mut controller = rig.controller();
    rig.start(&prod_policy());
    assert_eq!(
        decisions(&controller.tick().unwrap()),
        vec![Decision::Start]
    );
    let live = {
        let audit = AuditLog::open(&rig.audit_path).unwrap();
        drift::live_of(rig.store.as_ref(), &audit, "prod")
            .unwrap()
            .unwrap()
    };
    assert_eq!(live.revision, 3);
    let recorded = promptflag_contracts::runtime::environment_rollback(&live)
        .unwrap()
        .unwrap();
    assert_eq!(
        (recorded.from, recorded.to, recorded.by.as_str()),
        (2, 1, "oncall@test")
    );
    assert!(
        rig.status_of_flag(&repo)
            .why
            .contains("too many complaints")
    );

    // A fix in git serves none of what the rollback took away: it publishes, and the rollback's
    // record ends while the canary's split is kept.
    edit_flag(&repo, "        percent: 30\n", "        percent: 10\n");
    let outcome = rig.publish(&repo, false, "narrower canary");
    assert!(
        outcome.converged.iter().any(|line| line
            .starts_with("environment: rolled back from revision 2 to 1 at ")
            && line.ends_with("(git serves none of what it took away)")),
        "{outcome:?}"
    );
    assert_eq!(outcome.running.len(), 1, "{outcome:?}");
    let live = {
        let audit = AuditLog::open(&rig.audit_path).unwrap();
        drift::live_of(rig.store.as_ref(), &audit, "prod")
            .unwrap()
            .unwrap()
    };
    assert!(
        promptflag_contracts::runtime::environment_rollback(&live)
            .unwrap()
            .is_none()
    );
    assert_eq!(treatment_weight(&rig.live_flag(), "concise"), 1000);
}
