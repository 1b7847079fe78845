//! An in-memory fake of the Worker's admin API and `GET /v1/ruleset`, following
//! `docs/interfaces.md`: it checks body hashes, validates rulesets with core, refuses stale
//! revisions and moved live revisions with `409`, keeps the last 10 revisions, and answers with
//! `X-Promptflag-Revision`. It serves one environment publicly, like the real Worker.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use promptflag_authoring::digest::sha256_hex;
use serde_json::{Value, json};

use super::http::{Request, Response, Server};

#[derive(Default)]
pub struct EnvData {
    pub revisions: BTreeMap<u64, Vec<u8>>,
    pub live: Option<u64>,
    pub latest: Option<u64>,
    pub kept: Vec<u64>,
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
            let data = state.envs.get(*env);
            Response::json(
                200,
                json!({
                    "environment": env,
                    "live": data.and_then(|d| d.live),
                    "latest": data.and_then(|d| d.latest),
                    "kept": data.map(|d| d.kept.clone()).unwrap_or_default(),
                }),
            )
        }
        ("PUT", ["admin", "v1", "rulesets", env]) => {
            let raw: promptflag_core::RawRuleset = match serde_json::from_slice(&request.body) {
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
                return error(400, "bad_request", "environment mismatch");
            }
            let missing: Vec<String> = raw
                .prompts
                .iter()
                .map(|(h, _)| h.clone())
                .filter(|h| !state.prompts.contains_key(h))
                .collect();
            if !missing.is_empty() {
                return Response::json(
                    422,
                    json!({ "error": { "code": "missing_prompt", "message": "bodies missing" }, "hashes": missing }),
                );
            }
            let data = state.envs.entry(env.to_string()).or_default();
            if data.latest.is_some_and(|latest| raw.revision <= latest) {
                return error(
                    409,
                    "stale_revision",
                    &format!(
                        "revision {} is not above the latest {}",
                        raw.revision,
                        data.latest.unwrap_or(0)
                    ),
                );
            }
            if let Some(expected) = request.query.get("expected_live")
                && data.live.map(|l| l.to_string()).as_deref() != Some(expected.as_str())
            {
                return error(409, "conflict", "the live revision moved");
            }
            let previous = data.live;
            data.revisions.insert(raw.revision, request.body.clone());
            data.latest = Some(raw.revision);
            data.kept.push(raw.revision);
            if data.kept.len() > 10 {
                data.kept.remove(0);
            }
            data.live = Some(raw.revision);
            state.pointer_writes.push((env.to_string(), raw.revision));
            Response::json(
                201,
                json!({ "environment": env, "revision": raw.revision, "previous": previous }),
            )
        }
        ("POST", ["admin", "v1", "rulesets", env, "rollback"]) => {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(json!({}));
            let Some(data) = state.envs.get_mut(*env) else {
                return error(404, "revision_not_kept", "nothing published");
            };
            let target = match body["revision"].as_u64() {
                Some(target) => Some(target),
                None => data.live.and_then(|live| {
                    let position = data.kept.iter().position(|k| *k == live)?;
                    position.checked_sub(1).map(|p| data.kept[p])
                }),
            };
            match target {
                Some(target) if data.kept.contains(&target) => {
                    let previous = data.live;
                    data.live = Some(target);
                    state.pointer_writes.push((env.to_string(), target));
                    Response::json(
                        200,
                        json!({ "environment": env, "revision": target, "previous": previous }),
                    )
                }
                _ => error(404, "revision_not_kept", "not kept"),
            }
        }
        _ => error(404, "not_found", "no such route"),
    }
}
