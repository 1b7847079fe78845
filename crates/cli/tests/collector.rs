//! The collector: malformed events, duplicates, a full write queue, the Prometheus endpoint, and
//! a `kill -9` of the real `promptflag serve` during ingestion that loses no acknowledged event.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use promptflag_release::store::{Http, Reply, RetryPolicy};
use promptflag_telemetry::collector::db::Synchronous;
use promptflag_telemetry::collector::{Collector, CollectorConfig};
use serde_json::{Value, json};

fn http() -> Http {
    Http::new(
        Duration::from_secs(60),
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        },
    )
}

fn post(url: &str, content_type: &str, body: &[u8]) -> Reply {
    http()
        .send(
            "POST",
            &format!("{url}/v1/events"),
            &[("Content-Type", content_type.to_string())],
            Some(body),
            false,
        )
        .unwrap()
}

fn call(id: &str) -> Value {
    json!({"timestamp": "2025-05-15T10:23:45Z", "request_id": id, "prompt_id": "customer_support",
        "prompt_version": "2.1.0", "prompt_hash": "9f2c", "flag_key": "customer_support_prompt",
        "variant": "new_instruction", "user_id": "user_12345", "model": "gpt-4", "temperature": 0.7,
        "input_tokens": 150, "output_tokens": 80, "latency_ms": 1200, "ttft_ms": 310,
        "status": "success", "parser_valid": true, "refused": false, "cost_usd": 0.0042})
}

/// An in-process collector on 127.0.0.1 with its own runtime; stopped on drop.
struct Running {
    url: String,
    /// Dropped before the server thread is joined, so the writer sees its queue close.
    collector: Option<Collector>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
}

impl Running {
    fn collector(&self) -> &Collector {
        self.collector.as_ref().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(collector) = self.collector.take() {
            collector.resume_writer();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn start(queue_capacity: usize, max_body_bytes: usize) -> Running {
    start_with(CollectorConfig {
        queue_capacity,
        max_body_bytes,
        ..CollectorConfig::default()
    })
}

/// A collector with this configuration (its database in a fresh temporary folder).
fn start_with(config: CollectorConfig) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("telemetry.sqlite3");
    let (collector, writer) = Collector::start(CollectorConfig {
        db_path: db.clone(),
        synchronous: Synchronous::Full,
        max_events_per_request: 1000,
        ..config
    })
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, bound) = mpsc::channel();
    let serving = collector.clone();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(promptflag_telemetry::collector::serve(
                serving,
                "127.0.0.1:0".parse().unwrap(),
                move |addr| ready.send(addr).unwrap(),
                async move {
                    let _ = stopped.await;
                },
            ))
            .unwrap();
        writer.join();
    });
    let addr = bound.recv().unwrap();
    Running {
        url: format!("http://{addr}"),
        collector: Some(collector),
        stop: Some(stop),
        thread: Some(thread),
        _dir: dir,
        db,
    }
}

fn count_calls(db: &std::path::Path) -> i64 {
    let connection = rusqlite::Connection::open(db).unwrap();
    connection
        .query_row("SELECT COUNT(*) FROM calls", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn the_example_event_of_the_spec_is_stored_and_acknowledged() {
    let running = start(16, 1 << 20);
    let reply = post(
        &running.url,
        "application/json",
        call("r-81f2").to_string().as_bytes(),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let answer = reply.json();
    assert_eq!(
        (answer["accepted"].as_u64(), answer["durable"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(count_calls(&running.db), 1);
}

#[test]
fn malformed_events_get_their_own_errors_and_the_good_ones_are_kept() {
    let running = start(16, 1 << 20);
    let body = json!([
        call("good-1"),
        {"request_id": "no-timestamp", "flag_key": "f", "variant": "a", "status": "success"},
        {"timestamp": "2025-05-15T10:23:45Z", "request_id": "bad-status", "flag_key": "f", "variant": "a", "status": "maybe"},
        {"timestamp": "2025-05-15T10:23:45Z", "request_id": "bad-type", "flag_key": "f", "variant": "a", "status": "success", "latency_ms": "slow"},
        "not an object",
        {"type": "exposure", "timestamp": "2026-11-21T10:00:00.000Z", "environment": "dev", "flag_key": "f", "variant": "b", "revision": 7, "unit": "u-1", "reason": "SPLIT"},
        call("good-2"),
    ]);
    let reply = post(
        &running.url,
        "application/json",
        body.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 200);
    let answer = reply.json();
    assert_eq!(answer["accepted"], 3, "{answer}");
    assert_eq!(answer["rejected"], 4);
    let errors: Vec<(u64, String)> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (1, String::from("missing_field")),
            (2, String::from("invalid_value")),
            (3, String::from("invalid_event")),
            (4, String::from("invalid_event")),
        ]
    );
    assert_eq!(answer["errors"][1]["request_id"], "bad-status");
    assert_eq!(count_calls(&running.db), 2);

    // NDJSON by content type, with a broken line in the middle.
    let ndjson = format!("{}\n{{not json\n{}\n", call("nd-1"), call("nd-2"));
    let reply = post(&running.url, "application/x-ndjson", ndjson.as_bytes());
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["accepted"], 2);
    assert_eq!(reply.json()["errors"][0]["code"], "invalid_json");
    assert_eq!(reply.json()["errors"][0]["index"], 1);

    // Whole-body problems are 4xx JSON errors, never 5xx.
    for (content_type, body, status, code) in [
        ("application/json", &b"[1, 2"[..], 400, "invalid_json"),
        ("application/json", &b""[..], 400, "empty_body"),
        (
            "application/json",
            &[0xff, 0xfe, 0x00][..],
            400,
            "invalid_encoding",
        ),
        (
            "application/json",
            &b"[{\"request_id\": 1}]"[..],
            422,
            "no_valid_events",
        ),
    ] {
        let reply = post(&running.url, content_type, body);
        assert_eq!(
            reply.status,
            status,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.json()["error"]["code"], code);
    }
    // A raw socket: the server answers 413 and closes while the client may still be writing
    // the body, which an HTTP client reports as a broken pipe. The body goes from a second thread
    // while this one reads; a read cut short by the close is tried again (at most 5 times).
    let addr = running.url.trim_start_matches("http://").to_string();
    let mut answer = String::new();
    for _ in 0..5 {
        let stream = std::net::TcpStream::connect(&addr).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let head = format!(
            "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            2 << 20
        );
        let sender = std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut writer, head.as_bytes());
            let _ = std::io::Write::write_all(&mut writer, &vec![b' '; 2 << 20]);
        });
        answer.clear();
        let _ = std::io::Read::read_to_string(&mut &stream, &mut answer);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        sender.join().unwrap();
        if answer.starts_with("HTTP/1.1 413") {
            break;
        }
    }
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"too_large\""), "{answer}");
    let many = Value::Array((0..1001).map(|i| call(&format!("m-{i}"))).collect());
    let reply = post(
        &running.url,
        "application/json",
        many.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["code"], "too_many_events");
    let reply = http()
        .send("GET", &format!("{}/nope", running.url), &[], None, false)
        .unwrap();
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["code"], "not_found");
}

#[test]
fn duplicates_are_stored_once_and_reported() {
    let running = start(16, 1 << 20);
    let first = json!([call("d-1"), call("d-2")]);
    assert_eq!(
        post(
            &running.url,
            "application/json",
            first.to_string().as_bytes()
        )
        .json()["accepted"],
        2
    );
    // A retry of the whole batch, plus one new event and a duplicate inside the batch.
    let retry = json!([call("d-1"), call("d-2"), call("d-3"), call("d-3")]);
    let answer = post(
        &running.url,
        "application/json",
        retry.to_string().as_bytes(),
    )
    .json();
    assert_eq!(answer["accepted"], 1, "{answer}");
    assert_eq!(answer["duplicates"], 3);
    assert_eq!(answer["duplicate_ids"], json!(["d-1", "d-2", "d-3"]));
    assert_eq!(answer["duplicate_indices"], json!([0, 1, 3]));
    assert_eq!(count_calls(&running.db), 3);
    // Exposures without an id are deduplicated on their content.
    let exposure = json!([{"type": "exposure", "timestamp": "2026-11-21T10:00:00.000Z", "environment": "dev", "flag_key": "f", "variant": "b", "revision": 7, "unit": "u-1", "reason": "SPLIT"}]);
    assert_eq!(
        post(
            &running.url,
            "application/json",
            exposure.to_string().as_bytes()
        )
        .json()["accepted"],
        1
    );
    assert_eq!(
        post(
            &running.url,
            "application/json",
            exposure.to_string().as_bytes()
        )
        .json()["duplicates"],
        1
    );
    let metrics = http()
        .send("GET", &format!("{}/metrics", running.url), &[], None, false)
        .unwrap();
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(
        text.contains("promptflag_collector_events_total{kind=\"call\",outcome=\"duplicate\"} 3"),
        "{text}"
    );
    assert!(
        text.contains(
            "promptflag_collector_events_total{kind=\"exposure\",outcome=\"accepted\"} 1"
        )
    );
    assert!(text.contains("# TYPE promptflag_collector_commit_seconds histogram"));
}

fn metric(url: &str, name: &str) -> u64 {
    let reply = http()
        .send("GET", &format!("{url}/metrics"), &[], None, false)
        .unwrap();
    let text = String::from_utf8(reply.body).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .map(|v| v.trim().parse().unwrap())
        .unwrap()
}

#[test]
fn a_full_queue_answers_429_with_retry_after_and_stores_nothing_of_that_batch() {
    let running = start(1, 1 << 20);
    running.collector().pause_writer();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut senders = Vec::new();
    // Fill the queue: the writer may take one job before it parks at the gate, so keep sending
    // until one batch is waiting in the queue.
    let mut batch = 0;
    while metric(&running.url, "promptflag_collector_queue_depth") < 1 {
        assert!(Instant::now() < deadline, "the queue never filled");
        if senders.len() <= batch {
            let url = running.url.clone();
            let body = json!([call(&format!("q-{batch}"))]).to_string();
            senders.push(std::thread::spawn(move || {
                post(&url, "application/json", body.as_bytes())
            }));
        }
        std::thread::sleep(Duration::from_millis(20));
        if senders.last().is_some_and(|s| s.is_finished()) {
            batch += 1;
        }
    }
    // Read with a plain socket: the status, the Retry-After header and the JSON error.
    let addr = running.url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    let body = json!([call("rejected-1")]).to_string();
    std::io::Write::write_all(
        &mut stream,
        format!("POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes(),
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    let head = answer.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 429"), "{answer}");
    assert!(head.contains("\r\nretry-after: 1\r\n"), "{answer}");
    assert!(answer.contains("\"queue_full\""), "{answer}");
    running.collector().resume_writer();
    for sender in senders {
        let reply = sender.join().unwrap();
        assert_eq!(reply.status, 200);
    }
    let connection = rusqlite::Connection::open(&running.db).unwrap();
    let rejected: i64 = connection
        .query_row(
            "SELECT COUNT(*) FROM calls WHERE request_id = 'rejected-1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rejected, 0);
    assert_eq!(
        metric(
            &running.url,
            "promptflag_collector_requests_total{answer=\"throttled\"}"
        ),
        1
    );
}

/// The real binary, killed with SIGKILL (not a graceful stop) when dropped or asked.
struct Server {
    child: Child,
    url: String,
}

fn spawn_serve(db: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_promptflag"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--synchronous",
            "normal",
            // The events are the documented example's, from 2025: no age limit here.
            "--max-event-age",
            "0",
            "--db",
        ])
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let value: Value = serde_json::from_str(line.trim()).unwrap_or_else(|_| panic!("{line:?}"));
    Server {
        url: value["url"].as_str().unwrap().to_string(),
        child,
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn kill_9_during_ingestion_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("telemetry.sqlite3");
    let mut server = spawn_serve(&db);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for client in 0..3 {
        let url = server.url.clone();
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        clients.push(std::thread::spawn(move || {
            let mut batch = 0;
            while !stop.load(Ordering::SeqCst) {
                let ids: Vec<String> = (0..100).map(|i| format!("k{client}-{batch}-{i}")).collect();
                let body = Value::Array(ids.iter().map(|id| call(id)).collect()).to_string();
                let sent = http().send(
                    "POST",
                    &format!("{url}/v1/events"),
                    &[("Content-Type", String::from("application/json"))],
                    Some(body.as_bytes()),
                    false,
                );
                match sent {
                    Ok(reply) if reply.status == 200 => {
                        assert_eq!(reply.json()["accepted"], 100);
                        acknowledged.lock().unwrap().extend(ids);
                    }
                    // After the kill: connection refused or reset. Unacknowledged, not counted.
                    _ => {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                }
                batch += 1;
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while acknowledged.lock().unwrap().len() < 20_000 {
        assert!(Instant::now() < deadline, "ingestion did not progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SIGKILL while the clients are still sending.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    let acknowledged: Vec<String> = acknowledged.lock().unwrap().clone();

    // Restart on the same database (SQLite recovers the WAL), then read every id.
    let restarted = spawn_serve(&db);
    let reply = post(
        &restarted.url,
        "application/json",
        call("after-restart").to_string().as_bytes(),
    );
    assert_eq!(reply.status, 200);
    let connection = rusqlite::Connection::open(&db).unwrap();
    let mut statement = connection.prepare("SELECT request_id FROM calls").unwrap();
    let stored: HashSet<String> = statement
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(acknowledged.len() >= 20_000);
}

#[test]
fn a_method_a_route_does_not_take_is_a_json_405_with_allow() {
    let running = start(64, 1 << 20);
    let reply = http()
        .send(
            "GET",
            &format!("{}/v1/events", running.url),
            &[],
            None,
            false,
        )
        .unwrap();
    assert_eq!(reply.status, 405);
    assert_eq!(reply.json()["error"]["code"], "method_not_allowed");
    let reply = http()
        .send(
            "PUT",
            &format!("{}/metrics", running.url),
            &[],
            Some(b"x"),
            false,
        )
        .unwrap();
    assert_eq!(reply.status, 405);
    assert_eq!(reply.json()["error"]["code"], "method_not_allowed");
}

#[test]
fn a_body_that_is_not_json_is_read_as_ndjson_and_refused_per_line() {
    let running = start(64, 1 << 20);
    let reply = post(&running.url, "text/plain", b"hello\nworld");
    assert_eq!(reply.status, 422);
    let value = reply.json();
    assert_eq!(value["error"]["code"], "no_valid_events", "{value}");
    assert_eq!(value["errors"][0]["code"], "invalid_json", "{value}");
    assert_eq!(value["errors"].as_array().unwrap().len(), 2, "{value}");
}

#[test]
fn a_reused_request_id_with_other_content_is_a_conflict_not_a_duplicate() {
    let running = start(16, 1 << 20);
    let first = json!([call("r-1")]);
    let answer = post(
        &running.url,
        "application/json",
        first.to_string().as_bytes(),
    )
    .json();
    assert_eq!(answer["accepted"], 1, "{answer}");
    // The same id for another call (another variant, another status), and a true retry.
    let mut other = call("r-1");
    other["variant"] = json!("baseline");
    other["status"] = json!("error");
    let batch = json!([other, call("r-1"), call("r-2")]);
    let answer = post(
        &running.url,
        "application/json",
        batch.to_string().as_bytes(),
    )
    .json();
    assert_eq!(answer["accepted"], 1, "{answer}");
    assert_eq!(answer["duplicates"], 1, "{answer}");
    assert_eq!(answer["duplicate_indices"], json!([1]), "{answer}");
    assert_eq!(answer["rejected"], 1, "{answer}");
    assert_eq!(answer["errors"][0]["index"], 0, "{answer}");
    assert_eq!(answer["errors"][0]["code"], "conflict", "{answer}");
    assert_eq!(answer["errors"][0]["request_id"], "r-1", "{answer}");
    assert_eq!(count_calls(&running.db), 2);
}

const TOKEN_A: &str = "collector-token-a-0123456789abcdef";
const TOKEN_B: &str = "collector-token-b-0123456789abcdef";

fn post_with_token(url: &str, token: Option<&str>, body: &[u8]) -> Reply {
    let mut headers = vec![("Content-Type", String::from("application/json"))];
    if let Some(token) = token {
        headers.push(("Authorization", format!("Bearer {token}")));
    }
    http()
        .send(
            "POST",
            &format!("{url}/v1/events"),
            &headers,
            Some(body),
            false,
        )
        .unwrap()
}

#[test]
fn a_collector_with_tokens_refuses_writers_without_one_and_takes_each_valid_one() {
    let running = start_with(CollectorConfig {
        tokens: vec![TOKEN_A.to_string(), TOKEN_B.to_string()],
        ..CollectorConfig::default()
    });
    let body = json!([call("t-1")]).to_string();
    for token in [None, Some("wrong"), Some(&TOKEN_A[..TOKEN_A.len() - 1])] {
        let reply = post_with_token(&running.url, token, body.as_bytes());
        assert_eq!(reply.status, 401, "{token:?}");
        assert_eq!(reply.json()["error"]["code"], "unauthorized");
    }
    assert_eq!(count_calls(&running.db), 0);
    // Both tokens are valid at once, so one can be rotated in before the other goes.
    let reply = post_with_token(&running.url, Some(TOKEN_B), body.as_bytes());
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let again = json!([call("t-2")]).to_string();
    let reply = post_with_token(&running.url, Some(TOKEN_A), again.as_bytes());
    assert_eq!(reply.status, 200);
    assert_eq!(count_calls(&running.db), 2);
}

#[test]
fn a_collector_token_under_32_bytes_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let error = Collector::start(CollectorConfig {
        db_path: dir.path().join("t.sqlite3"),
        tokens: vec![String::from("short")],
        ..CollectorConfig::default()
    })
    .err()
    .unwrap();
    assert!(error.to_string().contains("at least 32 bytes"), "{error}");
}

#[test]
fn events_outside_the_timestamp_window_are_refused_per_event() {
    use promptflag_telemetry::collector::TimestampWindow;
    let running = start_with(CollectorConfig {
        timestamp_window: Some(TimestampWindow {
            max_age: Duration::from_secs(3600),
            max_ahead: Duration::from_secs(300),
        }),
        ..CollectorConfig::default()
    });
    let now = promptflag_release::audit::now_rfc3339();
    let mut fresh = call("w-now");
    fresh["timestamp"] = json!(now);
    let mut ancient = call("w-0001");
    ancient["timestamp"] = json!("0001-01-01T00:00:00Z");
    let mut future = call("w-9999");
    future["timestamp"] = json!("9999-12-31T23:59:59Z");
    let body = json!([ancient, fresh, future]).to_string();
    let answer = post(&running.url, "application/json", body.as_bytes()).json();
    assert_eq!(answer["accepted"], 1, "{answer}");
    assert_eq!(answer["rejected"], 2, "{answer}");
    assert_eq!(answer["errors"][0]["index"], 0, "{answer}");
    assert_eq!(answer["errors"][0]["code"], "timestamp_out_of_window");
    assert_eq!(answer["errors"][1]["index"], 2, "{answer}");
    assert_eq!(answer["errors"][1]["code"], "timestamp_out_of_window");
}

#[test]
fn serve_refuses_a_non_loopback_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_promptflag"))
        .args(["--json", "serve", "--listen", "0.0.0.0:0", "--db"])
        .arg(dir.path().join("t.sqlite3"))
        .env_remove("PROMPTFLAG_COLLECTOR_TOKENS")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        value["error"]
            .as_str()
            .unwrap()
            .contains("without a writer token"),
        "{value}"
    );
}

/// Reads whatever the server sends; true when the server closed the connection, false when
/// 30 s passed with it still open (a guard against a hang, not a timing check).
fn closed_by_server(stream: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) => {
                return !matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

fn connect(url: &str) -> std::net::TcpStream {
    std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap()
}

#[test]
fn a_connection_that_never_finishes_its_headers_is_closed() {
    use std::io::Write;
    let running = start_with(CollectorConfig {
        header_read_timeout: Duration::from_millis(300),
        ..CollectorConfig::default()
    });
    let mut stream = connect(&running.url);
    stream
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // The server closes the connection itself; without a header timeout it would still be
    // open when the read's 30 s guard runs out.
    assert!(closed_by_server(&mut stream));
    let reply = http()
        .send("GET", &format!("{}/healthz", running.url), &[], None, false)
        .unwrap();
    assert_eq!(reply.status, 200, "the server still serves others");
}

#[test]
fn a_body_that_stops_arriving_is_answered_408() {
    use std::io::Write;
    let running = start_with(CollectorConfig {
        body_read_timeout: Duration::from_millis(300),
        ..CollectorConfig::default()
    });
    let mut stream = connect(&running.url);
    stream
        .write_all(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{\"request_id\"",
        )
        .unwrap();
    let answer = read_until_closed_or_answered(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert_eq!(count_calls(&running.db), 0);
}

/// Reads until the server answers a whole response head and body (or closes).
fn read_until_closed_or_answered(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
        if String::from_utf8_lossy(&answer).contains("\"error\"") {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn only_two_large_bodies_are_read_at_once_and_the_next_is_told_to_retry() {
    use std::io::Write;
    let running = start(16, 16 << 20);
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n[",
        4 << 20
    );
    // Two uploads of 4 MiB that have sent only their first byte hold the two permits.
    let mut slow: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let mut stream = connect(&running.url);
            stream.write_all(head.as_bytes()).unwrap();
            stream
        })
        .collect();
    // The permits are taken once the server has read the heads; a small request in between
    // shows both were read (connections are served concurrently, but this one is answered
    // only after the server has accepted the earlier ones).
    let reply = http()
        .send("GET", &format!("{}/healthz", running.url), &[], None, false)
        .unwrap();
    assert_eq!(reply.status, 200);
    // Until the server has started reading both slow bodies, a third may get a permit and wait
    // for its body; such a try is closed (freeing the permit) and made again.
    let mut third = None;
    for _ in 0..100 {
        let mut stream = connect(&running.url);
        stream.write_all(head.as_bytes()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buffer = [0u8; 4096];
        if let Ok(n) = std::io::Read::read(&mut stream, &mut buffer) {
            let answer = String::from_utf8_lossy(&buffer[..n]).into_owned();
            if answer.starts_with("HTTP/1.1 503") {
                third = Some(answer);
                break;
            }
        }
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    let third = third.expect("a third large body is refused while two are read");
    assert!(third.contains("\"busy\""), "{third}");
    assert!(
        third.to_ascii_lowercase().contains("retry-after"),
        "{third}"
    );
    // Small bodies are not held back by the large ones.
    let small = json!([call("small-1")]).to_string();
    assert_eq!(
        post(&running.url, "application/json", small.as_bytes()).status,
        200
    );
    for stream in &mut slow {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
}

#[test]
fn the_native_client_sends_the_collectors_writer_token() {
    use promptflag_client::telemetry::{CallOutcome, LlmCallEvent, Telemetry, TelemetryConfig};
    use promptflag_client::{Client, ClientConfig};
    use promptflag_core::Context;

    let running = start_with(CollectorConfig {
        tokens: vec![TOKEN_A.to_string()],
        ..CollectorConfig::default()
    });
    let mut config = ClientConfig::new("http://127.0.0.1:9");
    config.request_timeout = Duration::from_millis(200);
    config.refresh_interval = Duration::from_secs(3600);
    config.fallback_json = Some(
        br#"{"schema": 1, "environment": "dev", "revision": 3, "flags": {"f": {
            "kind": "string", "baseline": "a", "variants": {"a": {"value": "A"}}}}}"#
            .to_vec(),
    );
    let client = Client::start(config);
    let resolution = client.evaluate("f", &Context::new().with_targeting_key("user-42"));
    let event = |id: &str| {
        LlmCallEvent::from_outcome(
            &resolution,
            &CallOutcome {
                request_id: id.to_string(),
                success: true,
                ..CallOutcome::default()
            },
        )
    };
    let with_token = Telemetry::start(TelemetryConfig::new(&running.url).with_token(TOKEN_A));
    assert!(with_token.record(event("tok-1")));
    let stats = with_token.shutdown();
    assert_eq!((stats.sent, stats.dropped_send_failed), (1, 0), "{stats:?}");
    let without = Telemetry::start(TelemetryConfig::new(&running.url));
    assert!(without.record(event("tok-2")));
    let stats = without.shutdown();
    assert_eq!((stats.sent, stats.dropped_send_failed), (0, 1), "{stats:?}");
    assert_eq!(count_calls(&running.db), 1);
}
