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
