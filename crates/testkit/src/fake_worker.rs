//! An in-memory fake of the Worker's admin API and `GET /v1/ruleset`, following
//! `docs/interfaces.md`: it checks body hashes, validates rulesets with core, and takes every
//! revision rule from `promptflag_contracts` as the Worker does (stale revisions and moved live
//! revisions are `409`, the last 10 revisions are kept, rollback only to kept revisions,
//! environment names checked). It answers with `X-Promptflag-Revision` and serves one
//! environment publicly, like the real Worker.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use promptflag_contracts::digest::sha256_hex;
use promptflag_contracts::{Meta, admin, keys};
use serde_json::{Value, json};

use crate::http::{Request, Response, Server};

#[derive(Default)]
pub struct EnvData {
    /// The stored revisions (those that fall out of `meta.kept` are deleted, as the Worker does).
    pub revisions: BTreeMap<u64, Vec<u8>>,
    pub live: Option<u64>,
    /// `meta:<env>`.
    pub meta: Meta,
}

#[derive(Default)]
pub struct State {
    pub prompts: BTreeMap<String, Vec<u8>>,
    pub envs: BTreeMap<String, EnvData>,
    /// Every pointer write, as (env, revision), in order.
    pub pointer_writes: Vec<(String, u64)>,
}

pub struct FakeWorker {
    pub server: Server,
    pub state: Arc<Mutex<State>>,
}

fn error(status: u16, code: &str, message: &str) -> Response {
    Response::json(
        status,
        json!({ "error": { "code": code, "message": message } }),
    )
}

/// A contract refusal as the Worker answers it.
fn refusal(error: &promptflag_contracts::Error) -> Response {
    use promptflag_contracts::Error as Contract;
    let status = match error {
        Contract::StaleRevision { .. } | Contract::LiveMoved { .. } => 409,
        Contract::RevisionNotKept { .. } => 404,
        Contract::RevisionOutOfRange { .. } | Contract::RevisionsExhausted { .. } => {
            return Response::json(
                422,
                json!({ "error": { "code": "invalid_ruleset", "message": "the ruleset does not validate" },
                        "problems": [{"path": "revision", "code": error.code(), "message": error.to_string()}] }),
            );
        }
        _ => 400,
    };
    let mut body = json!({ "error": { "code": error.code(), "message": error.to_string() } });
    match error {
        Contract::StaleRevision { highest, .. } => body["latest"] = json!(highest),
        Contract::LiveMoved { live, .. } => body["live"] = json!(live),
        Contract::RevisionNotKept { kept, .. } => body["kept"] = json!(kept),
        _ => {}
    }
    Response::json(status, body)
}

impl FakeWorker {
    pub fn start(token: &str, serving_env: &str) -> FakeWorker {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let token = format!("Bearer {token}");
        let serving_env = serving_env.to_string();
        let server = Server::start(move |request| {
            let mut state = shared.lock().unwrap();
            let response = handle(&mut state, &request, &token, &serving_env);
            let revision = state
                .envs
                .get(&serving_env)
                .and_then(|e| e.live)
                .map_or_else(|| String::from("none"), |r| r.to_string());
            response.header("X-Promptflag-Revision", &revision)
        });
        FakeWorker { server, state }
    }

    pub fn url(&self) -> &str {
        &self.server.url
    }
}

fn handle(state: &mut State, request: &Request, token: &str, serving_env: &str) -> Response {
    let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    if request.method == "GET" && request.path == "/v1/ruleset" {
        let env = state.envs.get(serving_env);
        return match env.and_then(|e| e.live.map(|live| e.revisions[&live].clone())) {
            Some(bytes) => Response::bytes(200, bytes).header("Content-Type", "application/json"),
            None => error(404, "no_ruleset", "nothing published"),
        };
    }
    if segments.first() != Some(&"admin") {
        return error(404, "not_found", "no such route");
    }
    if request.headers.get("authorization").map(String::as_str) != Some(token) {
        return error(401, "unauthorized", "bad token");
    }
    match (request.method.as_str(), segments.as_slice()) {
        ("PUT", ["admin", "v1", "prompts", hash]) => {
            if sha256_hex(&request.body) != *hash {
                return error(422, "hash_mismatch", "the body does not hash to the key");
            }
            let created = state
                .prompts
                .insert(hash.to_string(), request.body.clone())
                .is_none();
            Response::json(
                if created { 201 } else { 200 },
                json!({ "hash": hash, "created": created }),
            )
        }
        ("GET", ["admin", "v1", "rulesets", env]) => {
            if let Err(e) = keys::environment(env) {
                return refusal(&e);
            }
            let data = state.envs.get(*env);
            Response::json(
                200,
                json!({
                    "environment": env,
                    "live": data.and_then(|d| d.live),
                    "latest": data.and_then(|d| d.meta.latest),
                    "kept": data.map(|d| d.meta.kept.clone()).unwrap_or_default(),
                }),
            )
        }
        ("PUT", ["admin", "v1", "rulesets", env]) => {
            if let Err(e) = keys::environment(env) {
                return refusal(&e);
            }
            let expected_live = match request.query.get("expected_live") {
                Some(text) => match admin::parse_expected_live(text) {
                    Ok(expected) => Some(expected),
                    Err(e) => return refusal(&e),
                },
                None => None,
            };
            // A publish with approvals carries the ruleset's text inside; the fake has no
            // signature gate (as a Worker environment without `require_approvals`).
            let body = match request.headers.get("content-type").map(String::as_str) {
                Some("application/vnd.promptflag.publish+json") => {
                    match serde_json::from_slice::<Value>(&request.body) {
                        Ok(Value::Object(mut envelope)) => match envelope.remove("ruleset") {
                            Some(Value::String(text)) => text.into_bytes(),
                            _ => return error(400, "bad_request", "no ruleset text"),
                        },
                        _ => return error(400, "bad_request", "not a JSON object"),
                    }
                }
                _ => request.body.clone(),
            };
            let raw: promptflag_core::RawRuleset = match serde_json::from_slice(&body) {
                Ok(raw) => raw,
                Err(e) => return error(422, "invalid_ruleset", &e.to_string()),
            };
            if let Err(e) = promptflag_core::compile(&raw) {
                let problems: Vec<Value> = e
                    .problems()
                    .iter()
                    .map(|p| json!({"path": p.path, "code": p.code, "message": p.message}))
                    .collect();
                return Response::json(
                    422,
                    json!({ "error": { "code": "invalid_ruleset", "message": "invalid" }, "problems": problems }),
                );
            }
            if raw.environment != *env {
                return Response::json(
                    422,
                    json!({ "error": { "code": "invalid_ruleset", "message": "the ruleset is for another environment" },
                            "problems": [{"path": "environment", "code": "environment_mismatch", "message": "environment mismatch"}] }),
                );
            }
            let data = state.envs.get(*env);
            if let Err(e) = data
                .map(|d| &d.meta)
                .unwrap_or(&Meta::default())
                .check_publish(data.and_then(|d| d.live), raw.revision, expected_live)
            {
                return refusal(&e);
            }
            let missing: Vec<String> = raw
                .prompts
                .iter()
                .map(|(key, prompt)| prompt.body_hash(key).to_string())
                .filter(|h| !state.prompts.contains_key(h))
                .collect();
            if !missing.is_empty() {
                return Response::json(
                    422,
                    json!({ "error": { "code": "missing_prompt", "message": "bodies missing" }, "hashes": missing }),
                );
            }
            let data = state.envs.entry(env.to_string()).or_default();
            let (meta, dropped) = match data.meta.after_publish(raw.revision, data.live) {
                Ok(next) => next,
                Err(e) => return refusal(&e),
            };
            let previous = data.live;
            data.revisions.insert(raw.revision, body);
            for old in dropped {
                data.revisions.remove(&old);
            }
            data.meta = meta;
            data.live = Some(raw.revision);
            state.pointer_writes.push((env.to_string(), raw.revision));
            Response::json(
                201,
                json!({ "environment": env, "revision": raw.revision, "previous": previous }),
            )
        }
        ("POST", ["admin", "v1", "rulesets", env, "rollback"]) => {
            if let Err(e) = keys::environment(env) {
                return refusal(&e);
            }
            let requested = match admin::parse_rollback_request(&request.body) {
                Ok(requested) => requested,
                Err(e) => return refusal(&e),
            };
            let data = state.envs.entry(env.to_string()).or_default();
            let target = match data.meta.rollback_target(data.live, requested) {
                Ok(target) => target,
                Err(e) => return refusal(&e),
            };
            if !data.revisions.contains_key(&target) {
                return error(404, "revision_not_kept", "no longer stored");
            }
            let previous = data.live;
            data.meta = data.meta.after_rollback(previous, requested, target);
            data.live = Some(target);
            state.pointer_writes.push((env.to_string(), target));
            Response::json(
                200,
                json!({ "environment": env, "revision": target, "previous": previous }),
            )
        }
        _ => error(404, "not_found", "no such route"),
    }
}
