//! promptflag-wasm: the wasm-bindgen layer between promptflag-core and the npm package.
//!
//! It converts and nothing else: JSON text and JS primitives in, JSON text or packed integers
//! out, core's errors to one JS error shape. Every decision about flags is core's; the
//! TypeScript package (`npm/`) builds the public API on top of these raw exports.
//!
//! Two ways across the boundary:
//!
//! - JSON: [`WasmRuleset::evaluate_json`] and friends return core's [`Evaluation`] serialised
//!   with serde (the same field names as everywhere else), for callers that want every detail.
//! - Packed: [`WasmRuleset::evaluate_code`] takes a flag by its index and a [`WasmContext`] that
//!   lives in Wasm memory, and returns the variant, reason and error code packed in one `u32`
//!   (layout below). The JS side turns a code into a result object it caches per flag, so a hot
//!   loop that changes one attribute per call moves a few bytes across the boundary, not JSON.
//!
//! Packed code layout (mirrored in `npm/src/engine.ts`):
//! bits 0..8 the variant's position in the flag's sorted variant keys ([`NO_VARIANT`] for none),
//! bits 8..11 the reason ([`reason_ordinal`]), bits 11..15 the error code
//! ([`error_code_ordinal`], 0 for none).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use promptflag_core::context::TARGETING_KEY;
use promptflag_core::model::RawRuleset;
use promptflag_core::{
    AttributeValue, Context, ContextError, ErrorCode, Evaluation, ExpectedType, Reason, Ruleset,
    RulesetError, context_error,
};
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// The global allocator of the Wasm build (see Cargo.toml).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// The variant position that means "no variant" (the flag does not exist).
pub const NO_VARIANT: u32 = 0xff;

/// A validated ruleset held in Wasm memory.
#[wasm_bindgen]
pub struct WasmRuleset {
    ruleset: Ruleset,
    /// Flag keys in core's (sorted) order: a flag's index is its position here.
    flag_keys: Vec<String>,
    /// Each flag's variant keys, sorted: a variant's position is its number in packed codes.
    variant_keys: Vec<Vec<String>>,
}

/// One evaluation context (its attributes and the caller's clock) held in Wasm memory, so that
/// a caller can change one attribute and evaluate again without resending the rest.
#[wasm_bindgen]
#[derive(Default)]
pub struct WasmContext {
    context: Context,
}

/// The shape `describe` returns: what the JS side needs to name flags and variants.
#[derive(Serialize)]
struct Description<'a> {
    schema: u32,
    environment: &'a str,
    revision: u64,
    source: &'a str,
    flags: Vec<FlagDescription<'a>>,
}

#[derive(Serialize)]
struct FlagDescription<'a> {
    key: &'a str,
    kind: &'static str,
    variants: &'a [String],
}

/// The one shape every error thrown to JS has (as JSON text): the TypeScript layer turns it
/// into its typed error classes.
#[derive(Serialize)]
struct ThrownError<'a> {
    kind: &'static str,
    message: String,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    problems: &'a [promptflag_core::Problem],
}

/// The single place where a Rust error becomes a JS error.
fn thrown(kind: &'static str, message: String, problems: &[promptflag_core::Problem]) -> JsValue {
    let error = ThrownError {
        kind,
        message,
        problems,
    };
    match serde_json::to_string(&error) {
        Ok(text) => JsValue::from_str(&text),
        Err(_) => {
            JsValue::from_str(r#"{"kind":"internal","message":"an error could not be encoded"}"#)
        }
    }
}

fn ruleset_error(error: &RulesetError) -> JsValue {
    let problems = match error {
        RulesetError::Invalid { problems } => problems.clone(),
        _ => error.problems(),
    };
    thrown("ruleset", error.to_string(), &problems)
}

fn context_parse_error(error: &ContextError) -> JsValue {
    thrown("context", error.to_string(), &[])
}

/// JSON text of anything serialisable; serde_json only fails on maps with non-string keys,
/// which none of core's types have.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("null"))
}

/// The number a reason has in packed codes.
pub fn reason_ordinal(reason: Reason) -> u32 {
    match reason {
        Reason::Static => 0,
        Reason::TargetingMatch => 1,
        Reason::Split => 2,
        Reason::Disabled => 3,
        Reason::Default => 4,
        Reason::Error => 5,
    }
}

/// The number an error code has in packed codes (0 is "no error").
pub fn error_code_ordinal(code: Option<ErrorCode>) -> u32 {
    match code {
        None => 0,
        Some(ErrorCode::FlagNotFound) => 1,
        Some(ErrorCode::TargetingKeyMissing) => 2,
        Some(ErrorCode::InvalidContext) => 3,
        Some(ErrorCode::ParseError) => 4,
        Some(ErrorCode::TypeMismatch) => 5,
        Some(_) => 6,
    }
}

fn expected_type(code: u32) -> Result<ExpectedType, JsValue> {
    Ok(match code {
        0 => ExpectedType::Boolean,
        1 => ExpectedType::String,
        2 => ExpectedType::Number,
        3 => ExpectedType::Object,
        other => {
            return Err(thrown(
                "argument",
                format!(
                    "expected type {other} is not one of 0 (boolean), 1 (string), 2 (number), 3 (object)"
                ),
                &[],
            ));
        }
    })
}

/// Milliseconds since the epoch from JS, where `NaN` means "no clock given".
fn millis(now_millis: f64) -> Option<i64> {
    now_millis.is_finite().then_some(now_millis as i64)
}

#[wasm_bindgen]
impl WasmRuleset {
    /// Parses and validates ruleset JSON; throws every problem core found, each with its path.
    pub fn parse(text: &str) -> Result<WasmRuleset, JsValue> {
        let ruleset = Ruleset::from_json_str(text).map_err(|error| ruleset_error(&error))?;
        // Core validated the document, so it reads as the raw model too; the raw model is read
        // only for the variant names, which number the variants in packed codes.
        // `from_slice`, as core reads it, so the deserialiser is compiled once, not twice.
        let raw: RawRuleset = serde_json::from_slice(text.as_bytes())
            .map_err(|error| thrown("ruleset", format!("ruleset rejected: {error}"), &[]))?;
        let flag_keys: Vec<String> = ruleset.flag_keys().map(String::from).collect();
        let variant_keys = flag_keys
            .iter()
            .map(|key| {
                let mut keys: Vec<String> = raw
                    .flags
                    .get(key)
                    .map(|flag| flag.variants.iter().map(|(name, _)| name.clone()).collect())
                    .unwrap_or_default();
                keys.sort();
                keys
            })
            .collect();
        Ok(WasmRuleset {
            ruleset,
            flag_keys,
            variant_keys,
        })
    }

    /// `{schema, environment, revision, source, flags: [{key, kind, variants}]}` as JSON, flags
    /// in index order and variants in packed-code order.
    pub fn describe(&self) -> String {
        let flags = self
            .flag_keys
            .iter()
            .zip(&self.variant_keys)
            .map(|(key, variants)| FlagDescription {
                key,
                kind: self.ruleset.flag_kind(key).map_or("", |kind| kind.as_str()),
                variants,
            })
            .collect();
        to_json(&Description {
            schema: self.ruleset.schema(),
            environment: self.ruleset.environment(),
            revision: self.ruleset.revision(),
            source: self.ruleset.source(),
            flags,
        })
    }

    /// Every prompt version (`[{content_id, hash, id, version, model, parameters, output_schema?}]`)
    /// as JSON, sorted by content id.
    pub fn prompts_json(&self) -> String {
        to_json(&self.ruleset.prompts())
    }

    /// One flag, as core's evaluation JSON.
    pub fn evaluate_json(&self, flag_key: &str, context: &WasmContext) -> String {
        to_json(&self.ruleset.evaluate(flag_key, &context.context))
    }

    /// One flag for a context given as JSON text; a context that is not a JSON object is
    /// core's `PARSE_ERROR` / `INVALID_CONTEXT` evaluation, not an exception.
    pub fn evaluate_text(&self, flag_key: &str, context_json: &str, now_millis: f64) -> String {
        match parse_context(context_json, now_millis) {
            Ok(context) => to_json(&self.ruleset.evaluate(flag_key, &context)),
            Err(problem) => to_json(&context_error(&self.ruleset, flag_key, &problem)),
        }
    }

    /// One flag with the caller's expected type (0 boolean, 1 string, 2 number, 3 object).
    pub fn evaluate_typed_json(
        &self,
        flag_key: &str,
        context: &WasmContext,
        expected: u32,
    ) -> Result<String, JsValue> {
        let expected = expected_type(expected)?;
        Ok(to_json(&self.ruleset.evaluate_typed(
            flag_key,
            &context.context,
            expected,
        )))
    }

    /// A prompt flag, as core's evaluation JSON (its `prompt` field names the body).
    pub fn resolve_prompt_json(&self, flag_key: &str, context: &WasmContext) -> String {
        to_json(&self.ruleset.resolve_prompt(flag_key, &context.context))
    }

    /// Every flag, in key order, as a JSON array of evaluations.
    pub fn evaluate_all_json(&self, context: &WasmContext) -> String {
        to_json(&self.ruleset.evaluate_all(&context.context))
    }

    /// Every flag for a context given as JSON text. A context that is not a JSON object gives
    /// each flag core's context-error evaluation.
    pub fn evaluate_all_text(&self, context_json: &str, now_millis: f64) -> String {
        match parse_context(context_json, now_millis) {
            Ok(context) => to_json(&self.ruleset.evaluate_all(&context)),
            Err(problem) => {
                let evaluations: Vec<Evaluation<'_>> = self
                    .flag_keys
                    .iter()
                    .map(|key| context_error(&self.ruleset, key, &problem))
                    .collect();
                to_json(&evaluations)
            }
        }
    }

    /// The hot path: one flag by index, packed as described in the crate docs. An index past
    /// the last flag packs `FLAG_NOT_FOUND`.
    pub fn evaluate_code(&self, flag_index: u32, context: &WasmContext) -> u32 {
        match self.flag_keys.get(flag_index as usize) {
            Some(key) => self.pack(flag_index, &self.ruleset.evaluate(key, &context.context)),
            None => NOT_FOUND_CODE,
        }
    }

    /// Sets the context's `targetingKey` to the text at `[0, key_len)` of the scratch area, then
    /// [`WasmRuleset::evaluate_code`]: a hot loop's two steps in one call. Returns
    /// [`u32::MAX`], leaving the context as it was, when the scratch text is not UTF-8.
    pub fn evaluate_code_with_targeting_key(
        &self,
        flag_index: u32,
        context: &mut WasmContext,
        key_len: usize,
    ) -> u32 {
        if context.set_targeting_key_from_scratch(key_len).is_err() {
            return u32::MAX;
        }
        self.evaluate_code(flag_index, context)
    }

    /// Loads the context from the attributes at `[0, byte_len)` of the scratch area (as
    /// [`WasmContext::load_from_scratch`]), then [`WasmRuleset::evaluate_code`]: a plain-object
    /// context's one call. Returns [`u32::MAX`], leaving the context as it was, when the bytes
    /// are malformed.
    pub fn evaluate_code_from_scratch(
        &self,
        flag_index: u32,
        context: &mut WasmContext,
        byte_len: usize,
        now_millis: f64,
    ) -> u32 {
        if !context.load_from_scratch(byte_len, now_millis) {
            return u32::MAX;
        }
        self.evaluate_code(flag_index, context)
    }

    /// For each flag, in index order, the names of the attributes evaluating it can read
    /// (`Ruleset::attributes_read`), as a JSON array of arrays: JS passes only those, and
    /// nothing for a flag that reads none.
    pub fn attributes_read_json(&self) -> String {
        let reads: Vec<Vec<&str>> = self
            .flag_keys
            .iter()
            .map(|key| self.ruleset.attributes_read(key).unwrap_or_default())
            .collect();
        to_json(&reads)
    }

    /// [`WasmRuleset::evaluate_code`] with the caller's expected type (as in
    /// [`WasmRuleset::evaluate_typed_json`]).
    pub fn evaluate_typed_code(
        &self,
        flag_index: u32,
        context: &WasmContext,
        expected: u32,
    ) -> Result<u32, JsValue> {
        let expected = expected_type(expected)?;
        Ok(match self.flag_keys.get(flag_index as usize) {
            Some(key) => self.pack(
                flag_index,
                &self.ruleset.evaluate_typed(key, &context.context, expected),
            ),
            None => NOT_FOUND_CODE,
        })
    }

    /// [`WasmRuleset::evaluate_code`] for prompt resolution.
    pub fn resolve_prompt_code(&self, flag_index: u32, context: &WasmContext) -> u32 {
        match self.flag_keys.get(flag_index as usize) {
            Some(key) => self.pack(
                flag_index,
                &self.ruleset.resolve_prompt(key, &context.context),
            ),
            None => NOT_FOUND_CODE,
        }
    }

    /// Every flag, packed, in index order.
    pub fn evaluate_all_codes(&self, context: &WasmContext) -> Vec<u32> {
        self.ruleset
            .evaluate_all(&context.context)
            .iter()
            .zip(0u32..)
            .map(|(evaluation, flag_index)| self.pack(flag_index, evaluation))
            .collect()
    }

    /// The bucketing slot a split gave the unit for one flag by index, or -1 when no split
    /// decided (the cross-runtime identity test compares slots).
    pub fn slot(&self, flag_index: u32, context: &WasmContext) -> i32 {
        self.flag_keys
            .get(flag_index as usize)
            .and_then(|key| self.ruleset.evaluate(key, &context.context).bucket)
            .map_or(-1, |bucket| bucket.slot as i32)
    }
}

/// The packed code of `FLAG_NOT_FOUND`.
const NOT_FOUND_CODE: u32 = NO_VARIANT | 5 << 8 | 1 << 11;

impl WasmRuleset {
    /// Packs an evaluation of the flag at `flag_index` (layout in the crate docs).
    fn pack(&self, flag_index: u32, evaluation: &Evaluation<'_>) -> u32 {
        let variant = evaluation
            .variant
            .and_then(|variant| {
                self.variant_keys
                    .get(flag_index as usize)?
                    .binary_search_by(|probe| probe.as_str().cmp(variant))
                    .ok()
            })
            .map_or(NO_VARIANT, |position| position as u32);
        variant
            | reason_ordinal(evaluation.reason) << 8
            | error_code_ordinal(evaluation.error_code) << 11
    }
}

thread_local! {
    /// Bytes JS writes strings into before a `*_from_scratch` call, so a hot loop passes text
    /// without a `malloc` and a `free` crossing the boundary per string.
    static SCRATCH: core::cell::RefCell<Vec<u8>> = const { core::cell::RefCell::new(Vec::new()) };
}

/// Makes the scratch area at least `len` bytes long and returns its address in Wasm memory.
/// The address stays valid until the next call of this function.
#[wasm_bindgen]
pub fn scratch_reserve(len: usize) -> usize {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        if scratch.len() < len {
            scratch.resize(len.next_power_of_two().max(256), 0);
        }
        scratch.as_ptr() as usize
    })
}

/// The text JS wrote at `[start, start + len)` of the scratch area.
fn scratch_text(start: usize, len: usize) -> Result<String, JsValue> {
    SCRATCH.with(|scratch| {
        let scratch = scratch.borrow();
        let bytes = start
            .checked_add(len)
            .and_then(|end| scratch.get(start..end))
            .ok_or_else(|| thrown("internal", String::from("scratch range out of bounds"), &[]))?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| thrown("internal", String::from("scratch text is not UTF-8"), &[]))
    })
}

/// Attribute tags of the scratch encoding.
const TAG_STRING: u8 = 0;
const TAG_INTEGER: u8 = 1;
const TAG_NUMBER: u8 = 2;
const TAG_BOOL: u8 = 3;
const TAG_UNSUPPORTED: u8 = 4;

/// An attribute value as decoded: text still borrowed from the scratch area, so a value equal to
/// the one the context holds costs no allocation.
enum Decoded<'b> {
    Text(&'b str),
    Other(AttributeValue),
}

impl Decoded<'_> {
    fn is(&self, existing: Option<&AttributeValue>) -> bool {
        match (self, existing) {
            (Decoded::Text(text), Some(AttributeValue::String(held))) => held == text,
            (Decoded::Other(value), Some(held)) => held == value,
            _ => false,
        }
    }

    fn into_value(self) -> AttributeValue {
        match self {
            Decoded::Text(text) => AttributeValue::String(String::from(text)),
            Decoded::Other(value) => value,
        }
    }
}

/// Reads attributes encoded by `encodeAttributes` in `npm/src/engine.ts`: for each, a tag byte,
/// the name's length (u32, little-endian) and UTF-8 bytes, then the value: for strings a u32
/// length and UTF-8 bytes, for integers and numbers an f64, for booleans one byte, for arrays
/// and objects nothing. `None` when the bytes are malformed.
fn decode_attributes(bytes: &[u8]) -> Option<Vec<(&str, Decoded<'_>)>> {
    fn take<'b>(bytes: &'b [u8], cursor: &mut usize, len: usize) -> Option<&'b [u8]> {
        let slice = bytes.get(*cursor..cursor.checked_add(len)?)?;
        *cursor += len;
        Some(slice)
    }
    fn length(bytes: &[u8], cursor: &mut usize) -> Option<usize> {
        let raw = take(bytes, cursor, 4)?;
        Some(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
    }
    fn float(bytes: &[u8], cursor: &mut usize) -> Option<f64> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(take(bytes, cursor, 8)?);
        Some(f64::from_le_bytes(raw))
    }
    let mut attributes = Vec::new();
    let mut cursor = 0;
    while cursor < bytes.len() {
        let tag = *take(bytes, &mut cursor, 1)?.first()?;
        let name_len = length(bytes, &mut cursor)?;
        let name = core::str::from_utf8(take(bytes, &mut cursor, name_len)?).ok()?;
        let value = match tag {
            TAG_STRING => {
                let len = length(bytes, &mut cursor)?;
                Decoded::Text(core::str::from_utf8(take(bytes, &mut cursor, len)?).ok()?)
            }
            TAG_INTEGER => {
                Decoded::Other(AttributeValue::Integer(float(bytes, &mut cursor)? as i64))
            }
            TAG_NUMBER => Decoded::Other(AttributeValue::Number(float(bytes, &mut cursor)?)),
            TAG_BOOL => Decoded::Other(AttributeValue::Bool(
                *take(bytes, &mut cursor, 1)?.first()? != 0,
            )),
            TAG_UNSUPPORTED => Decoded::Other(AttributeValue::Unsupported),
            _ => return None,
        };
        attributes.push((name, value));
    }
    Some(attributes)
}

/// `xxh3_64(seed + "/" + unit)`, the bucketing hash (a BigInt in JS).
#[wasm_bindgen]
pub fn bucket_hash(seed: &str, unit: &str) -> u64 {
    promptflag_core::bucket::bucket_hash(seed, unit)
}

/// The bucketing slot of `unit` under `seed`, in `[0, 100000)`.
#[wasm_bindgen]
pub fn bucket_slot(seed: &str, unit: &str) -> u32 {
    promptflag_core::bucket::slot(seed, unit)
}

fn parse_context(context_json: &str, now_millis: f64) -> Result<Context, ContextError> {
    let mut context = Context::from_json_str(context_json)?;
    context.set_now_millis(millis(now_millis));
    Ok(context)
}

#[wasm_bindgen]
impl WasmContext {
    /// An empty context.
    #[wasm_bindgen(constructor)]
    pub fn new() -> WasmContext {
        WasmContext::default()
    }

    /// A context from JSON text of an object; throws when it is not one.
    pub fn from_json(context_json: &str, now_millis: f64) -> Result<WasmContext, JsValue> {
        parse_context(context_json, now_millis)
            .map(|context| WasmContext { context })
            .map_err(|error| context_parse_error(&error))
    }

    /// Replaces the whole context with one read from JSON text; returns false, leaving the
    /// context as it was, when the text is not a JSON object.
    pub fn load_json(&mut self, context_json: &str, now_millis: f64) -> bool {
        match parse_context(context_json, now_millis) {
            Ok(context) => {
                self.context = context;
                true
            }
            Err(_) => false,
        }
    }

    /// Sets a string attribute. (`String`, not `&str`: the text JS wrote into Wasm memory is
    /// kept as it is, with no second copy.)
    pub fn set_string(&mut self, name: &str, value: String) {
        self.context.set(name, AttributeValue::String(value));
    }

    /// Replaces the whole context with the attributes JS encoded in the scratch area (its first
    /// `byte_len` bytes; the encoding is [`decode_attributes`]'s). Returns false, leaving the
    /// context as it was, when the bytes are malformed.
    pub fn load_from_scratch(&mut self, byte_len: usize, now_millis: f64) -> bool {
        SCRATCH.with(|scratch| {
            let scratch = scratch.borrow();
            let Some(attributes) = scratch.get(..byte_len).and_then(decode_attributes) else {
                return false;
            };
            // A loop usually sends the same attribute names each time, most with the same values:
            // then only the values that changed are replaced, and nothing else is allocated.
            let same_names = attributes.len() == self.context.iter().count()
                && attributes
                    .iter()
                    .all(|(name, _)| self.context.get(name).is_some());
            if same_names {
                for (name, value) in attributes {
                    if !value.is(self.context.get(name)) {
                        self.context.set(name, value.into_value());
                    }
                }
            } else {
                let mut context = Context::new();
                for (name, value) in attributes {
                    context.set(name, value.into_value());
                }
                self.context = context;
            }
            self.context.set_now_millis(millis(now_millis));
            true
        })
    }

    /// [`WasmContext::set_string`] with the name at `[0, name_len)` of the scratch area and the
    /// value right after it.
    pub fn set_string_from_scratch(
        &mut self,
        name_len: usize,
        value_len: usize,
    ) -> Result<(), JsValue> {
        let name = scratch_text(0, name_len)?;
        let value = scratch_text(name_len, value_len)?;
        self.context.set(&name, AttributeValue::String(value));
        Ok(())
    }

    /// [`WasmContext::set_targeting_key`] with the value at `[0, len)` of the scratch area.
    pub fn set_targeting_key_from_scratch(&mut self, len: usize) -> Result<(), JsValue> {
        let value = scratch_text(0, len)?;
        self.context
            .set(TARGETING_KEY, AttributeValue::String(value));
        Ok(())
    }

    /// Sets `targetingKey`, the default bucketing unit: the one attribute a hot loop changes.
    pub fn set_targeting_key(&mut self, value: String) {
        self.context
            .set(TARGETING_KEY, AttributeValue::String(value));
    }

    /// Sets an integer attribute (a JS number that is an integer within `i64`).
    pub fn set_integer(&mut self, name: &str, value: f64) {
        self.context
            .set(name, AttributeValue::Integer(value as i64));
    }

    /// Sets a number attribute.
    pub fn set_number(&mut self, name: &str, value: f64) {
        self.context.set(name, AttributeValue::Number(value));
    }

    /// Sets a boolean attribute.
    pub fn set_bool(&mut self, name: &str, value: bool) {
        self.context.set(name, AttributeValue::Bool(value));
    }

    /// Sets an attribute to an array or object, which no operator reads.
    pub fn set_unsupported(&mut self, name: &str) {
        self.context.set(name, AttributeValue::Unsupported);
    }

    /// Removes an attribute (as JSON `null` would leave it out).
    pub fn remove(&mut self, name: &str) {
        if self.context.get(name).is_none() {
            return;
        }
        let mut rebuilt = Context::new();
        for (key, value) in self.context.iter().filter(|(key, _)| *key != name) {
            rebuilt.set(key, value.clone());
        }
        rebuilt.set_now_millis(self.context.now_millis());
        self.context = rebuilt;
    }

    /// Sets the clock date operators read, in milliseconds since the epoch; `NaN` clears it.
    pub fn set_now_millis(&mut self, now_millis: f64) {
        self.context.set_now_millis(millis(now_millis));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_attribute_tag_and_rejects_truncated_bytes() {
        let mut bytes = Vec::new();
        let mut attribute = |tag: u8, name: &str, payload: &[u8]| {
            bytes.push(tag);
            bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
            bytes.extend_from_slice(name.as_bytes());
            bytes.extend_from_slice(payload);
        };
        let mut text = 4u32.to_le_bytes().to_vec();
        text.extend_from_slice("é!x".as_bytes());
        attribute(TAG_STRING, "plan", &text);
        attribute(TAG_INTEGER, "seats", &12f64.to_le_bytes());
        attribute(TAG_NUMBER, "score", &0.5f64.to_le_bytes());
        attribute(TAG_BOOL, "beta", &[1]);
        attribute(TAG_UNSUPPORTED, "tags", &[]);
        let mut context = Context::new();
        for (name, value) in decode_attributes(&bytes).expect("well-formed") {
            context.set(name, value.into_value());
        }
        assert_eq!(
            context.get("plan"),
            Some(&AttributeValue::String("é!x".into()))
        );
        assert_eq!(context.get("seats"), Some(&AttributeValue::Integer(12)));
        assert_eq!(context.get("score"), Some(&AttributeValue::Number(0.5)));
        assert_eq!(context.get("beta"), Some(&AttributeValue::Bool(true)));
        assert_eq!(context.get("tags"), Some(&AttributeValue::Unsupported));
        for cut in 0..bytes.len() {
            // Every proper prefix that ends inside an attribute is malformed.
            if let Some(attributes) = decode_attributes(&bytes[..cut]) {
                assert!(attributes.len() < 5);
            }
        }
        assert!(decode_attributes(&[9, 0, 0, 0, 0]).is_none());
    }

    #[test]
    fn not_found_code_packs_flag_not_found() {
        assert_eq!(
            NOT_FOUND_CODE,
            NO_VARIANT
                | reason_ordinal(Reason::Error) << 8
                | error_code_ordinal(Some(ErrorCode::FlagNotFound)) << 11
        );
    }
}
