//! The client: the current ruleset behind an atomic pointer, a refresher thread, the body cache
//! and the evaluation entry points.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use promptflag_contracts::bundle::Bundle;
use promptflag_core::{
    Bucket, Context, ErrorCode, Evaluation, ExpectedType, PromptMeta, Reason, Ruleset,
};
use serde_json::Value;

use promptflag_contracts::signing::{self, Signed};

use crate::bodies::{BodyCache, check_hash, verified_body};
use crate::error::ClientError;
use crate::exposure::{Exposure, ExposureHook};
use crate::http::{Edge, Fetched};
use crate::telemetry::{Telemetry, TelemetryConfig};

/// How the client is set up. Start from [`ClientConfig::new`] and adjust.
#[derive(Clone)]
pub struct ClientConfig {
    /// The Worker's base URL (`https://prompts.example.com`).
    pub base_url: String,
    /// The Worker's server read key, sent as `Authorization: Bearer <key>` with the ruleset and
    /// body requests (docs/interfaces.md, "Read keys"); see [`ClientConfig::with_read_key`].
    pub read_key: Option<String>,
    /// How often the background thread asks for a new ruleset (with `If-None-Match`).
    pub refresh_interval: Duration,
    /// The timeout of each request to the edge.
    pub request_timeout: Duration,
    /// A fallback bundle (`promptflag build`'s `fallback/<env>.json`) to start from when the
    /// edge cannot be reached at start-up: its ruleset serves and its bodies answer
    /// [`Client::prompt_body`] while the edge is down. It is verified by hash first; a bundle
    /// that does not verify is refused whole. Tried before `fallback_json` and `fallback_path`.
    pub fallback_bundle: Option<Vec<u8>>,
    /// A ruleset to start from when the edge cannot be reached at start-up: JSON bytes.
    pub fallback_json: Option<Vec<u8>>,
    /// A ruleset file to start from when the edge cannot be reached (read only if needed).
    pub fallback_path: Option<PathBuf>,
    /// When set, a ruleset for another environment is rejected.
    pub environment: Option<String>,
    /// How many prompt bodies to keep.
    pub body_cache_capacity: usize,
    /// Fetch the bodies the ruleset names whenever a ruleset is installed.
    pub warm_bodies: bool,
    /// Called on every evaluation.
    pub exposure_hook: Option<ExposureHook>,
    /// The collector: when set, every evaluation that serves a variant is sent to it as an
    /// exposure, batched on a background thread with a bounded queue (see [`Telemetry`]), and
    /// [`Client::telemetry`] sends LLM calls the same way.
    pub collector: Option<TelemetryConfig>,
    /// The Ed25519 public key of signed rulesets; when set, a ruleset from the edge serves only
    /// if its signature verifies and it does not go back without a higher epoch (see
    /// [`ClientConfig::with_ruleset_public_key`]).
    pub ruleset_public_key: Option<[u8; 32]>,
}

impl ClientConfig {
    /// Defaults: refresh every 30 s, 5 s timeout, 256 bodies, warm the cache.
    pub fn new(base_url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            read_key: None,
            refresh_interval: Duration::from_secs(30),
            request_timeout: Duration::from_secs(5),
            fallback_bundle: None,
            fallback_json: None,
            fallback_path: None,
            environment: None,
            body_cache_capacity: 256,
            warm_bodies: true,
            exposure_hook: None,
            collector: None,
            ruleset_public_key: None,
        }
    }

    /// The same configuration, sending exposures (and LLM calls recorded through
    /// [`Client::telemetry`]) to a collector.
    pub fn with_collector(mut self, collector: TelemetryConfig) -> ClientConfig {
        self.collector = Some(collector);
        self
    }
}

impl ClientConfig {
    /// Sets the read key the client sends. The client reads the ruleset and the prompt bodies,
    /// which only a `server` key may read; a Worker with read keys answers 401 without one.
    pub fn with_read_key(mut self, key: impl Into<String>) -> ClientConfig {
        self.read_key = Some(key.into());
        self
    }

    /// Requires signed rulesets (docs/interfaces.md, "Signed rulesets"): a ruleset from the
    /// edge serves only when its `X-Promptflag-Signature` verifies with this Ed25519 public key
    /// over its environment, revision, epoch and bytes, and when it does not go back from the
    /// revision accepted last without a higher epoch. A refused one is a failed refresh
    /// ([`ClientError::Signature`]): the last good ruleset keeps serving and
    /// [`Client::status`] says why.
    pub fn with_ruleset_public_key(mut self, key: [u8; 32]) -> ClientConfig {
        self.ruleset_public_key = Some(key);
        self
    }
}

/// Where the serving ruleset came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesetSource {
    /// Fetched from the edge.
    Edge,
    /// The fallback given in the configuration.
    Fallback,
    /// Installed by the caller through [`Client::install_json`].
    Installed,
}

/// A compiled ruleset and what the client knows of it. Readers hold an `Arc` of it, so a swap
/// never pulls a ruleset out from under an evaluation.
pub struct Snapshot {
    /// The compiled ruleset.
    pub ruleset: Ruleset,
    /// The ETag it was served with.
    pub etag: Option<String>,
    /// Where it came from.
    pub source: RulesetSource,
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The edge answered `304 Not Modified`.
    NotModified,
    /// A new ruleset now serves.
    Updated {
        /// Its revision.
        revision: u64,
    },
}

/// A health summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStatus {
    /// The serving revision, if any ruleset serves.
    pub revision: Option<u64>,
    /// Where it came from.
    pub source: Option<RulesetSource>,
    /// Refreshes that failed since the last success.
    pub consecutive_failures: u64,
    /// The last refresh error, if the last refresh failed.
    pub last_error: Option<String>,
}

/// An evaluation the caller owns (the ruleset it came from may be swapped out right after).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The flag asked for.
    pub flag_key: String,
    /// The value served (`None` when the flag does not exist or nothing serves yet).
    pub value: Option<Value>,
    /// The variant served.
    pub variant: Option<String>,
    /// Why.
    pub reason: Reason,
    /// Set on errors.
    pub error_code: Option<ErrorCode>,
    /// A sentence about the error.
    pub error_message: Option<String>,
    /// The rule that matched.
    pub rule_index: Option<u32>,
    /// The bucketing outcome, when a split decided.
    pub bucket: Option<Bucket>,
    /// The prompt served, for prompt flags.
    pub prompt: Option<PromptMeta>,
    /// The revision that answered.
    pub revision: Option<u64>,
}

impl Resolution {
    fn from_evaluation(evaluation: &Evaluation<'_>, revision: u64) -> Resolution {
        Resolution {
            flag_key: evaluation.key.to_string(),
            value: evaluation.value.cloned(),
            variant: evaluation.variant.map(str::to_string),
            reason: evaluation.reason,
            error_code: evaluation.error_code,
            error_message: evaluation.error_message.map(str::to_string),
            rule_index: evaluation.rule_index,
            bucket: evaluation.bucket,
            prompt: evaluation.prompt.cloned(),
            revision: Some(revision),
        }
    }

    fn not_ready(flag_key: &str) -> Resolution {
        Resolution {
            flag_key: flag_key.to_string(),
            value: None,
            variant: None,
            reason: Reason::Error,
            error_code: Some(ErrorCode::General),
            error_message: Some(
                "no ruleset has been loaded yet (edge unreachable and no fallback)".to_string(),
            ),
            rule_index: None,
            bucket: None,
            prompt: None,
            revision: None,
        }
    }
}

struct Shared {
    config: ClientConfig,
    edge: Edge,
    current: ArcSwapOption<Snapshot>,
    bodies: Mutex<BodyCache>,
    /// The fallback bundle's bodies, verified: served when the cache and the edge cannot.
    fallback_bodies: Mutex<BTreeMap<String, Arc<str>>>,
    consecutive_failures: AtomicU64,
    last_error: Mutex<Option<String>>,
    telemetry: Option<Telemetry>,
    /// The signed revision accepted last, for the epoch rule.
    accepted: Mutex<Option<Signed>>,
}

/// The native client. Cheap to share: clone the `Arc` it is usually kept in.
pub struct Client {
    shared: Arc<Shared>,
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl Client {
    /// Starts the client: one fetch from the edge (bounded by the request timeout), else the
    /// fallback; then warms the body cache and starts the refresher thread. It never fails: with
    /// neither edge nor fallback it starts empty, answers `GENERAL` errors, and keeps trying.
    pub fn start(config: ClientConfig) -> Client {
        let edge = Edge::new(
            &config.base_url,
            config.read_key.as_deref(),
            config.request_timeout,
        );
        let shared = Arc::new(Shared {
            bodies: Mutex::new(BodyCache::new(config.body_cache_capacity)),
            fallback_bodies: Mutex::new(BTreeMap::new()),
            edge,
            current: ArcSwapOption::empty(),
            consecutive_failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
            telemetry: config.collector.clone().map(Telemetry::start),
            accepted: Mutex::new(None),
            config,
        });
        if shared.refresh().is_err()
            && let Err(error) = shared.load_fallback()
        {
            shared.record_failure(&error);
        }
        shared.warm_bodies();
        let (stop, stopped) = mpsc::channel::<()>();
        let worker = Arc::clone(&shared);
        let refresher = std::thread::Builder::new()
            .name("promptflag-refresh".to_string())
            .spawn(move || {
                loop {
                    match stopped.recv_timeout(worker.config.refresh_interval) {
                        Err(RecvTimeoutError::Timeout) => {
                            if let Ok(RefreshOutcome::Updated { .. }) = worker.refresh() {
                                worker.warm_bodies();
                            }
                        }
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .ok();
        Client {
            shared,
            stop: Some(stop),
            refresher,
        }
    }

    /// Asks the edge for a new ruleset now (with `If-None-Match`). On any failure the serving
    /// ruleset stays.
    pub fn refresh_now(&self) -> Result<RefreshOutcome, ClientError> {
        let outcome = self.shared.refresh()?;
        if matches!(outcome, RefreshOutcome::Updated { .. }) {
            self.shared.warm_bodies();
        }
        Ok(outcome)
    }

    /// Installs a ruleset from JSON (from a file watcher, a test, another channel). An invalid
    /// one is rejected and the serving ruleset stays.
    pub fn install_json(&self, json: &[u8]) -> Result<u64, ClientError> {
        self.shared.install(json, None, RulesetSource::Installed)
    }

    /// The serving snapshot, for callers that want core's borrowed [`Evaluation`] directly.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.shared.current.load_full()
    }

    /// The serving revision.
    pub fn revision(&self) -> Option<u64> {
        self.shared
            .current
            .load()
            .as_ref()
            .map(|snapshot| snapshot.ruleset.revision())
    }

    /// Health: the serving revision, its source and refresh failures.
    pub fn status(&self) -> ClientStatus {
        let current = self.shared.current.load();
        ClientStatus {
            revision: current.as_ref().map(|s| s.ruleset.revision()),
            source: current.as_ref().map(|s| s.source),
            consecutive_failures: self.shared.consecutive_failures.load(Ordering::Relaxed),
            last_error: self
                .shared
                .last_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or(None),
        }
    }

    /// Evaluates a flag.
    pub fn evaluate(&self, flag_key: &str, context: &Context) -> Resolution {
        self.with_evaluation(flag_key, context, |ruleset, ctx| {
            ruleset.evaluate(flag_key, ctx)
        })
    }

    /// Evaluates a flag expecting a type (`TYPE_MISMATCH` otherwise).
    pub fn evaluate_typed(
        &self,
        flag_key: &str,
        context: &Context,
        expected: ExpectedType,
    ) -> Resolution {
        self.with_evaluation(flag_key, context, |ruleset, ctx| {
            ruleset.evaluate_typed(flag_key, ctx, expected)
        })
    }

    /// Resolves a prompt flag to its prompt id, version, hash, model and parameters.
    pub fn resolve_prompt(&self, flag_key: &str, context: &Context) -> Resolution {
        self.with_evaluation(flag_key, context, |ruleset, ctx| {
            ruleset.resolve_prompt(flag_key, ctx)
        })
    }

    /// Resolves a prompt flag and returns its body too (from the cache, or fetched and verified).
    pub fn resolve_prompt_with_body(
        &self,
        flag_key: &str,
        context: &Context,
    ) -> (Resolution, Option<Result<Arc<str>, ClientError>>) {
        let resolution = self.resolve_prompt(flag_key, context);
        let body = resolution
            .prompt
            .as_ref()
            .map(|prompt| self.prompt_body(&prompt.hash));
        (resolution, body)
    }

    /// A prompt body by hash: from the cache, or fetched from the edge and verified.
    pub fn prompt_body(&self, hash: &str) -> Result<Arc<str>, ClientError> {
        check_hash(hash)?;
        if let Some(body) = self
            .shared
            .bodies
            .lock()
            .ok()
            .and_then(|mut cache| cache.get(hash))
        {
            return Ok(body);
        }
        let fetched = self.shared.edge.prompt_body(hash);
        let bytes = match fetched {
            Ok(bytes) => bytes,
            Err(error) => {
                // The edge is down: the fallback bundle's body, verified when it was loaded.
                return self
                    .shared
                    .fallback_bodies
                    .lock()
                    .ok()
                    .and_then(|bodies| bodies.get(hash).cloned())
                    .ok_or(error);
            }
        };
        let body = verified_body(hash, bytes)?;
        if let Ok(mut cache) = self.shared.bodies.lock() {
            cache.insert(hash, Arc::clone(&body));
        }
        Ok(body)
    }

    /// The sender to the configured collector ([`ClientConfig::collector`]): record LLM calls
    /// through it, and read its counters.
    pub fn telemetry(&self) -> Option<&Telemetry> {
        self.shared.telemetry.as_ref()
    }

    /// How many bodies the cache holds.
    pub fn cached_bodies(&self) -> usize {
        self.shared
            .bodies
            .lock()
            .map(|cache| cache.len())
            .unwrap_or(0)
    }

    fn with_evaluation<'c>(
        &self,
        flag_key: &str,
        context: &'c Context,
        evaluate: impl for<'r> FnOnce(&'r Ruleset, &'c Context) -> Evaluation<'r>,
    ) -> Resolution {
        let guard = self.shared.current.load();
        let Some(snapshot) = guard.as_ref() else {
            return Resolution::not_ready(flag_key);
        };
        let evaluation = evaluate(&snapshot.ruleset, context);
        let hook = self.shared.config.exposure_hook.as_ref();
        let telemetry = self.shared.telemetry.as_ref();
        if hook.is_some() || telemetry.is_some() {
            let event = exposure(&snapshot.ruleset, &evaluation, context);
            if let Some(hook) = hook {
                hook(&event);
            }
            if let Some(telemetry) = telemetry {
                telemetry.record_exposure(&event);
            }
        }
        Resolution::from_evaluation(&evaluation, snapshot.ruleset.revision())
    }
}

fn exposure<'a>(
    ruleset: &'a Ruleset,
    evaluation: &'a Evaluation<'_>,
    context: &'a Context,
) -> Exposure<'a> {
    let unit = match context.get(promptflag_core::context::TARGETING_KEY) {
        Some(promptflag_core::AttributeValue::String(text)) => Some(text.as_str()),
        _ => None,
    };
    Exposure {
        id: None,
        timestamp_millis: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .unwrap_or(0),
        environment: Some(Cow::Borrowed(ruleset.environment())),
        flag_key: Cow::Borrowed(&evaluation.key),
        variant: evaluation.variant.map(Cow::Borrowed),
        prompt_id: evaluation.prompt.map(|p| Cow::Borrowed(p.id.as_str())),
        prompt_version: evaluation.prompt.map(|p| Cow::Borrowed(p.version.as_str())),
        prompt_hash: evaluation.prompt.map(|p| Cow::Borrowed(p.hash.as_str())),
        revision: Some(ruleset.revision()),
        unit: unit.map(Cow::Borrowed),
        reason: Some(Cow::Borrowed(evaluation.reason.as_str())),
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Closing the channel wakes the refresher, which then returns.
        drop(self.stop.take());
        if let Some(handle) = self.refresher.take() {
            let _ = handle.join();
        }
    }
}

impl Shared {
    fn refresh(&self) -> Result<RefreshOutcome, ClientError> {
        let current_etag = self
            .current
            .load()
            .as_ref()
            .filter(|s| s.source == RulesetSource::Edge)
            .and_then(|s| s.etag.clone());
        let result = match self.edge.ruleset(current_etag.as_deref()) {
            Ok(Fetched::NotModified) => Ok(RefreshOutcome::NotModified),
            Ok(Fetched::Body {
                bytes,
                etag,
                signature,
            }) => self
                .install_signed(&bytes, etag, signature.as_deref())
                .map(|revision| RefreshOutcome::Updated { revision }),
            Err(error) => Err(error),
        };
        match &result {
            Ok(_) => {
                self.consecutive_failures.store(0, Ordering::Relaxed);
                if let Ok(mut last) = self.last_error.lock() {
                    *last = None;
                }
            }
            Err(error) => self.record_failure(error),
        }
        result
    }

    fn record_failure(&self, error: &ClientError) {
        self.consecutive_failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error.to_string());
        }
    }

    /// A ruleset from the edge: checked against its signature first when the client requires
    /// signed rulesets, then installed.
    fn install_signed(
        &self,
        json: &[u8],
        etag: Option<String>,
        signature: Option<&str>,
    ) -> Result<u64, ClientError> {
        let Some(public_key) = &self.config.ruleset_public_key else {
            return self.install(json, etag, RulesetSource::Edge);
        };
        let ruleset = Ruleset::from_json(json)?;
        let accepted = self.accepted.lock().ok().and_then(|accepted| *accepted);
        let signed = check_signature(&ruleset, json, signature, public_key, accepted)
            .map_err(ClientError::Signature)?;
        let revision = self.install_compiled(ruleset, etag, RulesetSource::Edge)?;
        if let Ok(mut accepted) = self.accepted.lock() {
            *accepted = Some(signed);
        }
        Ok(revision)
    }

    /// Compiles aside, then swaps: readers see the old ruleset or the new one, never neither.
    fn install(
        &self,
        json: &[u8],
        etag: Option<String>,
        source: RulesetSource,
    ) -> Result<u64, ClientError> {
        self.install_compiled(Ruleset::from_json(json)?, etag, source)
    }

    fn install_compiled(
        &self,
        ruleset: Ruleset,
        etag: Option<String>,
        source: RulesetSource,
    ) -> Result<u64, ClientError> {
        if let Some(expected) = &self.config.environment
            && ruleset.environment() != expected
        {
            return Err(ClientError::WrongEnvironment {
                expected: expected.clone(),
                served: ruleset.environment().to_string(),
            });
        }
        let revision = ruleset.revision();
        self.current.store(Some(Arc::new(Snapshot {
            ruleset,
            etag,
            source,
        })));
        Ok(revision)
    }

    fn load_fallback(&self) -> Result<(), ClientError> {
        if let Some(bytes) = &self.config.fallback_bundle {
            let bundle = Bundle::from_json(bytes).map_err(ClientError::InvalidBundle)?;
            self.install(bundle.ruleset.as_bytes(), None, RulesetSource::Fallback)?;
            if let Ok(mut bodies) = self.fallback_bodies.lock() {
                *bodies = bundle
                    .prompts
                    .into_iter()
                    .map(|(hash, body)| (hash, Arc::from(body)))
                    .collect();
            }
            return Ok(());
        }
        if let Some(json) = &self.config.fallback_json {
            return self
                .install(json, None, RulesetSource::Fallback)
                .map(|_| ());
        }
        if let Some(path) = &self.config.fallback_path {
            let json = std::fs::read(path).map_err(|e| ClientError::Fallback {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            return self
                .install(&json, None, RulesetSource::Fallback)
                .map(|_| ());
        }
        Ok(())
    }

    /// Fetches the bodies the serving ruleset names and the cache lacks, up to its capacity.
    /// A body that fails to fetch or verify is skipped; it will be fetched on demand.
    fn warm_bodies(&self) {
        if !self.config.warm_bodies {
            return;
        }
        let Some(snapshot) = self.current.load_full() else {
            return;
        };
        let wanted: Vec<String> = snapshot
            .ruleset
            .prompts()
            .iter()
            .map(|p| p.hash.clone())
            .filter(|hash| {
                self.bodies
                    .lock()
                    .map(|cache| !cache.contains(hash))
                    .unwrap_or(false)
            })
            .take(self.config.body_cache_capacity)
            .collect();
        for hash in wanted {
            if let Ok(body) = self
                .edge
                .prompt_body(&hash)
                .and_then(|bytes| verified_body(&hash, bytes))
                && let Ok(mut cache) = self.bodies.lock()
            {
                cache.insert(&hash, body);
            }
        }
    }
}

/// Checks a ruleset's signature text: well-formed, made by `public_key` for this ruleset's
/// environment, revision and bytes, and accepted after `accepted` by the epoch rule. The signed
/// revision, or why it is refused.
fn check_signature(
    ruleset: &Ruleset,
    json: &[u8],
    signature: Option<&str>,
    public_key: &[u8; 32],
    accepted: Option<Signed>,
) -> Result<Signed, String> {
    let revision = ruleset.revision();
    let text = signature.ok_or_else(|| {
        format!(
            "revision {revision} came without a signature ({})",
            signing::SIGNATURE_HEADER
        )
    })?;
    let signature = signing::parse_signature(text)
        .ok_or_else(|| format!("{text:?} is not a signature (v1 epoch=N ed25519=HEX)"))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(public_key)
        .map_err(|error| format!("the configured public key is not an Ed25519 key: {error}"))?;
    let message = signing::signed_message(ruleset.environment(), revision, signature.epoch, json);
    key.verify_strict(
        &message,
        &ed25519_dalek::Signature::from_bytes(&signature.bytes),
    )
    .map_err(|_| {
        format!(
            "the signature of revision {revision} does not verify (a changed ruleset, or one signed for another environment, revision or key)"
        )
    })?;
    let signed = Signed {
        revision,
        epoch: signature.epoch,
    };
    signing::accept(accepted, signed).map_err(|refusal| refusal.to_string())?;
    Ok(signed)
}

pub(crate) fn edge_for_telemetry(timeout: Duration) -> Edge {
    Edge::new("", None, timeout)
}
