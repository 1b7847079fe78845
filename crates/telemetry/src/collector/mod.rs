//! The telemetry collector behind `promptflag serve`: `POST /v1/events` takes LLM-call events and
//! the Worker's exposure batches, a single writer thread stores them in SQLite with group
//! commits, and the HTTP answer is sent only once the events are durable.
//!
//! Flow: the handler decodes the body ([`event::decode_body`]), puts the good events on a bounded
//! queue as one job (a full queue answers `429` with `Retry-After` at once), and waits. The writer
//! takes a job, then every job already waiting (up to `max_batch_events`), writes them all in one
//! transaction, commits, and answers each job. So under load many HTTP requests share one commit
//! (and one `fsync` with `synchronous = FULL`), which is what makes durable acknowledgements
//! fast. Idempotency is the `UNIQUE` key of each table with `INSERT OR IGNORE`: a retried event is
//! reported as a duplicate and written once.

pub mod db;
pub mod event;
pub mod prom;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use db::{Stored, Synchronous};
use event::{EventError, Record};
use prom::CollectorMetrics;

/// How the collector runs.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// The SQLite file.
    pub db_path: PathBuf,
    /// How commits are synced.
    pub synchronous: Synchronous,
    /// Jobs (HTTP batches) the write queue holds; one more answers `429`.
    pub queue_capacity: usize,
    /// The most events one group commit takes (it always takes at least one whole job).
    pub max_batch_events: usize,
    /// The largest request body, in bytes (`413` above).
    pub max_body_bytes: usize,
    /// The most events in one request.
    pub max_events_per_request: usize,
    /// Seconds in the `Retry-After` of a `429`.
    pub retry_after_seconds: u64,
    /// Bearer tokens a writer must present on `POST /v1/events` (several at once, so one can
    /// be rotated in before the old one goes). Empty: no authentication, for loopback only.
    pub tokens: Vec<String>,
    /// Events whose time is outside this window around the collector's clock are refused.
    pub timestamp_window: Option<TimestampWindow>,
    /// How long a client may take to send a request's headers before its connection closes.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body (`408` after).
    pub body_read_timeout: Duration,
}

/// How far from the collector's clock an event's time may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampWindow {
    /// The oldest accepted event, this far in the past.
    pub max_age: Duration,
    /// The newest accepted event, this far in the future (clock skew).
    pub max_ahead: Duration,
}

/// The shortest writer token the collector takes: a token is a secret, not a password.
pub const MIN_TOKEN_BYTES: usize = 32;

impl CollectorConfig {
    /// Checks the configuration before the collector starts: tokens long enough.
    pub fn validate(&self) -> Result<()> {
        if let Some(short) = self.tokens.iter().find(|t| t.len() < MIN_TOKEN_BYTES) {
            return Err(Error::Invalid(format!(
                "a collector token must be at least {MIN_TOKEN_BYTES} bytes (one is {})",
                short.len()
            )));
        }
        Ok(())
    }
}

/// True when `presented` equals one of `tokens`. Every token is compared in full, and each
/// comparison takes the same time whatever the bytes, so the timing reveals neither which token
/// matched nor how much of one did.
fn token_matches(tokens: &[String], presented: &[u8]) -> bool {
    tokens.iter().fold(false, |found, token| {
        let token = token.as_bytes();
        let same_length = token.len() == presented.len();
        let difference = token
            .iter()
            .zip(presented.iter().chain(std::iter::repeat(&0u8)))
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        found | (same_length & (difference == 0))
    })
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            db_path: PathBuf::from("telemetry.sqlite3"),
            synchronous: Synchronous::Full,
            queue_capacity: 256,
            max_batch_events: 50_000,
            max_body_bytes: 16 * 1024 * 1024,
            max_events_per_request: 50_000,
            retry_after_seconds: 1,
            tokens: Vec::new(),
            timestamp_window: None,
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
        }
    }
}

type Reply = std::result::Result<Vec<Stored>, String>;

/// The valid events of a body, their positions, and the refused ones.
type DecodedBody = (Vec<Record>, Vec<usize>, Vec<EventError>);

struct Job {
    records: Vec<Record>,
    reply: oneshot::Sender<Reply>,
}

/// Holds the writer between group commits (for maintenance and for tests that need a full
/// queue without relying on timing).
#[derive(Default)]
struct Gate {
    paused: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    fn set(&self, paused: bool) {
        if let Ok(mut flag) = self.paused.lock() {
            *flag = paused;
        }
        self.changed.notify_all();
    }

    fn wait_open(&self) {
        let Ok(mut flag) = self.paused.lock() else {
            return;
        };
        while *flag {
            flag = match self.changed.wait(flag) {
                Ok(flag) => flag,
                Err(_) => return,
            };
        }
    }
}

struct Inner {
    sender: mpsc::Sender<Job>,
    metrics: Arc<CollectorMetrics>,
    config: CollectorConfig,
    gate: Arc<Gate>,
    /// Permits to read a large body: at most [`MAX_LARGE_BODIES`] are in memory at once.
    large_bodies: Arc<tokio::sync::Semaphore>,
}

/// A running collector: the queue, the writer thread, and the HTTP routes over them.
#[derive(Clone)]
pub struct Collector {
    inner: Arc<Inner>,
}

/// The writer thread; joining it waits for the queue to drain after every [`Collector`] clone is
/// dropped.
pub struct Writer {
    handle: std::thread::JoinHandle<()>,
}

impl Writer {
    /// Waits for the writer to finish its last commit.
    pub fn join(self) {
        let _ = self.handle.join();
    }
}

fn writer_loop(
    mut connection: rusqlite::Connection,
    mut receiver: mpsc::Receiver<Job>,
    metrics: Arc<CollectorMetrics>,
    gate: Arc<Gate>,
    max_batch_events: usize,
) {
    loop {
        gate.wait_open();
        let Some(first) = receiver.blocking_recv() else {
            return;
        };
        let mut events = first.records.len();
        metrics.dequeued(events as u64);
        let mut jobs = vec![first];
        while events < max_batch_events {
            match receiver.try_recv() {
                Ok(job) => {
                    metrics.dequeued(job.records.len() as u64);
                    events += job.records.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let batches: Vec<&[Record]> = jobs.iter().map(|job| job.records.as_slice()).collect();
        let result = db::insert_batches(&mut connection, &batches);
        metrics.committed(events as u64, started.elapsed());
        match result {
            Ok(outcomes) => {
                for (job, stored) in jobs.into_iter().zip(outcomes) {
                    let (mut calls, mut exposures, mut dup_calls, mut dup_exposures) = (0, 0, 0, 0);
                    for (record, outcome) in job.records.iter().zip(&stored) {
                        match (record, outcome) {
                            (Record::Call(_), Stored::Accepted) => calls += 1,
                            (Record::Call(_), Stored::Duplicate) => dup_calls += 1,
                            (Record::Exposure(_), Stored::Accepted) => exposures += 1,
                            (Record::Exposure(_), Stored::Duplicate) => dup_exposures += 1,
                            // Reported to the caller as per-event errors; nothing was written.
                            (_, Stored::Conflict) => {}
                        }
                    }
                    metrics.stored(calls, exposures, dup_calls, dup_exposures);
                    // The client may have gone away; the events are stored all the same.
                    let _ = job.reply.send(Ok(stored));
                }
            }
            Err(error) => {
                let message = error.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(message.clone()));
                }
            }
        }
    }
}

/// Why a submission was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// The write queue is full; retry later.
    QueueFull,
    /// The writer has stopped or the database failed.
    Store(String),
}

fn error_body(code: &str, message: impl Into<String>) -> Value {
    json!({ "error": { "code": code, "message": message.into() } })
}

fn too_large(max_body_bytes: usize) -> Response {
    json_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        &error_body(
            "too_large",
            format!("the body is larger than {max_body_bytes} bytes"),
        ),
    )
}

/// A method the route does not take: a JSON 405 naming the one it does, like every other answer.
async fn method_not_allowed(allow: &'static str) -> Response {
    let mut response = json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &error_body(
            "method_not_allowed",
            format!("this route takes {allow} only"),
        ),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

impl Collector {
    /// Opens the database and starts the writer thread.
    pub fn start(config: CollectorConfig) -> Result<(Collector, Writer)> {
        config.validate()?;
        let connection = db::open(&config.db_path, config.synchronous)?;
        let (sender, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let metrics = Arc::new(CollectorMetrics::new(config.queue_capacity.max(1)));
        let gate = Arc::new(Gate::default());
        let handle = {
            let metrics = metrics.clone();
            let gate = gate.clone();
            let max = config.max_batch_events.max(1);
            std::thread::Builder::new()
                .name(String::from("promptflag-writer"))
                .spawn(move || writer_loop(connection, receiver, metrics, gate, max))
                .map_err(|e| Error::io(&config.db_path, e))?
        };
        Ok((
            Collector {
                inner: Arc::new(Inner {
                    sender,
                    metrics,
                    config,
                    gate,
                    large_bodies: Arc::new(tokio::sync::Semaphore::new(MAX_LARGE_BODIES)),
                }),
            },
            Writer { handle },
        ))
    }

    /// The collector's counters.
    pub fn metrics(&self) -> &CollectorMetrics {
        &self.inner.metrics
    }

    /// Holds the writer after its current commit; queued jobs wait (and the queue can fill).
    pub fn pause_writer(&self) {
        self.inner.gate.set(true);
    }

    /// Lets the writer go on.
    pub fn resume_writer(&self) {
        self.inner.gate.set(false);
    }

    /// Queues events and waits until they are committed. Returns what happened to each.
    pub async fn submit(
        &self,
        records: Vec<Record>,
    ) -> std::result::Result<Vec<Stored>, SubmitError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let count = records.len() as u64;
        // Counted before the send so the writer's decrement can never run first.
        self.inner.metrics.enqueued(count);
        match self.inner.sender.try_send(Job { records, reply }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.inner.metrics.dequeued(count);
                return Err(SubmitError::QueueFull);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.inner.metrics.dequeued(count);
                return Err(SubmitError::Store(String::from("the writer has stopped")));
            }
        }
        match answer.await {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(message)) => Err(SubmitError::Store(message)),
            Err(_) => Err(SubmitError::Store(String::from("the writer has stopped"))),
        }
    }

    /// The HTTP routes: `POST /v1/events`, `GET /metrics`, `GET /healthz`.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/v1/events",
                post(post_events)
                    .fallback(|| method_not_allowed("POST"))
                    .route_layer(axum::middleware::from_fn_with_state(
                        self.clone(),
                        require_token,
                    )),
            )
            .route(
                "/metrics",
                get(get_metrics).fallback(|| method_not_allowed("GET")),
            )
            .route(
                "/healthz",
                get(|| async { json_response(StatusCode::OK, &json!({"ok": true})) })
                    .fallback(|| method_not_allowed("GET")),
            )
            .fallback(|| async {
                json_response(
                    StatusCode::NOT_FOUND,
                    &error_body(
                        "not_found",
                        "no such route; POST /v1/events, GET /metrics, GET /healthz",
                    ),
                )
            })
            .layer(DefaultBodyLimit::max(self.inner.config.max_body_bytes))
            .with_state(self.clone())
    }

    fn handle_body(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> std::result::Result<DecodedBody, Box<Response>> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        let decoded =
            event::decode_body(body, content_type, self.inner.config.max_events_per_request)
                .map_err(|error| {
                    self.inner.metrics.request("bad");
                    Box::new(json_response(
                        StatusCode::BAD_REQUEST,
                        &error_body(error.code, error.message),
                    ))
                })?;
        let mut errors = decoded.errors;
        let mut records = Vec::with_capacity(decoded.records.len());
        let mut indices = Vec::with_capacity(decoded.records.len());
        let now_ms = now_millis();
        for (index, record) in decoded.records {
            match self.outside_window(&record, now_ms) {
                Some(message) => errors.push(EventError {
                    index,
                    request_id: Some(record.id().to_string()),
                    code: "timestamp_out_of_window",
                    message,
                }),
                None => {
                    indices.push(index);
                    records.push(record);
                }
            }
        }
        errors.sort_by_key(|error| error.index);
        Ok((records, indices, errors))
    }

    /// Why an event's time is refused, when the collector has a window and the time is outside.
    fn outside_window(&self, record: &Record, now_ms: i64) -> Option<String> {
        let window = self.inner.config.timestamp_window?;
        let timestamp_ms = match record {
            Record::Call(call) => call.timestamp_millis,
            Record::Exposure(exposure) => exposure.timestamp_ms,
        };
        let millis = |duration: Duration| i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        let oldest = now_ms.saturating_sub(millis(window.max_age));
        let newest = now_ms.saturating_add(millis(window.max_ahead));
        if timestamp_ms < oldest {
            Some(format!(
                "the event's time is more than {} s in the past",
                window.max_age.as_secs()
            ))
        } else if timestamp_ms > newest {
            Some(format!(
                "the event's time is more than {} s in the future",
                window.max_ahead.as_secs()
            ))
        } else {
            None
        }
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// Refuses a write without a configured token before its body is read: `401` with a JSON error.
async fn require_token(
    State(collector): State<Collector>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let tokens = &collector.inner.config.tokens;
    if tokens.is_empty() {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    if token_matches(tokens, presented.as_bytes()) {
        return next.run(request).await;
    }
    collector.inner.metrics.request("bad");
    let mut response = json_response(
        StatusCode::UNAUTHORIZED,
        &error_body(
            "unauthorized",
            "POST /v1/events needs `Authorization: Bearer <token>` with a token this collector \
             was started with",
        ),
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

async fn get_metrics(State(collector): State<Collector>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        collector.inner.metrics.render(),
    )
        .into_response()
}

async fn post_events(
    State(collector): State<Collector>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let metrics = &collector.inner.metrics;
    let max_body_bytes = collector.inner.config.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > max_body_bytes) {
        metrics.request("bad");
        return too_large(max_body_bytes);
    }
    // A large body (or one of unknown length) waits for nothing: without a permit it is
    // refused at once, so memory holds at most MAX_LARGE_BODIES of them.
    let _large_permit = if declared.is_none_or(|length| length > LARGE_BODY_BYTES) {
        match collector.inner.large_bodies.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                metrics.request("throttled");
                let mut response = json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &error_body(
                        "busy",
                        format!(
                            "{MAX_LARGE_BODIES} bodies over {LARGE_BODY_BYTES} bytes are being \
                             read; nothing of this batch was stored; retry shortly"
                        ),
                    ),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
        }
    } else {
        None
    };
    let body_read_timeout = collector.inner.config.body_read_timeout;
    let body = match tokio::time::timeout(
        body_read_timeout,
        axum::body::to_bytes(body, max_body_bytes),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => {
            metrics.request("bad");
            // to_bytes fails for a body over the limit or one the client broke off.
            let over_limit = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if over_limit {
                return too_large(max_body_bytes);
            }
            return json_response(
                StatusCode::BAD_REQUEST,
                &error_body("bad_body", format!("the body could not be read: {error}")),
            );
        }
        Err(_) => {
            metrics.request("bad");
            return json_response(
                StatusCode::REQUEST_TIMEOUT,
                &error_body(
                    "body_timeout",
                    format!(
                        "the body took more than {} ms to arrive",
                        body_read_timeout.as_millis()
                    ),
                ),
            );
        }
    };
    let (records, indices, errors) = match collector.handle_body(&headers, &body) {
        Ok(parts) => parts,
        Err(response) => return *response,
    };
    metrics.rejected(errors.len() as u64);
    if records.is_empty() {
        metrics.request("bad");
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({
                "error": {"code": "no_valid_events", "message": "every event of the batch was refused; see errors"},
                "accepted": 0, "duplicates": 0, "rejected": errors.len(), "errors": errors,
            }),
        );
    }
    let ids: Vec<String> = records.iter().map(|r| r.id().to_string()).collect();
    match collector.submit(records).await {
        Ok(stored) => {
            metrics.request("ok");
            let mut duplicate_ids = Vec::new();
            let mut duplicate_indices = Vec::new();
            let mut errors = errors;
            for ((id, index), outcome) in ids.into_iter().zip(indices).zip(&stored) {
                match outcome {
                    Stored::Accepted => {}
                    Stored::Duplicate => {
                        duplicate_ids.push(id);
                        duplicate_indices.push(index);
                    }
                    Stored::Conflict => errors.push(EventError {
                        index,
                        message: format!(
                            "request_id {id:?} is already stored with other content; a retry \
                             resends the same event, so give a new call a new id"
                        ),
                        request_id: Some(id),
                        code: "conflict",
                    }),
                }
            }
            errors.sort_by_key(|error| error.index);
            let accepted = stored
                .iter()
                .filter(|outcome| **outcome == Stored::Accepted)
                .count();
            json_response(
                StatusCode::OK,
                &json!({
                    "accepted": accepted,
                    "duplicates": duplicate_ids.len(),
                    "rejected": errors.len(),
                    "duplicate_ids": duplicate_ids,
                    "duplicate_indices": duplicate_indices,
                    "errors": errors,
                    "durable": true,
                }),
            )
        }
        Err(SubmitError::QueueFull) => {
            metrics.request("throttled");
            let retry = collector.inner.config.retry_after_seconds.max(1);
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &error_body(
                    "queue_full",
                    format!(
                        "the write queue is full; nothing from this batch was stored; retry in {retry} s"
                    ),
                ),
            );
            if let Ok(value) = HeaderValue::from_str(&retry.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Err(SubmitError::Store(message)) => {
            metrics.request("failed");
            let mut response = json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &error_body(
                    "store_failed",
                    format!("the batch was not stored: {message}"),
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
    }
}

/// Binds `addr` and serves the collector until `shutdown` resolves. Calls `ready` with the bound
/// address once listening.
pub async fn serve(
    collector: Collector,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Invalid(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Invalid(format!("cannot read the bound address: {e}")))?;
    ready(bound);
    let router = collector.router();
    let header_read_timeout = collector.inner.config.header_read_timeout;
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    // Dropped when the server stops: every connection then finishes its request and closes.
    let (stop_connections, stopping) = tokio::sync::watch::channel(());
    let mut open = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // At most MAX_CONNECTIONS at once: the next accept waits for one to close.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // A failed accept (the peer left, descriptors ran out) ends that connection,
                // not the server; a short pause keeps a persistent failure from spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let mut stopping = stopping.clone();
        open.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let connection =
                builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        // Reap finished connections so the set does not grow with the server's lifetime.
        while open.try_join_next().is_some() {}
    }
    drop(stop_connections);
    while open.join_next().await.is_some() {}
    Ok(())
}

/// The default time a client may take to send a request's headers before its connection closes.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The default time a client may take to send a request's body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once; the next one waits to be accepted.
pub const MAX_CONNECTIONS: usize = 256;
/// Bodies above this size (or of unknown size) are large: only [`MAX_LARGE_BODIES`] are read at
/// once.
pub const LARGE_BODY_BYTES: usize = 1024 * 1024;
/// Large bodies read at once; another is answered `503 busy` with `Retry-After`.
pub const MAX_LARGE_BODIES: usize = 2;

/// How long the writer may take to drain on shutdown before the process gives up waiting.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
