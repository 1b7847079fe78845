//! The few runtime APIs the Worker calls, bound directly with wasm-bindgen: Workers KV (`get` as
//! text, `put`, `delete`), the incoming request (method, URL, headers, body), the outgoing
//! `Response` and its `Headers`, the fetch handler's `ctx.waitUntil`, `fetch` for the exposure
//! sink, Web Crypto's SHA-256 and `console.warn`; and, in [`shim`], what worker-build's entry
//! shim expects of the Wasm.
//!
//! None of workers-rs (the `worker` crate) is linked, although worker-build requires it as a
//! dependency: its wrappers add their own error types, option serializers (serde-wasm-bindgen)
//! and streams (wasm-streams), and it exports classes (streams, containers, R2 ranges) and a
//! panic hook that the Wasm would carry whether used or not, about 10 KB gzipped of the upload
//! (SPEC's size budget). These bindings give every failure as a plain message.

use js_sys::futures::JsFuture;
use js_sys::{Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// A KV namespace binding (or anything with the same methods, such as a test wrapper).
    #[derive(Debug, Clone)]
    pub type KvNamespace;

    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_as(this: &KvNamespace, key: &str, value_type: &str) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = put)]
    fn put_text(this: &KvNamespace, key: &str, value: &str) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = delete)]
    fn delete_key(this: &KvNamespace, key: &str) -> Result<Promise, JsValue>;

    type BodyStream;

    /// The runtime's incoming `Request`, bound for the few properties the Worker reads.
    #[derive(Debug)]
    pub type IncomingRequest;

    #[wasm_bindgen(method, getter)]
    fn method(this: &IncomingRequest) -> String;

    #[wasm_bindgen(method, getter)]
    fn url(this: &IncomingRequest) -> String;

    #[wasm_bindgen(method, getter)]
    fn headers(this: &IncomingRequest) -> RequestHeaders;

    #[wasm_bindgen(method, getter)]
    fn body(this: &IncomingRequest) -> Option<BodyStream>;

    #[wasm_bindgen(method, catch, js_name = arrayBuffer)]
    fn array_buffer(this: &IncomingRequest) -> Result<Promise, JsValue>;

    #[derive(Debug)]
    type RequestHeaders;

    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_header(this: &RequestHeaders, name: &str) -> Result<Option<String>, JsValue>;

    #[wasm_bindgen(method, catch, js_name = has)]
    fn has_header(this: &RequestHeaders, name: &str) -> Result<bool, JsValue>;

    #[wasm_bindgen(method, catch, js_name = getReader)]
    fn get_reader(this: &BodyStream) -> Result<BodyReader, JsValue>;

    type BodyReader;

    #[wasm_bindgen(method, catch)]
    fn read(this: &BodyReader) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn cancel(this: &BodyReader) -> Result<Promise, JsValue>;

    #[wasm_bindgen(catch, js_name = fetch)]
    fn global_fetch(url: &str, init: &Object) -> Result<Promise, JsValue>;

    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = digest, catch)]
    fn subtle_digest(algorithm: &str, data: &[u8]) -> Result<Promise, JsValue>;

    /// The fetch handler's `ctx`.
    #[derive(Debug)]
    pub type ExecutionContext;

    #[wasm_bindgen(method, js_name = waitUntil)]
    fn wait_until_promise(this: &ExecutionContext, promise: &Promise);

    #[wasm_bindgen(js_name = Headers)]
    #[derive(Debug)]
    type OutgoingHeaders;

    #[wasm_bindgen(constructor, js_class = Headers, catch)]
    fn new() -> Result<OutgoingHeaders, JsValue>;

    #[wasm_bindgen(method, js_class = Headers, js_name = set, catch)]
    fn set_header(this: &OutgoingHeaders, name: &str, value: &str) -> Result<(), JsValue>;

    /// The runtime's `Response`.
    #[wasm_bindgen(js_name = Response)]
    pub type OutgoingResponse;

    #[wasm_bindgen(constructor, js_class = Response, catch)]
    fn new(body: Option<&Uint8Array>, init: &Object) -> Result<OutgoingResponse, JsValue>;

    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(message: &str);
}

/// An HTTP method, read case-insensitively. A method not listed is `Other`, which no route
/// accepts (a 405), rather than GET as workers-rs reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Connect,
    Trace,
    Report,
    Other,
}

impl Method {
    fn from_name(name: &str) -> Method {
        match name.to_ascii_uppercase().as_str() {
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "CONNECT" => Method::Connect,
            "TRACE" => Method::Trace,
            "REPORT" => Method::Report,
            "GET" => Method::Get,
            _ => Method::Other,
        }
    }
}

impl ExecutionContext {
    /// Keeps the isolate alive until `future` finishes, after the response has gone.
    pub fn wait_until(&self, future: impl std::future::Future<Output = ()> + 'static) {
        self.wait_until_promise(&js_sys::futures::future_to_promise(async move {
            future.await;
            Ok(JsValue::UNDEFINED)
        }));
    }
}

/// Logs a warning to the runtime's console.
pub fn warn(message: &str) {
    console_warn(message);
}

/// A JavaScript error as text.
fn describe(error: JsValue) -> String {
    if let Some(error) = error.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    error
        .as_string()
        .unwrap_or_else(|| String::from("an unknown JavaScript error"))
}

async fn settle(promise: Result<Promise, JsValue>) -> Result<JsValue, String> {
    JsFuture::from(promise.map_err(describe)?)
        .await
        .map_err(describe)
}

/// A property of a JavaScript object (an `env` binding or var).
pub fn property(object: &JsValue, name: &str) -> Option<JsValue> {
    Reflect::get(object, &JsValue::from_str(name))
        .ok()
        .filter(|value| !value.is_undefined() && !value.is_null())
}

/// The incoming request: its method and path read once, its headers and body on demand.
///
/// workers-rs' `Request` reads more on every request (the `cf` object among it, each property a
/// crossing into JavaScript) and links its own conversions; this reads what the routes need.
#[derive(Debug)]
pub struct Incoming {
    request: IncomingRequest,
    headers: RequestHeaders,
    method: Method,
    url: String,
    path: String,
}

impl Incoming {
    pub fn new(request: IncomingRequest) -> Incoming {
        let url = request.url();
        Incoming {
            headers: request.headers(),
            // Case-insensitive; a method not listed in `Method` is `Other` (a 405 on every route).
            method: Method::from_name(&request.method()),
            path: path_of(&url),
            url,
            request,
        }
    }

    pub fn method(&self) -> Method {
        self.method
    }

    /// The URL's path, without query or fragment.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The URL as received.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A header's value; `None` when absent.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get_header(name).ok().flatten()
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.headers.has_header(name).unwrap_or(false)
    }
}

/// The path of a request URL, as workers-rs' `Request::path` gives it.
fn path_of(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return if url.starts_with('/') {
            String::from(url)
        } else {
            format!("/{url}")
        };
    };
    let host_start = scheme_end + 3;
    match url[host_start..].find('/') {
        Some(index) => {
            let path = &url[host_start + index..];
            String::from(&path[..path.find(['?', '#']).unwrap_or(path.len())])
        }
        None => String::from("/"),
    }
}

/// Workers KV, text values only.
#[derive(Debug, Clone)]
pub struct Kv(KvNamespace);

impl Kv {
    /// The namespace bound as `binding` in `env`, if it is bound to an object.
    pub fn from_env(env: &JsValue, binding: &str) -> Option<Kv> {
        property(env, binding)
            .filter(JsValue::is_object)
            .map(|value| Kv(value.unchecked_into()))
    }

    /// The value of `key` as text; `None` when absent.
    pub async fn text(&self, key: &str) -> Result<Option<String>, String> {
        Ok(settle(self.0.get_as(key, "text")).await?.as_string())
    }

    pub async fn put(&self, key: &str, value: &str) -> Result<(), String> {
        settle(self.0.put_text(key, value)).await.map(drop)
    }

    pub async fn delete(&self, key: &str) -> Result<(), String> {
        settle(self.0.delete_key(key)).await.map(drop)
    }
}

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Over the limit (the limit, in bytes).
    TooLarge(usize),
    /// The stream failed.
    Unreadable,
}

/// A request body's bytes, refusing a `Content-Length` over `limit` before reading and cutting
/// a streamed body off as soon as it passes `limit`. Empty when there is no body.
pub async fn read_body(request: &Incoming, limit: usize) -> Result<Vec<u8>, BodyError> {
    let declared = request
        .header("Content-Length")
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    if declared.is_some() {
        // The size is known and within the limit: one read of the whole body (far cheaper than
        // a read per chunk, each crossing into JavaScript and back).
        let buffer = settle(request.request.array_buffer())
            .await
            .map_err(|_| BodyError::Unreadable)?;
        let bytes = Uint8Array::new(&buffer);
        if bytes.length() as usize > limit {
            return Err(BodyError::TooLarge(limit));
        }
        return Ok(bytes.to_vec());
    }
    let Some(stream) = request.request.body() else {
        return Ok(Vec::new());
    };
    let reader = stream.get_reader().map_err(|_| BodyError::Unreadable)?;
    let mut body = Vec::new();
    loop {
        let chunk = settle(reader.read())
            .await
            .map_err(|_| BodyError::Unreadable)?;
        if property(&chunk, "done").is_some_and(|done| done.is_truthy()) {
            return Ok(body);
        }
        let Some(bytes) = property(&chunk, "value").and_then(|v| v.dyn_into::<Uint8Array>().ok())
        else {
            return Err(BodyError::Unreadable);
        };
        let length = bytes.length() as usize;
        if body.len() + length > limit {
            // Tell the runtime the rest is not wanted; the answer is 413 either way.
            let _ = reader.cancel();
            return Err(BodyError::TooLarge(limit));
        }
        let start = body.len();
        body.resize(start + length, 0);
        bytes.copy_to(&mut body[start..]);
    }
}

/// The headers of a response being built.
#[derive(Debug)]
pub struct ResponseHeaders(OutgoingHeaders);

impl ResponseHeaders {
    pub fn new() -> Result<ResponseHeaders, JsValue> {
        OutgoingHeaders::new().map(ResponseHeaders)
    }

    /// Sets a header. Setting one fails only for an invalid name or value, which the Worker's
    /// never are, so a failure is ignored.
    pub fn set(&self, name: &str, value: &str) {
        let _ = self.0.set_header(name, value);
    }
}

/// A `Response` for the runtime; `body` `None` for none at all (`204`, `304`).
pub fn response(
    status: u16,
    headers: &ResponseHeaders,
    body: Option<&[u8]>,
) -> Result<OutgoingResponse, JsValue> {
    let init = Object::new();
    Reflect::set(&init, &JsValue::from_str("status"), &JsValue::from(status))?;
    Reflect::set(&init, &JsValue::from_str("headers"), &headers.0)?;
    let body = body.map(Uint8Array::from);
    OutgoingResponse::new(body.as_ref(), &init)
}

/// POSTs a JSON body; the status on an answer, a message on a failure.
pub async fn post_json(url: &str, body: &[u8]) -> Result<u16, String> {
    let headers = Object::new();
    let init = Object::new();
    let set = |object: &Object, name: &str, value: &JsValue| {
        Reflect::set(object, &JsValue::from_str(name), value).map(drop)
    };
    set(
        &headers,
        "content-type",
        &JsValue::from_str("application/json"),
    )
    .and_then(|()| set(&init, "method", &JsValue::from_str("POST")))
    .and_then(|()| set(&init, "headers", &headers))
    .and_then(|()| set(&init, "body", &Uint8Array::from(body)))
    .map_err(describe)?;
    let response = settle(global_fetch(url, &init)).await?;
    let status = property(&response, "status")
        .and_then(|status| status.as_f64())
        .unwrap_or(0.0);
    // The sink's answer body is not read; cancel it so the runtime can release the connection.
    if let Some(body) = property(&response, "body") {
        let stream: BodyStream = body.unchecked_into();
        if let Ok(reader) = stream.get_reader() {
            let _ = reader.cancel();
        }
    }
    Ok(status as u16)
}

/// SHA-256 through the runtime's Web Crypto (no hashing code in the Wasm), as lowercase hex.
pub async fn sha256_hex(data: &[u8]) -> Result<String, String> {
    let digest = settle(subtle_digest("SHA-256", data)).await?;
    Ok(crate::http::hex(&Uint8Array::new(&digest).to_vec()))
}

/// Milliseconds since the epoch, from the runtime's clock.
pub fn now_millis() -> u64 {
    js_sys::Date::now() as u64
}

/// What worker-build's shim (`shim.js` of worker-build 0.8.7) expects of the Wasm besides the
/// handlers, as workers-rs' `init` module provides it: the object
/// `globalThis.__worker_init_state` (`{criticalError, instanceId}`), returned by the export
/// `__worker_init_state`, and a start function that counts instances and asks wasm-bindgen to
/// reset the instance after a trap. The shim sets `criticalError` when a call ends in a
/// `WebAssembly.RuntimeError` and then resets the instance before the next request.
/// workers-rs also installs a panic hook that logs the message. The Worker is built with
/// immediate-abort panics, which run no hook, so it installs none (a build against the
/// prebuilt std, where hooks would run, does not log the message either; the trap is logged
/// and recovered from all the same).
pub mod shim {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(inline_js = "
export const state = globalThis.__worker_init_state = { criticalError: false, instanceId: 0 };
")]
    extern "C" {
        type InitState;

        #[wasm_bindgen(thread_local_v2, js_name = state)]
        static INIT_STATE: InitState;

        #[wasm_bindgen(method, getter, js_name = instanceId)]
        fn instance_id(this: &InitState) -> u32;

        #[wasm_bindgen(method, setter, js_name = instanceId)]
        fn set_instance_id(this: &InitState, value: u32);
    }

    fn on_abort() {
        wasm_bindgen::handler::schedule_reinit();
    }

    #[wasm_bindgen(start, private)]
    fn init() {
        INIT_STATE.with(|state| state.set_instance_id(state.instance_id().wrapping_add(1)));
        wasm_bindgen::handler::set_on_abort(on_abort);
    }

    #[wasm_bindgen(js_name = "__worker_init_state")]
    pub fn worker_init_state() -> JsValue {
        INIT_STATE.with(|state| JsValue::from(state))
    }
}

#[cfg(test)]
mod tests {
    use super::path_of;

    #[test]
    fn paths_are_read_from_urls_as_workers_rs_reads_them() {
        for (url, path) in [
            ("https://example.com/", "/"),
            ("https://example.com", "/"),
            (
                "https://example.com/v1/resolve/a%3Ab?x=1#f",
                "/v1/resolve/a%3Ab",
            ),
            (
                "http://127.0.0.1:8787/ofrep/v1/evaluate/flags",
                "/ofrep/v1/evaluate/flags",
            ),
            ("https://example.com/a#frag?not-a-query", "/a"),
            ("/healthz", "/healthz"),
            ("healthz", "/healthz"),
        ] {
            assert_eq!(path_of(url), path, "{url}");
        }
    }
}
