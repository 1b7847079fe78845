//! The few runtime APIs the Worker's asynchronous path calls, bound directly with wasm-bindgen:
//! Workers KV (`get` as text, `put` with or without metadata, `getWithMetadata`, `delete`), a
//! Durable Object's storage (`get`, `put` of several keys at once, `delete`), the incoming
//! request (method, URL, headers, body), Web Crypto's SHA-256 and Ed25519 verification, and
//! `console.warn`. The hot path calls none of them: the JavaScript entry hands it the request's
//! parts and builds the `Response` itself (`wire`).
//!
//! workers-rs (the `worker` crate) is not used: its wrappers add their own error types, option
//! serializers and streams, and it exports classes (streams, containers, R2 ranges) and a panic
//! hook that the Wasm would carry whether used or not. These bindings give every failure as a
//! plain message.

use js_sys::futures::JsFuture;
use js_sys::{Promise, Reflect, Uint8Array};
use std::borrow::Cow;
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

    #[wasm_bindgen(method, catch, js_name = put)]
    fn put_text_with(
        this: &KvNamespace,
        key: &str,
        value: &str,
        options: &js_sys::Object,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = getWithMetadata)]
    fn get_with_metadata(
        this: &KvNamespace,
        key: &str,
        value_type: &str,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = delete)]
    fn delete_key(this: &KvNamespace, key: &str) -> Result<Promise, JsValue>;

    /// A Durable Object's transactional storage (`ctx.storage`), text values only.
    #[derive(Debug, Clone)]
    pub type DurableStorage;

    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_one(this: &DurableStorage, key: &str) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_many(this: &DurableStorage, keys: &js_sys::Array) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = put)]
    fn put_entries(this: &DurableStorage, entries: &js_sys::Object) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = delete)]
    fn delete_one(this: &DurableStorage, key: &str) -> Result<Promise, JsValue>;

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

    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = digest, catch)]
    fn subtle_digest(algorithm: &str, data: &[u8]) -> Result<Promise, JsValue>;

    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = importKey, catch)]
    fn subtle_import_key(
        format: &str,
        key_data: &[u8],
        algorithm: &str,
        extractable: bool,
        usages: &js_sys::Array,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = verify, catch)]
    fn subtle_verify(
        algorithm: &str,
        key: &JsValue,
        signature: &[u8],
        data: &[u8],
    ) -> Result<Promise, JsValue>;

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
    /// The method named `name`, read case-insensitively.
    pub fn from_name(name: &str) -> Method {
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

/// Calls the signature gate the entry bound to the request (`(environment, ruleset) =>
/// Promise<string>`) and gives the decision's JSON text.
pub async fn call_gate(
    gate: &js_sys::Function,
    environment: &str,
    ruleset: &str,
) -> Result<String, String> {
    let called = gate.call2(
        &JsValue::NULL,
        &JsValue::from_str(environment),
        &JsValue::from_str(ruleset),
    );
    let answer = settle(called.map(JsCast::unchecked_into::<Promise>)).await?;
    answer
        .as_string()
        .ok_or_else(|| String::from("the gate answered no text"))
}

/// Calls the ruleset signer the authority's entry passes (`worker/js/signer.js`: `(message) =>
/// Promise<Uint8Array>`, Ed25519 with the `RULESET_SIGNING_KEY` secret) and gives the signature's
/// bytes; an error (the secret is not a key) as text.
pub async fn call_signer(signer: &js_sys::Function, message: &[u8]) -> Result<Vec<u8>, String> {
    let called = signer.call1(&JsValue::NULL, &Uint8Array::from(message).into());
    let answer = settle(called.map(JsCast::unchecked_into::<Promise>)).await?;
    answer
        .dyn_into::<Uint8Array>()
        .map(|bytes| bytes.to_vec())
        .map_err(|_| String::from("the signer answered no bytes"))
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
            path: path_of(&url).into_owned(),
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
pub fn path_of(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://") else {
        return if url.starts_with('/') {
            Cow::Borrowed(url)
        } else {
            Cow::Owned(format!("/{url}"))
        };
    };
    let host_start = scheme_end + 3;
    match url[host_start..].find('/') {
        Some(index) => {
            let path = &url[host_start + index..];
            Cow::Borrowed(&path[..path.find(['?', '#']).unwrap_or(path.len())])
        }
        None => Cow::Borrowed("/"),
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

    /// Writes `value` under `key` with KV metadata (a JSON object, at most 1024 bytes).
    pub async fn put_with_metadata(
        &self,
        key: &str,
        value: &str,
        metadata: &serde_json::Value,
    ) -> Result<(), String> {
        let metadata = js_sys::JSON::parse(&metadata.to_string()).map_err(describe)?;
        let options = js_sys::Object::new();
        Reflect::set(&options, &JsValue::from_str("metadata"), &metadata).map_err(describe)?;
        settle(self.0.put_text_with(key, value, &options))
            .await
            .map(drop)
    }

    /// The metadata stored with `key`, as JSON text; `None` when the key or its metadata is
    /// absent.
    pub async fn metadata(&self, key: &str) -> Result<Option<String>, String> {
        let found = settle(self.0.get_with_metadata(key, "text")).await?;
        match property(&found, "metadata") {
            None => Ok(None),
            Some(metadata) => js_sys::JSON::stringify(&metadata)
                .map(|text| text.as_string())
                .map_err(describe),
        }
    }
}

/// A Durable Object's storage, holding text values. Writes given to one [`Storage::put_all`]
/// are one atomic write: all of them are stored or none.
#[derive(Debug, Clone)]
pub struct Storage(DurableStorage);

impl Storage {
    pub fn new(storage: DurableStorage) -> Storage {
        Storage(storage)
    }

    /// The value of `key`; `None` when absent.
    pub async fn text(&self, key: &str) -> Result<Option<String>, String> {
        Ok(settle(self.0.get_one(key)).await?.as_string())
    }

    /// The values of `keys`, in order (`None` for each absent one); at most 128 keys.
    pub async fn texts(&self, keys: &[String]) -> Result<Vec<Option<String>>, String> {
        let array: js_sys::Array = keys.iter().map(|key| JsValue::from_str(key)).collect();
        let found: js_sys::Map = settle(self.0.get_many(&array)).await?.unchecked_into();
        Ok(keys
            .iter()
            .map(|key| found.get(&JsValue::from_str(key)).as_string())
            .collect())
    }

    /// Stores every pair in one atomic write (at most 128 pairs).
    pub async fn put_all(&self, pairs: &[(String, String)]) -> Result<(), String> {
        let entries = js_sys::Object::new();
        for (key, value) in pairs {
            Reflect::set(&entries, &JsValue::from_str(key), &JsValue::from_str(value))
                .map_err(describe)?;
        }
        settle(self.0.put_entries(&entries)).await.map(drop)
    }

    pub async fn delete(&self, key: &str) -> Result<(), String> {
        settle(self.0.delete_one(key)).await.map(drop)
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

/// Whether `signature` is `public_key`'s Ed25519 signature of `message`, through the runtime's
/// Web Crypto (`crypto.subtle.verify("Ed25519")`; no signature code in the Wasm). An error when
/// the runtime refuses the key or the call.
pub async fn ed25519_verify(
    public_key: &[u8; 32],
    signature: &[u8],
    message: &[u8],
) -> Result<bool, String> {
    let usages = js_sys::Array::of1(&JsValue::from_str("verify"));
    let key = settle(subtle_import_key(
        "raw", public_key, "Ed25519", false, &usages,
    ))
    .await?;
    let verified = settle(subtle_verify("Ed25519", &key, signature, message)).await?;
    Ok(verified.is_truthy())
}

/// SHA-256 through the runtime's Web Crypto (no hashing code in the Wasm), as lowercase hex.
pub async fn sha256_hex(data: &[u8]) -> Result<String, String> {
    let digest = settle(subtle_digest("SHA-256", data)).await?;
    Ok(crate::http::hex(&Uint8Array::new(&digest).to_vec()))
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
