//! Where rulesets and bodies go: the KV layout of `docs/interfaces.md` behind one trait, with two
//! implementations — the Worker's admin API ([`WorkerAdmin`]) and the Cloudflare KV REST API
//! ([`KvRest`]).
//!
//! Both keep the publishing order (bodies, then the revision, then the pointer) and both refuse
//! to overwrite: the Worker answers `409`, and the REST store checks the revision and `meta`
//! around its writes (KV has no compare-and-swap, so that check is best effort; see
//! `docs/companion.md`).

use std::time::Duration;

use promptflag_contracts::authority;
use promptflag_contracts::{Meta, keys};
use serde_json::{Value, json};

use crate::error::{Error, Problem, Rejection, Result};

/// A contract rule's refusal as the companion's error: stale revisions and moved pointers are
/// conflicts (another publisher went first), everything else is a refusal to act.
pub fn contract_error(error: promptflag_contracts::Error) -> Error {
    use promptflag_contracts::Error as Contract;
    match &error {
        Contract::StaleRevision { .. } | Contract::LiveMoved { .. } => Error::Conflict {
            message: format!("{}: {error}", error.code()),
        },
        _ => Error::Invalid(format!("{}: {error}", error.code())),
    }
}

/// The environment name, checked by the contracts before it goes into a URL or a key.
fn environment_name(environment: &str) -> Result<&str> {
    keys::environment(environment).map_err(contract_error)
}

/// The revisions of one environment.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct EnvState {
    /// The revision the pointer names.
    pub live: Option<u64>,
    /// The highest revision ever published.
    pub latest: Option<u64>,
    /// Revisions kept for rollback, oldest first.
    pub kept: Vec<u64>,
}

/// The result of a pointer move (a publish or a rollback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PointerMove {
    /// The revision live now.
    pub revision: u64,
    /// The revision live before.
    pub previous: Option<u64>,
}

/// Progress reporting for long uploads; the binary draws a bar, the library stays quiet.
pub trait Progress {
    /// Work of `total` units starts.
    fn begin(&self, total: u64, message: &str);
    /// `units` more are done.
    fn advance(&self, units: u64);
    /// All done.
    fn end(&self);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _: u64, _: &str) {}
    fn advance(&self, _: u64) {}
    fn end(&self) {}
}

/// What a ruleset write is, for a store that records and gates writes (the Worker's admin
/// authority: its audit entry names the action and reason, and `override_gates` asks it to pass
/// a gate that would refuse). Stores that do not record writes ignore it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteIntent {
    /// `publish` (also when empty), `kill` or `rollout` for a publish; a rollback is always
    /// `rollback`.
    pub action: &'static str,
    /// Why (recorded; required with `override_gates`).
    pub reason: String,
    /// Override the environment's gates (needs a credential with the override role).
    pub override_gates: bool,
    /// For a publish: the signature gate's material as JSON text (`{"registry_changes",
    /// "prompts", "approvals"}`, the fields of the gate's input), sent with the ruleset for an
    /// environment whose server-side policy requires approvals (docs/interfaces.md,
    /// "Environment policy"). Stores without the gate ignore it.
    pub approvals: Option<String>,
}

/// A KV store laid out as `docs/interfaces.md` says.
pub trait Store: Send + Sync {
    /// A short description for messages (`worker http://127.0.0.1:8787`).
    fn describe(&self) -> String;
    /// The live, latest and kept revisions of an environment.
    fn state(&self, environment: &str) -> Result<EnvState>;
    /// Stores prompt bodies (immutable, keyed by SHA-256); returns how many were new, when known.
    fn put_prompts(&self, bodies: &[(String, Vec<u8>)], progress: &dyn Progress) -> Result<usize>;
    /// Stores `ruleset:<env>:<revision>` and moves the pointer to it. A revision not above the
    /// latest, or a live revision other than `expected_live`, is a [`Error::Conflict`].
    fn put_ruleset(
        &self,
        environment: &str,
        revision: u64,
        bytes: &[u8],
        expected_live: Option<u64>,
    ) -> Result<PointerMove>;
    /// Moves the pointer to a kept revision (`None`: the kept revision before the live one).
    fn rollback(&self, environment: &str, to: Option<u64>) -> Result<PointerMove>;
    /// The bytes of a published revision, when the store can return them.
    fn fetch_ruleset(&self, environment: &str, revision: u64) -> Result<Option<Vec<u8>>>;
    /// [`Store::put_ruleset`], saying what the write is ([`WriteIntent`]).
    fn put_ruleset_with(
        &self,
        environment: &str,
        revision: u64,
        bytes: &[u8],
        expected_live: Option<u64>,
        intent: &WriteIntent,
    ) -> Result<PointerMove> {
        let _ = intent;
        self.put_ruleset(environment, revision, bytes, expected_live)
    }
    /// [`Store::rollback`], saying why ([`WriteIntent`]).
    fn rollback_with(
        &self,
        environment: &str,
        to: Option<u64>,
        intent: &WriteIntent,
    ) -> Result<PointerMove> {
        let _ = intent;
        self.rollback(environment, to)
    }
}

/// A store shared between owners (a test and the controllers it starts one after another, or
/// the simulation and its loop) is still one store.
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn state(&self, environment: &str) -> Result<EnvState> {
        (**self).state(environment)
    }
    fn put_prompts(&self, bodies: &[(String, Vec<u8>)], progress: &dyn Progress) -> Result<usize> {
        (**self).put_prompts(bodies, progress)
    }
    fn put_ruleset(
        &self,
        environment: &str,
        revision: u64,
        bytes: &[u8],
        expected_live: Option<u64>,
    ) -> Result<PointerMove> {
        (**self).put_ruleset(environment, revision, bytes, expected_live)
    }
    fn rollback(&self, environment: &str, to: Option<u64>) -> Result<PointerMove> {
        (**self).rollback(environment, to)
    }
    fn fetch_ruleset(&self, environment: &str, revision: u64) -> Result<Option<Vec<u8>>> {
        (**self).fetch_ruleset(environment, revision)
    }
    fn put_ruleset_with(
        &self,
        environment: &str,
        revision: u64,
        bytes: &[u8],
        expected_live: Option<u64>,
        intent: &WriteIntent,
    ) -> Result<PointerMove> {
        (**self).put_ruleset_with(environment, revision, bytes, expected_live, intent)
    }
    fn rollback_with(
        &self,
        environment: &str,
        to: Option<u64>,
        intent: &WriteIntent,
    ) -> Result<PointerMove> {
        (**self).rollback_with(environment, to, intent)
    }
}

/// Retries with exponential backoff, for `429` and `5xx` answers and transport failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// The first wait; doubled after each failure.
    pub base: Duration,
    /// The longest wait (also caps `Retry-After`).
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(250),
            max: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (0-based): `base * 2^attempt`, capped.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .base
            .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX));
        retry_after.unwrap_or(exponential).min(self.max)
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// `X-Promptflag-Revision`, when present.
    pub revision_header: Option<String>,
    /// `X-Promptflag-Ruleset-Source` (`kv`, `last-known-good` or `fallback`), when present.
    pub source_header: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (null when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `error.code` and `error.message` of an error body, or the raw text.
    pub fn error_text(&self) -> String {
        let value = self.json();
        match (
            value["error"]["code"].as_str(),
            value["error"]["message"].as_str(),
        ) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => {
                // Cloudflare's API shape: {"success": false, "errors": [{"code", "message"}]}.
                if let Some(errors) = value["errors"].as_array()
                    && !errors.is_empty()
                {
                    return errors
                        .iter()
                        .map(|e| format!("{} {}", e["code"], e["message"].as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join("; ");
                }
                let text = String::from_utf8_lossy(&self.body);
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    format!("HTTP {}", self.status)
                } else {
                    format!(
                        "HTTP {}: {}",
                        self.status,
                        trimmed.chars().take(300).collect::<String>()
                    )
                }
            }
        }
    }

    /// `error.code`, when the body has one.
    pub fn error_code(&self) -> Option<String> {
        self.json()["error"]["code"].as_str().map(str::to_string)
    }
}

/// Told of each retry: the request (`PUT https://…`), the attempt about to be made (2 for the
/// first retry), how many there may be, the wait before it and why.
pub type RetryObserver = std::sync::Arc<dyn Fn(&str, u32, u32, Duration, &str) + Send + Sync>;

/// A small synchronous HTTP client with retries.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
    retry: RetryPolicy,
    on_retry: Option<RetryObserver>,
}

/// The largest body read from a server: a ruleset may be 16 MiB.
const MAX_READ: u64 = 32 * 1024 * 1024;

impl Http {
    /// A client with a per-request timeout.
    pub fn new(timeout: Duration, retry: RetryPolicy) -> Http {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("promptflag/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Http {
            agent,
            retry,
            on_retry: None,
        }
    }

    /// The same client, telling `observer` of every retry (the command shows them on a
    /// terminal; a library stays quiet).
    pub fn with_retry_observer(mut self, observer: RetryObserver) -> Http {
        self.on_retry = Some(observer);
        self
    }

    /// One request. `retry` allows retries (only for idempotent requests).
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
        retry: bool,
    ) -> Result<Reply> {
        let attempts = if retry { self.retry.attempts.max(1) } else { 1 };
        let mut attempt = 0;
        loop {
            let outcome = self.send_once(method, url, headers, body);
            let retryable = match &outcome {
                Ok((reply, _)) => reply.status == 429 || reply.status >= 500,
                Err(_) => true,
            };
            if !retryable || attempt + 1 >= attempts {
                return outcome.map(|(reply, _)| reply);
            }
            let retry_after = outcome
                .as_ref()
                .ok()
                .and_then(|(_, retry_after)| *retry_after);
            let delay = self.retry.delay(attempt, retry_after);
            if let Some(observer) = &self.on_retry {
                let why = match &outcome {
                    Ok((reply, _)) => format!("HTTP {}", reply.status),
                    Err(error) => error.to_string(),
                };
                observer(
                    &format!("{method} {url}"),
                    attempt + 2,
                    attempts,
                    delay,
                    &why,
                );
            }
            std::thread::sleep(delay);
            attempt += 1;
        }
    }

    fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Result<(Reply, Option<Duration>)> {
        let failed = |error: ureq::Error| Error::Remote {
            context: format!("{method} {url}"),
            message: error.to_string(),
        };
        let mut response = match (method, body) {
            ("GET", _) => {
                let mut request = self.agent.get(url);
                for (name, value) in headers {
                    request = request.header(*name, value.as_str());
                }
                request.call().map_err(failed)?
            }
            (_, body) => {
                let mut request = match method {
                    "PUT" => self.agent.put(url),
                    "POST" => self.agent.post(url),
                    other => {
                        return Err(Error::Invalid(format!("unsupported HTTP method {other}")));
                    }
                };
                for (name, value) in headers {
                    request = request.header(*name, value.as_str());
                }
                request.send(body.unwrap_or(&[])).map_err(failed)?
            }
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        let revision_header = header("x-promptflag-revision");
        let source_header = header("x-promptflag-ruleset-source");
        let retry_after = header("retry-after")
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_READ)
            .read_to_vec()
            .map_err(failed)?;
        Ok((
            Reply {
                status,
                revision_header,
                source_header,
                body,
            },
            retry_after,
        ))
    }
}

fn remote(context: impl Into<String>, reply: &Reply) -> Error {
    Error::Remote {
        context: context.into(),
        message: reply.error_text(),
    }
}

/// The Worker's admin API (`/admin/v1/…`, `Authorization: Bearer <token>` of one of the Worker's
/// `ADMIN_CREDENTIALS`), served by its admin authority.
pub struct WorkerAdmin {
    base: String,
    token: String,
    /// The server read key for `GET /v1/ruleset`, the one read outside the admin API.
    read_key: Option<String>,
    http: Http,
}

impl WorkerAdmin {
    /// A client for the Worker at `base` (such as `http://127.0.0.1:8787`).
    pub fn new(base: &str, token: &str, http: Http) -> WorkerAdmin {
        WorkerAdmin {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            read_key: None,
            http,
        }
    }

    /// Sets the Worker's server read key, which reading the live ruleset needs
    /// (docs/interfaces.md, "Read keys"); without it that read finds nothing.
    pub fn with_read_key(mut self, read_key: Option<&str>) -> WorkerAdmin {
        self.read_key = read_key.map(str::to_string);
        self
    }

    /// The Worker's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn auth(&self) -> Vec<(&'static str, String)> {
        vec![("Authorization", format!("Bearer {}", self.token))]
    }

    fn check_auth(&self, context: &str, reply: &Reply) -> Result<()> {
        let code = reply.error_code();
        match (reply.status, code.as_deref()) {
            (401, _) => Err(Error::Remote {
                context: context.to_string(),
                message: String::from(
                    "unauthorized: no credential of the Worker's ADMIN_CREDENTIALS has this token (--admin-token / PROMPTFLAG_ADMIN_TOKEN)",
                ),
            }),
            (404, Some("admin_disabled")) => Err(Error::Remote {
                context: context.to_string(),
                message: String::from(
                    "the Worker's admin API is off (its ADMIN_CREDENTIALS secret is unset)",
                ),
            }),
            // The authority refused the write: a credential of another environment or role, or
            // a gate (`promotion_required`). Nothing was written.
            (403, _) => Err(Error::Refused(reply.error_text())),
            (503, Some("credentials_invalid" | "policy_invalid" | "authority_unavailable")) => {
                Err(remote(context, reply))
            }
            _ => Ok(()),
        }
    }
}

/// The Worker's audit log as its admin authority serves it: every entry, the head, and the anchor
/// of each kept revision of each environment the log names (`(environment, revision, anchor)`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServedAudit {
    /// Every entry, oldest first.
    pub entries: Vec<authority::Entry>,
    /// The head the authority reports.
    pub head: authority::Head,
    /// The anchors KV's kept revisions carry.
    pub anchors: Vec<(String, u64, authority::Anchor)>,
}

impl ServedAudit {
    /// Every way the served chain fails verification (none when it is intact).
    pub fn verify(&self) -> Vec<authority::ChainBreak> {
        authority::verify_chain(&self.entries, &self.head, &self.anchors)
    }
}

impl WorkerAdmin {
    /// Reads the authority's whole audit log (page by page) and the anchors of the kept
    /// revisions of every environment it names.
    pub fn served_audit(&self) -> Result<ServedAudit> {
        let mut entries: Vec<authority::Entry> = Vec::new();
        let head = loop {
            let after = entries.last().map_or(0, |entry| entry.seq);
            let url = format!(
                "{}/admin/v1/audit?after={after}&limit={}",
                self.base,
                authority::AUDIT_PAGE_LIMIT
            );
            let reply = self.http.send("GET", &url, &self.auth(), None, true)?;
            self.check_auth(&url, &reply)?;
            if reply.status != 200 {
                return Err(remote(format!("GET {url}"), &reply));
            }
            let value = reply.json();
            let head = authority::Head::from_value(&value["head"])
                .ok_or_else(|| Error::Invalid(format!("GET {url}: no head in the answer")))?;
            let page: Vec<authority::Entry> = serde_json::from_value(value["entries"].clone())
                .map_err(|e| Error::Invalid(format!("GET {url}: unreadable entries: {e}")))?;
            let done = page.is_empty() || page.last().is_some_and(|entry| entry.seq >= head.seq);
            entries.extend(page);
            if done {
                break head;
            }
        };
        let mut environments: Vec<&str> = entries.iter().map(|e| e.environment.as_str()).collect();
        environments.sort_unstable();
        environments.dedup();
        let mut anchors = Vec::new();
        for environment in environments {
            let url = format!("{}/admin/v1/rulesets/{environment}", self.base);
            let reply = self.http.send("GET", &url, &self.auth(), None, true)?;
            self.check_auth(&url, &reply)?;
            if reply.status != 200 {
                return Err(remote(format!("GET {url}"), &reply));
            }
            if let Some(kept) = reply.json()["anchors"].as_object() {
                for (revision, anchor) in kept {
                    if let (Ok(revision), Some(anchor)) = (
                        revision.parse::<u64>(),
                        authority::Anchor::from_value(anchor),
                    ) {
                        anchors.push((environment.to_string(), revision, anchor));
                    }
                }
            }
        }
        Ok(ServedAudit {
            entries,
            head,
            anchors,
        })
    }
}

/// The query parameters that tell the Worker's admin authority what a write is.
fn intent_query(intent: &WriteIntent) -> Vec<String> {
    let mut query = Vec::new();
    if !intent.action.is_empty() {
        query.push(format!("action={}", intent.action));
    }
    if !intent.reason.is_empty() {
        query.push(format!("reason={}", encode_key(&intent.reason)));
    }
    if intent.override_gates {
        query.push(String::from("override=true"));
    }
    query
}

/// The media type of a publish that carries the signature gate's material with its ruleset.
pub const PUBLISH_WITH_APPROVALS: &str = "application/vnd.promptflag.publish+json";

/// `{"ruleset": "<the ruleset's exact text>", …the gate's material}`: the body of a publish
/// with approvals (docs/interfaces.md, "Environment policy").
fn publish_with_approvals(material: &str, ruleset: &[u8]) -> Result<Vec<u8>> {
    let Ok(Value::Object(mut envelope)) = serde_json::from_str::<Value>(material) else {
        return Err(Error::Invalid(String::from(
            "the approvals to send with a publish must be a JSON object",
        )));
    };
    let text = std::str::from_utf8(ruleset)
        .map_err(|_| Error::Invalid(String::from("the ruleset is not UTF-8")))?;
    envelope.insert(String::from("ruleset"), Value::from(text));
    serde_json::to_vec(&Value::Object(envelope))
        .map_err(|e| Error::Invalid(format!("the publish could not be written: {e}")))
}

fn with_query(mut url: String, query: &[String]) -> String {
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    url
}

fn u64_or_none(value: &Value) -> Option<u64> {
    value.as_u64()
}

impl Store for WorkerAdmin {
    fn describe(&self) -> String {
        format!("worker {}", self.base)
    }

    fn state(&self, environment: &str) -> Result<EnvState> {
        let environment = environment_name(environment)?;
        let url = format!("{}/admin/v1/rulesets/{environment}", self.base);
        let reply = self.http.send("GET", &url, &self.auth(), None, true)?;
        self.check_auth(&url, &reply)?;
        if reply.status != 200 {
            return Err(remote(format!("GET {url}"), &reply));
        }
        let value = reply.json();
        Ok(EnvState {
            live: u64_or_none(&value["live"]),
            latest: u64_or_none(&value["latest"]),
            kept: value["kept"]
                .as_array()
                .map(|k| k.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default(),
        })
    }

    fn put_prompts(&self, bodies: &[(String, Vec<u8>)], progress: &dyn Progress) -> Result<usize> {
        progress.begin(bodies.len() as u64, "prompt bodies");
        let mut created = 0;
        for (hash, body) in bodies {
            let url = format!("{}/admin/v1/prompts/{hash}", self.base);
            let mut headers = self.auth();
            headers.push(("Content-Type", String::from("text/plain; charset=utf-8")));
            // A body PUT is idempotent (same hash, same bytes), so it may be retried.
            let reply = self.http.send("PUT", &url, &headers, Some(body), true)?;
            self.check_auth(&url, &reply)?;
            match reply.status {
                201 => created += 1,
                200 => {}
                _ => return Err(remote(format!("PUT {url}"), &reply)),
            }
            progress.advance(1);
        }
        progress.end();
        Ok(created)
    }

    fn put_ruleset(
        &self,
        environment: &str,
        revision: u64,
        bytes: &[u8],
        expected_live: Option<u64>,
    ) -> Result<PointerMove> {
        self.put_ruleset_with(
            environment,
            revision,
            bytes,
            expected_live,
            &WriteIntent::default(),
        )
    }

    fn put_ruleset_with(
        &self,
        environment: &str,
        revision: u64,
        bytes: &[u8],
        expected_live: Option<u64>,
        intent: &WriteIntent,
    ) -> Result<PointerMove> {
        let environment = environment_name(environment)?;
        promptflag_contracts::revision::check(revision).map_err(contract_error)?;
        let mut query = intent_query(intent);
        if let Some(live) = expected_live {
            query.push(format!("expected_live={live}"));
        }
        let url = with_query(
            format!("{}/admin/v1/rulesets/{environment}", self.base),
            &query,
        );
        let mut headers = self.auth();
        let envelope = match &intent.approvals {
            Some(material) => Some(publish_with_approvals(material, bytes)?),
            None => None,
        };
        let (content_type, body) = match &envelope {
            Some(envelope) => (PUBLISH_WITH_APPROVALS, envelope.as_slice()),
            None => ("application/json", bytes),
        };
        headers.push(("Content-Type", String::from(content_type)));
        // Not retried: if a first attempt landed, a retry would be a stale revision.
        let reply = self.http.send("PUT", &url, &headers, Some(body), false)?;
        self.check_auth(&url, &reply)?;
        match reply.status {
            200 | 201 => {
                let value = reply.json();
                Ok(PointerMove {
                    revision: value["revision"].as_u64().unwrap_or(revision),
                    previous: u64_or_none(&value["previous"]),
                })
            }
            409 => Err(Error::Conflict {
                message: format!(
                    "{} (revision {revision} of {environment} was not published; another publisher changed it first — re-run to publish on top of it)",
                    reply.error_text()
                ),
            }),
            422 => {
                let value = reply.json();
                let problems: Vec<Problem> = value["problems"]
                    .as_array()
                    .map(|problems| problems.iter().map(Problem::from_json).collect())
                    .unwrap_or_default();
                let missing: Vec<String> = value["hashes"]
                    .as_array()
                    .map(|hashes| {
                        hashes
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                Err(Error::Rejected(Box::new(Rejection {
                    context: format!("PUT {url}"),
                    code: value["error"]["code"]
                        .as_str()
                        .unwrap_or("invalid_ruleset")
                        .to_string(),
                    message: value["error"]["message"]
                        .as_str()
                        .unwrap_or("the Worker refused the ruleset")
                        .to_string(),
                    problems,
                    missing,
                })))
            }
            _ => Err(remote(format!("PUT {url}"), &reply)),
        }
    }

    fn rollback(&self, environment: &str, to: Option<u64>) -> Result<PointerMove> {
        self.rollback_with(environment, to, &WriteIntent::default())
    }

    fn rollback_with(
        &self,
        environment: &str,
        to: Option<u64>,
        intent: &WriteIntent,
    ) -> Result<PointerMove> {
        let environment = environment_name(environment)?;
        let url = with_query(
            format!("{}/admin/v1/rulesets/{environment}/rollback", self.base),
            &intent_query(intent),
        );
        let body = match to {
            Some(revision) => json!({ "revision": revision }),
            None => json!({}),
        };
        let mut headers = self.auth();
        headers.push(("Content-Type", String::from("application/json")));
        let bytes = serde_json::to_vec(&body).map_err(|e| Error::Invalid(e.to_string()))?;
        // A rollback to a named revision is idempotent; "the one before live" is not.
        let reply = self
            .http
            .send("POST", &url, &headers, Some(&bytes), to.is_some())?;
        self.check_auth(&url, &reply)?;
        match reply.status {
            200 | 201 => {
                let value = reply.json();
                Ok(PointerMove {
                    revision: value["revision"].as_u64().or(to).unwrap_or(0),
                    previous: u64_or_none(&value["previous"]),
                })
            }
            404 | 400 => Err(Error::Invalid(format!(
                "rollback refused by {}: {}",
                self.base,
                reply.error_text()
            ))),
            409 => Err(Error::Conflict {
                message: reply.error_text(),
            }),
            _ => Err(remote(format!("POST {url}"), &reply)),
        }
    }

    fn fetch_ruleset(&self, environment: &str, revision: u64) -> Result<Option<Vec<u8>>> {
        // The admin API has no read of a kept revision; the public endpoint serves the live one.
        let url = format!("{}/v1/ruleset", self.base);
        let headers: Vec<(&str, String)> = self
            .read_key
            .as_ref()
            .map(|key| ("Authorization", format!("Bearer {key}")))
            .into_iter()
            .collect();
        let reply = self.http.send("GET", &url, &headers, None, true)?;
        if reply.status != 200
            || reply.revision_header.as_deref() != Some(revision.to_string().as_str())
        {
            return Ok(None);
        }
        let value = reply.json();
        if value["environment"].as_str() != Some(environment)
            || value["revision"].as_u64() != Some(revision)
        {
            return Ok(None);
        }
        Ok(Some(reply.body))
    }
}

/// The Cloudflare Workers KV REST API.
pub struct KvRest {
    base: String,
    account_id: String,
    namespace_id: String,
    token: String,
    http: Http,
}

/// `meta:<env>`, and its raw bytes for change detection.
type MetaRecord = (Meta, Option<Vec<u8>>);

/// The public Cloudflare API.
pub const CLOUDFLARE_API: &str = "https://api.cloudflare.com/client/v4";

/// Bulk writes take at most 10 000 pairs and 100 MB; stay well under.
const BULK_MAX_PAIRS: usize = 1_000;
const BULK_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Percent-encodes a KV key for a URL path segment.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl KvRest {
    /// A client for one namespace. `base` is normally [`CLOUDFLARE_API`].
    pub fn new(
        base: &str,
        account_id: &str,
        namespace_id: &str,
        token: &str,
        http: Http,
    ) -> KvRest {
        KvRest {
            base: base.trim_end_matches('/').to_string(),
            account_id: account_id.to_string(),
            namespace_id: namespace_id.to_string(),
            token: token.to_string(),
            http,
        }
    }

    fn namespace_url(&self) -> String {
        format!(
            "{}/accounts/{}/storage/kv/namespaces/{}",
            self.base, self.account_id, self.namespace_id
        )
    }

    fn auth(&self) -> Vec<(&'static str, String)> {
        vec![("Authorization", format!("Bearer {}", self.token))]
    }

    /// Reads one value; `None` when the key does not exist.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let url = format!("{}/values/{}", self.namespace_url(), encode_key(key));
        let reply = self.http.send("GET", &url, &self.auth(), None, true)?;
        match reply.status {
            200 => Ok(Some(reply.body)),
            404 => Ok(None),
            _ => Err(remote(format!("GET {url}"), &reply)),
        }
    }

    /// Writes key/value pairs with the bulk endpoint, retried on 429 and 5xx.
    pub fn put_bulk(&self, pairs: &[(String, Vec<u8>)]) -> Result<()> {
        let url = format!("{}/bulk", self.namespace_url());
        let items: Vec<Value> = pairs
            .iter()
            .map(|(key, value)| match std::str::from_utf8(value) {
                Ok(text) => json!({ "key": key, "value": text }),
                Err(_) => json!({ "key": key, "value": base64(value), "base64": true }),
            })
            .collect();
        let body = serde_json::to_vec(&items).map_err(|e| Error::Invalid(e.to_string()))?;
        let mut headers = self.auth();
        headers.push(("Content-Type", String::from("application/json")));
        let reply = self.http.send("PUT", &url, &headers, Some(&body), true)?;
        let value = reply.json();
        if reply.status != 200 || value["success"] == Value::Bool(false) {
            return Err(remote(format!("PUT {url}"), &reply));
        }
        if let Some(failed) = value["result"]["unsuccessful_keys"].as_array()
            && !failed.is_empty()
        {
            return Err(Error::Remote {
                context: format!("PUT {url}"),
                message: format!(
                    "KV did not store: {}",
                    failed
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Ok(())
    }

    /// `meta:<env>` and its raw bytes.
    fn meta(&self, environment: &str) -> Result<MetaRecord> {
        let key = keys::meta_key(environment_name(environment)?);
        let Some(bytes) = self.get(&key)? else {
            return Ok((Meta::default(), None));
        };
        let meta = Meta::parse(&bytes).map_err(|e| Error::Remote {
            context: key,
            message: e.to_string(),
        })?;
        Ok((meta, Some(bytes)))
    }

    fn live(&self, environment: &str) -> Result<Option<u64>> {
        let key = keys::pointer_key(environment_name(environment)?);
        let Some(bytes) = self.get(&key)? else {
            return Ok(None);
        };
        keys::parse_pointer(&String::from_utf8_lossy(&bytes))
            .map(Some)
            .map_err(|e| Error::Remote {
                context: key,
                message: e.to_string(),
            })
    }
}

impl KvRest {
    /// Refuses an environment the Worker's admin authority governs (`authority:<env>` is set):
    /// writing its KV keys directly would bypass the authority's revision check, its gates and
    /// its audit log.
    fn refuse_governed(&self, environment: &str) -> Result<()> {
        let environment = environment_name(environment)?;
        if self.get(&keys::authority_key(environment))?.is_some() {
            return Err(Error::Refused(format!(
                "{environment} is governed by the Worker's admin authority (authority:{environment} is set); \
                 publish, kill and roll back through the Worker (--worker URL --admin-token T), not the KV REST API"
            )));
        }
        Ok(())
    }
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Store for KvRest {
    fn describe(&self) -> String {
        format!(
            "kv namespace {} (account {})",
            self.namespace_id, self.account_id
        )
    }

    fn state(&self, environment: &str) -> Result<EnvState> {
        let (meta, _) = self.meta(environment)?;
        Ok(EnvState {
            live: self.live(environment)?,
            latest: meta.latest,
            kept: meta.kept,
        })
    }

    fn put_prompts(&self, bodies: &[(String, Vec<u8>)], progress: &dyn Progress) -> Result<usize> {
        progress.begin(bodies.len() as u64, "prompt bodies");
        let mut batch: Vec<(String, Vec<u8>)> = Vec::new();
        let mut batch_bytes = 0;
        for (hash, body) in bodies {
            if !batch.is_empty()
                && (batch.len() >= BULK_MAX_PAIRS || batch_bytes + body.len() > BULK_MAX_BYTES)
            {
                self.put_bulk(&batch)?;
                progress.advance(batch.len() as u64);
                batch.clear();
                batch_bytes = 0;
            }
            batch_bytes += body.len();
            batch.push((keys::prompt_key(hash), body.clone()));
        }
        if !batch.is_empty() {
            self.put_bulk(&batch)?;
            progress.advance(batch.len() as u64);
        }
        progress.end();
        // KV overwrites silently; the REST API cannot tell new from existing keys.
        Ok(bodies.len())
    }

    fn put_ruleset(
        &self,
        environment: &str,
        revision: u64,
        bytes: &[u8],
        expected_live: Option<u64>,
    ) -> Result<PointerMove> {
        self.refuse_governed(environment)?;
        let (meta, meta_before) = self.meta(environment)?;
        let live = self.live(environment)?;
        meta.check_publish(live, revision, expected_live.map(Some))
            .map_err(contract_error)?;
        let (next, _dropped) = meta.after_publish(revision, live).map_err(contract_error)?;
        let revision_key = keys::revision_key(environment, revision);
        if self.get(&revision_key)?.is_some() {
            return Err(Error::Conflict {
                message: format!(
                    "stale_revision: {revision_key} already exists; another publisher wrote it"
                ),
            });
        }
        self.put_bulk(&[(revision_key.clone(), bytes.to_vec())])?;
        // KV has no compare-and-swap: re-read meta right before claiming the revision, so a
        // publisher that raced through the same window is caught instead of overwritten.
        let (_, meta_now) = self.meta(environment)?;
        if meta_now != meta_before {
            return Err(Error::Conflict {
                message: format!(
                    "conflict: meta:{environment} changed while revision {revision} was being written; it was stored but not made live"
                ),
            });
        }
        // The revisions that fell out of `kept` stay behind: unreachable, not harmful.
        self.put_bulk(&[(keys::meta_key(environment), next.to_json().into_bytes())])?;
        self.put_bulk(&[(
            keys::pointer_key(environment),
            keys::pointer_value(revision).into_bytes(),
        )])?;
        Ok(PointerMove {
            revision,
            previous: live,
        })
    }

    fn rollback(&self, environment: &str, to: Option<u64>) -> Result<PointerMove> {
        self.refuse_governed(environment)?;
        let (meta, _) = self.meta(environment)?;
        let live = self.live(environment)?;
        let target = meta.rollback_target(live, to).map_err(contract_error)?;
        if self
            .get(&keys::revision_key(environment, target))?
            .is_none()
        {
            return Err(Error::Invalid(format!(
                "revision_not_kept: revision {target} of {environment} is no longer stored (kept: {:?})",
                meta.kept
            )));
        }
        let next = meta.after_rollback(live, to, target);
        self.put_bulk(&[(keys::meta_key(environment), next.to_json().into_bytes())])?;
        self.put_bulk(&[(
            keys::pointer_key(environment),
            keys::pointer_value(target).into_bytes(),
        )])?;
        Ok(PointerMove {
            revision: target,
            previous: live,
        })
    }

    fn fetch_ruleset(&self, environment: &str, revision: u64) -> Result<Option<Vec<u8>>> {
        self.get(&keys::revision_key(
            environment_name(environment)?,
            revision,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        assert_eq!(policy.delay(0, None), Duration::from_millis(100));
        assert_eq!(policy.delay(1, None), Duration::from_millis(200));
        assert_eq!(policy.delay(3, None), Duration::from_millis(800));
        assert_eq!(policy.delay(4, None), Duration::from_millis(1000));
        assert_eq!(policy.delay(40, None), Duration::from_millis(1000));
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(60))),
            Duration::from_millis(1000)
        );
    }

    #[test]
    fn keys_are_percent_encoded() {
        assert_eq!(encode_key("ruleset:dev:7"), "ruleset%3Adev%3A7");
    }

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }
}
