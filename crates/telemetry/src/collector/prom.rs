//! The collector's own counters, rendered in the Prometheus text exposition format (version
//! 0.0.4) at `GET /metrics`. Plain atomics: the hot path adds, `/metrics` reads.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the commit-latency histogram buckets.
const COMMIT_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Upper bounds (events) of the batch-size histogram buckets.
const BATCH_BUCKETS: [f64; 8] = [1.0, 10.0, 100.0, 1000.0, 5000.0, 10000.0, 50000.0, 100000.0];

/// A cumulative histogram.
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    /// The sum, in millionths of the unit.
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: f64) {
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            if value <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value * 1e6).max(0.0) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let total = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {total}");
    }
}

/// Everything `/metrics` reports.
pub struct CollectorMetrics {
    accepted_calls: AtomicU64,
    accepted_exposures: AtomicU64,
    duplicate_calls: AtomicU64,
    duplicate_exposures: AtomicU64,
    rejected: AtomicU64,
    requests_ok: AtomicU64,
    requests_bad: AtomicU64,
    requests_throttled: AtomicU64,
    requests_failed: AtomicU64,
    queued_batches: AtomicU64,
    queued_events: AtomicU64,
    commits: Histogram,
    batch_sizes: Histogram,
    queue_capacity: u64,
}

impl CollectorMetrics {
    /// Fresh counters for a queue of `queue_capacity` batches.
    pub fn new(queue_capacity: usize) -> CollectorMetrics {
        CollectorMetrics {
            accepted_calls: AtomicU64::new(0),
            accepted_exposures: AtomicU64::new(0),
            duplicate_calls: AtomicU64::new(0),
            duplicate_exposures: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            requests_ok: AtomicU64::new(0),
            requests_bad: AtomicU64::new(0),
            requests_throttled: AtomicU64::new(0),
            requests_failed: AtomicU64::new(0),
            queued_batches: AtomicU64::new(0),
            queued_events: AtomicU64::new(0),
            commits: Histogram::new(&COMMIT_BUCKETS),
            batch_sizes: Histogram::new(&BATCH_BUCKETS),
            queue_capacity: queue_capacity as u64,
        }
    }

    /// Counts stored events.
    pub fn stored(
        &self,
        calls: u64,
        exposures: u64,
        duplicate_calls: u64,
        duplicate_exposures: u64,
    ) {
        self.accepted_calls.fetch_add(calls, Ordering::Relaxed);
        self.accepted_exposures
            .fetch_add(exposures, Ordering::Relaxed);
        self.duplicate_calls
            .fetch_add(duplicate_calls, Ordering::Relaxed);
        self.duplicate_exposures
            .fetch_add(duplicate_exposures, Ordering::Relaxed);
    }

    /// Counts refused events.
    pub fn rejected(&self, events: u64) {
        self.rejected.fetch_add(events, Ordering::Relaxed);
    }

    /// Counts a request by its answer class: `ok`, `bad`, `throttled` or `failed`.
    pub fn request(&self, class: &str) {
        let counter = match class {
            "ok" => &self.requests_ok,
            "bad" => &self.requests_bad,
            "throttled" => &self.requests_throttled,
            _ => &self.requests_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A batch entered the write queue.
    pub fn enqueued(&self, events: u64) {
        self.queued_batches.fetch_add(1, Ordering::Relaxed);
        self.queued_events.fetch_add(events, Ordering::Relaxed);
    }

    /// A batch left the write queue (taken by the writer).
    pub fn dequeued(&self, events: u64) {
        self.queued_batches.fetch_sub(1, Ordering::Relaxed);
        self.queued_events.fetch_sub(events, Ordering::Relaxed);
    }

    /// Batches waiting for the writer.
    pub fn queue_depth(&self) -> u64 {
        self.queued_batches.load(Ordering::Relaxed)
    }

    /// One group commit of `events` events took `elapsed`.
    pub fn committed(&self, events: u64, elapsed: Duration) {
        self.commits.observe(elapsed.as_secs_f64());
        self.batch_sizes.observe(events as f64);
    }

    /// The Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP promptflag_collector_events_total Events received, by kind and outcome."
        );
        let _ = writeln!(out, "# TYPE promptflag_collector_events_total counter");
        for (kind, outcome, counter) in [
            ("call", "accepted", &self.accepted_calls),
            ("exposure", "accepted", &self.accepted_exposures),
            ("call", "duplicate", &self.duplicate_calls),
            ("exposure", "duplicate", &self.duplicate_exposures),
            ("any", "rejected", &self.rejected),
        ] {
            let _ = writeln!(
                out,
                "promptflag_collector_events_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {}",
                load(counter)
            );
        }
        let _ = writeln!(
            out,
            "# HELP promptflag_collector_requests_total POST /v1/events requests, by answer."
        );
        let _ = writeln!(out, "# TYPE promptflag_collector_requests_total counter");
        for (class, counter) in [
            ("ok", &self.requests_ok),
            ("bad_request", &self.requests_bad),
            ("throttled", &self.requests_throttled),
            ("failed", &self.requests_failed),
        ] {
            let _ = writeln!(
                out,
                "promptflag_collector_requests_total{{answer=\"{class}\"}} {}",
                load(counter)
            );
        }
        for (name, help, value) in [
            (
                "promptflag_collector_queue_depth",
                "Batches waiting for the writer.",
                load(&self.queued_batches),
            ),
            (
                "promptflag_collector_queue_events",
                "Events waiting for the writer.",
                load(&self.queued_events),
            ),
            (
                "promptflag_collector_queue_capacity",
                "Batches the write queue holds before answering 429.",
                self.queue_capacity,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {value}");
        }
        self.commits.render(
            &mut out,
            "promptflag_collector_commit_seconds",
            "Time to write and commit one group of batches (the acknowledgement waits for it).",
        );
        self.batch_sizes.render(
            &mut out,
            "promptflag_collector_commit_events",
            "Events per group commit.",
        );
        out
    }
}
