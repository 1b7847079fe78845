//! promptflag-worker: the edge. A workers-rs Worker that serves SPEC §5 over the KV layout of
//! SPEC §4 (see `docs/interfaces.md`): OFREP evaluation, prompt resolution with the body inline,
//! immutable prompt bodies, the live ruleset, and the admin API that publishes to KV.
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
use worker::worker_sys::{self, web_sys};
use worker::{Context, Env};

/// The fetch handler, exported as workers-rs' `#[event(fetch)]` exports it (worker-build's shim
/// calls `fetch(request, env, ctx)`), but without that macro's glue: the handler never fails
/// (every failure is already a JSON response), so the glue's paths that turn a `worker::Error`
/// into a logged 500 only added code. It takes the runtime's `Request` as it is and reads it
/// through `js::Incoming`. (`js_sys` and `wasm_bindgen_futures` are named through workers-rs,
/// as its macro names them: worker-build has wasm-bindgen drive the future with `js_sys`.)
#[wasm_bindgen(js_sys = ::worker::js_sys, wasm_bindgen_futures = ::worker::wasm_bindgen_futures)]
pub async fn fetch(
    request: web_sys::Request,
    env: Env,
    context: worker_sys::Context,
) -> Result<JsValue, JsValue> {
    let response = app::handle(js::Incoming::new(request), env, Context::new(context)).await?;
    Ok(response.into())
}
