//! Responses before they touch JavaScript: a [`Reply`] is status, headers and body bytes, and a
//! [`Failure`] is every error the Worker can answer with. `Reply::from(Failure)` is the one place
//! an error becomes a response, so every error body has the same shape: promptflag's
//! `{"error": {"code", "message"}}` (plus named fields) or, on the OFREP endpoints, OFREP's own
//! `{"key", "errorCode", "errorDetails"}`.
//!
//! Nothing here calls into JavaScript, so the shapes are unit-tested natively.

use serde::Serialize;
use serde_json::{Map, Value};

/// A response: status, content type, extra headers and the body bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

pub const JSON: &str = "application/json";

impl Reply {
    /// A JSON body. Serializing the Worker's own types cannot fail (string keys only); if it ever
    /// did, the client gets a JSON error rather than a panic.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply::bytes(status, JSON, body),
            Err(_) => Reply::bytes(
                500,
                JSON,
                br#"{"error":{"code":"internal","message":"the response could not be encoded"}}"#
                    .to_vec(),
            ),
        }
    }

    /// A body of the given type.
    pub fn bytes(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type: Some(content_type),
            headers: Vec::new(),
            body,
        }
    }

    /// No body (`204`, `304`).
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// The value of a header set on this reply (tests and conditional requests read it).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Every error the Worker answers with.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// promptflag's own shape: `{"error": {"code", "message"}, ...extra}`.
    Api(ApiError),
    /// OFREP's shape: `{"key"?, "errorCode", "errorDetails"}`.
    Ofrep(OfrepError),
}

/// An error of promptflag's own API (everything but the OFREP endpoints).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Fields next to `error` (`problems`, `hashes`, …).
    pub extra: Vec<(&'static str, Value)>,
    pub headers: Vec<(&'static str, String)>,
}

/// An error of the OFREP endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct OfrepError {
    pub status: u16,
    /// The flag key; absent on bulk-request failures, as OFREP's `bulkEvaluationFailure`.
    pub key: Option<String>,
    /// An OpenFeature error code (`PARSE_ERROR`, `FLAG_NOT_FOUND`, …).
    pub error_code: &'static str,
    pub details: String,
}

impl Failure {
    /// A promptflag API error.
    pub fn api(status: u16, code: &'static str, message: impl Into<String>) -> Failure {
        Failure::Api(ApiError {
            status,
            code,
            message: message.into(),
            extra: Vec::new(),
            headers: Vec::new(),
        })
    }

    /// An OFREP error.
    pub fn ofrep(
        status: u16,
        key: Option<&str>,
        error_code: &'static str,
        details: impl Into<String>,
    ) -> Failure {
        Failure::Ofrep(OfrepError {
            status,
            key: key.map(String::from),
            error_code,
            details: details.into(),
        })
    }

    /// Adds a field next to `error` (promptflag errors only).
    pub fn with_field(mut self, name: &'static str, value: Value) -> Failure {
        if let Failure::Api(error) = &mut self {
            error.extra.push((name, value));
        }
        self
    }

    /// Adds a response header (promptflag errors only).
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Failure {
        if let Failure::Api(error) = &mut self {
            error.headers.push((name, value.into()));
        }
        self
    }

    pub fn status(&self) -> u16 {
        match self {
            Failure::Api(error) => error.status,
            Failure::Ofrep(error) => error.status,
        }
    }

    pub fn not_found() -> Failure {
        Failure::api(404, "not_found", "no such endpoint")
    }

    pub fn method_not_allowed(allow: &'static str) -> Failure {
        Failure::api(
            405,
            "method_not_allowed",
            format!("this endpoint accepts {allow}"),
        )
        .with_header("Allow", allow)
    }

    pub fn too_large(limit: usize) -> Failure {
        Failure::api(
            413,
            "too_large",
            format!("the request body is over the {limit}-byte limit"),
        )
    }

    pub fn bad_json(message: impl core::fmt::Display) -> Failure {
        Failure::api(
            400,
            "bad_json",
            format!("the request body is not valid JSON: {message}"),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Failure {
        Failure::api(400, "bad_request", message)
    }

    /// KV (or another dependency) failed while serving a write or a read that has no fallback.
    pub fn unavailable(message: impl Into<String>) -> Failure {
        Failure::api(503, "store_unavailable", message)
    }
}

impl From<Failure> for Reply {
    fn from(failure: Failure) -> Reply {
        match failure {
            Failure::Api(error) => {
                let mut inner = Map::new();
                inner.insert("code".into(), Value::from(error.code));
                inner.insert("message".into(), Value::from(error.message));
                let mut outer = Map::new();
                outer.insert("error".into(), Value::Object(inner));
                for (name, value) in error.extra {
                    outer.insert(name.into(), value);
                }
                let mut reply = Reply::json(error.status, &outer);
                reply.headers.extend(error.headers);
                reply
            }
            Failure::Ofrep(error) => {
                let mut body = Map::new();
                if let Some(key) = error.key {
                    body.insert("key".into(), Value::from(key));
                }
                body.insert("errorCode".into(), Value::from(error.error_code));
                body.insert("errorDetails".into(), Value::from(error.details));
                Reply::json(error.status, &body)
            }
        }
    }
}

/// Handlers answer with a reply or a failure; both end as a [`Reply`].
pub type Outcome = Result<Reply, Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    fn body(reply: &Reply) -> Value {
        serde_json::from_slice(&reply.body).unwrap()
    }

    #[test]
    fn api_errors_have_code_message_and_extra_fields() {
        let reply = Reply::from(
            Failure::api(422, "missing_prompt", "2 bodies are missing")
                .with_field("hashes", serde_json::json!(["a", "b"])),
        );
        assert_eq!(reply.status, 422);
        assert_eq!(reply.content_type, Some(JSON));
        assert_eq!(
            body(&reply),
            serde_json::json!({"error": {"code": "missing_prompt", "message": "2 bodies are missing"},
                               "hashes": ["a", "b"]})
        );
    }

    #[test]
    fn ofrep_errors_use_ofrep_shape() {
        let reply = Reply::from(Failure::ofrep(
            404,
            Some("x"),
            "FLAG_NOT_FOUND",
            "no flag has this key",
        ));
        assert_eq!(reply.status, 404);
        assert_eq!(
            body(&reply),
            serde_json::json!({"key": "x", "errorCode": "FLAG_NOT_FOUND", "errorDetails": "no flag has this key"})
        );
        let bulk = Reply::from(Failure::ofrep(400, None, "PARSE_ERROR", "bad"));
        assert_eq!(
            body(&bulk),
            serde_json::json!({"errorCode": "PARSE_ERROR", "errorDetails": "bad"})
        );
    }

    #[test]
    fn method_not_allowed_names_the_allowed_methods() {
        let reply = Reply::from(Failure::method_not_allowed("POST"));
        assert_eq!(reply.status, 405);
        assert_eq!(reply.header("allow"), Some("POST"));
    }
}
