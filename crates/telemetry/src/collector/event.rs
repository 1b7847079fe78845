//! The events the collector takes: LLM-call events (`docs/collector.md`) and the Worker's exposures
//! (`docs/interfaces.md`), decoded from a request body one event at a time so that each bad event
//! gets its own error while the good ones in the batch are kept.
//!
//! A body is a JSON array of events or NDJSON (one event per line). The format is chosen by the
//! content type (`application/x-ndjson`, `application/jsonl`, `application/ndjson`) or, for any
//! other type, by sniffing: a body whose first non-blank byte is `[` is an array; a body that is
//! one JSON object is one event; anything else is read as NDJSON.

use serde::Deserialize;
use serde_json::value::RawValue;

use sha2::{Digest, Sha256};

/// The outcome class of an LLM call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The call did what it was for.
    Success,
    /// The call returned, but the task failed (a wrong answer, an unusable output).
    Failure,
    /// The call errored (provider error, exception).
    Error,
    /// The call timed out (counted as an error).
    Timeout,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Error => "error",
            Status::Timeout => "timeout",
        }
    }

    fn parse(text: &str) -> Option<Status> {
        match text {
            "success" | "ok" => Some(Status::Success),
            "failure" | "failed" => Some(Status::Failure),
            "error" => Some(Status::Error),
            "timeout" => Some(Status::Timeout),
            _ => None,
        }
    }
}

/// One LLM call, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// The caller's id of the call; a retry with the same id is a duplicate, not a new call.
    pub request_id: String,
    /// When the call happened, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The environment, when the caller says.
    pub environment: Option<String>,
    /// The flag that chose the prompt.
    pub flag_key: String,
    /// The variant served.
    pub variant: String,
    /// Prompt id.
    pub prompt_id: Option<String>,
    /// Prompt version.
    pub prompt_version: Option<String>,
    /// SHA-256 of the prompt body.
    pub prompt_hash: Option<String>,
    /// The unit (user) the variant was assigned to.
    pub user_id: Option<String>,
    /// Model name.
    pub model: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Prompt tokens.
    pub input_tokens: Option<u64>,
    /// Completion tokens.
    pub output_tokens: Option<u64>,
    /// End-to-end latency.
    pub latency_ms: Option<f64>,
    /// Time to the first token.
    pub ttft_ms: Option<f64>,
    /// Outcome.
    pub status: Status,
    /// Whether the output parsed (false counts as a parser failure).
    pub parser_valid: Option<bool>,
    /// Whether the model refused.
    pub refused: Option<bool>,
    /// Whether the output was judged a hallucination.
    pub hallucinated: Option<bool>,
    /// Cost of the call in US dollars.
    pub cost_usd: Option<f64>,
}

/// One exposure (an evaluation that served a variant), validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ExposureRecord {
    /// Idempotency key: the event's `id` when given, else the SHA-256 of its fields.
    pub key: String,
    /// When, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Environment.
    pub environment: Option<String>,
    /// Flag.
    pub flag_key: String,
    /// Variant served.
    pub variant: String,
    /// Prompt hash served.
    pub prompt_hash: Option<String>,
    /// Ruleset revision that answered.
    pub revision: Option<u64>,
    /// The unit (the split's bucketing value).
    pub unit: Option<String>,
    /// The evaluation reason (`SPLIT`, `TARGETING_MATCH`, …).
    pub reason: Option<String>,
}

/// A decoded event.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// An LLM call.
    Call(CallRecord),
    /// An exposure.
    Exposure(ExposureRecord),
}

impl Record {
    /// The idempotency key reported back for duplicates.
    pub fn id(&self) -> &str {
        match self {
            Record::Call(call) => &call.request_id,
            Record::Exposure(exposure) => &exposure.key,
        }
    }
}

/// Why one event of a batch was refused.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventError {
    /// Position in the batch (0-based; for NDJSON, the line's event position).
    pub index: usize,
    /// The event's `request_id`, when it had a readable one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `invalid_json`, `invalid_event`, `missing_field`, `invalid_value`, `unknown_type`, or
    /// `conflict` (an id already stored with other content).
    pub code: &'static str,
    /// What is wrong, in a sentence.
    pub message: String,
}

/// The events of a body: the good ones with their positions, and one error per bad one.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Valid events and their positions in the batch.
    pub records: Vec<(usize, Record)>,
    /// One entry per refused event.
    pub errors: Vec<EventError>,
}

/// Why a whole body was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyError {
    /// A machine-readable code.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

/// The longest id, name or label accepted.
const MAX_TEXT: usize = 512;

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    prompt_id: Option<String>,
    #[serde(default)]
    prompt_version: Option<String>,
    #[serde(default)]
    prompt_hash: Option<String>,
    #[serde(default)]
    flag_key: Option<String>,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    latency_ms: Option<f64>,
    #[serde(default)]
    ttft_ms: Option<f64>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    parser_valid: Option<bool>,
    #[serde(default)]
    refused: Option<bool>,
    #[serde(default, alias = "hallucination")]
    hallucinated: Option<bool>,
    #[serde(default)]
    cost_usd: Option<f64>,
    #[serde(default)]
    revision: Option<u64>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

fn refuse(
    index: usize,
    request_id: Option<String>,
    code: &'static str,
    message: String,
) -> EventError {
    EventError {
        index,
        request_id,
        code,
        message,
    }
}

fn text(
    value: Option<String>,
    field: &str,
    required: bool,
) -> Result<Option<String>, (&'static str, String)> {
    match value {
        None if required => Err(("missing_field", format!("`{field}` is required"))),
        None => Ok(None),
        Some(text) if text.is_empty() && required => {
            Err(("invalid_value", format!("`{field}` must not be empty")))
        }
        Some(text) if text.len() > MAX_TEXT => Err((
            "invalid_value",
            format!("`{field}` is longer than {MAX_TEXT} bytes"),
        )),
        Some(text) => Ok(Some(text)),
    }
}

fn measure(value: Option<f64>, field: &str) -> Result<Option<f64>, (&'static str, String)> {
    match value {
        Some(number) if !number.is_finite() || number < 0.0 => Err((
            "invalid_value",
            format!("`{field}` must be a finite number >= 0"),
        )),
        other => Ok(other),
    }
}

fn timestamp(value: Option<String>) -> Result<i64, (&'static str, String)> {
    let Some(text) = value else {
        return Err(("missing_field", String::from("`timestamp` is required")));
    };
    promptflag_core::literal::parse_rfc3339_millis(&text).ok_or_else(|| {
        (
            "invalid_value",
            format!("`timestamp` {text:?} is not an RFC 3339 time such as 2025-05-15T10:23:45Z"),
        )
    })
}

fn required(value: Option<String>, field: &str) -> Result<String, (&'static str, String)> {
    text(value, field, true)?.ok_or_else(|| ("missing_field", format!("`{field}` is required")))
}

fn call(wire: Wire<'_>) -> Result<CallRecord, (&'static str, String)> {
    let request_id = required(wire.request_id, "request_id")?;
    let status_text = required(wire.status, "status")?;
    let status = Status::parse(&status_text).ok_or_else(|| {
        (
            "invalid_value",
            format!("`status` {status_text:?} is not one of success, failure, error, timeout"),
        )
    })?;
    Ok(CallRecord {
        timestamp_ms: timestamp(wire.timestamp)?,
        flag_key: required(wire.flag_key, "flag_key")?,
        variant: required(wire.variant, "variant")?,
        environment: text(wire.environment, "environment", false)?,
        prompt_id: text(wire.prompt_id, "prompt_id", false)?,
        prompt_version: text(wire.prompt_version, "prompt_version", false)?,
        prompt_hash: text(wire.prompt_hash, "prompt_hash", false)?,
        user_id: text(wire.user_id, "user_id", false)?,
        model: text(wire.model, "model", false)?,
        temperature: measure(wire.temperature, "temperature")?,
        input_tokens: wire.input_tokens,
        output_tokens: wire.output_tokens,
        latency_ms: measure(wire.latency_ms, "latency_ms")?,
        ttft_ms: measure(wire.ttft_ms, "ttft_ms")?,
        status,
        parser_valid: wire.parser_valid,
        refused: wire.refused,
        hallucinated: wire.hallucinated,
        cost_usd: measure(wire.cost_usd, "cost_usd")?,
        request_id,
    })
}

fn exposure(wire: Wire<'_>) -> Result<ExposureRecord, (&'static str, String)> {
    let timestamp_ms = timestamp(wire.timestamp.clone())?;
    let flag_key = required(wire.flag_key, "flag_key")?;
    let variant = required(wire.variant, "variant")?;
    let environment = text(wire.environment, "environment", false)?;
    let prompt_hash = text(wire.prompt_hash, "prompt_hash", false)?;
    let unit = text(wire.unit, "unit", false)?;
    let reason = text(wire.reason, "reason", false)?;
    let key = match text(wire.id, "id", false)? {
        Some(id) => id,
        None => {
            // The Worker sends no id; its fields identify a resent batch. Two evaluations of one
            // unit in the same millisecond collapse into one exposure, which changes no unit count.
            let identity = serde_json::json!([
                timestamp_ms,
                environment,
                flag_key,
                variant,
                prompt_hash,
                wire.revision,
                unit,
                reason
            ]);
            format!("x-{:.32x}", Sha256::digest(identity.to_string().as_bytes()))
        }
    };
    Ok(ExposureRecord {
        key,
        timestamp_ms,
        environment,
        flag_key,
        variant,
        prompt_hash,
        revision: wire.revision,
        unit,
        reason,
    })
}

/// Decodes one event from its JSON text.
fn decode_one(index: usize, json: &str, decoded: &mut Decoded) {
    let wire: Wire<'_> = match serde_json::from_str(json) {
        Ok(wire) => wire,
        Err(error) => {
            // Salvage the request id for the error report when the event is an object at all.
            let request_id = serde_json::from_str::<serde_json::Value>(json)
                .ok()
                .and_then(|v| v["request_id"].as_str().map(str::to_string));
            let code = if error.is_data() {
                "invalid_event"
            } else {
                "invalid_json"
            };
            decoded
                .errors
                .push(refuse(index, request_id, code, error.to_string()));
            return;
        }
    };
    let request_id = wire.request_id.clone();
    let result = match wire.kind.as_deref() {
        None | Some("llm_call") | Some("call") => call(wire).map(Record::Call),
        Some("exposure") => exposure(wire).map(Record::Exposure),
        Some(other) => Err((
            "unknown_type",
            format!("`type` {other:?} is not `llm_call` (the default) or `exposure`"),
        )),
    };
    match result {
        Ok(record) => decoded.records.push((index, record)),
        Err((code, message)) => decoded
            .errors
            .push(refuse(index, request_id, code, message)),
    }
}

/// True when the content type names NDJSON.
fn is_ndjson(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| {
        let essence = value.split(';').next().unwrap_or("").trim();
        matches!(
            essence.to_ascii_lowercase().as_str(),
            "application/x-ndjson"
                | "application/ndjson"
                | "application/jsonl"
                | "application/x-jsonlines"
                | "application/jsonlines"
        )
    })
}

/// Decodes a request body into events. `max_events` bounds the batch.
pub fn decode_body(
    body: &[u8],
    content_type: Option<&str>,
    max_events: usize,
) -> Result<Decoded, BodyError> {
    let text = std::str::from_utf8(body).map_err(|error| BodyError {
        code: "invalid_encoding",
        message: format!("the body is not UTF-8: {error}"),
    })?;
    let trimmed = text.trim_start();
    let mut decoded = Decoded::default();
    if trimmed.is_empty() {
        return Err(BodyError {
            code: "empty_body",
            message: String::from("the body holds no events"),
        });
    }
    let too_many = || BodyError {
        code: "too_many_events",
        message: format!("a batch holds at most {max_events} events; split it"),
    };
    if !is_ndjson(content_type) && trimmed.starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(trimmed).map_err(|error| BodyError {
            code: "invalid_json",
            message: format!("the body is not a JSON array of events: {error}"),
        })?;
        if items.len() > max_events {
            return Err(too_many());
        }
        decoded.records.reserve(items.len());
        for (index, item) in items.iter().enumerate() {
            decode_one(index, item.get(), &mut decoded);
        }
        return Ok(decoded);
    }
    if !is_ndjson(content_type) && trimmed.starts_with('{') {
        // A single (possibly pretty-printed) object is one event.
        if let Ok(item) = serde_json::from_str::<&RawValue>(trimmed) {
            decode_one(0, item.get(), &mut decoded);
            return Ok(decoded);
        }
    }
    let mut index = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if index >= max_events {
            return Err(too_many());
        }
        decode_one(index, line, &mut decoded);
        index += 1;
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"timestamp": "2025-05-15T10:23:45Z", "request_id": "r-1", "flag_key": "f", "variant": "a", "status": "success", "latency_ms": 1200, "cost_usd": 0.0042}"#;

    #[test]
    fn arrays_ndjson_and_single_objects_decode() {
        let array = format!("[{GOOD}, {GOOD}]");
        assert_eq!(
            decode_body(array.as_bytes(), None, 10)
                .unwrap()
                .records
                .len(),
            2
        );
        let ndjson = format!("{GOOD}\n\n{GOOD}\n");
        assert_eq!(
            decode_body(ndjson.as_bytes(), Some("application/x-ndjson"), 10)
                .unwrap()
                .records
                .len(),
            2
        );
        assert_eq!(
            decode_body(ndjson.as_bytes(), None, 10)
                .unwrap()
                .records
                .len(),
            2
        );
        assert_eq!(
            decode_body(GOOD.as_bytes(), Some("application/json"), 10)
                .unwrap()
                .records
                .len(),
            1
        );
    }

    #[test]
    fn each_bad_event_gets_its_own_error() {
        let body = format!(
            r#"[{GOOD}, {{"request_id": "r-2"}}, 7, {{"type": "metric"}}, {{"request_id": "r-3", "timestamp": "yesterday", "flag_key": "f", "variant": "a", "status": "success"}}, {{"request_id": "r-4", "timestamp": "2025-05-15T10:23:45Z", "flag_key": "f", "variant": "a", "status": "success", "latency_ms": -1}}]"#
        );
        let decoded = decode_body(body.as_bytes(), None, 100).unwrap();
        assert_eq!(decoded.records.len(), 1);
        let codes: Vec<_> = decoded.errors.iter().map(|e| (e.index, e.code)).collect();
        assert_eq!(
            codes,
            vec![
                (1, "missing_field"),
                (2, "invalid_event"),
                (3, "unknown_type"),
                (4, "invalid_value"),
                (5, "invalid_value")
            ]
        );
        assert_eq!(decoded.errors[0].request_id.as_deref(), Some("r-2"));
    }

    #[test]
    fn exposures_get_a_stable_key() {
        let body = r#"[{"type": "exposure", "timestamp": "2026-11-21T10:00:00.000Z", "environment": "dev", "flag_key": "f", "variant": "b", "revision": 7, "unit": "u", "reason": "SPLIT"}]"#;
        let one = decode_body(body.as_bytes(), None, 10).unwrap();
        let two = decode_body(body.as_bytes(), None, 10).unwrap();
        assert_eq!(one.records[0].1.id(), two.records[0].1.id());
    }

    #[test]
    fn whole_body_errors() {
        assert_eq!(decode_body(b"", None, 10).unwrap_err().code, "empty_body");
        assert_eq!(
            decode_body(b"[1,", None, 10).unwrap_err().code,
            "invalid_json"
        );
        assert_eq!(
            decode_body(&[0xff, 0xfe], None, 10).unwrap_err().code,
            "invalid_encoding"
        );
        let many = format!("[{}]", [GOOD; 3].join(","));
        assert_eq!(
            decode_body(many.as_bytes(), None, 2).unwrap_err().code,
            "too_many_events"
        );
    }
}
