//! promptflag-worker: the edge. A Cloudflare Worker (Rust through wasm-bindgen, behind the
//! JavaScript entry `worker/js/index.js`; `js` binds the runtime) that serves the Worker API over
//! the KV layout of `docs/interfaces.md`: OFREP evaluation, prompt resolution with the body
//! inline, immutable prompt bodies, the live ruleset, and the admin API that publishes to KV.
//!
//! The publish gate's signature decision is not in the Wasm: `worker/js/signatures.js` makes it
//! in JavaScript (with WebCrypto's Ed25519 and SHA-512), after `promptflag-governance`.
//!
//! The Worker is thin: evaluation is `promptflag-core`'s. The modules that decide what to answer
//! (`reply`, `http`, `input`, `ofrep`, `resolve`, `wire`, the checks in `admin`, `exposure`) hold
//! no JavaScript and are unit-tested natively; `app`, `cache`, `prompts` and the KV parts of
//! `admin` are the edges, tested through Miniflare by `worker/tests/*.test.mjs`.
//!
//! The crate is built into two Worker scripts, one Wasm each, chosen by cargo feature. The
//! serving Worker (`serving`, entry `worker/js/index.js`) calls two exports: [`serve`] is the
//! hot path, synchronous, one call per request, answering from what the isolate holds;
//! [`handle`] is the asynchronous path for everything that reads KV (a cache miss). The admin
//! authority (`authority`, entry `worker/js/authority.js`, a Worker of its own that the serving
//! Worker forwards `/admin/*` to) calls [`handle_admin`], which serves the admin API inside its
//! Durable Object. All return the response packed as `wire` describes. Each Wasm exports only its
//! script's functions, so the linker leaves out what only the other one reaches (the admin API
//! from the serving Wasm, the evaluation routes from the authority's); native builds take both
//! features.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// Tests may unwrap: a panic there is a failed assertion.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod access;
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
pub mod wire;

use wasm_bindgen::prelude::*;

/// The synchronous hot path: answers the request whose head (`wire`'s format) and body the entry
/// read, at `now` (milliseconds since the epoch), from the isolate's memory. The packed response
/// stays in the Wasm's memory until the next call, its length (`u32`, little-endian) before it,
/// and `serve` returns the address of that length, so the entry reads the answer through a view
/// instead of a copy. 0 when the request needs KV (the entry then calls [`handle`]).
#[cfg(feature = "serving")]
#[wasm_bindgen]
pub fn serve(head: &str, body: &[u8], now: f64) -> u32 {
    let packed = serve_packed(head, body, now);
    if packed.is_empty() {
        return 0;
    }
    ANSWER.with(|answer| {
        let mut answer = answer.borrow_mut();
        answer.clear();
        answer.extend_from_slice(&wire::length_u32(packed.len()).to_le_bytes());
        answer.extend_from_slice(&packed);
        // A 32-bit memory's addresses fit in a `u32`; a live allocation is never at 0.
        answer.as_ptr() as usize as u32
    })
}

#[cfg(feature = "serving")]
thread_local! {
    /// The latest answer of [`serve`], its length first, kept for the entry to read (and its
    /// room reused by the next).
    static ANSWER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// [`serve`]'s packed response; empty when the request needs KV.
#[cfg(feature = "serving")]
fn serve_packed(head: &str, body: &[u8], now: f64) -> Vec<u8> {
    let Some(url) = wire::url_of(head) else {
        return Vec::new();
    };
    let path = js::path_of(url);
    let Some(parts) = wire::RequestParts::from_head(head, &path, body) else {
        return Vec::new();
    };
    app::answer_from_memory(&parts, clock(now)).unwrap_or_default()
}

/// The asynchronous path: the runtime's `Request` as it is, `env`, the body if the entry has
/// read it already, and the clock. Resolves to the packed response; never rejects for any input
/// (every failure is a JSON response).
#[cfg(feature = "serving")]
#[wasm_bindgen]
pub async fn handle(
    request: js::IncomingRequest,
    env: JsValue,
    body: Option<Vec<u8>>,
    now: f64,
) -> Result<JsValue, JsValue> {
    let packed = app::handle(js::Incoming::new(request), env, body, clock(now)).await;
    Ok(js_sys::Uint8Array::from(packed.as_slice()).into())
}

/// The admin API inside the admin authority, the Durable Object the serving Worker forwards
/// `/admin/*` to: the runtime's `Request`, `env`, the object's storage, the clock, the signature
/// gate and the ruleset signer (`worker/js/signer.js`; `undefined` without
/// `RULESET_SIGNING_KEY`). Resolves to the packed response; never rejects for any input.
#[cfg(feature = "authority")]
#[wasm_bindgen]
pub async fn handle_admin(
    request: js::IncomingRequest,
    env: JsValue,
    storage: js::DurableStorage,
    now: f64,
    gate: JsValue,
    signer: JsValue,
) -> Result<JsValue, JsValue> {
    let packed = app::handle_admin(
        js::Incoming::new(request),
        env,
        js::Storage::new(storage),
        clock(now),
        gate.dyn_into().ok(),
        signer.dyn_into().ok(),
    )
    .await;
    Ok(js_sys::Uint8Array::from(packed.as_slice()).into())
}

/// The largest evaluation body the entry reads before calling [`serve`] (a larger one goes to
/// [`handle`], which refuses it without reading it).
#[cfg(feature = "serving")]
#[wasm_bindgen]
pub fn evaluation_body_limit() -> u32 {
    u32::try_from(input::limits::EVALUATION_BYTES).unwrap_or(u32::MAX)
}

/// `Date.now()` as whole milliseconds (a clock before 1970 reads as 0).
fn clock(now: f64) -> u64 {
    if now.is_finite() && now > 0.0 {
        now as u64
    } else {
        0
    }
}
