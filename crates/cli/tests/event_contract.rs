//! The events the native client sends are the events the collector takes: both go through the
//! schemas of `promptflag_contracts::events`, and these tests encode with the client's own types
//! and decode with the collector's own decoder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use promptflag_client::telemetry::{CallOutcome, LlmCallEvent};
use promptflag_client::{Client, ClientConfig};
use promptflag_core::Context;
use promptflag_telemetry::collector::event::{Record, Status, decode_body};

const RULESET: &str = r#"{"schema": 1, "environment": "dev", "revision": 3, "flags": {"f": {
    "kind": "string", "baseline": "a",
    "variants": {"a": {"value": "A"}, "b": {"value": "B"}},
    "default": {"split": {"treatments": [{"variant": "b", "weight": 100000}]}}}}}"#;

/// A client serving `RULESET` from its fallback (its edge is unreachable), recording every
/// exposure its hook sees as the JSON it serializes to.
fn client() -> (Client, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let mut config = ClientConfig::new("http://127.0.0.1:9");
    config.request_timeout = Duration::from_millis(200);
    config.refresh_interval = Duration::from_secs(3600);
    config.fallback_json = Some(RULESET.as_bytes().to_vec());
    config.exposure_hook = Some(Arc::new(move |exposure| {
        sink.lock()
            .unwrap()
            .push(serde_json::to_string(exposure).unwrap());
    }));
    (Client::start(config), seen)
}

#[test]
fn native_client_exposure_is_accepted_by_the_collector() {
    let (client, seen) = client();
    client.evaluate("f", &Context::new().with_targeting_key("user-42"));
    let body = format!("[{}]", seen.lock().unwrap().join(","));
    let decoded = decode_body(body.as_bytes(), Some("application/json"), 10).unwrap();
    assert!(decoded.errors.is_empty(), "{:?} for {body}", decoded.errors);
    let [(0, Record::Exposure(exposure))] = decoded.records.as_slice() else {
        panic!("one exposure expected, got {:?}", decoded.records);
    };
    assert_eq!(exposure.flag_key, "f");
    assert_eq!(exposure.variant, "b");
    assert_eq!(exposure.environment.as_deref(), Some("dev"));
    assert_eq!(exposure.revision, Some(3));
    assert_eq!(exposure.unit.as_deref(), Some("user-42"));
    assert_eq!(exposure.reason.as_deref(), Some("SPLIT"));
    assert!(exposure.timestamp_ms > 1_700_000_000_000, "{body}");
}

#[test]
fn a_client_evaluation_that_served_no_variant_is_not_an_exposure_for_the_collector() {
    let (client, seen) = client();
    client.evaluate(
        "missing_flag",
        &Context::new().with_targeting_key("user-42"),
    );
    let body = format!("[{}]", seen.lock().unwrap().join(","));
    let decoded = decode_body(body.as_bytes(), None, 10).unwrap();
    assert!(decoded.records.is_empty());
    assert_eq!(decoded.errors.len(), 1, "{body}");
    assert_eq!(decoded.errors[0].code, "missing_field");
    assert!(decoded.errors[0].message.contains("variant"));
}

#[test]
fn native_client_llm_call_is_accepted_by_the_collector() {
    let (client, _) = client();
    let resolution = client.evaluate("f", &Context::new().with_targeting_key("user-42"));
    let outcome = CallOutcome {
        request_id: String::from("r-1"),
        user_id: Some(String::from("user-42")),
        input_tokens: 150,
        output_tokens: 80,
        latency: Duration::from_millis(1200),
        time_to_first_token: Some(Duration::from_millis(310)),
        success: true,
        parser_valid: Some(true),
        refused: Some(false),
        hallucinated: None,
        cost_usd: Some(0.0042),
        response_hash: Some("5e".repeat(32)),
        ..CallOutcome::default()
    };
    let event = LlmCallEvent::from_outcome(&resolution, &outcome);
    let body = serde_json::to_vec(&[&event]).unwrap();
    let decoded = decode_body(&body, None, 10).unwrap();
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    let [(0, Record::Call(call))] = decoded.records.as_slice() else {
        panic!("one call expected, got {:?}", decoded.records);
    };
    assert_eq!(call.request_id, "r-1");
    assert_eq!(call.flag_key, "f");
    assert_eq!(call.variant, "b");
    assert_eq!(call.latency_ms, Some(1200.0));
    assert_eq!(call.ttft_ms, Some(310.0));
    assert_eq!(
        call.response_hash.as_deref(),
        Some("5e".repeat(32).as_str())
    );
    assert_eq!(call.input_tokens, Some(150));
    assert_eq!(call.status, Status::Success);
    assert_eq!(call.timestamp_millis, event.timestamp_millis);
}

#[test]
fn hallucination_signals_travel_from_the_native_helper_to_a_rollout_metric() {
    use promptflag_evals::signals::{Evidence, Source, ToolCall, ToolDeclaration};
    use promptflag_rollout::metrics::VariantMetrics;
    use promptflag_telemetry::collector::db::{self, Synchronous};
    use promptflag_telemetry::read::{self, Window};

    let (client, _) = client();
    let resolution = client.evaluate("f", &Context::new().with_targeting_key("user-42"));
    let sources = [Source {
        id: String::from("kb-1"),
        text: String::from("Refunds take 5 to 10 business days."),
    }];
    let tools = [ToolDeclaration {
        name: String::from("lookup_order"),
        parameters: serde_json::json!({"type": "object", "required": ["order_id"]}),
    }];
    let calls = [ToolCall {
        name: String::from("lookup_order"),
        arguments: serde_json::json!("{}"),
    }];
    let mut events = Vec::new();
    for (index, response) in [
        "Refunds take 5 to 10 business days [kb-1].",
        "Refunds take 30 days [kb-7].",
    ]
    .into_iter()
    .enumerate()
    {
        let outcome = CallOutcome {
            request_id: format!("r-{index}"),
            success: true,
            judge_score: Some(if index == 0 { 0.9 } else { 0.3 }),
            ..CallOutcome::default()
        }
        .with_signals(&Evidence {
            response,
            input: Some("How long do refunds take?"),
            sources: Some(&sources),
            tools: Some(&tools),
            tool_calls: if index == 0 { &[] } else { &calls },
        });
        events.push(LlmCallEvent::from_outcome(&resolution, &outcome));
    }
    let body = serde_json::to_vec(&events).unwrap();
    let decoded = decode_body(&body, None, 10).unwrap();
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    let records: Vec<Record> = decoded.records.into_iter().map(|(_, r)| r).collect();
    let Record::Call(second) = &records[1] else {
        panic!("a call")
    };
    assert_eq!(second.citation_mismatch, Some(true));
    assert_eq!(second.tool_call_mismatch, Some(true));
    assert_eq!(second.unsupported_numeric_claims, Some(true));
    assert_eq!(second.judge_score, Some(0.3));

    let dir = tempfile::tempdir().unwrap();
    let mut connection = db::open(&dir.path().join("t.sqlite3"), Synchronous::Normal).unwrap();
    db::insert_batches(&mut connection, &[&records]).unwrap();
    let window = Window {
        flag_key: String::from("f"),
        environment: None,
        from_ms: 0,
        to_ms: i64::MAX,
    };
    let aggregates = read::aggregates(&connection, &window).unwrap();
    let (variant, aggregate) = &aggregates[0];
    let metrics = VariantMetrics::from_aggregate(variant, aggregate.clone());
    assert_eq!(metrics.citation_mismatch_rate, 0.5);
    assert_eq!(metrics.tool_call_mismatch_rate, 0.5);
    assert_eq!(metrics.unsupported_numeric_claim_rate, 0.5);
    assert!((metrics.judge_score - 0.6).abs() < 1e-12);
    // A resend of the same events is a duplicate, not a conflict: the signals are in the hash.
    let again = db::insert_batches(&mut connection, &[&records]).unwrap();
    assert!(
        again[0].iter().all(|s| *s == db::Stored::Duplicate),
        "{again:?}"
    );
}
