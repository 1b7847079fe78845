//! Collector ingestion benchmark: events per second with durable acknowledgements.
//!
//! Starts the real `promptflag serve` (a separate process, SQLite in WAL mode) on 127.0.0.1 and
//! posts pre-built batches of LLM-call events from several client threads over keep-alive
//! connections. Every event counted was acknowledged, i.e. committed: the HTTP answer is sent only
//! after the group commit that holds it. Bounded: a fixed number of events per configuration.
//!
//! ```
//! cargo bench -p promptflag-cli --bench collector_ingest
//! PROMPTFLAG_BENCH_EVENTS=2000000 cargo bench -p promptflag-cli --bench collector_ingest
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn event(id: &str) -> String {
    format!(
        r#"{{"timestamp":"2025-05-15T10:23:45Z","request_id":"{id}","prompt_id":"customer_support","prompt_version":"2.1.0","prompt_hash":"9f2c","flag_key":"customer_support_prompt","variant":"new_instruction","user_id":"user_12345","model":"gpt-4","temperature":0.7,"input_tokens":150,"output_tokens":80,"latency_ms":1200,"ttft_ms":310,"status":"success","parser_valid":true,"refused":false,"cost_usd":0.0042}}"#
    )
}

struct Result {
    events: usize,
    seconds: f64,
    latencies_ms: Vec<f64>,
}

fn run(synchronous: &str, batch: usize, clients: usize, total: usize) -> Result {
    let dir = std::env::temp_dir().join(format!(
        "promptflag-bench-{}-{synchronous}-{batch}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_promptflag"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--synchronous",
            synchronous,
            "--queue-capacity",
            "1024",
            "--db",
        ])
        .arg(dir.join("telemetry.sqlite3"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    let url = format!("{}/v1/events", value["url"].as_str().unwrap());

    let batches = total / batch;
    // Bodies are built before the clock starts: the benchmark measures the collector.
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..batches)
            .map(|b| {
                let events: Vec<String> = (0..batch)
                    .map(|i| event(&format!("{synchronous}-{b}-{i}")))
                    .collect();
                format!("[{}]", events.join(",")).into_bytes()
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let bodies = bodies.clone();
            let next = next.clone();
            let url = url.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(Duration::from_secs(120)))
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut latencies = Vec::new();
                let mut acknowledged = 0;
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(index) else { break };
                    loop {
                        let sent = Instant::now();
                        let mut response = agent
                            .post(&url)
                            .header("Content-Type", "application/json")
                            .send(&body[..])
                            .unwrap();
                        let status = response.status().as_u16();
                        let _ = response.body_mut().read_to_vec();
                        if status == 429 {
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                        assert_eq!(status, 200);
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                        acknowledged += batch;
                        break;
                    }
                }
                (acknowledged, latencies)
            })
        })
        .collect();
    let mut events = 0;
    let mut latencies_ms = Vec::new();
    for handle in handles {
        let (acknowledged, latencies) = handle.join().unwrap();
        events += acknowledged;
        latencies_ms.extend(latencies);
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    latencies_ms.sort_by(f64::total_cmp);
    Result {
        events,
        seconds,
        latencies_ms,
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing and only smoke-runs.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let total: usize = std::env::var("PROMPTFLAG_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 2_000 } else { 500_000 });
    println!(
        "collector ingestion, durable acknowledgements, {total} events per row, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<10} {:>6} {:>8} {:>12} {:>10} {:>10}",
        "sync", "batch", "clients", "events/s", "p50 ms", "p99 ms"
    );
    for (synchronous, batch, clients) in [
        ("full", 1000, 4),
        ("full", 100, 8),
        ("normal", 1000, 4),
        ("full", 5000, 4),
    ] {
        let result = run(synchronous, batch, clients, total.max(batch));
        println!(
            "{:<10} {:>6} {:>8} {:>12.0} {:>10.1} {:>10.1}",
            synchronous,
            batch,
            clients,
            result.events as f64 / result.seconds,
            percentile(&result.latencies_ms, 0.5),
            percentile(&result.latencies_ms, 0.99)
        );
    }
}
