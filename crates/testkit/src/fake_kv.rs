//! A fake of the Cloudflare KV REST API: `GET …/values/<key>` and `PUT …/bulk`, with a switch
//! that answers the next N requests with `429` (and `Retry-After: 0`) to exercise retries.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::http::{Response, Server};

#[derive(Default)]
pub struct KvState {
    pub values: BTreeMap<String, Vec<u8>>,
    /// Answer this many coming requests with 429.
    pub throttle_next: u32,
    /// Requests answered with 429 so far.
    pub throttled: u32,
    /// Bulk writes, in order, as the list of keys each wrote.
    pub bulk_writes: Vec<Vec<String>>,
    /// The Authorization headers seen.
    pub auth_seen: Vec<String>,
}

pub struct FakeKv {
    pub server: Server,
    pub state: Arc<Mutex<KvState>>,
}

pub const ACCOUNT: &str = "acct-123";
pub const NAMESPACE: &str = "ns-456";

impl FakeKv {
    pub fn start() -> FakeKv {
        let state = Arc::new(Mutex::new(KvState::default()));
        let shared = state.clone();
        let server = Server::start(move |request| {
            let mut state = shared.lock().unwrap();
            state.auth_seen.push(
                request
                    .headers
                    .get("authorization")
                    .cloned()
                    .unwrap_or_default(),
            );
            if state.throttle_next > 0 {
                state.throttle_next -= 1;
                state.throttled += 1;
                return Response::json(429, json!({"success": false, "errors": [{"code": 10013, "message": "rate limited"}]})).header("Retry-After", "0");
            }
            let prefix = format!("/accounts/{ACCOUNT}/storage/kv/namespaces/{NAMESPACE}");
            let Some(rest) = request.path.strip_prefix(&prefix) else {
                return Response::json(
                    404,
                    json!({"success": false, "errors": [{"code": 10000, "message": "no such namespace"}]}),
                );
            };
            match (request.method.as_str(), rest) {
                ("GET", key) if key.starts_with("/values/") => {
                    let key = &key["/values/".len()..];
                    match state.values.get(key) {
                        Some(value) => Response::bytes(200, value.clone()),
                        None => Response::json(
                            404,
                            json!({"success": false, "errors": [{"code": 10009, "message": "key not found"}]}),
                        ),
                    }
                }
                ("PUT", "/bulk") => {
                    let items: Vec<Value> = match serde_json::from_slice(&request.body) {
                        Ok(items) => items,
                        Err(e) => {
                            return Response::json(
                                400,
                                json!({"success": false, "errors": [{"code": 10001, "message": e.to_string()}]}),
                            );
                        }
                    };
                    let mut keys = Vec::new();
                    for item in items {
                        let key = item["key"].as_str().unwrap().to_string();
                        assert_ne!(item["base64"], json!(true), "bodies here are UTF-8");
                        let value = item["value"].as_str().unwrap().as_bytes().to_vec();
                        state.values.insert(key.clone(), value);
                        keys.push(key);
                    }
                    let count = keys.len();
                    state.bulk_writes.push(keys);
                    Response::json(
                        200,
                        json!({"success": true, "errors": [], "messages": [], "result": {"successful_key_count": count, "unsuccessful_keys": []}}),
                    )
                }
                _ => Response::json(
                    404,
                    json!({"success": false, "errors": [{"code": 10000, "message": "no route"}]}),
                ),
            }
        });
        FakeKv { server, state }
    }
}
