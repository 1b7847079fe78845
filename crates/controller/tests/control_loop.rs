//! The rollout control loop on scripted metric streams, against an in-memory store with the
//! Worker's semantics and a manual clock: advance, rollback (with the alert webhook), hard limit,
//! promote, sample-ratio pause and resume, a flag changed by hand, a bandit, and crashes at each
//! step of the intent → done protocol without a repeated or lost action.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
use promptflag_release::memstore::MemoryStore;
use promptflag_release::store::{Http, RetryPolicy, Store};
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
            state_path: dir.path().join("telemetry.sqlite3"),
            audit_path: dir.path().join("audit.sqlite3"),
            _dir: dir,
            store,
            clock: Arc::new(ManualClock::new(START)),
            script: Script::default(),
            webhook: None,
        }
    }

    fn controller(&self) -> Controller {
        Controller::new(
            rusqlite::Connection::open(&self.state_path).unwrap(),
            AuditLog::open(&self.audit_path).unwrap(),
            Box::new(self.store.clone()),
            Box::new(self.script.clone()),
            self.clock.clone(),
            ControllerConfig {
                actor: String::from("loop@test"),
                alert_webhook: self.webhook.clone(),
                wait_timeout: Duration::from_secs(5),
                seed: 7,
                ..ControllerConfig::default()
            },
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
            "support",
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
        promptflag_controller::load_state(&connection, "support")
            .unwrap()
            .unwrap()
    }

    fn live_flag(&self) -> serde_json::Value {
        let bytes = self.store.live_bytes("dev").unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        value["flags"]["support"].clone()
    }

    fn rollout_entries(&self) -> Vec<promptflag_release::audit::Entry> {
        AuditLog::open(&self.audit_path)
            .unwrap()
            .list(Some("dev"))
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
    // The treatment's success rate is 12 points lower over 2 000 calls.
    rig.script.set(snapshot(
        arm("stable", 40_000, 0.80, 0.005, 0.01),
        vec![arm("concise", 2_000, 0.68, 0.005, 0.01)],
        vec![2_000],
        vec![198_000, 2_000],
    ));
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

#[test]
fn a_better_treatment_is_promoted_after_the_last_stage() {
    let rig = Rig::new();
    let mut controller = rig.controller();
    rig.start(&policy());
    controller.tick().unwrap();
    let mut seen = Vec::new();
    for _ in 0..60 {
        rig.clock.advance(5 * MINUTE);
        let state = rig.state();
        if state.status != Status::Running {
            break;
        }
        let percent = f64::from(state.weights[0]) / 1000.0;
        // Ten points better on success, big samples: every stage passes, then promotion.
        rig.script.set(snapshot(
            arm("stable", 20_000, 0.80, 0.005, 0.01),
            vec![arm("concise", 5_000, 0.90, 0.005, 0.01)],
            vec![1_000],
            vec![(1_000.0 * (100.0 - percent) / percent) as u64, 1_000],
        ));
        seen.extend(decisions(&controller.tick().unwrap()));
    }
    let acted: Vec<Decision> = seen.into_iter().filter(|d| *d != Decision::Hold).collect();
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
