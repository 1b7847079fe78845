//! The telemetry sender: batches reach the collector's `/v1/events`; a full queue or a collector
//! that is down drops and counts events instead of blocking the caller.
//!
//! The collector here is a minimal HTTP listener on 127.0.0.1 that records what it receives (the
//! companion's real collector is another crate's, and this crate must not depend on it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use promptflag_client::Resolution;
use promptflag_client::telemetry::{CallOutcome, LlmCallEvent, Telemetry, TelemetryConfig};
use promptflag_core::{PromptMeta, Reason};
use serde_json::{Value, json};

/// Each POST the collector received: its path and its events.
type Received = Arc<Mutex<Vec<(String, Vec<Value>)>>>;

fn collector() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let sink = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            let events: Vec<Value> = serde_json::from_slice(&body).unwrap();
            sink.lock().unwrap().push((path, events));
            let answer = b"{\"accepted\":true}";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                answer.len()
            );
            let _ = stream.write_all(answer);
        }
    });
    (url, received)
}

fn resolution() -> Resolution {
    Resolution {
        flag_key: "support_prompt".into(),
        value: Some(json!({})),
        variant: Some("concise".into()),
        reason: Reason::Split,
        error_code: None,
        error_message: None,
        rule_index: None,
        bucket: None,
        prompt: Some(PromptMeta {
            content_id: "8e".repeat(32),
            hash: "9f".repeat(32),
            id: "support".into(),
            version: "2.1.0".into(),
            model: "gpt-4o".into(),
            parameters: json!({"temperature": 0.7}),
            output_schema: None,
            status: None,
        }),
        revision: Some(7),
    }
}

fn outcome(i: usize) -> CallOutcome {
    CallOutcome {
        request_id: format!("r-{i}"),
        user_id: Some(format!("user-{i}")),
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
    }
}

#[test]
fn an_outcome_becomes_the_spec_event() {
    let event = LlmCallEvent::from_outcome(&resolution(), &outcome(1));
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["request_id"], "r-1");
    assert_eq!(json["prompt_id"], "support");
    assert_eq!(json["prompt_version"], "2.1.0");
    assert_eq!(json["prompt_hash"], "9f".repeat(32));
    assert_eq!(json["flag_key"], "support_prompt");
    assert_eq!(json["variant"], "concise");
    assert_eq!(json["model"], "gpt-4o");
    assert_eq!(json["temperature"], 0.7);
    assert_eq!(json["latency_ms"], 1200);
    assert_eq!(json["ttft_ms"], 310);
    assert_eq!(json["status"], "success");
    assert_eq!(json["response_hash"], "5e".repeat(32));
    assert!(json["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn events_reach_the_collector_in_batches() {
    let (url, received) = collector();
    let mut config = TelemetryConfig::new(url);
    config.batch_size = 10;
    config.flush_interval = Duration::from_millis(50);
    let telemetry = Telemetry::start(config);
    for i in 0..25 {
        assert!(telemetry.record(LlmCallEvent::from_outcome(&resolution(), &outcome(i))));
    }
    let stats = telemetry.shutdown();
    assert_eq!(stats.sent, 25);
    assert_eq!(stats.dropped_queue_full + stats.dropped_send_failed, 0);
    let received = received.lock().unwrap();
    assert!(
        received
            .iter()
            .all(|(path, batch)| path == "/v1/events" && batch.len() <= 10)
    );
    let ids: Vec<&str> = received
        .iter()
        .flat_map(|(_, b)| b.iter().map(|e| e["request_id"].as_str().unwrap()))
        .collect();
    assert_eq!(ids.len(), 25);
    assert_eq!(ids[0], "r-0");
    assert_eq!(ids[24], "r-24");
}

#[test]
fn a_collector_that_is_down_costs_dropped_events_not_a_blocked_caller() {
    // Bind and drop a listener so the port is closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = TelemetryConfig::new(format!("http://127.0.0.1:{port}"));
    config.queue_capacity = 8;
    config.batch_size = 4;
    config.flush_interval = Duration::from_millis(20);
    config.request_timeout = Duration::from_millis(500);
    let telemetry = Telemetry::start(config);
    let mut accepted = 0;
    for i in 0..1_000 {
        if telemetry.record(LlmCallEvent::from_outcome(&resolution(), &outcome(i))) {
            accepted += 1;
        }
    }
    let stats = telemetry.shutdown();
    assert!(
        stats.dropped_queue_full > 0,
        "a bounded queue must drop: {stats:?}"
    );
    assert_eq!(stats.sent, 0);
    assert_eq!(stats.dropped_queue_full + accepted, 1_000);
    assert_eq!(
        stats.dropped_send_failed, accepted,
        "every accepted event failed to send: {stats:?}"
    );
}
