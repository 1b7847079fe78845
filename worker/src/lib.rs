//! promptflag-worker: the edge. A Cloudflare Worker (Rust through wasm-bindgen, built by
//! worker-build; `js` binds the runtime) that serves SPEC §5 over the KV layout of SPEC §4 (see
//! `docs/interfaces.md`): OFREP evaluation, prompt resolution with the body inline, immutable
//! prompt bodies, the live ruleset, and the admin API that publishes to KV.
//!
//! The Worker is thin: evaluation is `promptflag-core`'s. The modules that decide what to answer
//! (`reply`, `http`, `input`, `ofrep`, `resolve`, the checks in `admin`, `exposure`) hold no
//! JavaScript and are unit-tested natively; `app`, `cache`, `prompts`, `body` and the KV parts of
//! `admin` are the edges, tested through Miniflare by `worker/tests/*.test.mjs`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// Tests may unwrap: a panic there is a failed assertion.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod app;
pub mod cache;
pub mod exposure;
pub mod fallback;
pub mod http;
pub mod input;
pub mod js;
pub mod ofrep;
pub mod prompts;
pub mod reply;
pub mod resolve;

use wasm_bindgen::prelude::*;

/// The fetch handler. worker-build's shim calls `fetch(request, env, ctx)` for each request.
/// It never fails: every failure is already a JSON response (`Err` only if the runtime refused
/// to build the response). It takes the runtime's `Request` as it is and reads it through
/// `js::Incoming`.
#[wasm_bindgen]
pub async fn fetch(
    request: js::IncomingRequest,
    env: JsValue,
    context: js::ExecutionContext,
) -> Result<JsValue, JsValue> {
    let response = app::handle(js::Incoming::new(request), env, context).await?;
    Ok(response.into())
}
