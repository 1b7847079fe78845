//! The request pipeline: read the configuration, get the serving ruleset from the cache, route,
//! and pack the reply for the JavaScript entry (`wire::pack`, the one place a [`Reply`] gets the
//! revision and source headers every response carries), with the request's exposures beside it
//! for the entry to send after the response.
//!
//! A request takes one of two ways. [`answer_from_memory`] is synchronous and answers from what
//! the isolate holds (the usual case: the ruleset within its TTL, the prompt body read before).
//! [`handle`] is the same routing behind the KV reads that a cache miss or the admin API needs.
//! Both go through [`respond`], so they answer alike.

use std::rc::Rc;

use wasm_bindgen::JsValue;

use crate::access::{self, CorsOrigins, Needs, ReadKeys};
use crate::cache::{self, Loaded, Served};
use crate::exposure::ExposureLog;
use crate::http::{if_none_match, percent_decode};
use crate::input::limits;
use crate::js::{self, BodyError, Incoming, Kv, Method, read_body};
use crate::reply::{Failure, Reply};
use crate::{admin, ofrep, prompts, resolve, wire};

/// The KV namespace binding (the layout of `docs/interfaces.md`).
pub const KV_BINDING: &str = "PROMPTFLAG_KV";
/// The ruleset cache TTL when `CACHE_TTL_MS` is unset or unreadable.
pub const DEFAULT_CACHE_TTL_MS: u64 = 10_000;

/// The Worker's settings (`wrangler.toml` vars and the `ADMIN_CREDENTIALS` and `READ_KEYS`
/// secrets).
#[derive(Debug, Clone)]
pub struct Config {
    /// `ENVIRONMENT`: which `ruleset:<env>` this Worker serves.
    pub environment: String,
    /// `CACHE_TTL_MS`.
    pub cache_ttl_millis: u64,
    /// `EXPOSURE_SINK_URL`; exposures are off when unset or empty.
    pub exposure_sink: Option<String>,
    /// `ADMIN_CREDENTIALS` (JSON, `promptflag_contracts::authority`); the admin API is off when
    /// unset or empty.
    pub admin_credentials: Option<String>,
    /// `ENVIRONMENT_POLICY` (JSON): the gates the admin authority enforces per environment.
    pub environment_policy: Option<String>,
    /// `READ_KEYS`, parsed once (see [`access`]); the error is what gated routes answer with.
    pub read_keys: Result<ReadKeys, String>,
    /// `CORS_ORIGINS`: the origins whose pages may call the evaluation routes.
    pub cors_origins: CorsOrigins,
    /// `RULESET_PUBLIC_KEY`, parsed: when set, only signed revisions are served (see `cache`).
    pub ruleset_public_key: Option<Result<[u8; 32], String>>,
}

thread_local! {
    static CONFIG: std::cell::OnceCell<Rc<Config>> = const { std::cell::OnceCell::new() };
}

impl Config {
    /// The configuration, read from `env` once per isolate: vars and secrets are fixed for an
    /// isolate's life (a change deploys new isolates).
    fn cached(env: &JsValue) -> Rc<Config> {
        CONFIG.with(|config| Rc::clone(config.get_or_init(|| Rc::new(Config::from_env(env)))))
    }

    /// The configuration if a request has read it already (the synchronous path has no `env`).
    fn known() -> Option<Rc<Config>> {
        CONFIG.with(|config| config.get().cloned())
    }

    fn from_env(env: &JsValue) -> Config {
        let text = |name: &str| {
            js::property(env, name)
                .and_then(|value| value.as_string())
                .filter(|value| !value.trim().is_empty())
        };
        Config {
            environment: text("ENVIRONMENT").unwrap_or_else(|| String::from("dev")),
            cache_ttl_millis: text("CACHE_TTL_MS")
                .and_then(|ttl| ttl.trim().parse().ok())
                .unwrap_or(DEFAULT_CACHE_TTL_MS),
            exposure_sink: text("EXPOSURE_SINK_URL"),
            admin_credentials: text("ADMIN_CREDENTIALS"),
            environment_policy: text("ENVIRONMENT_POLICY"),
            read_keys: ReadKeys::parse(text("READ_KEYS").as_deref()),
            cors_origins: CorsOrigins::parse(text("CORS_ORIGINS").as_deref()),
            ruleset_public_key: text("RULESET_PUBLIC_KEY").map(|key| cache::parse_public_key(&key)),
        }
    }
}

/// Answers a request from what the isolate already holds, synchronously: the configuration, a
/// ruleset still within its TTL and, for `/v1/resolve` and `/v1/prompts`, a prompt body kept in
/// memory. `None` when any of them is missing, or for the admin API (which always reads KV): the
/// request then takes [`handle`]. This is the Worker's hot path, one call from the JavaScript
/// entry with the request's parts already read (see [`wire`]).
pub fn answer_from_memory(request: &wire::RequestParts<'_>, now: u64) -> Option<Vec<u8>> {
    let config = Config::known()?;
    if is_admin(request.path) {
        return None;
    }
    let served = cache::fresh(now)?;
    answer(request, &config, &served, now)
}

/// What [`answer_from_memory`] does once it holds the configuration and a fresh ruleset: routes
/// the request with them and packs the response; `None` for the admin API and for a prompt body
/// not in memory. Reads no JavaScript state, so it runs natively (the request fuzz target drives
/// it with arbitrary request parts).
pub fn answer(
    request: &wire::RequestParts<'_>,
    config: &Config,
    served: &Served,
    now: u64,
) -> Option<Vec<u8>> {
    if is_admin(request.path) {
        return None;
    }
    let segments: Vec<&str> = request.path.split('/').skip(1).collect();
    match respond(request, &segments, config, served, now, None) {
        Step::Answered(packed) => Some(packed),
        Step::NeedsPrompt(_) => None,
    }
}

fn is_admin(path: &str) -> bool {
    path.split('/').nth(1) == Some("admin")
}

/// Handles any request, reading KV where needed: refreshes the ruleset when its TTL has passed,
/// reads a prompt body not yet in memory, and serves the admin API. Never fails and never
/// panics on any input. `body` is the request body when the entry has read it already (the
/// runtime's body can be read once); `None` reads it here, with the limits of [`read_body`].
pub async fn handle(request: Incoming, env: JsValue, body: Option<Vec<u8>>, now: u64) -> Vec<u8> {
    let config = Config::cached(&env);
    let kv = Kv::from_env(&env, KV_BINDING);
    let served = cache::current(
        kv.as_ref(),
        &config.environment,
        config.cache_ttl_millis,
        now,
        config.ruleset_public_key.as_ref(),
    )
    .await;
    let segments: Vec<&str> = request.path().split('/').skip(1).collect();
    if let ["admin", ..] = segments.as_slice() {
        // The admin API is served by the authority (`handle_admin`); the entry forwards it
        // there, so it reaches this only when the Worker has no binding for the authority.
        let reply = Reply::from(admin::without_authority(&config));
        return wire::pack(&reply, &served, None, None);
    }
    // Only POST routes read a body; the others answer the same whatever was sent.
    let body = match body {
        Some(body) => Ok(body),
        None if request.method() == Method::Post => {
            read_body(&request, limits::EVALUATION_BYTES).await
        }
        None => Ok(Vec::new()),
    };
    let if_none_match = request.header("If-None-Match");
    let authorization = request.header("Authorization");
    let origin = request.header("Origin");
    let parts = wire::RequestParts {
        method: request.method(),
        path: request.path(),
        if_none_match: if_none_match.as_deref(),
        authorization: authorization.as_deref(),
        origin: origin.as_deref().filter(|origin| !origin.is_empty()),
        body: body.as_deref().map_err(|error| *error),
    };
    let hash = match respond(&parts, &segments, &config, &served, now, None) {
        Step::Answered(packed) => return packed,
        Step::NeedsPrompt(hash) => hash,
    };
    let known = KnownPrompt {
        result: prompts::body(kv.as_ref(), &hash).await,
        hash,
    };
    match respond(&parts, &segments, &config, &served, now, Some(&known)) {
        Step::Answered(packed) => packed,
        // A route reads at most one prompt body, and it is now known; this is not reached.
        Step::NeedsPrompt(hash) => wire::pack(
            &Reply::from(Failure::unavailable(format!(
                "the body of prompt {hash} could not be read"
            ))),
            &served,
            allowed_origin(&parts, &segments, &config),
            None,
        ),
    }
}

/// Serves an admin request inside the admin authority (the Durable Object of the Worker
/// `promptflag-authority`, which the serving Worker forwards `/admin/*` to), with the object's
/// storage. Never fails and never panics on any input.
pub async fn handle_admin(
    request: Incoming,
    env: JsValue,
    storage: js::Storage,
    now: u64,
    gate: Option<js_sys::Function>,
    signer: Option<js_sys::Function>,
) -> Vec<u8> {
    let config = Config::cached(&env);
    let kv = Kv::from_env(&env, KV_BINDING);
    let segments: Vec<&str> = request.path().split('/').skip(1).collect();
    let reply = match segments.as_slice() {
        ["admin", rest @ ..] => admin::handle(
            &request,
            rest,
            &config,
            kv.as_ref(),
            &storage,
            now,
            admin::Hooks { gate, signer },
        )
        .await
        .unwrap_or_else(Reply::from),
        _ => Reply::from(Failure::not_found()),
    };
    // The authority serves no ruleset, so its answers carry no revision headers (and it loads no
    // ruleset to serve: its Wasm links none of that).
    wire::pack_admin(&reply)
}

/// A prompt body read from KV (or found missing, or failed) for a request's second pass.
struct KnownPrompt {
    hash: String,
    result: Result<Option<Rc<str>>, String>,
}

/// What one pass over a request came to.
enum Step {
    /// The packed response (see [`wire::pack`]).
    Answered(Vec<u8>),
    /// The route needs the prompt body with this hash, which is not in memory.
    NeedsPrompt(String),
}

/// Why a route stopped: an error to answer with, or a prompt body to fetch first.
enum Stop {
    Failure(Failure),
    NeedsPrompt(String),
}

impl From<Failure> for Stop {
    fn from(failure: Failure) -> Stop {
        Stop::Failure(failure)
    }
}

/// One pass: routes the request, records its exposures, and packs the response.
fn respond(
    request: &wire::RequestParts<'_>,
    segments: &[&str],
    config: &Config,
    served: &Served,
    now: u64,
    known: Option<&KnownPrompt>,
) -> Step {
    let mut exposures = match (&config.exposure_sink, &served.loaded) {
        (Some(_), Some(loaded)) => {
            ExposureLog::new(&config.environment, loaded.ruleset.revision(), now)
        }
        _ => ExposureLog::disabled(),
    };
    let reply = match route(
        request,
        segments,
        config,
        served,
        now,
        &mut exposures,
        known,
    ) {
        Ok(reply) => reply,
        Err(Stop::Failure(failure)) => Reply::from(failure),
        Err(Stop::NeedsPrompt(hash)) => return Step::NeedsPrompt(hash),
    };
    let batch = exposures.into_batch();
    let exposures = match (&config.exposure_sink, &batch) {
        (Some(sink), Some(batch)) => Some((sink.as_str(), batch.as_slice())),
        _ => None,
    };
    Step::Answered(wire::pack(
        &reply,
        served,
        allowed_origin(request, segments, config),
        exposures,
    ))
}

/// What a route needs from the caller (see [`access`]): a server key for the ruleset and the
/// prompt bodies, any read key for the evaluation routes, nothing for `/healthz` and paths that
/// name no route.
fn needs(segments: &[&str]) -> Needs {
    match segments {
        ["v1", "ruleset"] | ["v1", "prompts", _] => Needs::ServerKey,
        ["v1", "resolve", _] => Needs::AnyKey { ofrep: false },
        ["ofrep", "v1", ..] => Needs::AnyKey { ofrep: true },
        _ => Needs::Nothing,
    }
}

/// The `Access-Control-Allow-Origin` value for this request: CORS headers matter to browsers
/// only, which always send `Origin`, and only the evaluation routes (the ones a client key
/// reads) answer pages, from the origins `CORS_ORIGINS` lists.
fn allowed_origin<'a>(
    request: &wire::RequestParts<'_>,
    segments: &[&str],
    config: &'a Config,
) -> Option<&'a str> {
    match needs(segments) {
        Needs::AnyKey { .. } => config.cors_origins.allow(request.origin?),
        Needs::Nothing | Needs::ServerKey => None,
    }
}

/// A prompt body from memory, or from the second pass's KV read; `Stop::NeedsPrompt` when
/// neither has it yet.
fn prompt_text(hash: &str, known: Option<&KnownPrompt>) -> Result<Option<Rc<str>>, Stop> {
    if let Some(text) = prompts::remembered(hash) {
        return Ok(Some(text));
    }
    match known {
        Some(known) if known.hash == hash => known.result.clone().map_err(|error| {
            Stop::Failure(Failure::unavailable(format!(
                "KV failed while reading the prompt body: {error}"
            )))
        }),
        _ => Err(Stop::NeedsPrompt(String::from(hash))),
    }
}

fn route(
    request: &wire::RequestParts<'_>,
    segments: &[&str],
    config: &Config,
    served: &Served,
    now: u64,
    exposures: &mut ExposureLog,
    known: Option<&KnownPrompt>,
) -> Result<Reply, Stop> {
    let method = request.method;
    if method == Method::Options {
        return preflight(request, segments, config).map_err(Stop::Failure);
    }
    access::authorize(&config.read_keys, request.authorization, needs(segments))?;
    match segments {
        ["healthz"] => {
            only(&method, Method::Get, "GET")?;
            Ok(healthz(config, served))
        }
        ["v1", "ruleset"] => {
            only(&method, Method::Get, "GET")?;
            let loaded = loaded(served, false)?;
            if if_none_match(request.if_none_match, &loaded.etag) {
                return Ok(Reply::empty(304).with_header("ETag", loaded.etag.as_str()));
            }
            let reply = Reply::bytes(200, "application/json", loaded.raw.clone().into_bytes())
                .with_header("ETag", loaded.etag.as_str())
                .with_header("Cache-Control", "no-cache");
            Ok(match &loaded.signature {
                Some(signature) => {
                    reply.with_header(promptflag_contracts::signing::SIGNATURE_HEADER, signature)
                }
                None => reply,
            })
        }
        ["v1", "prompts", hash] => {
            only(&method, Method::Get, "GET")?;
            prompt_body(request, hash, known)
        }
        ["v1", "resolve", flag] => {
            only(&method, Method::Post, "POST")?;
            let loaded = loaded(served, false)?;
            let body = request.body.map_err(api_body_failure)?;
            let flag = percent_decode(flag);
            let decision = resolve::decide(&loaded.ruleset, &flag, body, now, exposures)?;
            let resolution = loaded.written(&resolve::key(&decision), || {
                match prompt_text(&decision.prompt.hash, known)? {
                    Some(text) => Ok(resolve::body(&loaded.ruleset, &decision, &text)),
                    None => Err(Stop::Failure(Failure::api(
                        503,
                        "prompt_unavailable",
                        format!("the body of prompt {} is not stored", decision.prompt.hash),
                    ))),
                }
            })?;
            Ok(resolve::reply(resolution.to_vec()))
        }
        ["ofrep", "v1", "evaluate", "flags"] => {
            only(&method, Method::Post, "POST")?;
            let loaded = loaded(served, true)?;
            let body = request
                .body
                .map_err(|error| ofrep_body_failure(error, None))?;
            Ok(ofrep::evaluate_all(
                loaded,
                body,
                request.if_none_match,
                now,
                exposures,
            )?)
        }
        ["ofrep", "v1", "evaluate", "flags", key] => {
            only(&method, Method::Post, "POST")?;
            let loaded = loaded(served, true)?;
            let key = percent_decode(key);
            let body = request
                .body
                .map_err(|error| ofrep_body_failure(error, Some(&key)))?;
            Ok(ofrep::evaluate_one(
                &loaded.ruleset,
                &key,
                body,
                now,
                exposures,
            )?)
        }
        ["ofrep", "v1", "configuration"] => {
            only(&method, Method::Get, "GET")?;
            Ok(ofrep::configuration(config.cache_ttl_millis))
        }
        _ => Err(Stop::Failure(Failure::not_found())),
    }
}

fn only(method: &Method, wanted: Method, allow: &'static str) -> Result<(), Failure> {
    if *method == wanted {
        Ok(())
    } else {
        Err(Failure::method_not_allowed(allow))
    }
}

fn loaded(served: &Served, ofrep_shape: bool) -> Result<&Loaded, Failure> {
    served.loaded.as_deref().ok_or_else(|| {
        let message = "no ruleset is available (KV has none and the fallback is invalid)";
        if ofrep_shape {
            Failure::ofrep(503, None, "GENERAL", message)
        } else {
            Failure::api(503, "no_ruleset", message)
        }
    })
}

fn api_body_failure(error: BodyError) -> Failure {
    match error {
        BodyError::TooLarge(limit) => Failure::too_large(limit),
        BodyError::Unreadable => Failure::bad_request("the request body could not be read"),
    }
}

fn ofrep_body_failure(error: BodyError, key: Option<&str>) -> Failure {
    match error {
        BodyError::TooLarge(limit) => Failure::ofrep(
            413,
            key,
            "GENERAL",
            format!("the request body is over the {limit}-byte limit"),
        ),
        BodyError::Unreadable => Failure::ofrep(
            400,
            key,
            "PARSE_ERROR",
            "the request body could not be read",
        ),
    }
}

fn prompt_body(
    request: &wire::RequestParts<'_>,
    hash: &str,
    known: Option<&KnownPrompt>,
) -> Result<Reply, Stop> {
    if !promptflag_contracts::keys::is_prompt_hash(hash) {
        return Err(Stop::Failure(Failure::api(
            400,
            "bad_hash",
            "a prompt is named by the SHA-256 of its body: 64 lowercase hex digits",
        )));
    }
    let etag = format!("\"{hash}\"");
    let immutable = "public, max-age=31536000, immutable";
    if if_none_match(request.if_none_match, &etag) {
        return Ok(Reply::empty(304)
            .with_header("ETag", etag)
            .with_header("Cache-Control", immutable));
    }
    match prompt_text(hash, known)? {
        Some(body) => Ok(Reply::bytes(
            200,
            "text/markdown; charset=utf-8",
            body.as_bytes().to_vec(),
        )
        .with_header("ETag", etag)
        .with_header("Cache-Control", immutable)),
        None => Err(Stop::Failure(Failure::api(
            404,
            "prompt_not_found",
            format!("no prompt body has the hash {hash}"),
        ))),
    }
}

fn healthz(config: &Config, served: &Served) -> Reply {
    let ruleset = served.loaded.as_ref().map(|loaded| &loaded.ruleset);
    Reply::json(
        200,
        &serde_json::json!({
            "status": "ok",
            "environment": config.environment,
            "revision": ruleset.map(|r| r.revision()),
            "ruleset_environment": ruleset.map(|r| r.environment()),
            "ruleset_source": served.source.as_str(),
            "flags": ruleset.map_or(0, |r| r.flag_keys().count()),
            "ruleset_signed": config.ruleset_public_key.is_some(),
            "last_refresh_error": cache::last_failure(),
        }),
    )
    .with_header("Cache-Control", "no-store")
}

/// A CORS preflight: allowed for the evaluation routes from the origins `CORS_ORIGINS` lists
/// (the key is checked on the request that follows; a browser sends none on a preflight), and
/// refused with a 403 for any other origin or route, so a page learns at once why its call
/// cannot go through.
fn preflight(
    request: &wire::RequestParts<'_>,
    segments: &[&str],
    config: &Config,
) -> Result<Reply, Failure> {
    if allowed_origin(request, segments, config).is_none() {
        return Err(Failure::api(
            403,
            "origin_not_allowed",
            "this origin may not call this route from a browser (the Worker's CORS_ORIGINS lists the allowed ones; only the evaluation routes answer pages)",
        ));
    }
    Ok(Reply::empty(204)
        .with_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        .with_header(
            "Access-Control-Allow-Headers",
            "Content-Type, If-None-Match, Authorization",
        )
        .with_header("Access-Control-Max-Age", "86400"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fallback() -> Served {
        Served {
            loaded: Some(Rc::new(
                Loaded::compile(crate::fallback::ruleset_json()).unwrap(),
            )),
            source: cache::Source::Fallback,
        }
    }

    fn config() -> Config {
        Config {
            environment: String::from("dev"),
            cache_ttl_millis: DEFAULT_CACHE_TTL_MS,
            exposure_sink: None,
            admin_credentials: None,
            environment_policy: None,
            read_keys: ReadKeys::parse(None),
            cors_origins: CorsOrigins::default(),
            ruleset_public_key: None,
        }
    }

    #[test]
    fn answer_routes_without_the_isolate_state_and_leaves_the_admin_api_to_handle() {
        let served = fallback();
        let health = wire::RequestParts::from_head("GET\n/healthz\n\n\n", "/healthz", b"").unwrap();
        let packed = answer(&health, &config(), &served, 0).unwrap();
        assert_eq!(u16::from_le_bytes([packed[0], packed[1]]), 200);

        let admin = wire::RequestParts::from_head(
            "PUT\n/admin/ruleset/dev\n\n\n",
            "/admin/ruleset/dev",
            b"",
        )
        .unwrap();
        assert_eq!(answer(&admin, &config(), &served, 0), None);
    }
}
