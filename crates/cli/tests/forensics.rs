//! Exposures everywhere and attribution: the native client and the npm client send exposures
//! with every field (and LLM calls with their response hash) to a real collector the test starts;
//! `promptflag exposures` answers a known set exactly in CSV and JSON; `promptflag attribute`
//! names the version, revision and publish of a simulated regression with its time to
//! attribution.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use promptflag_cli::simulation::{LocalCollector, initial_ruleset};
use promptflag_release::audit::{Action, AuditLog, NewEntry};
use promptflag_release::store::{Http, RetryPolicy};
use promptflag_telemetry::collector::CollectorConfig;
use serde_json::{Value, json};
use support::{promptflag, stdout};

const TOKEN: &str = "forensics-writer-token-0123456789abcdef";
/// 2026-11-21T14:00:00Z.
const T14: i64 = 1_795_269_600_000;
const MINUTE: i64 = 60_000;

fn collector(dir: &std::path::Path) -> (LocalCollector, std::path::PathBuf) {
    let db = dir.join("telemetry.sqlite3");
    let collector = LocalCollector::start(CollectorConfig {
        db_path: db.clone(),
        tokens: vec![TOKEN.to_string()],
        ..CollectorConfig::default()
    })
    .unwrap();
    (collector, db)
}

fn post(collector: &LocalCollector, events: &[Value]) {
    let http = Http::new(
        Duration::from_secs(30),
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        },
    );
    for chunk in events.chunks(500) {
        let reply = http
            .send(
                "POST",
                &format!("{}/v1/events", collector.url),
                &[
                    ("Content-Type", String::from("application/json")),
                    ("Authorization", format!("Bearer {TOKEN}")),
                ],
                Some(&serde_json::to_vec(chunk).unwrap()),
                false,
            )
            .unwrap();
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.json()["rejected"], 0, "{}", reply.json());
    }
}

fn time(millis: i64) -> String {
    promptflag_core::literal::format_rfc3339_millis(millis)
}

fn exposure(unit: &str, variant: &str, version: &str, revision: u64, at_ms: i64) -> Value {
    json!({"type": "exposure", "timestamp": time(at_ms), "environment": "prod",
        "flag_key": "support_reply", "variant": variant, "prompt_id": "support",
        "prompt_version": version, "prompt_hash": format!("{:0>64}", version.replace('.', "")),
        "revision": revision, "unit": unit, "reason": "SPLIT"})
}

/// The stored exposure of a flag, every column.
fn stored_exposure(db: &std::path::Path, flag: &str) -> Vec<Value> {
    let connection = rusqlite::Connection::open(db).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT ts_ms, environment, flag_key, variant, prompt_id, prompt_version, prompt_hash, revision, unit, reason \
             FROM exposures WHERE flag_key = ?1 ORDER BY id",
        )
        .unwrap();
    let rows = statement
        .query_map([flag], |r| {
            Ok(json!({
                "ts_ms": r.get::<_, i64>(0)?, "environment": r.get::<_, Option<String>>(1)?,
                "flag_key": r.get::<_, String>(2)?, "variant": r.get::<_, String>(3)?,
                "prompt_id": r.get::<_, Option<String>>(4)?, "prompt_version": r.get::<_, Option<String>>(5)?,
                "prompt_hash": r.get::<_, Option<String>>(6)?, "revision": r.get::<_, Option<i64>>(7)?,
                "unit": r.get::<_, Option<String>>(8)?, "reason": r.get::<_, Option<String>>(9)?,
            }))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// What every runtime's exposure of the simulation's flag holds, the time aside.
fn expected_exposure(unit: &str) -> Value {
    let (_, bodies) = initial_ruleset().unwrap();
    json!({"environment": "dev", "flag_key": "sim_prompt", "variant": "stable",
        "prompt_id": "sim_support", "prompt_version": "1.0.0", "prompt_hash": bodies[0].0,
        "revision": 1, "unit": unit, "reason": "STATIC"})
}

fn without_time(mut row: Value) -> Value {
    assert!(row["ts_ms"].as_i64().unwrap() > 0);
    row.as_object_mut().unwrap().remove("ts_ms");
    row
}

#[test]
fn the_native_client_sends_exposures_and_calls_with_their_response_hash() {
    use promptflag_client::telemetry::{CallOutcome, LlmCallEvent, TelemetryConfig};
    use promptflag_client::{Client, ClientConfig};

    let dir = tempfile::tempdir().unwrap();
    let (collector, db) = collector(dir.path());
    let (ruleset, _) = initial_ruleset().unwrap();
    let mut config = ClientConfig::new("http://127.0.0.1:9")
        .with_collector(TelemetryConfig::new(collector.url.clone()).with_token(TOKEN));
    config.fallback_json = Some(ruleset);
    config.warm_bodies = false;
    config.request_timeout = Duration::from_millis(500);
    let client = Client::start(config);
    let context = promptflag_core::Context::new().with_targeting_key("user-7");
    let resolution = client.resolve_prompt("sim_prompt", &context);
    assert_eq!(resolution.variant.as_deref(), Some("stable"));
    let response_hash = "ab".repeat(32);
    let telemetry = client.telemetry().unwrap();
    assert!(telemetry.record(LlmCallEvent::from_outcome(
        &resolution,
        &CallOutcome {
            request_id: String::from("native-1"),
            user_id: Some(String::from("user-7")),
            success: true,
            response_hash: Some(response_hash.clone()),
            ..CallOutcome::default()
        },
    )));
    // Dropping the client stops its sender after one last flush.
    drop(client);

    let rows = stored_exposure(&db, "sim_prompt");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(without_time(rows[0].clone()), expected_exposure("user-7"));
    let connection = rusqlite::Connection::open(&db).unwrap();
    let (stored_hash, version): (Option<String>, Option<String>) = connection
        .query_row(
            "SELECT response_hash, prompt_version FROM calls WHERE request_id = 'native-1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(stored_hash.as_deref(), Some(response_hash.as_str()));
    assert_eq!(version.as_deref(), Some("1.0.0"));
    drop(collector);
}

#[test]
fn the_npm_client_sends_exposures_with_every_field() {
    // Fails with the command to run when Node 22 or the npm build is missing.
    let locations = promptflag_harness::Locations::from_env().unwrap_or_else(|e| panic!("{e}"));
    let package = support::workspace_root().join("npm/dist/node.js");
    assert!(
        package.exists(),
        "{} is missing: run `cargo xtask build-npm`",
        package.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let (collector, db) = collector(dir.path());
    let (ruleset, _) = initial_ruleset().unwrap();
    let script = r#"
        const { PromptflagClient } = await import(process.env.PACKAGE);
        const client = new PromptflagClient({
          baseUrl: "http://127.0.0.1:9/", autoStart: false, refreshIntervalMs: 0,
          fallbackRuleset: process.env.RULESET,
          collector: { url: process.env.COLLECTOR, token: process.env.TOKEN, flushIntervalMs: 60000 },
        });
        const resolution = client.resolvePrompt("sim_prompt", { targetingKey: "user-9" });
        await client.flushExposures();
        client.close();
        console.log(JSON.stringify({ variant: resolution.variant, stats: client.exposureStats() }));
    "#;
    let output = std::process::Command::new(&locations.node)
        .args(["--input-type=module", "-e", script])
        .env("PACKAGE", url_of(&package))
        .env("RULESET", String::from_utf8(ruleset).unwrap())
        .env("COLLECTOR", &collector.url)
        .env("TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        answer,
        json!({"variant": "stable", "stats": {"sent": 1, "droppedQueueFull": 0, "droppedSendFailed": 0, "queued": 0}})
    );
    let rows = stored_exposure(&db, "sim_prompt");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(without_time(rows[0].clone()), expected_exposure("user-9"));
    drop(collector);
}

/// A stored call's three signals, judge score and response hash.
type StoredSignals = (
    Option<bool>,
    Option<bool>,
    Option<bool>,
    Option<f64>,
    Option<String>,
);

#[test]
fn the_npm_call_helper_sends_the_hallucination_signals_and_judge_score() {
    // Fails with the command to run when Node 22 or the npm build is missing.
    let locations = promptflag_harness::Locations::from_env().unwrap_or_else(|e| panic!("{e}"));
    let package = support::workspace_root().join("npm/dist/node.js");
    assert!(
        package.exists(),
        "{} is missing: run `cargo xtask build-npm`",
        package.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let (collector, db) = collector(dir.path());
    // The response cites an unknown source and a number the source does not hold; the tool call
    // is declared and conforms; the request id is judged at rate 1.
    let script = r#"
        const { ExposureSender, llmCallEvent, shouldJudge, withJudgeScore } = await import(process.env.PACKAGE);
        const sender = new ExposureSender({ url: process.env.COLLECTOR, token: process.env.TOKEN, flushIntervalMs: 60000 });
        let event = llmCallEvent({
          requestId: "npm-call-1", flagKey: "sim_prompt", variant: "stable", status: "success",
          model: "gpt-4o-mini", latencyMs: 640, hashResponse: true,
          evidence: {
            response: "Pro costs 1,300 a year [kb-12] [kb-99].",
            sources: [{ id: "kb-12", text: "Pro costs 1,200 a year." }],
            declaredTools: [{ name: "lookup_plan", parameters: { type: "object", required: ["plan"] } }],
            toolCalls: [{ name: "lookup_plan", arguments: "{\"plan\": \"pro\"}" }],
          },
        });
        if (shouldJudge(event.request_id, 1)) event = withJudgeScore(event, 0.4);
        sender.recordCall(event);
        await sender.close();
        console.log(JSON.stringify(sender.stats()));
    "#;
    let output = std::process::Command::new(&locations.node)
        .args(["--input-type=module", "-e", script])
        .env("PACKAGE", url_of(&package))
        .env("COLLECTOR", &collector.url)
        .env("TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stats: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        stats,
        json!({"sent": 1, "droppedQueueFull": 0, "droppedSendFailed": 0, "queued": 0})
    );
    let connection = rusqlite::Connection::open(&db).unwrap();
    let row: StoredSignals = connection
        .query_row(
            "SELECT citation_mismatch, tool_call_mismatch, unsupported_numeric_claims, judge_score, response_hash FROM calls WHERE request_id = 'npm-call-1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    let expected_hash =
        promptflag_contracts::digest::sha256_hex(b"Pro costs 1,300 a year [kb-12] [kb-99].");
    assert_eq!(
        row,
        (
            Some(true),
            Some(false),
            Some(true),
            Some(0.4),
            Some(expected_hash)
        )
    );
    drop(collector);
}

fn url_of(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

/// A known set: support_reply between 14:00 and 14:30, with one exposure after and one of
/// another flag inside.
fn known_exposures() -> Vec<Value> {
    let mut events = vec![
        exposure("u1", "control", "1.4.0", 7, T14 + 5 * MINUTE),
        exposure("u1", "control", "1.4.0", 7, T14 + 6 * MINUTE),
        exposure("u2", "concise", "2.0.0", 8, T14 + 10 * MINUTE),
        exposure("u3", "concise", "2.0.0", 8, T14 + 11 * MINUTE),
        exposure("u3", "concise", "2.0.0", 8, T14 + 12 * MINUTE),
        exposure("u3", "concise", "2.0.0", 8, T14 + 13 * MINUTE),
        exposure("u4", "concise", "1.0.0", 7, T14 + 2 * MINUTE),
        // Outside the window.
        exposure("u2", "concise", "2.0.0", 8, T14 + 40 * MINUTE),
    ];
    let mut other = exposure("u5", "on", "2.0.0", 8, T14 + 12 * MINUTE);
    other["flag_key"] = json!("other_flag");
    events.push(other);
    events
}

#[test]
fn exposures_answers_a_known_set_exactly_in_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let (collector, db) = collector(dir.path());
    post(&collector, &known_exposures());
    drop(collector);
    let db_arg = db.to_str().unwrap();
    let window = [
        "--from",
        "2026-11-21T14:00:00Z",
        "--to",
        "2026-11-21T14:30:00Z",
    ];
    let mut args = vec!["--db", db_arg, "exposures", "--flag", "support_reply"];
    args.extend(window);
    args.extend(["--format", "csv"]);
    let output = promptflag(&args);
    assert!(output.status.success(), "{}", support::stderr(&output));
    let at = |minute: i64| time(T14 + minute * MINUTE);
    let expected = format!(
        "variant,prompt_version,unit,exposures,units,first_seen,last_seen\n\
         concise,1.0.0,,1,1,{m2},{m2}\n\
         concise,2.0.0,,4,2,{m10},{m13}\n\
         control,1.4.0,,2,1,{m5},{m6}\n\
         control,1.4.0,u1,2,1,{m5},{m6}\n\
         concise,2.0.0,u2,1,1,{m10},{m10}\n\
         concise,2.0.0,u3,3,1,{m11},{m13}\n\
         concise,1.0.0,u4,1,1,{m2},{m2}\n",
        m2 = at(2),
        m5 = at(5),
        m6 = at(6),
        m10 = at(10),
        m11 = at(11),
        m13 = at(13),
    );
    assert_eq!(stdout(&output), expected);

    let mut args = vec![
        "--db",
        db_arg,
        "exposures",
        "--flag",
        "support_reply",
        "--version",
        "2.0.0",
    ];
    args.extend(window);
    args.extend(["--format", "json"]);
    let output = promptflag(&args);
    assert!(output.status.success(), "{}", support::stderr(&output));
    let answer: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        answer["groups"],
        json!([{"variant": "concise", "prompt_version": "2.0.0", "exposures": 4, "units": 2,
            "first_ms": T14 + 10 * MINUTE, "last_ms": T14 + 13 * MINUTE}])
    );
    assert_eq!(
        answer["units"],
        json!([
            {"unit": "u2", "variant": "concise", "prompt_version": "2.0.0", "exposures": 1,
                "first_ms": T14 + 10 * MINUTE, "last_ms": T14 + 10 * MINUTE},
            {"unit": "u3", "variant": "concise", "prompt_version": "2.0.0", "exposures": 3,
                "first_ms": T14 + 11 * MINUTE, "last_ms": T14 + 13 * MINUTE},
        ])
    );
    assert_eq!(answer["units_truncated"], false);

    // A cut unit list says so, and keeps the counts exact.
    let mut args = vec![
        "--json",
        "--db",
        db_arg,
        "exposures",
        "--flag",
        "support_reply",
    ];
    args.extend(window);
    args.extend(["--max-units", "1"]);
    let answer: Value = serde_json::from_str(&stdout(&promptflag(&args))).unwrap();
    assert_eq!(answer["units"].as_array().unwrap().len(), 1);
    assert_eq!(answer["units_truncated"], true);
    assert_eq!(answer["groups"][1]["exposures"], 4);

    // Bad input is a usage error, not a panic.
    let output = promptflag(&[
        "--db",
        db_arg,
        "exposures",
        "--flag",
        "support_reply",
        "--from",
        "yesterday",
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        support::stderr(&output)
    );
}

/// LLM calls of support_reply: 200 a minute per variant for 20 minutes; `concise` fails 2 % of
/// its calls, then 14 % from minute 10, when it serves support@2.0.0 (revision 8) instead of
/// 1.0.0 (revision 7). Its exposures say when each version reached it.
fn regression_events() -> Vec<Value> {
    let mut events = Vec::new();
    for minute in 0..20i64 {
        for variant in ["control", "concise"] {
            let new = variant == "concise" && minute >= 10;
            let failures = if new { 28 } else { 4 };
            let version = if variant == "control" {
                "1.4.0"
            } else if new {
                "2.0.0"
            } else {
                "1.0.0"
            };
            for call in 0..200i64 {
                let at = T14 + minute * MINUTE + call * 250;
                events.push(json!({
                    "type": "llm_call", "timestamp": time(at),
                    "request_id": format!("{variant}-{minute}-{call}"), "environment": "prod",
                    "flag_key": "support_reply", "variant": variant, "prompt_id": "support",
                    "prompt_version": version, "user_id": format!("u{call}"),
                    "status": if call < failures { "failure" } else { "success" },
                    "latency_ms": 800, "cost_usd": 0.002,
                }));
            }
            if minute == 0 || (new && minute == 10) {
                let revision = if new { 8 } else { 7 };
                events.push(exposure(
                    &format!("first-{variant}-{minute}"),
                    variant,
                    version,
                    revision,
                    T14 + minute * MINUTE,
                ));
            }
        }
    }
    events
}

#[test]
fn attribute_names_the_version_revision_and_publish_of_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let (collector, db) = collector(dir.path());
    post(&collector, &regression_events());
    drop(collector);
    let audit_path = dir.path().join("audit.sqlite3");
    let mut audit = AuditLog::open(&audit_path).unwrap();
    let mut publish = |revision: u64, reason: &str| {
        audit
            .append(NewEntry {
                actor: String::from("ana@example.com"),
                action: Action::Publish,
                environment: String::from("prod"),
                revision: Some(revision),
                previous_revision: revision.checked_sub(1),
                reason: reason.to_string(),
                content_hash: None,
                ruleset_hash: None,
                summary: json!({}),
            })
            .unwrap()
    };
    publish(7, "support 1.0.0");
    let culprit = publish(8, "support 2.0.0");
    drop(audit);

    let output = promptflag(&[
        "--json",
        "--db",
        db.to_str().unwrap(),
        "--audit-db",
        audit_path.to_str().unwrap(),
        "attribute",
        "--metric",
        "success_rate",
        "--since",
        "2026-11-21T14:00:00Z",
        "--until",
        "2026-11-21T14:20:00Z",
        "--history",
        "0",
    ]);
    assert!(output.status.success(), "{}", support::stderr(&output));
    let answer: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(answer["flags"], json!(["support_reply"]));
    let found = &answer["attributions"][0];
    assert_eq!(found["degradation"]["variant"], "concise");
    assert_eq!(found["degradation"]["metric"], "success_rate");
    assert_eq!(found["degradation"]["onset_ms"], T14 + 10 * MINUTE);
    assert_eq!(found["onset"]["prompt_version"], "2.0.0");
    assert_eq!(found["onset"]["revision"], 8);
    assert_eq!(found["publish"]["seq"], culprit.seq);
    assert_eq!(found["publish"]["hash"], culprit.hash.as_str());
    // Attributed now, after the onset: the time between is what it reports.
    let attributed = found["attributed_ms"].as_i64().unwrap();
    assert_eq!(
        found["time_to_attribution_ms"].as_i64().unwrap(),
        attributed - (T14 + 10 * MINUTE)
    );
    assert_eq!(answer["attributions"].as_array().unwrap().len(), 1);

    // The text names the same and prints the time to attribution.
    let output = promptflag(&[
        "--db",
        db.to_str().unwrap(),
        "--audit-db",
        audit_path.to_str().unwrap(),
        "attribute",
        "--since",
        "2026-11-21T14:00:00Z",
        "--until",
        "2026-11-21T14:20:00Z",
    ]);
    let text = stdout(&output);
    assert!(
        text.starts_with(
            "success_rate of support_reply/concise degraded from 0.98 to 0.86 after support@2.0.0 (revision 8), published by ana@example.com (audit entry 2)\n"
        ),
        "{text}"
    );
    assert!(text.contains("  time to attribution "), "{text}");
}
