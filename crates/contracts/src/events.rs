//! The event schemas: the exposure (an evaluation that served a variant; sent by the Worker's
//! exposure sink and reported by the native and npm clients) and the LLM call (sent by the native
//! client's telemetry). Each has one Rust type used to encode ([`Exposure`], [`LlmCall`], through
//! `serde::Serialize`) and to decode ([`decode`], which the collector uses), and one field list
//! ([`EXPOSURE_FIELDS`], [`LLM_CALL_FIELDS`]) that the tests hold both to, and that the npm
//! package's TypeScript types are checked against.
//!
//! On the wire, times are RFC 3339 UTC text with milliseconds (`timestamp`); in Rust they are
//! milliseconds since the Unix epoch (`timestamp_millis`). A batch is a JSON array of events.

use alloc::borrow::Cow;
use alloc::string::{String, ToString};

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::error::Error;

/// `type` of an exposure.
pub const EXPOSURE_TYPE: &str = "exposure";
/// `type` of an LLM call (the default when `type` is absent).
pub const LLM_CALL_TYPE: &str = "llm_call";
/// The longest id, name or label accepted, in bytes.
pub const MAX_TEXT: usize = 512;

/// The JSON type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldType {
    /// This exact string.
    Literal(&'static str),
    /// A string of at most [`MAX_TEXT`] bytes (non-empty when required).
    Text,
    /// RFC 3339 text, such as `2026-11-21T10:00:00.000Z`.
    Timestamp,
    /// An integer from 0 to [`crate::revision::MAX_REVISION`].
    Revision,
    /// An integer >= 0.
    Count,
    /// A finite number >= 0.
    Number,
    /// `true` or `false`.
    Bool,
    /// One of [`CallStatus`]'s names.
    Status,
}

/// How encoders write a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Always written, never `null`.
    Always,
    /// Always written; `null` when there is no value.
    Nullable,
    /// Written only when there is a value.
    Omittable,
}

/// One field of an event schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The JSON key.
    pub name: &'static str,
    /// Its JSON type.
    pub ty: FieldType,
    /// How encoders write it.
    pub presence: Presence,
    /// Whether a decoder refuses an event without it (absent or `null`).
    pub required: bool,
}

const fn field(name: &'static str, ty: FieldType, presence: Presence, required: bool) -> Field {
    Field {
        name,
        ty,
        presence,
        required,
    }
}

/// The exposure's fields, in the order encoders write them.
///
/// `variant` is `null` only in the clients' exposure hooks, which see every evaluation; the
/// collector takes only evaluations that served a variant, so it requires one.
pub const EXPOSURE_FIELDS: &[Field] = &[
    field(
        "type",
        FieldType::Literal(EXPOSURE_TYPE),
        Presence::Always,
        true,
    ),
    field("id", FieldType::Text, Presence::Omittable, false),
    field("timestamp", FieldType::Timestamp, Presence::Always, true),
    field("environment", FieldType::Text, Presence::Always, false),
    field("flag_key", FieldType::Text, Presence::Always, true),
    field("variant", FieldType::Text, Presence::Nullable, true),
    field("prompt_id", FieldType::Text, Presence::Nullable, false),
    field("prompt_version", FieldType::Text, Presence::Nullable, false),
    field("prompt_hash", FieldType::Text, Presence::Nullable, false),
    field("revision", FieldType::Revision, Presence::Always, false),
    field("unit", FieldType::Text, Presence::Nullable, false),
    field("reason", FieldType::Text, Presence::Always, false),
];

/// The LLM call's fields, in the order encoders write them.
pub const LLM_CALL_FIELDS: &[Field] = &[
    field(
        "type",
        FieldType::Literal(LLM_CALL_TYPE),
        Presence::Always,
        false,
    ),
    field("timestamp", FieldType::Timestamp, Presence::Always, true),
    field("request_id", FieldType::Text, Presence::Always, true),
    field("environment", FieldType::Text, Presence::Nullable, false),
    field("flag_key", FieldType::Text, Presence::Always, true),
    field("variant", FieldType::Text, Presence::Always, true),
    field("prompt_id", FieldType::Text, Presence::Nullable, false),
    field("prompt_version", FieldType::Text, Presence::Nullable, false),
    field("prompt_hash", FieldType::Text, Presence::Nullable, false),
    field("user_id", FieldType::Text, Presence::Nullable, false),
    field("model", FieldType::Text, Presence::Nullable, false),
    field("temperature", FieldType::Number, Presence::Nullable, false),
    field("input_tokens", FieldType::Count, Presence::Nullable, false),
    field("output_tokens", FieldType::Count, Presence::Nullable, false),
    field("latency_ms", FieldType::Number, Presence::Nullable, false),
    field("ttft_ms", FieldType::Number, Presence::Nullable, false),
    field("status", FieldType::Status, Presence::Always, true),
    field("parser_valid", FieldType::Bool, Presence::Nullable, false),
    field("refused", FieldType::Bool, Presence::Nullable, false),
    field("hallucinated", FieldType::Bool, Presence::Nullable, false),
    field("cost_usd", FieldType::Number, Presence::Nullable, false),
    field(
        "citation_mismatch",
        FieldType::Bool,
        Presence::Nullable,
        false,
    ),
    field(
        "tool_call_mismatch",
        FieldType::Bool,
        Presence::Nullable,
        false,
    ),
    field(
        "unsupported_numeric_claims",
        FieldType::Bool,
        Presence::Nullable,
        false,
    ),
    field("judge_score", FieldType::Number, Presence::Nullable, false),
    field("response_hash", FieldType::Text, Presence::Nullable, false),
];

/// One exposure. Text borrows or owns (`Exposure<'static>` owns everything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure<'a> {
    /// An idempotency key; without one the collector derives it from the other fields.
    pub id: Option<Cow<'a, str>>,
    /// When, in milliseconds since the Unix epoch (`timestamp` on the wire).
    pub timestamp_millis: i64,
    /// The ruleset's environment (encoders always set it).
    pub environment: Option<Cow<'a, str>>,
    /// The flag evaluated.
    pub flag_key: Cow<'a, str>,
    /// The variant served; `None` only for an evaluation that served none (not an exposure the
    /// collector takes).
    pub variant: Option<Cow<'a, str>>,
    /// The prompt family served, for prompt flags.
    pub prompt_id: Option<Cow<'a, str>>,
    /// The prompt version served, for prompt flags.
    pub prompt_version: Option<Cow<'a, str>>,
    /// The prompt body's SHA-256, for prompt flags.
    pub prompt_hash: Option<Cow<'a, str>>,
    /// The ruleset revision that answered (encoders always set it).
    pub revision: Option<u64>,
    /// The unit: the context's targeting key.
    pub unit: Option<Cow<'a, str>>,
    /// The evaluation reason (`SPLIT`, `TARGETING_MATCH`, …; encoders always set it).
    pub reason: Option<Cow<'a, str>>,
}

/// The outcome class of an LLM call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    /// The call did what it was for.
    Success,
    /// The call returned, but the task failed (a wrong answer, an unusable output).
    Failure,
    /// The call errored (provider error, exception).
    Error,
    /// The call timed out.
    Timeout,
}

impl CallStatus {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Success => "success",
            CallStatus::Failure => "failure",
            CallStatus::Error => "error",
            CallStatus::Timeout => "timeout",
        }
    }

    /// Reads a name; `ok` and `failed` are accepted for `success` and `failure`.
    pub fn parse(text: &str) -> Option<CallStatus> {
        match text {
            "success" | "ok" => Some(CallStatus::Success),
            "failure" | "failed" => Some(CallStatus::Failure),
            "error" => Some(CallStatus::Error),
            "timeout" => Some(CallStatus::Timeout),
            _ => None,
        }
    }
}

/// One LLM call.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmCall {
    /// When, in milliseconds since the Unix epoch (`timestamp` on the wire).
    pub timestamp_millis: i64,
    /// The caller's id of the call; a retry with the same id is a duplicate, not a new call.
    pub request_id: String,
    /// The environment, when the caller says.
    pub environment: Option<String>,
    /// The flag that chose the prompt.
    pub flag_key: String,
    /// The variant served.
    pub variant: String,
    /// The prompt family.
    pub prompt_id: Option<String>,
    /// The prompt version.
    pub prompt_version: Option<String>,
    /// The prompt body's SHA-256.
    pub prompt_hash: Option<String>,
    /// The unit (user) the variant was assigned to.
    pub user_id: Option<String>,
    /// The model called.
    pub model: Option<String>,
    /// The sampling temperature.
    pub temperature: Option<f64>,
    /// Prompt tokens.
    pub input_tokens: Option<u64>,
    /// Completion tokens.
    pub output_tokens: Option<u64>,
    /// Whole-call latency in milliseconds.
    pub latency_ms: Option<f64>,
    /// Time to the first token in milliseconds.
    pub ttft_ms: Option<f64>,
    /// The outcome.
    pub status: CallStatus,
    /// Whether the output parsed (false counts as a parser failure).
    pub parser_valid: Option<bool>,
    /// Whether the model refused.
    pub refused: Option<bool>,
    /// Whether the output was judged a hallucination.
    pub hallucinated: Option<bool>,
    /// The call's cost in US dollars.
    pub cost_usd: Option<f64>,
    /// The output cites a source that was not among those provided (null: not computed).
    pub citation_mismatch: Option<bool>,
    /// A tool call was undeclared or had arguments failing its schema (null: not computed).
    pub tool_call_mismatch: Option<bool>,
    /// The output holds numbers found nowhere in the input or sources (null: not computed).
    pub unsupported_numeric_claims: Option<bool>,
    /// A sampled LLM judge's score in `[0, 1]` (null: not judged).
    pub judge_score: Option<f64>,
    /// The SHA-256 (or any stable digest) of the model's response, so a response can be matched
    /// to its call later without storing its text.
    pub response_hash: Option<String>,
}

/// A decoded event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An LLM call.
    Call(LlmCall),
    /// An exposure.
    Exposure(Exposure<'static>),
}

fn timestamp_text(millis: i64) -> String {
    promptflag_core::literal::format_rfc3339_millis(millis)
}

/// A measure in milliseconds: an integer when it is one (`1200`, not `1200.0`).
struct Measure(f64);

impl Serialize for Measure {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = self.0;
        // 2^53: every integer below it is exact in an f64, so the cast is too.
        if (0.0..9_007_199_254_740_992.0).contains(&value) && value == (value as u64) as f64 {
            serializer.serialize_u64(value as u64)
        } else {
            serializer.serialize_f64(value)
        }
    }
}

impl Serialize for Exposure<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", EXPOSURE_TYPE)?;
        if let Some(id) = &self.id {
            map.serialize_entry("id", id)?;
        }
        map.serialize_entry("timestamp", &timestamp_text(self.timestamp_millis))?;
        map.serialize_entry("environment", &self.environment)?;
        map.serialize_entry("flag_key", &self.flag_key)?;
        map.serialize_entry("variant", &self.variant)?;
        map.serialize_entry("prompt_id", &self.prompt_id)?;
        map.serialize_entry("prompt_version", &self.prompt_version)?;
        map.serialize_entry("prompt_hash", &self.prompt_hash)?;
        map.serialize_entry("revision", &self.revision)?;
        map.serialize_entry("unit", &self.unit)?;
        map.serialize_entry("reason", &self.reason)?;
        map.end()
    }
}

impl Serialize for LlmCall {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", LLM_CALL_TYPE)?;
        map.serialize_entry("timestamp", &timestamp_text(self.timestamp_millis))?;
        map.serialize_entry("request_id", &self.request_id)?;
        map.serialize_entry("environment", &self.environment)?;
        map.serialize_entry("flag_key", &self.flag_key)?;
        map.serialize_entry("variant", &self.variant)?;
        map.serialize_entry("prompt_id", &self.prompt_id)?;
        map.serialize_entry("prompt_version", &self.prompt_version)?;
        map.serialize_entry("prompt_hash", &self.prompt_hash)?;
        map.serialize_entry("user_id", &self.user_id)?;
        map.serialize_entry("model", &self.model)?;
        map.serialize_entry("temperature", &self.temperature)?;
        map.serialize_entry("input_tokens", &self.input_tokens)?;
        map.serialize_entry("output_tokens", &self.output_tokens)?;
        map.serialize_entry("latency_ms", &self.latency_ms.map(Measure))?;
        map.serialize_entry("ttft_ms", &self.ttft_ms.map(Measure))?;
        map.serialize_entry("status", self.status.as_str())?;
        map.serialize_entry("parser_valid", &self.parser_valid)?;
        map.serialize_entry("refused", &self.refused)?;
        map.serialize_entry("hallucinated", &self.hallucinated)?;
        map.serialize_entry("cost_usd", &self.cost_usd)?;
        map.serialize_entry("citation_mismatch", &self.citation_mismatch)?;
        map.serialize_entry("tool_call_mismatch", &self.tool_call_mismatch)?;
        map.serialize_entry(
            "unsupported_numeric_claims",
            &self.unsupported_numeric_claims,
        )?;
        map.serialize_entry("judge_score", &self.judge_score)?;
        map.serialize_entry("response_hash", &self.response_hash)?;
        map.end()
    }
}

/// A text field: at most [`MAX_TEXT`] bytes; required ones present and non-empty.
fn text<'t>(
    value: Option<&'t str>,
    field: &'static str,
    required: bool,
) -> Result<Option<&'t str>, Error> {
    match value {
        None if required => Err(Error::MissingField { field }),
        Some("") if required => Err(Error::InvalidValue {
            field,
            reason: String::from("must not be empty"),
        }),
        Some(text) if text.len() > MAX_TEXT => Err(Error::InvalidValue {
            field,
            reason: alloc::format!("is longer than {MAX_TEXT} bytes"),
        }),
        other => Ok(other),
    }
}

fn required<'t>(value: Option<&'t str>, field: &'static str) -> Result<&'t str, Error> {
    text(value, field, true)?.ok_or(Error::MissingField { field })
}

fn measure(value: Option<f64>, field: &'static str) -> Result<Option<f64>, Error> {
    match value {
        Some(number) if !number.is_finite() || number < 0.0 => Err(Error::InvalidValue {
            field,
            reason: String::from("must be a finite number >= 0"),
        }),
        other => Ok(other),
    }
}

fn parse_timestamp(value: Option<&str>) -> Result<i64, Error> {
    let text = value.ok_or(Error::MissingField { field: "timestamp" })?;
    promptflag_core::literal::parse_rfc3339_millis(text).ok_or_else(|| Error::InvalidValue {
        field: "timestamp",
        reason: alloc::format!("{text:?} is not an RFC 3339 time such as 2025-05-15T10:23:45Z"),
    })
}

fn revision(value: Option<u64>) -> Result<Option<u64>, Error> {
    match value {
        Some(revision) if crate::revision::check(revision).is_err() => Err(Error::InvalidValue {
            field: "revision",
            reason: alloc::format!("{revision} is above {}", crate::revision::MAX_REVISION),
        }),
        other => Ok(other),
    }
}

fn owned(value: Option<&str>) -> Option<Cow<'static, str>> {
    value.map(|text| Cow::Owned(text.to_string()))
}

impl Exposure<'_> {
    /// Checks the exposure as the collector will: `flag_key` and `variant` present and
    /// non-empty, text within [`MAX_TEXT`], the revision within the bound.
    pub fn check(&self) -> Result<(), Error> {
        required(Some(&self.flag_key), "flag_key")?;
        required(self.variant.as_deref(), "variant")?;
        text(self.environment.as_deref(), "environment", false)?;
        text(self.prompt_id.as_deref(), "prompt_id", false)?;
        text(self.prompt_version.as_deref(), "prompt_version", false)?;
        text(self.prompt_hash.as_deref(), "prompt_hash", false)?;
        text(self.unit.as_deref(), "unit", false)?;
        text(self.reason.as_deref(), "reason", false)?;
        text(self.id.as_deref(), "id", false)?;
        revision(self.revision)?;
        Ok(())
    }

    /// The same exposure owning its text.
    pub fn into_owned(self) -> Exposure<'static> {
        let own = |text: Cow<'_, str>| Cow::Owned(text.into_owned());
        Exposure {
            id: self.id.map(own),
            timestamp_millis: self.timestamp_millis,
            environment: self.environment.map(own),
            flag_key: own(self.flag_key),
            variant: self.variant.map(own),
            prompt_id: self.prompt_id.map(own),
            prompt_version: self.prompt_version.map(own),
            prompt_hash: self.prompt_hash.map(own),
            revision: self.revision,
            unit: self.unit.map(own),
            reason: self.reason.map(own),
        }
    }
}

impl LlmCall {
    /// Checks the call as the collector will: `request_id`, `flag_key` and `variant` present and
    /// non-empty, text within [`MAX_TEXT`], measures finite and >= 0.
    pub fn check(&self) -> Result<(), Error> {
        required(Some(&self.request_id), "request_id")?;
        required(Some(&self.flag_key), "flag_key")?;
        required(Some(&self.variant), "variant")?;
        for (value, field) in [
            (&self.environment, "environment"),
            (&self.prompt_id, "prompt_id"),
            (&self.prompt_version, "prompt_version"),
            (&self.prompt_hash, "prompt_hash"),
            (&self.user_id, "user_id"),
            (&self.model, "model"),
            (&self.response_hash, "response_hash"),
        ] {
            text(value.as_deref(), field, false)?;
        }
        for (value, field) in [
            (self.temperature, "temperature"),
            (self.latency_ms, "latency_ms"),
            (self.ttft_ms, "ttft_ms"),
            (self.cost_usd, "cost_usd"),
        ] {
            measure(value, field)?;
        }
        judge_score(self.judge_score)?;
        Ok(())
    }
}

/// An event as JSON has it, before the schema's checks.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    request_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    environment: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    prompt_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    prompt_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    prompt_hash: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    flag_key: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    variant: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    response_hash: Option<Cow<'a, str>>,
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
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default)]
    parser_valid: Option<bool>,
    #[serde(default)]
    refused: Option<bool>,
    #[serde(default, alias = "hallucination")]
    hallucinated: Option<bool>,
    #[serde(default)]
    cost_usd: Option<f64>,
    #[serde(default)]
    citation_mismatch: Option<bool>,
    #[serde(default)]
    tool_call_mismatch: Option<bool>,
    #[serde(default)]
    unsupported_numeric_claims: Option<bool>,
    #[serde(default)]
    judge_score: Option<f64>,
    #[serde(default)]
    revision: Option<u64>,
    #[serde(default, borrow)]
    unit: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reason: Option<Cow<'a, str>>,
}

fn call(wire: &Wire<'_>) -> Result<LlmCall, Error> {
    let request_id = required(wire.request_id.as_deref(), "request_id")?;
    let status_text = required(wire.status.as_deref(), "status")?;
    let status = CallStatus::parse(status_text).ok_or_else(|| Error::InvalidValue {
        field: "status",
        reason: alloc::format!("{status_text:?} is not one of success, failure, error, timeout"),
    })?;
    let timestamp_millis = parse_timestamp(wire.timestamp.as_deref())?;
    let flag_key = required(wire.flag_key.as_deref(), "flag_key")?;
    let variant = required(wire.variant.as_deref(), "variant")?;
    let optional = |value: &Option<Cow<'_, str>>, field| {
        text(value.as_deref(), field, false).map(|text| text.map(str::to_string))
    };
    Ok(LlmCall {
        timestamp_millis,
        request_id: request_id.to_string(),
        environment: optional(&wire.environment, "environment")?,
        flag_key: flag_key.to_string(),
        variant: variant.to_string(),
        prompt_id: optional(&wire.prompt_id, "prompt_id")?,
        prompt_version: optional(&wire.prompt_version, "prompt_version")?,
        prompt_hash: optional(&wire.prompt_hash, "prompt_hash")?,
        user_id: optional(&wire.user_id, "user_id")?,
        model: optional(&wire.model, "model")?,
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
        citation_mismatch: wire.citation_mismatch,
        tool_call_mismatch: wire.tool_call_mismatch,
        unsupported_numeric_claims: wire.unsupported_numeric_claims,
        judge_score: judge_score(wire.judge_score)?,
        response_hash: optional(&wire.response_hash, "response_hash")?,
    })
}

/// A judge's score: finite and within `[0, 1]`.
fn judge_score(value: Option<f64>) -> Result<Option<f64>, Error> {
    match value {
        Some(score) if !(0.0..=1.0).contains(&score) => Err(Error::InvalidValue {
            field: "judge_score",
            reason: String::from("must be a number from 0 to 1"),
        }),
        other => Ok(other),
    }
}

fn exposure(wire: &Wire<'_>) -> Result<Exposure<'static>, Error> {
    let timestamp_millis = parse_timestamp(wire.timestamp.as_deref())?;
    let flag_key = required(wire.flag_key.as_deref(), "flag_key")?;
    let variant = required(wire.variant.as_deref(), "variant")?;
    Ok(Exposure {
        environment: owned(text(wire.environment.as_deref(), "environment", false)?),
        prompt_id: owned(text(wire.prompt_id.as_deref(), "prompt_id", false)?),
        prompt_version: owned(text(
            wire.prompt_version.as_deref(),
            "prompt_version",
            false,
        )?),
        prompt_hash: owned(text(wire.prompt_hash.as_deref(), "prompt_hash", false)?),
        unit: owned(text(wire.unit.as_deref(), "unit", false)?),
        reason: owned(text(wire.reason.as_deref(), "reason", false)?),
        id: owned(text(wire.id.as_deref(), "id", false)?),
        revision: revision(wire.revision)?,
        timestamp_millis,
        flag_key: Cow::Owned(flag_key.to_string()),
        variant: Some(Cow::Owned(variant.to_string())),
    })
}

/// Decodes one event from its JSON text: an exposure when `type` is `exposure`, an LLM call
/// when it is `llm_call`, `call` or absent. Errors carry the collector's per-event codes
/// ([`Error::code`]): `invalid_json`, `invalid_event`, `missing_field`, `invalid_value`,
/// `unknown_type`.
pub fn decode(json: &str) -> Result<Event, Error> {
    let wire: Wire<'_> = serde_json::from_str(json).map_err(|error| {
        if error.is_data() {
            Error::InvalidEvent {
                reason: error.to_string(),
            }
        } else {
            Error::InvalidJson {
                reason: error.to_string(),
            }
        }
    })?;
    match wire.kind.as_deref() {
        None | Some(LLM_CALL_TYPE) | Some("call") => call(&wire).map(Event::Call),
        Some(EXPOSURE_TYPE) => exposure(&wire).map(Event::Exposure),
        Some(other) => Err(Error::UnknownType {
            kind: other.to_string(),
        }),
    }
}

/// Sample events that use every field: what the schema tests and the npm type check encode.
pub mod samples {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Exposures: one with every field set (as the Worker sends them) and one with every
    /// nullable field `null` (as a client reports an evaluation that served nothing).
    pub fn exposures() -> Vec<Exposure<'static>> {
        vec![
            Exposure {
                id: None,
                timestamp_millis: 1_795_255_200_000,
                environment: Some(Cow::Borrowed("dev")),
                flag_key: Cow::Borrowed("support_prompt"),
                variant: Some(Cow::Borrowed("concise")),
                prompt_id: Some(Cow::Borrowed("support")),
                prompt_version: Some(Cow::Borrowed("2.1.0")),
                prompt_hash: Some(Cow::Borrowed(
                    "9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c",
                )),
                revision: Some(7),
                unit: Some(Cow::Borrowed("user-42")),
                reason: Some(Cow::Borrowed("SPLIT")),
            },
            Exposure {
                id: None,
                timestamp_millis: 0,
                environment: Some(Cow::Borrowed("dev")),
                flag_key: Cow::Borrowed("missing_flag"),
                variant: None,
                prompt_id: None,
                prompt_version: None,
                prompt_hash: None,
                revision: Some(crate::revision::MAX_REVISION),
                unit: None,
                reason: Some(Cow::Borrowed("ERROR")),
            },
        ]
    }

    /// An LLM call with every field set.
    pub fn llm_call() -> LlmCall {
        LlmCall {
            timestamp_millis: 1_747_304_625_500,
            request_id: String::from("r-1"),
            environment: Some(String::from("prod")),
            flag_key: String::from("support_prompt"),
            variant: String::from("concise"),
            prompt_id: Some(String::from("support")),
            prompt_version: Some(String::from("2.1.0")),
            prompt_hash: Some("9f".repeat(32)),
            user_id: Some(String::from("user-42")),
            model: Some(String::from("gpt-4o")),
            temperature: Some(0.7),
            input_tokens: Some(420),
            output_tokens: Some(80),
            latency_ms: Some(1200.0),
            ttft_ms: Some(310.5),
            status: CallStatus::Success,
            parser_valid: Some(true),
            refused: Some(false),
            hallucinated: Some(false),
            cost_usd: Some(0.0042),
            citation_mismatch: Some(false),
            tool_call_mismatch: Some(true),
            unsupported_numeric_claims: Some(false),
            judge_score: Some(0.75),
            response_hash: Some("5e".repeat(32)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use serde_json::{Value, json};

    fn keys(value: &Value) -> Vec<&str> {
        value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    fn written(fields: &[Field]) -> Vec<&'static str> {
        let mut names: Vec<&str> = fields
            .iter()
            .filter(|field| field.presence != Presence::Omittable)
            .map(|field| field.name)
            .collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn encoders_write_exactly_the_listed_fields() {
        for sample in samples::exposures() {
            let value = serde_json::to_value(&sample).unwrap();
            assert_eq!(keys(&value), written(EXPOSURE_FIELDS));
            for field in EXPOSURE_FIELDS {
                if field.presence == Presence::Always {
                    assert!(!value[field.name].is_null(), "{}", field.name);
                }
            }
        }
        let with_id = Exposure {
            id: Some(Cow::Borrowed("e-1")),
            ..samples::exposures().remove(0)
        };
        assert_eq!(serde_json::to_value(&with_id).unwrap()["id"], "e-1");
        let call = serde_json::to_value(samples::llm_call()).unwrap();
        assert_eq!(keys(&call), written(LLM_CALL_FIELDS));
    }

    #[test]
    fn exposures_are_written_in_the_documented_format() {
        let value = serde_json::to_value(&samples::exposures()[0]).unwrap();
        assert_eq!(
            value,
            json!({"type": "exposure", "timestamp": "2026-11-21T10:00:00.000Z",
                "environment": "dev", "flag_key": "support_prompt", "variant": "concise",
                "prompt_id": "support", "prompt_version": "2.1.0", "prompt_hash": "9f2c".repeat(16), "revision": 7, "unit": "user-42",
                "reason": "SPLIT"})
        );
    }

    #[test]
    fn encoded_events_decode_to_themselves() {
        let exposure = samples::exposures().remove(0);
        let text = serde_json::to_string(&exposure).unwrap();
        assert_eq!(decode(&text), Ok(Event::Exposure(exposure)));
        let call = samples::llm_call();
        let text = serde_json::to_string(&call).unwrap();
        assert_eq!(decode(&text).unwrap(), Event::Call(call));
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["latency_ms"], json!(1200));
        assert_eq!(value["ttft_ms"], json!(310.5));
    }

    #[test]
    fn every_required_field_is_required_by_the_decoder() {
        for (fields, sample) in [
            (
                EXPOSURE_FIELDS,
                serde_json::to_value(&samples::exposures()[0]).unwrap(),
            ),
            (
                LLM_CALL_FIELDS,
                serde_json::to_value(samples::llm_call()).unwrap(),
            ),
        ] {
            assert!(decode(&sample.to_string()).is_ok());
            for field in fields {
                for absent in [None, Some(Value::Null)] {
                    let mut event = sample.clone();
                    let object = event.as_object_mut().unwrap();
                    match &absent {
                        None => object.remove(field.name),
                        Some(null) => object.insert(field.name.to_string(), null.clone()),
                    };
                    let decoded = decode(&event.to_string());
                    if field.required && field.name != "type" {
                        assert_eq!(
                            decoded.unwrap_err(),
                            Error::MissingField { field: field.name },
                            "{}",
                            field.name
                        );
                    } else if field.name != "type" {
                        assert!(decoded.is_ok(), "{}: {decoded:?}", field.name);
                    }
                }
            }
        }
        // `type` decides the schema: without it an exposure is read as an LLM call.
        let mut exposure = serde_json::to_value(&samples::exposures()[0]).unwrap();
        exposure.as_object_mut().unwrap().remove("type");
        assert_eq!(
            decode(&exposure.to_string()).unwrap_err(),
            Error::MissingField {
                field: "request_id"
            }
        );
    }

    #[test]
    fn bad_values_get_the_collectors_codes() {
        let code = |text: &str| decode(text).unwrap_err().code();
        assert_eq!(code("{"), "invalid_json");
        assert_eq!(code(r#"{"input_tokens": -1}"#), "invalid_event");
        assert_eq!(code(r#"{"type": "click"}"#), "unknown_type");
        assert_eq!(
            code(
                r#"{"type": "exposure", "timestamp": "yesterday", "flag_key": "f", "variant": "a"}"#
            ),
            "invalid_value"
        );
        assert_eq!(
            code(
                r#"{"type": "exposure", "timestamp": "2026-11-21T10:00:00Z", "flag_key": "f", "variant": "a", "revision": 9007199254740992}"#
            ),
            "invalid_value"
        );
        let long = "x".repeat(MAX_TEXT + 1);
        assert_eq!(
            code(&format!(
                r#"{{"type": "exposure", "timestamp": "2026-11-21T10:00:00Z", "flag_key": "{long}", "variant": "a"}}"#
            )),
            "invalid_value"
        );
        let mut call = samples::llm_call();
        call.latency_ms = Some(f64::NAN);
        assert_eq!(call.check().unwrap_err().code(), "invalid_value");
        call.latency_ms = Some(-1.0);
        assert_eq!(call.check().unwrap_err().code(), "invalid_value");
        let mut served_nothing = samples::exposures().remove(1);
        assert_eq!(
            served_nothing.check(),
            Err(Error::MissingField { field: "variant" })
        );
        served_nothing.variant = Some(Cow::Borrowed("a"));
        assert_eq!(served_nothing.check(), Ok(()));
    }

    #[test]
    fn statuses_and_aliases() {
        for status in [
            CallStatus::Success,
            CallStatus::Failure,
            CallStatus::Error,
            CallStatus::Timeout,
        ] {
            assert_eq!(CallStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(CallStatus::parse("ok"), Some(CallStatus::Success));
        assert_eq!(CallStatus::parse("failed"), Some(CallStatus::Failure));
        assert_eq!(CallStatus::parse("done"), None);
    }
}

/// The schemas as JSON, for the npm package's type check (`npm/tests/contracts.test.mjs` reads
/// them from `npm/tests/fixtures/contracts.json`, which this test keeps current).
#[cfg(test)]
mod fixture {
    use super::*;
    use serde_json::{Value, json};

    fn fields(fields: &[Field]) -> Value {
        fields
            .iter()
            .map(|field| {
                let (ty, literal) = match field.ty {
                    FieldType::Literal(value) => ("literal", Some(value)),
                    FieldType::Text => ("text", None),
                    FieldType::Timestamp => ("timestamp", None),
                    FieldType::Revision => ("revision", None),
                    FieldType::Count => ("count", None),
                    FieldType::Number => ("number", None),
                    FieldType::Bool => ("bool", None),
                    FieldType::Status => ("status", None),
                };
                let presence = match field.presence {
                    Presence::Always => "always",
                    Presence::Nullable => "nullable",
                    Presence::Omittable => "omittable",
                };
                let mut value = json!({"name": field.name, "type": ty, "presence": presence,
                    "required": field.required});
                if let Some(literal) = literal {
                    value["literal"] = json!(literal);
                }
                value
            })
            .collect()
    }

    fn generated() -> String {
        let value = json!({
            "comment": "Generated by the promptflag-contracts tests (UPDATE_EXPECT=1 cargo test -p promptflag-contracts); checked against the TypeScript types by npm/tests/contracts.test.mjs.",
            "exposure": {
                "fields": fields(EXPOSURE_FIELDS),
                "samples": samples::exposures(),
            },
            "llm_call": {
                "fields": fields(LLM_CALL_FIELDS),
                "samples": [samples::llm_call()],
            },
        });
        let mut text = serde_json::to_string_pretty(&value).unwrap();
        text.push('\n');
        text
    }

    #[test]
    fn the_npm_fixture_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../npm/tests/fixtures/contracts.json");
        let actual = generated();
        if std::env::var("UPDATE_EXPECT").as_deref() == Ok("1") {
            std::fs::write(&path, &actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            expected == actual,
            "{} is not what the schemas give; re-bless it with `UPDATE_EXPECT=1 cargo test -p promptflag-contracts` and make the npm types follow (npm/tests/contracts.test.mjs)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}
