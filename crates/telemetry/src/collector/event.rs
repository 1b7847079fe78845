//! The events the collector takes: LLM-call events and exposures, in the schemas the contracts
//! own (`promptflag_contracts::events`, described in `docs/interfaces.md`), decoded from a
//! request body one event at a time so that each bad event gets its own error while the good
//! ones in the batch are kept.
//!
//! A body is a JSON array of events or NDJSON (one event per line). The format is chosen by the
//! content type (`application/x-ndjson`, `application/jsonl`, `application/ndjson`) or, for any
//! other type, by sniffing: a body whose first non-blank byte is `[` is an array; a body that is
//! one JSON object is one event; anything else is read as NDJSON.

use promptflag_contracts::events::{self, Event, Exposure};
use serde_json::value::RawValue;

use promptflag_contracts::digest::sha256_hex;

/// The outcome class of an LLM call.
pub use promptflag_contracts::events::CallStatus as Status;
/// One LLM call, validated: the contracts' schema is the collector's record too.
pub use promptflag_contracts::events::LlmCall as CallRecord;

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
    /// Prompt family served.
    pub prompt_id: Option<String>,
    /// Prompt version served.
    pub prompt_version: Option<String>,
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

/// The collector's record of a decoded exposure, keyed by its `id` or else by its fields.
fn exposure(exposure: Exposure<'static>) -> ExposureRecord {
    let text = |value: Option<std::borrow::Cow<'static, str>>| value.map(|text| text.into_owned());
    let environment = text(exposure.environment);
    let flag_key = exposure.flag_key.into_owned();
    let variant = text(exposure.variant).unwrap_or_default();
    let prompt_hash = text(exposure.prompt_hash);
    let prompt_id = text(exposure.prompt_id);
    let prompt_version = text(exposure.prompt_version);
    let unit = text(exposure.unit);
    let reason = text(exposure.reason);
    let key = match exposure.id {
        Some(id) => id.into_owned(),
        None => {
            // The Worker sends no id; its fields identify a resent batch. Two evaluations of one
            // unit in the same millisecond collapse into one exposure, which changes no unit count.
            let identity = serde_json::json!([
                exposure.timestamp_millis,
                environment,
                flag_key,
                variant,
                prompt_hash,
                exposure.revision,
                unit,
                reason
            ]);
            format!("x-{}", &sha256_hex(identity.to_string().as_bytes())[..32])
        }
    };
    ExposureRecord {
        key,
        timestamp_ms: exposure.timestamp_millis,
        environment,
        flag_key,
        variant,
        prompt_id,
        prompt_version,
        prompt_hash,
        revision: exposure.revision,
        unit,
        reason,
    }
}

/// Decodes one event from its JSON text with the contracts' schema.
fn decode_one(index: usize, json: &str, decoded: &mut Decoded) {
    match events::decode(json) {
        Ok(Event::Call(record)) => decoded.records.push((index, Record::Call(record))),
        Ok(Event::Exposure(record)) => decoded
            .records
            .push((index, Record::Exposure(exposure(record)))),
        Err(error) => {
            // Salvage the request id for the error report when the event is an object at all.
            let request_id = serde_json::from_str::<serde_json::Value>(json)
                .ok()
                .and_then(|v| v["request_id"].as_str().map(str::to_string));
            decoded
                .errors
                .push(refuse(index, request_id, error.code(), error.to_string()));
        }
    }
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
