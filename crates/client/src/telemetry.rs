//! Telemetry: turn a call's outcome into the LLM-call event of `promptflag_contracts::events`,
//! and send LLM calls and exposures to the collector in batches, on a background thread, with
//! bounded memory. A batch goes when it holds `batch_size` events or `flush_interval` has passed.
//! When the queue is full or the collector is down, events are dropped and counted: recording
//! never blocks the caller. A client configured with a collector sends an exposure for every
//! evaluation that served a variant through the same sender (`ClientConfig::collector`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use promptflag_contracts::events::{CallStatus, Exposure, LlmCall};
use serde::Serialize;

use crate::client::{Resolution, edge_for_telemetry};

/// One LLM call, in the schema the collector decodes (`promptflag_contracts::events::LlmCall`,
/// which it dereferences to; it serializes to the collector's JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct LlmCallEvent(pub LlmCall);

impl std::ops::Deref for LlmCallEvent {
    type Target = LlmCall;
    fn deref(&self) -> &LlmCall {
        &self.0
    }
}

impl std::ops::DerefMut for LlmCallEvent {
    fn deref_mut(&mut self) -> &mut LlmCall {
        &mut self.0
    }
}

/// What the service measured about one LLM call.
#[derive(Debug, Clone, Default)]
pub struct CallOutcome {
    /// A unique id for the call.
    pub request_id: String,
    /// The unit (user id).
    pub user_id: Option<String>,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Whole-call latency.
    pub latency: Duration,
    /// Time to first token.
    pub time_to_first_token: Option<Duration>,
    /// False when the call failed.
    pub success: bool,
    /// Whether the output parsed.
    pub parser_valid: Option<bool>,
    /// Whether the model refused.
    pub refused: Option<bool>,
    /// Whether a grader flagged a hallucination.
    pub hallucinated: Option<bool>,
    /// The call's cost.
    pub cost_usd: Option<f64>,
    /// The output cited a source that was not provided (see [`CallOutcome::with_signals`]).
    pub citation_mismatch: Option<bool>,
    /// A tool call was undeclared or had arguments failing its schema.
    pub tool_call_mismatch: Option<bool>,
    /// The output held numbers found nowhere in the input or sources.
    pub unsupported_numeric_claims: Option<bool>,
    /// A sampled judge's score (see [`crate::judge::JudgeSampler`]).
    pub judge_score: Option<f64>,
    /// A digest of the model's response (its SHA-256 hex, say), kept by the collector so a
    /// response can be traced to its call without storing the text.
    pub response_hash: Option<String>,
}

impl CallOutcome {
    /// Sets the three hallucination signals from the response, the input, the retrieved
    /// sources and the tool log (`promptflag_evals::signals`); a signal whose evidence is
    /// missing stays unset.
    pub fn with_signals(
        mut self,
        evidence: &promptflag_evals::signals::Evidence<'_>,
    ) -> CallOutcome {
        let signals = promptflag_evals::signals::compute(evidence);
        self.citation_mismatch = signals.citation_mismatch;
        self.tool_call_mismatch = signals.tool_call_mismatch;
        self.unsupported_numeric_claims = signals.unsupported_numeric_claims;
        self
    }
}

impl LlmCallEvent {
    /// The event for a call made with the prompt `resolution` chose. A resolution that served no
    /// variant gives an event the collector refuses; [`Telemetry::record`] drops it.
    pub fn from_outcome(resolution: &Resolution, outcome: &CallOutcome) -> LlmCallEvent {
        let prompt = resolution.prompt.as_ref();
        let millis = |duration: Duration| duration.as_millis() as f64;
        LlmCallEvent(LlmCall {
            timestamp_millis: now_millis(),
            request_id: outcome.request_id.clone(),
            environment: None,
            flag_key: resolution.flag_key.clone(),
            variant: resolution.variant.clone().unwrap_or_default(),
            prompt_id: prompt.map(|p| p.id.clone()),
            prompt_version: prompt.map(|p| p.version.clone()),
            prompt_hash: prompt.map(|p| p.hash.clone()),
            user_id: outcome.user_id.clone(),
            model: prompt.map(|p| p.model.clone()).filter(|m| !m.is_empty()),
            temperature: prompt
                .and_then(|p| p.parameters.get("temperature"))
                .and_then(|t| t.as_f64()),
            input_tokens: Some(outcome.input_tokens),
            output_tokens: Some(outcome.output_tokens),
            latency_ms: Some(millis(outcome.latency)),
            ttft_ms: outcome.time_to_first_token.map(millis),
            status: if outcome.success {
                CallStatus::Success
            } else {
                CallStatus::Error
            },
            parser_valid: outcome.parser_valid,
            refused: outcome.refused,
            hallucinated: outcome.hallucinated,
            cost_usd: outcome.cost_usd,
            citation_mismatch: outcome.citation_mismatch,
            tool_call_mismatch: outcome.tool_call_mismatch,
            unsupported_numeric_claims: outcome.unsupported_numeric_claims,
            judge_score: outcome.judge_score,
            response_hash: outcome.response_hash.clone(),
        })
    }
}

/// One queued event: both kinds share the queue and the batches (the collector takes mixed
/// batches, telling them apart by `type`).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum Queued {
    Call(LlmCallEvent),
    Exposure(Exposure<'static>),
}

/// Telemetry settings.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// The collector's base URL; events go to `{collector_url}/v1/events`.
    pub collector_url: String,
    /// Events held in memory at most; past that, new events are dropped and counted.
    pub queue_capacity: usize,
    /// Events per POST at most.
    pub batch_size: usize,
    /// How long a partial batch may wait.
    pub flush_interval: Duration,
    /// The timeout of one POST.
    pub request_timeout: Duration,
    /// The collector's writer token, sent as `Authorization: Bearer …` (a collector started with
    /// tokens refuses writes without one).
    pub token: Option<String>,
}

impl TelemetryConfig {
    /// Defaults: 10 000 queued, batches of 500, flushed every second, 5 s timeout.
    pub fn new(collector_url: impl Into<String>) -> TelemetryConfig {
        TelemetryConfig {
            collector_url: collector_url.into(),
            queue_capacity: 10_000,
            batch_size: 500,
            flush_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            token: None,
        }
    }

    /// The same configuration, sending `token` with every batch.
    pub fn with_token(mut self, token: impl Into<String>) -> TelemetryConfig {
        self.token = Some(token.into());
        self
    }
}

/// Counters of what happened to recorded events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TelemetryStats {
    /// Events the collector acknowledged (2xx).
    pub sent: u64,
    /// Events dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Events dropped because their batch could not be delivered.
    pub dropped_send_failed: u64,
    /// Events dropped because the collector would refuse them (no variant, an empty request id,
    /// a negative latency: `LlmCall::check`).
    pub dropped_invalid: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_send_failed: AtomicU64,
    dropped_invalid: AtomicU64,
}

/// The sender. Dropping it flushes what is queued (one attempt) and stops the thread.
pub struct Telemetry {
    queue: Option<SyncSender<Queued>>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl Telemetry {
    /// Starts the background sender.
    pub fn start(config: TelemetryConfig) -> Telemetry {
        let (queue, receiver) = mpsc::sync_channel::<Queued>(config.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("promptflag-telemetry".to_string())
            .spawn(move || run_sender(&config, &receiver, &thread_counters))
            .ok();
        Telemetry {
            queue: Some(queue),
            counters,
            thread,
        }
    }

    /// Queues an event; never blocks. Returns false when it was dropped (queue full, or an event
    /// the collector would refuse).
    pub fn record(&self, event: LlmCallEvent) -> bool {
        if event.check().is_err() {
            self.counters
                .dropped_invalid
                .fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.enqueue(Queued::Call(event))
    }

    /// Queues an exposure; never blocks. An evaluation that served no variant is not an
    /// exposure the collector takes: it is skipped (and not counted). Returns false when the
    /// exposure was not queued.
    pub fn record_exposure(&self, exposure: &Exposure<'_>) -> bool {
        if exposure.variant.is_none() {
            return false;
        }
        if exposure.check().is_err() {
            self.counters
                .dropped_invalid
                .fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.enqueue(Queued::Exposure(exposure.clone().into_owned()))
    }

    fn enqueue(&self, event: Queued) -> bool {
        let Some(queue) = &self.queue else {
            return false;
        };
        match queue.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// What has happened so far.
    pub fn stats(&self) -> TelemetryStats {
        TelemetryStats {
            sent: self.counters.sent.load(Ordering::Relaxed),
            dropped_queue_full: self.counters.dropped_queue_full.load(Ordering::Relaxed),
            dropped_send_failed: self.counters.dropped_send_failed.load(Ordering::Relaxed),
            dropped_invalid: self.counters.dropped_invalid.load(Ordering::Relaxed),
        }
    }

    /// Stops the sender after one last flush, and returns the final counters.
    pub fn shutdown(mut self) -> TelemetryStats {
        self.stop();
        self.stats()
    }

    fn stop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run_sender(config: &TelemetryConfig, receiver: &mpsc::Receiver<Queued>, counters: &Counters) {
    let edge = edge_for_telemetry(config.request_timeout);
    let url = format!("{}/v1/events", config.collector_url.trim_end_matches('/'));
    let batch_size = config.batch_size.max(1);
    let mut batch: Vec<Queued> = Vec::with_capacity(batch_size);
    let mut deadline = Instant::now() + config.flush_interval;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        let closed = match receiver.recv_timeout(wait) {
            Ok(event) => {
                batch.push(event);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let due = Instant::now() >= deadline;
        if batch.len() >= batch_size || (due && !batch.is_empty()) || (closed && !batch.is_empty())
        {
            let count = batch.len() as u64;
            let delivered = serde_json::to_vec(&batch)
                .ok()
                .and_then(|body| edge.post_json(&url, &body, config.token.as_deref()).ok())
                .is_some_and(|status| (200..300).contains(&status));
            if delivered {
                counters.sent.fetch_add(count, Ordering::Relaxed);
            } else {
                counters
                    .dropped_send_failed
                    .fetch_add(count, Ordering::Relaxed);
            }
            batch.clear();
        }
        if due || batch.is_empty() {
            deadline = Instant::now() + config.flush_interval;
        }
        if closed {
            return;
        }
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

/// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (core's formatter, shared with the
/// companion's audit log).
pub fn rfc3339_from_millis(millis: i64) -> String {
    promptflag_core::literal::format_rfc3339_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_milliseconds_as_rfc3339() {
        assert_eq!(rfc3339_from_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_from_millis(1_747_304_625_500),
            "2025-05-15T10:23:45.500Z"
        );
        assert_eq!(
            rfc3339_from_millis(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
