//! The few runtime APIs the Worker calls, bound directly with wasm-bindgen (or web-sys): Workers
//! KV (`get` as text, `put`, `delete`), the incoming request (method, URL, headers, body), the
//! outgoing `Response`, `fetch` for the exposure sink and Web Crypto's SHA-256.
//!
//! workers-rs wraps these too, but its KV builders serialize their options through
//! serde-wasm-bindgen and its streams through wasm-streams; these bindings keep that code out
//! of the Wasm (SPEC's size budget) and give every failure as a plain message.

use wasm_bindgen::prelude::*;
use worker::js_sys::{self, Object, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::web_sys;

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
    type IncomingRequest;

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
    method: worker::Method,
    url: String,
    path: String,
}

impl Incoming {
    pub fn new(request: worker::worker_sys::web_sys::Request) -> Incoming {
        let request: IncomingRequest = request.unchecked_into();
        let url = request.url();
        Incoming {
            headers: request.headers(),
            // As workers-rs reads it: case-insensitive, and a method it does not know is GET.
            method: worker::Method::from(request.method()),
            path: path_of(&url),
            url,
            request,
        }
    }

    pub fn method(&self) -> worker::Method {
        self.method.clone()
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
    pub fn from_env(env: &worker::Env, binding: &str) -> Option<Kv> {
        property(env.as_ref(), binding)
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
pub struct ResponseHeaders(web_sys::Headers);

impl ResponseHeaders {
    pub fn new() -> Result<ResponseHeaders, JsValue> {
        web_sys::Headers::new().map(ResponseHeaders)
    }

    /// Sets a header. Setting one fails only for an invalid name or value, which the Worker's
    /// never are, so a failure is ignored.
    pub fn set(&self, name: &str, value: &str) {
        let _ = self.0.set(name, value);
    }
}

/// A `Response` for the runtime; `body` `None` for none at all (`204`, `304`).
pub fn response(
    status: u16,
    headers: &ResponseHeaders,
    body: Option<&[u8]>,
) -> Result<web_sys::Response, JsValue> {
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    init.set_headers(&headers.0);
    match body {
        Some(bytes) => web_sys::Response::new_with_opt_buffer_source_and_init(
            Some(&Uint8Array::from(bytes)),
            &init,
        ),
        None => web_sys::Response::new_with_opt_buffer_source_and_init(None, &init),
    }
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
