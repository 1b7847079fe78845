//! `promptflag simulate`: one short run end to end through the real Worker (Miniflare, started
//! from `tests/support/worker-server.mjs`) and the collector, and in-process runs of the same
//! controller on fresh seeds.
//!
//! The Worker run needs Node 22 and the built Worker: `cargo xtask test` provides both; run
//! alone, the harness finds them in the workspace after `cargo xtask setup` and
//! `cargo xtask build-worker`, and fails naming the command when they are missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

fn simulate(args: &[&str], csv: &std::path::Path) -> Value {
    let repo = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_promptflag"))
        .arg("--repo")
        .arg(repo.path())
        .args(["--json", "simulate"])
        .args(args)
        .arg("--csv")
        .arg(csv)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The token the tests' Worker grants in every environment (at least 32 bytes).
const ADMIN_TOKEN: &str = "simulate-admin-token-0123456789abcdef";

#[test]
fn a_regression_is_rolled_back_through_the_real_worker() {
    // Fails with the command to run when Node 22 is not installed; never passes silently.
    promptflag_harness::Locations::from_env().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("checks.csv");
    let out = simulate(
        &[
            "--scenario",
            "regression",
            "--preset",
            "quick",
            "--rate",
            "200",
            "--users",
            "1000",
            "--max-hours",
            "2",
        ],
        &csv,
    );
    let run = &out["worker_run"];
    assert_eq!(run["through_worker"], true);
    assert_eq!(run["outcome"], "rollback", "{run}");
    assert!(run["detection_treatment_calls"].as_u64().unwrap() > 0);
    assert!(run["revert_cycle_ms"].as_u64().is_some(), "{run}");
    assert_eq!(run["baseline_served_after_rollback"], true);
    // The change-point watch names the treatment's version and the publish that started serving
    // it; its time to attribution is reported beside the time to detection.
    let attributed = run["attribution"].as_str().unwrap_or_default();
    assert!(
        attributed.contains("sim_prompt/candidate degraded")
            && attributed.contains("after sim_support@2.0.0")
            && attributed.contains("audit entry"),
        "{run}"
    );
    assert!(run["attribution_minutes"].as_f64().unwrap() >= 0.0, "{run}");
    let decisions: Vec<&str> = run["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d[1].as_str().unwrap())
        .collect();
    assert_eq!(decisions.first(), Some(&"start"));
    assert_eq!(decisions.last(), Some(&"rollback"));
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("check,minute,stage,percent,decision,")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len() as u64, run["checks"].as_u64().unwrap());
    assert!(
        rows.last().unwrap().contains(",rollback,"),
        "{}",
        rows.last().unwrap()
    );
}

#[test]
fn in_process_runs_report_decision_rates() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("checks.csv");
    let out = simulate(
        &[
            "--scenario",
            "verbose",
            "--preset",
            "quick",
            "--no-worker",
            "--runs",
            "5",
            "--rate",
            "200",
            "--users",
            "1000",
            "--max-hours",
            "3",
        ],
        &csv,
    );
    assert!(out["worker_run"].is_null());
    let rates = &out["rates"];
    assert_eq!(rates["runs"], 5);
    let rollback = rates["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o[0] == "rollback")
        .unwrap();
    assert_eq!(rollback[1], 5, "{rates}");
    assert!(std::fs::read_to_string(&csv).unwrap().lines().count() > 1);
}

#[test]
fn on_a_over_a_the_sequential_rule_stays_under_alpha_and_the_naive_rule_does_not() {
    // Fixed seeds: the outcome is deterministic, not a flaky statistical test.
    let dir = tempfile::tempdir().unwrap();
    let out = simulate(
        &[
            "--scenario",
            "aa",
            "--preset",
            "quick",
            "--no-worker",
            "--runs",
            "40",
            "--rate",
            "200",
            "--users",
            "2000",
            "--max-hours",
            "2",
        ],
        &dir.path().join("aa.csv"),
    );
    let rates = &out["rates"];
    let sequential = rates["sequential_rollback_rate"].as_f64().unwrap();
    let naive = rates["naive_rollback_rate"].as_f64().unwrap();
    assert!(sequential <= 0.05, "{rates}");
    assert!(naive > sequential, "{rates}");
}

#[test]
fn the_workers_exposure_batches_land_in_the_collector() {
    exposure_batches_land_in_the_collector(None);
}

#[test]
fn the_worker_sends_the_collectors_writer_token_with_its_exposures() {
    exposure_batches_land_in_the_collector(Some("exposure-sink-token-0123456789abcdef"));
}

/// The Worker posts its exposures to a collector, which requires `token` when there is one.
fn exposure_batches_land_in_the_collector(token: Option<&str>) {
    use promptflag_harness::{Locations, TEST_SERVER_KEY, WorkerOptions, WorkerProcess};
    use promptflag_release::store::{Http, NoProgress, RetryPolicy, Store, WorkerAdmin};
    use promptflag_telemetry::collector::CollectorConfig;
    use std::time::{Duration, Instant};

    // Fails with the command to run when Node 22 is not installed; never passes silently.
    let locations = Locations::from_env().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("telemetry.sqlite3");
    let collector = promptflag_cli::simulation::LocalCollector::start(CollectorConfig {
        db_path: db.clone(),
        tokens: token.map(str::to_string).into_iter().collect(),
        ..CollectorConfig::default()
    })
    .unwrap();
    let sink = format!("{}/v1/events", collector.url);
    let process = WorkerProcess::start(
        &locations,
        &WorkerOptions {
            admin_token: Some(String::from(ADMIN_TOKEN)),
            exposure_sink: Some(sink),
            exposure_sink_token: token.map(str::to_string),
            quiet: true,
            ..WorkerOptions::default()
        },
    )
    .unwrap();
    let worker_url = process.url().to_string();
    let http = Http::new(Duration::from_secs(30), RetryPolicy::default());
    let admin = WorkerAdmin::new(&worker_url, ADMIN_TOKEN, http.clone());
    let (bytes, bodies) = promptflag_cli::simulation::initial_ruleset().unwrap();
    admin.put_prompts(&bodies, &NoProgress).unwrap();
    admin.put_ruleset("dev", 1, &bytes, None).unwrap();
    promptflag_release::ops::wait_until_served(
        &http,
        &worker_url,
        Some(TEST_SERVER_KEY),
        "dev",
        1,
        Instant::now(),
        Duration::from_secs(60),
        Duration::from_millis(10),
    )
    .unwrap();
    let body = br#"{"context": {"targetingKey": "user-42"}}"#;
    let reply = http
        .send(
            "POST",
            &format!("{worker_url}/v1/resolve/sim_prompt"),
            &[
                ("Content-Type", String::from("application/json")),
                ("Authorization", format!("Bearer {TEST_SERVER_KEY}")),
            ],
            Some(body),
            false,
        )
        .unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    // The Worker posts exposures off the response path: wait for them (bounded), then check.
    let connection = rusqlite::Connection::open(&db).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    type Row = (
        String,
        String,
        Option<i64>,
        Option<String>,
        Option<String>,
        [Option<String>; 4],
    );
    let row: Row = loop {
        let found = connection.query_row(
            "SELECT flag_key, variant, revision, unit, reason, prompt_id, prompt_version, prompt_hash, environment FROM exposures LIMIT 1",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    [r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?],
                ))
            },
        );
        if let Ok(row) = found {
            break row;
        }
        assert!(
            Instant::now() < deadline,
            "no exposure reached the collector"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(row.0, "sim_prompt");
    assert_eq!(row.1, "stable");
    assert_eq!(row.2, Some(1));
    assert_eq!(row.3.as_deref(), Some("user-42"));
    assert!(row.4.is_some());
    // Every field of the exposure schema is stored: the prompt family, version and body too.
    let stable_hash = bodies[0].0.clone();
    assert_eq!(
        row.5,
        [
            Some(String::from("sim_support")),
            Some(String::from("1.0.0")),
            Some(stable_hash),
            Some(String::from("dev")),
        ]
    );
    drop(process);
    drop(collector);
}

#[test]
fn power_reports_each_rule_beside_its_aa_rate() {
    // A few short runs of the quick preset: the table's shape and its invariants, not its
    // figures (those are in docs/statistics.md, from long runs).
    let dir = tempfile::tempdir().unwrap();
    let out = simulate(
        &[
            "--power",
            "--preset",
            "quick",
            "--no-worker",
            "--runs",
            "4",
            "--rate",
            "200",
            "--users",
            "1000",
            "--max-hours",
            "1",
        ],
        &dir.path().join("power.csv"),
    );
    let rows = out["rows"].as_array().unwrap();
    // Four scenarios, two rules, with and without CUPED.
    assert_eq!(rows.len(), 16, "{out}");
    for setting in out["settings"].as_array().unwrap() {
        // The naive rule is tuned to at most the sequential rule's A/A rate.
        let sequential = setting["aa_sequential_rollback_rate"].as_f64().unwrap();
        let naive = setting["aa_naive_rollback_rate"].as_f64().unwrap();
        assert!(naive <= sequential, "{setting}");
    }
    let find = |scenario: &str, cuped: bool, rule: &str| {
        rows.iter()
            .find(|r| r["scenario"] == scenario && r["cuped"] == cuped && r["rule"] == rule)
            .unwrap()
    };
    for cuped in [false, true] {
        let regression = find("regression", cuped, "sequential");
        assert_eq!(regression["rollback_rate"], 1.0, "{regression}");
        assert!(regression["median_treatment_calls"].as_u64().unwrap() > 0);
        let aa = find("aa", cuped, "sequential");
        assert_eq!(aa["rollback_rate"], aa["aa_rollback_rate"]);
    }
}
