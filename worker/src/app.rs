//! The request pipeline: read the configuration, get the serving ruleset from the cache, route,
//! turn the outcome into a response (the one place a [`Reply`] becomes the runtime's `Response`,
//! adding the revision and source headers every response carries), and hand the exposures to
//! `wait_until`.

use wasm_bindgen::JsValue;

use crate::cache::{self, Loaded, Served};
use crate::exposure::{self, ExposureLog};
use crate::http::{if_none_match, percent_decode};
use crate::input::limits;
use crate::js::{
    self, BodyError, ExecutionContext, Incoming, Kv, Method, OutgoingResponse, read_body,
};
use crate::reply::{Failure, Outcome, Reply};
use crate::{admin, ofrep, prompts, resolve};

/// The KV namespace binding (SPEC §4's layout).
pub const KV_BINDING: &str = "PROMPTFLAG_KV";
/// The ruleset cache TTL when `CACHE_TTL_MS` is unset or unreadable.
pub const DEFAULT_CACHE_TTL_MS: u64 = 10_000;

/// The Worker's settings (`wrangler.toml` vars and the `ADMIN_TOKEN` secret).
#[derive(Debug, Clone)]
pub struct Config {
    /// `ENVIRONMENT`: which `ruleset:<env>` this Worker serves.
    pub environment: String,
    /// `CACHE_TTL_MS`.
    pub cache_ttl_millis: u64,
    /// `EXPOSURE_SINK_URL`; exposures are off when unset or empty.
    pub exposure_sink: Option<String>,
    /// `ADMIN_TOKEN`; the admin API is off when unset or empty.
    pub admin_token: Option<String>,
}

thread_local! {
    static CONFIG: std::cell::OnceCell<std::rc::Rc<Config>> = const { std::cell::OnceCell::new() };
}

impl Config {
    /// The configuration, read from `env` once per isolate: vars and secrets are fixed for an
    /// isolate's life (a change deploys new isolates).
    fn cached(env: &JsValue) -> std::rc::Rc<Config> {
        CONFIG.with(|config| {
            std::rc::Rc::clone(config.get_or_init(|| std::rc::Rc::new(Config::from_env(env))))
        })
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
            admin_token: text("ADMIN_TOKEN"),
        }
    }
}

/// Handles one request; never fails and never panics on any input (`Err` only if the runtime
/// refuses to build the response; see [`into_response`]).
pub async fn handle(
    request: Incoming,
    env: JsValue,
    context: ExecutionContext,
) -> Result<OutgoingResponse, JsValue> {
    let now = js::now_millis();
    let config = Config::cached(&env);
    let kv = Kv::from_env(&env, KV_BINDING);
    let served = cache::current(
        kv.as_ref(),
        &config.environment,
        config.cache_ttl_millis,
        now,
    )
    .await;
    let mut exposures = match (&config.exposure_sink, &served.loaded) {
        (Some(_), Some(loaded)) => {
            ExposureLog::new(&config.environment, loaded.ruleset.revision(), now)
        }
        _ => ExposureLog::disabled(),
    };
    let segments: Vec<&str> = request.path().split('/').skip(1).collect();
    // CORS headers matter to browsers only, which always send `Origin`; the admin API gets none.
    let cors = segments.first() != Some(&"admin") && request.has_header("Origin");
    let outcome = route(
        &request,
        &segments,
        &config,
        kv.as_ref(),
        &served,
        now,
        &mut exposures,
    )
    .await;
    let reply = outcome.unwrap_or_else(Reply::from);
    if let (Some(sink), Some(batch)) = (&config.exposure_sink, exposures.into_batch()) {
        context.wait_until(exposure::send(sink.clone(), batch));
    }
    into_response(reply, &served, cors)
}

async fn route(
    request: &Incoming,
    segments: &[&str],
    config: &Config,
    kv: Option<&Kv>,
    served: &Served,
    now: u64,
    exposures: &mut ExposureLog,
) -> Outcome {
    let method = request.method();
    if let ["admin", rest @ ..] = segments {
        return admin::handle(request, rest, config.admin_token.as_deref(), kv).await;
    }
    if method == Method::Options {
        return Ok(preflight());
    }
    match segments {
        ["healthz"] => {
            only(&method, Method::Get, "GET")?;
            Ok(healthz(config, served))
        }
        ["v1", "ruleset"] => {
            only(&method, Method::Get, "GET")?;
            let loaded = loaded(served, false)?;
            let inm = request.header("If-None-Match");
            if if_none_match(inm.as_deref(), &loaded.etag) {
                return Ok(Reply::empty(304).with_header("ETag", loaded.etag.as_str()));
            }
            Ok(
                Reply::bytes(200, "application/json", loaded.raw.clone().into_bytes())
                    .with_header("ETag", loaded.etag.as_str())
                    .with_header("Cache-Control", "no-cache"),
            )
        }
        ["v1", "prompts", hash] => {
            only(&method, Method::Get, "GET")?;
            prompt_body(request, hash, kv).await
        }
        ["v1", "resolve", flag] => {
            only(&method, Method::Post, "POST")?;
            let loaded = loaded(served, false)?;
            let body = read_body(request, limits::EVALUATION_BYTES)
                .await
                .map_err(api_body_failure)?;
            let flag = percent_decode(flag);
            let decision = resolve::decide(&loaded.ruleset, &flag, &body, now, exposures)?;
            let text = match prompts::body(kv, &decision.prompt.hash).await {
                Ok(Some(text)) => text,
                Ok(None) => {
                    return Err(Failure::api(
                        503,
                        "prompt_unavailable",
                        format!("the body of prompt {} is not stored", decision.prompt.hash),
                    ));
                }
                Err(error) => {
                    return Err(Failure::unavailable(format!(
                        "KV failed while reading the prompt body: {error}"
                    )));
                }
            };
            Ok(resolve::reply(&loaded.ruleset, &decision, &text))
        }
        ["ofrep", "v1", "evaluate", "flags"] => {
            only(&method, Method::Post, "POST")?;
            let loaded = loaded(served, true)?;
            let body = read_body(request, limits::EVALUATION_BYTES)
                .await
                .map_err(|error| ofrep_body_failure(error, None))?;
            let inm = request.header("If-None-Match");
            ofrep::evaluate_all(
                &loaded.ruleset,
                &loaded.etag,
                &body,
                inm.as_deref(),
                now,
                exposures,
            )
        }
        ["ofrep", "v1", "evaluate", "flags", key] => {
            only(&method, Method::Post, "POST")?;
            let loaded = loaded(served, true)?;
            let key = percent_decode(key);
            let body = read_body(request, limits::EVALUATION_BYTES)
                .await
                .map_err(|error| ofrep_body_failure(error, Some(&key)))?;
            ofrep::evaluate_one(&loaded.ruleset, &key, &body, now, exposures)
        }
        ["ofrep", "v1", "configuration"] => {
            only(&method, Method::Get, "GET")?;
            Ok(ofrep::configuration(config.cache_ttl_millis))
        }
        _ => Err(Failure::not_found()),
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

async fn prompt_body(request: &Incoming, hash: &str, kv: Option<&Kv>) -> Outcome {
    if !promptflag_contracts::keys::is_prompt_hash(hash) {
        return Err(Failure::api(
            400,
            "bad_hash",
            "a prompt is named by the SHA-256 of its body: 64 lowercase hex digits",
        ));
    }
    let etag = format!("\"{hash}\"");
    let immutable = "public, max-age=31536000, immutable";
    if if_none_match(request.header("If-None-Match").as_deref(), &etag) {
        return Ok(Reply::empty(304)
            .with_header("ETag", etag)
            .with_header("Cache-Control", immutable));
    }
    match prompts::body(kv, hash).await {
        Ok(Some(body)) => Ok(Reply::bytes(
            200,
            "text/markdown; charset=utf-8",
            body.as_bytes().to_vec(),
        )
        .with_header("ETag", etag)
        .with_header("Cache-Control", immutable)),
        Ok(None) => Err(Failure::api(
            404,
            "prompt_not_found",
            format!("no prompt body has the hash {hash}"),
        )),
        Err(error) => Err(Failure::unavailable(format!(
            "KV failed while reading the prompt body: {error}"
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
        }),
    )
    .with_header("Cache-Control", "no-store")
}

fn preflight() -> Reply {
    Reply::empty(204)
        .with_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        .with_header(
            "Access-Control-Allow-Headers",
            "Content-Type, If-None-Match, Authorization",
        )
        .with_header("Access-Control-Max-Age", "86400")
}

/// The one conversion from [`Reply`] to the runtime's `Response` (built through `js`, not
/// workers-rs' `Response` and `Headers`, which wrap the same calls in their own error types).
/// `Err` only if the runtime refuses the response, which these never are; the fetch export then
/// rejects and the runtime answers 500.
fn into_response(reply: Reply, served: &Served, cors: bool) -> Result<OutgoingResponse, JsValue> {
    let headers = js::ResponseHeaders::new()?;
    if let Some(content_type) = reply.content_type {
        headers.set("Content-Type", content_type);
    }
    for (name, value) in &reply.headers {
        headers.set(name, value);
    }
    headers.set("X-Promptflag-Revision", &served.revision_header());
    headers.set("X-Promptflag-Ruleset-Source", served.source.as_str());
    if cors {
        headers.set("Access-Control-Allow-Origin", "*");
        headers.set(
            "Access-Control-Expose-Headers",
            "ETag, X-Promptflag-Revision, X-Promptflag-Ruleset-Source",
        );
    }
    let body = !(reply.body.is_empty() && matches!(reply.status, 204 | 304));
    js::response(
        reply.status,
        &headers,
        body.then_some(reply.body.as_slice()),
    )
}
