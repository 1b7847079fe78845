//! The client's read path against raw core evaluation, from 1 and 2 threads, while another
//! thread swaps in a new ruleset every 10 ms: the client's overhead over core.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use promptflag_client::{Client, ClientConfig};
use promptflag_core::{Context, Ruleset};
use serde_json::json;

fn ruleset_json(revision: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schema": 1, "environment": "bench", "revision": revision,
        "flags": {
            "checkout": {
                "kind": "string", "baseline": "a",
                "variants": {"a": {"value": "A"}, "b": {"value": "B"}, "c": {"value": "C"}},
                "rules": [{"when": [
                    {"attribute": "country", "op": "in", "values": ["IE", "GB", "DE"]},
                    {"attribute": "plan", "op": "str_starts_with", "values": ["pro"]}
                ], "serve": {"split": {"treatments": [{"variant": "b", "weight": 20000}, {"variant": "c", "weight": 20000}]}}}]
            }
        }
    }))
    .unwrap()
}

fn contexts() -> Vec<Context> {
    (0..4096)
        .map(|i| {
            Context::new()
                .with_targeting_key(&format!("user-{i}"))
                .with("country", "IE")
                .with("plan", "pro-annual")
        })
        .collect()
}

/// Runs `per_thread` evaluations on each of `threads` threads; returns the wall time.
fn run_threads(
    threads: usize,
    per_thread: u64,
    evaluate: Arc<dyn Fn(&Context) -> bool + Send + Sync>,
) -> Duration {
    let contexts = Arc::new(contexts());
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (contexts, evaluate) = (Arc::clone(&contexts), Arc::clone(&evaluate));
            std::thread::spawn(move || {
                let mut hits = 0u64;
                for i in 0..per_thread {
                    if evaluate(&contexts[(i as usize + t * 977) % contexts.len()]) {
                        hits += 1;
                    }
                }
                hits
            })
        })
        .collect();
    let hits: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(hits, per_thread * threads as u64);
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let core = Arc::new(Ruleset::from_json(&ruleset_json(1)).unwrap());
    // An unreachable edge: the client starts from the ruleset installed below.
    let mut config = ClientConfig::new("http://127.0.0.1:9");
    config.refresh_interval = Duration::from_secs(3600);
    config.request_timeout = Duration::from_millis(50);
    config.warm_bodies = false;
    let client = Arc::new(Client::start(config));
    client.install_json(&ruleset_json(1)).unwrap();

    // The swapper: a new revision every 10 ms for the whole run.
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (client, stop) = (Arc::clone(&client), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut revision = 2;
            while !stop.load(Ordering::Relaxed) {
                client.install_json(&ruleset_json(revision)).unwrap();
                revision += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            revision
        })
    };

    let mut group = c.benchmark_group("read_path");
    group
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    for threads in [1usize, 2] {
        let core = Arc::clone(&core);
        let core_eval: Arc<dyn Fn(&Context) -> bool + Send + Sync> =
            Arc::new(move |ctx| core.evaluate("checkout", ctx).variant.is_some());
        group.bench_function(format!("core/{threads}-threads"), |b| {
            b.iter_custom(|iters| {
                run_threads(threads, iters, Arc::clone(&core_eval)) / threads as u32
            })
        });
        let client_eval: Arc<dyn Fn(&Context) -> bool + Send + Sync> = {
            let client = Arc::clone(&client);
            Arc::new(move |ctx| client.evaluate("checkout", ctx).variant.is_some())
        };
        group.bench_function(format!("client/{threads}-threads"), |b| {
            b.iter_custom(|iters| {
                run_threads(threads, iters, Arc::clone(&client_eval)) / threads as u32
            })
        });
        let snapshot_eval: Arc<dyn Fn(&Context) -> bool + Send + Sync> = {
            let client = Arc::clone(&client);
            Arc::new(move |ctx| {
                client
                    .snapshot()
                    .is_some_and(|s| s.ruleset.evaluate("checkout", ctx).variant.is_some())
            })
        };
        group.bench_function(format!("client-snapshot/{threads}-threads"), |b| {
            b.iter_custom(|iters| {
                run_threads(threads, iters, Arc::clone(&snapshot_eval)) / threads as u32
            })
        });
    }
    group.finish();
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    eprintln!("ruleset swaps during the run: {}", swaps - 2);
}

criterion_group!(benches, bench);
criterion_main!(benches);
