//! Evaluation: one flag, or all of them, for one context. It never fails loudly and never
//! panics: whatever goes wrong, the baseline is served with reason `ERROR` and an OpenFeature
//! error code.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::Value;

use crate::bucket::slot_with_prefix;
use crate::case::to_lowercase;
use crate::context::{AttributeValue, CURRENT_TIME, Context, Found};
use crate::literal::{parse_number, parse_rfc3339_millis};
use crate::model::FlagKind;
use crate::ruleset::{
    Condition, Flag, InList, Name, NumberTest, Prefix, Print, PromptMeta, Ruleset, Segment, Serve,
    Split, StringTest, Test, bytes_equal, compare_keys, keys_equal,
};

/// Why a value was served (OpenFeature's resolution reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The flag has no rules and serves one variant to everyone.
    Static,
    /// A targeting rule matched and served a single variant.
    TargetingMatch,
    /// A split assigned the unit (from a matching rule or the default).
    Split,
    /// The kill switch is on: the baseline for everyone.
    Disabled,
    /// No rule matched and the default served one variant, or the unit is outside the split's layer range.
    Default,
    /// Something went wrong; see the error code. The baseline was served.
    Error,
}

impl Reason {
    /// The OpenFeature name (`TARGETING_MATCH`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Disabled => "DISABLED",
            Reason::Default => "DEFAULT",
            Reason::Error => "ERROR",
        }
    }
}

/// OpenFeature error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorCode {
    /// No flag has the key.
    FlagNotFound,
    /// A split needs the unit attribute and the context lacks it.
    TargetingKeyMissing,
    /// The context is not an object, or an attribute a rule reads has an unusable type.
    InvalidContext,
    /// The ruleset or the context could not be parsed.
    ParseError,
    /// The caller asked for a different type than the flag has.
    TypeMismatch,
    /// Anything else; runtimes use it for failures outside the engine.
    General,
}

impl ErrorCode {
    /// The OpenFeature name (`FLAG_NOT_FOUND`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::General => "GENERAL",
        }
    }
}

/// Where a split put the unit: the slot, and the lane (`None` for the baseline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    /// The slot in `[0, 100000)`.
    pub slot: u32,
    /// The treatment lane, or `None` when the slot is outside every lane (the baseline).
    pub lane: Option<u32>,
    /// The layer slot, when the split sits in a layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_slot: Option<u32>,
    /// False when the unit's layer slot is outside the split's range.
    pub in_experiment: bool,
}

/// The outcome of evaluating one flag.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation<'r> {
    /// The flag key asked for.
    pub key: Cow<'r, str>,
    /// The value served; `None` only when the flag does not exist.
    pub value: Option<&'r Value>,
    /// The variant served; `None` only when the flag does not exist.
    pub variant: Option<&'r str>,
    /// Why.
    pub reason: Reason,
    /// Set when `reason` is `ERROR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    /// A sentence about the error, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<&'static str>,
    /// The index of the rule that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_index: Option<u32>,
    /// The id of the rule that matched, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<&'r str>,
    /// The bucketing outcome, when a split decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<Bucket>,
    /// The prompt served, for prompt flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<&'r PromptMeta>,
}

impl Evaluation<'_> {
    /// True when the evaluation hit an error (and so served the baseline).
    pub fn is_error(&self) -> bool {
        self.reason == Reason::Error
    }
}

/// The type a caller expects, for OpenFeature's typed resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedType {
    /// `true` / `false`.
    Boolean,
    /// A string.
    String,
    /// A number.
    Number,
    /// A JSON object (prompt flags are objects).
    Object,
}

impl ExpectedType {
    fn accepts(self, kind: FlagKind) -> bool {
        matches!(
            (self, kind),
            (ExpectedType::Boolean, FlagKind::Boolean)
                | (ExpectedType::String, FlagKind::String)
                | (ExpectedType::Number, FlagKind::Number)
                | (ExpectedType::Object, FlagKind::Object | FlagKind::Prompt)
        )
    }
}

/// An error with a message, inside evaluation.
type Failure = (ErrorCode, &'static str);

const MISSING_UNIT: &str = "the split's bucketing attribute is missing from the context";
const BAD_UNIT: &str = "the bucketing attribute must be a string or an integer";
const BAD_ATTRIBUTE: &str = "a rule reads an attribute that is an array or an object";

/// Why evaluation could not decide, as one byte: the hot path passes this around, and
/// [`Fault::failure`] gives the code and message served.
#[derive(Debug, Clone, Copy)]
enum Fault {
    MissingUnit,
    BadUnit,
    BadAttribute,
}

impl Fault {
    fn failure(self) -> Failure {
        match self {
            Fault::MissingUnit => (ErrorCode::TargetingKeyMissing, MISSING_UNIT),
            Fault::BadUnit => (ErrorCode::InvalidContext, BAD_UNIT),
            Fault::BadAttribute => (ErrorCode::InvalidContext, BAD_ATTRIBUTE),
        }
    }
}

/// What a flag serves: the variant, why, and how it was reached.
struct Decision {
    variant: usize,
    reason: Reason,
    /// The index of the rule that matched.
    rule: Option<usize>,
    bucket: Option<Bucket>,
}

impl Decision {
    fn of(variant: usize, reason: Reason) -> Decision {
        Decision {
            variant,
            reason,
            rule: None,
            bucket: None,
        }
    }
}

/// Decides what a serve gives: its variant, or the split's assignment of the unit. The first
/// is a copy, inlined where it is served; the second is [`decide_split`].
#[inline(always)]
fn decide_serve(
    serve: &Serve,
    baseline: usize,
    context: &Context,
    reason: Reason,
) -> Result<Decision, Fault> {
    match serve {
        Serve::Variant(variant) => Ok(Decision::of(*variant, reason)),
        Serve::Split(split) => decide_split(split, baseline, context),
    }
}

fn decide_split(split: &Split, baseline: usize, context: &Context) -> Result<Decision, Fault> {
    let (variant, bucket) = assign(split, baseline, context)?;
    let reason = if bucket.in_experiment {
        Reason::Split
    } else {
        Reason::Default
    };
    Ok(Decision {
        variant,
        reason,
        rule: None,
        bucket: Some(bucket),
    })
}

impl Ruleset {
    /// Evaluates one flag for a context.
    pub fn evaluate<'r>(&'r self, flag_key: &str, context: &Context) -> Evaluation<'r> {
        match self.flag(flag_key) {
            Some(flag) => self.evaluate_flag(flag, context),
            None => not_found(flag_key),
        }
    }

    /// Evaluates one flag, reporting `TYPE_MISMATCH` when its kind is not the one expected.
    pub fn evaluate_typed<'r>(
        &'r self,
        flag_key: &str,
        context: &Context,
        expected: ExpectedType,
    ) -> Evaluation<'r> {
        match self.flag(flag_key) {
            Some(flag) if !expected.accepts(flag.kind) => error(
                flag,
                self,
                (
                    ErrorCode::TypeMismatch,
                    "the flag's type is not the type asked for",
                ),
            ),
            Some(flag) => self.evaluate_flag(flag, context),
            None => not_found(flag_key),
        }
    }

    /// Evaluates a prompt flag; a flag of another kind is a `TYPE_MISMATCH`.
    pub fn resolve_prompt<'r>(&'r self, flag_key: &str, context: &Context) -> Evaluation<'r> {
        match self.flag(flag_key) {
            Some(flag) if flag.kind != FlagKind::Prompt => error(
                flag,
                self,
                (ErrorCode::TypeMismatch, "the flag is not a prompt flag"),
            ),
            Some(flag) => self.evaluate_flag(flag, context),
            None => not_found(flag_key),
        }
    }

    /// Evaluates every flag for one context, in key order.
    pub fn evaluate_all<'r>(&'r self, context: &Context) -> Vec<Evaluation<'r>> {
        self.flags
            .iter()
            .map(|flag| self.evaluate_flag(flag, context))
            .collect()
    }

    fn evaluate_flag<'r>(&'r self, flag: &'r Flag, context: &Context) -> Evaluation<'r> {
        match self.decide(flag, context) {
            Ok(decision) => {
                let mut evaluation = served(flag, self, decision.variant, decision.reason);
                if let Some(index) = decision.rule {
                    evaluation.rule_index = Some(index as u32);
                    evaluation.rule_id = flag.rules.get(index).and_then(|rule| rule.id.as_deref());
                }
                evaluation.bucket = decision.bucket;
                evaluation
            }
            Err(fault) => error(flag, self, fault.failure()),
        }
    }

    /// Decides what the flag serves. The evaluation is built once, from the decision, rather
    /// than along the way and copied out of every call.
    fn decide(&self, flag: &Flag, context: &Context) -> Result<Decision, Fault> {
        if !flag.enabled {
            return Ok(Decision::of(flag.baseline, Reason::Disabled));
        }
        for (index, rule) in flag.rules.iter().enumerate() {
            if self.all_hold(&rule.conditions, context)? {
                let mut decision =
                    decide_serve(&rule.serve, flag.baseline, context, Reason::TargetingMatch)?;
                decision.rule = Some(index);
                return Ok(decision);
            }
        }
        let reason = if flag.rules.is_empty() {
            Reason::Static
        } else {
            Reason::Default
        };
        decide_serve(&flag.default, flag.baseline, context, reason)
    }

    #[inline(always)]
    fn all_hold(&self, conditions: &[Condition], context: &Context) -> Result<bool, Fault> {
        for condition in conditions {
            let held = match quick_test(condition, context) {
                Some(held) => held,
                None => self.test(condition, context)?,
            };
            if held == condition.negate {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether the condition's test holds, before `negate`: every case, [`quick_test`]'s
    /// included. Kept out of the condition loop so the loop stays small.
    #[inline(never)]
    fn test(&self, condition: &Condition, context: &Context) -> Result<bool, Fault> {
        let result = match &condition.test {
            Test::InSegment(targets) => {
                let mut any = false;
                for &target in targets {
                    if self.in_segment(&self.segments[target], context)? {
                        any = true;
                        break;
                    }
                }
                any
            }
            Test::UsableUnit => {
                check_unit_usable(context, &condition.attribute)?;
                true
            }
            test => {
                let name = &condition.attribute.text;
                match context.find_named(&condition.attribute) {
                    // A short string value: its bytes come from the context's hot entries.
                    Some((index, Found::Short(print))) => {
                        let mut buffer = [0u8; Print::EXACT];
                        let bytes = print.spell(&mut buffer).unwrap_or_default();
                        test_text(test, name, bytes, &print, index, context)
                    }
                    Some((index, Found::Value(AttributeValue::String(text)))) => {
                        let print = Print::of(text);
                        test_text(test, name, text.as_bytes(), &print, index, context)
                    }
                    Some((_, Found::Value(AttributeValue::Unsupported))) => {
                        return Err(Fault::BadAttribute);
                    }
                    Some((_, Found::Value(attribute))) => {
                        test_attribute_otherwise(test, name, Some(attribute), context)
                    }
                    None => test_attribute_otherwise(test, name, None, context),
                }
            }
        };
        Ok(result)
    }

    fn in_segment(&self, segment: &Segment, context: &Context) -> Result<bool, Fault> {
        let unit = if segment.excluded.is_empty() && segment.included.is_empty() {
            // A segment of conditions only has no lists to look the unit up in; the unit still
            // makes it an error when unusable.
            check_unit_usable(context, &segment.match_by)?;
            None
        } else {
            match context.get_named(&segment.match_by) {
                Some(AttributeValue::Unsupported) => {
                    return Err(Fault::BadAttribute);
                }
                Some(value) => value.as_text(),
                None => None,
            }
        };
        if let Some(unit) = unit {
            if contains_sorted(&segment.excluded, &unit) {
                return Ok(false);
            }
            if contains_sorted(&segment.included, &unit) {
                return Ok(true);
            }
        }
        if segment.conditions.is_empty() {
            return Ok(false);
        }
        self.all_hold(&segment.conditions, context)
    }
}

/// The usual conditions, decided inline from the context's hot entries: `in` a short list,
/// `str_starts_with` of short prefixes, a number test and a semver test, on a string of up to
/// sixteen bytes, and the unit check of an inlined segment on a context without arrays or
/// objects. `None` for anything else, which [`Ruleset::test`] decides. The result is before
/// `negate`.
#[inline(always)]
fn quick_test(condition: &Condition, context: &Context) -> Option<bool> {
    match &condition.test {
        Test::UsableUnit => (!context.has_unsupported()).then_some(true),
        Test::In(list) => list
            .keys
            .contain(&context.short_text(&condition.attribute)?.1),
        Test::Str {
            prefixes: Some(prefixes),
            ..
        } => Some(Prefix::any_begins(
            prefixes,
            &context.short_text(&condition.attribute)?.1,
        )),
        Test::Number { test, value } => {
            let number = short_digits(&context.short_text(&condition.attribute)?.1)?;
            Some(number_test(*test, number, *value))
        }
        Test::Semver(ordering, version) => {
            let (_, text) = context.short_text(&condition.attribute)?;
            let mut buffer = [0u8; Print::EXACT];
            let bytes = text.spell(&mut buffer)?;
            Some(version.compare_bytes(bytes) == Some(*ordering))
        }
        _ => None,
    }
}

/// A text of one to eight decimal digits, the usual numeric attribute sent as text, read from
/// its print in a few word operations and no loop (simdjson's eight-digit method): the bytes
/// are checked to be digits all at once, then combined pairwise. `None` for anything else.
#[inline(always)]
fn short_digits(print: &Print) -> Option<f64> {
    let length = print.length;
    if length == 0 || length > 8 {
        return None;
    }
    // The digits moved up to the last bytes, behind leading '0's: eight digits, same value.
    let zeros = 0x3030_3030_3030_3030u64
        .checked_shr(8 * length as u32)
        .unwrap_or(0);
    let word = (print.head << (8 * (8 - length))) | zeros;
    let high_nibbles = word & 0xF0F0_F0F0_F0F0_F0F0;
    let past_nine = (word.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4;
    if high_nibbles | past_nine != 0x3333_3333_3333_3333 {
        return None;
    }
    let mut value = (word & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(2561) >> 8;
    value = (value & 0x00FF_00FF_00FF_00FF).wrapping_mul(6_553_601) >> 16;
    value = (value & 0x0000_FFFF_0000_FFFF).wrapping_mul(42_949_672_960_001) >> 32;
    Some(value as f64)
}

/// The common case of a numeric attribute sent as text, a plain run of decimal digits, read
/// without the general float parser. Up to 15 digits the integer is exactly representable, so
/// the `f64` is the one [`parse_number`] would return; anything else is left to it.
fn parse_integer_exactly(text: &[u8]) -> Option<f64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        bytes => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut value: u64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(byte - b'0');
    }
    let value = value as f64;
    Some(if negative { -value } else { value })
}

fn contains_sorted(list: &[String], item: &str) -> bool {
    // Short lists (a handful of countries or plans) are scanned: most entries are ruled out by
    // their length alone, and no comparison depends on the order of the bytes.
    if list.len() <= 8 {
        return list.iter().any(|value| keys_equal(value, item));
    }
    list.binary_search_by(|probe| compare_keys(probe, item))
        .is_ok()
}

/// The check `in_segment` makes on the unit of a segment of conditions only (inlined into rules
/// as [`Test::UsableUnit`]): an error when the attribute is an array or an object. Only a
/// context holding one can have such a unit, so the usual context skips the lookup.
#[inline]
fn check_unit_usable(context: &Context, unit: &Name) -> Result<(), Fault> {
    if context.has_unsupported()
        && matches!(context.get_named(unit), Some(AttributeValue::Unsupported))
    {
        return Err(Fault::BadAttribute);
    }
    Ok(())
}

/// Whether a list of `in` values holds the text: short lists of short values compare words
/// (see [`crate::ruleset::ShortKeys`]), without following each value's pointer to its bytes.
#[inline]
fn in_list(list: &InList, bytes: &[u8], print: &Print) -> bool {
    match list.keys.contain(print) {
        Some(found) => found,
        None => contains_sorted(&list.values, as_text(bytes)),
    }
}

/// Text that came from a `&str` (a context value, or an exact copy of a short one).
fn as_text(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or_default()
}

// The common cases (a string attribute; the usual operators) are kept small and inline; the
// rest lives in functions of its own, so the loop over conditions stays tight. `bytes` is the
// value's text and `print` its print; `index` finds the value itself for the rarer tests.
#[inline]
fn test_text(
    test: &Test,
    name: &str,
    bytes: &[u8],
    print: &Print,
    index: usize,
    context: &Context,
) -> bool {
    match test {
        Test::In(list) => in_list(list, bytes, print),
        Test::Str {
            prefixes: Some(prefixes),
            ..
        } => Prefix::any_begins(prefixes, print),
        Test::Str {
            test: StringTest::Contains,
            values,
            case_insensitive: false,
            ..
        } => {
            let text = as_text(bytes);
            values
                .iter()
                .any(|expected| text.contains(expected.as_str()))
        }
        Test::Str {
            test,
            values,
            case_insensitive: false,
            ..
        } => string_test_bytes(*test, values, bytes),
        Test::Number { test, value: limit } => {
            match short_digits(print).or_else(|| parse_integer_exactly(bytes)) {
                Some(number) => number_test(*test, number, *limit),
                None => parse_number(as_text(bytes))
                    .is_some_and(|number| number_test(*test, number, *limit)),
            }
        }
        Test::Semver(ordering, version) => version.compare_bytes(bytes) == Some(*ordering),
        _ => test_attribute_otherwise(test, name, context.value_at(index), context),
    }
}

fn string_test(test: StringTest, values: &[String], text: &str) -> bool {
    match test {
        StringTest::Contains => values.iter().any(|value| text.contains(value.as_str())),
        _ => string_test_bytes(test, values, text.as_bytes()),
    }
}

/// `str_starts_with` and `str_ends_with` on bytes, compared without a call into `memcmp`.
fn string_test_bytes(test: StringTest, values: &[String], bytes: &[u8]) -> bool {
    values.iter().any(|value| {
        let value_bytes = value.as_bytes();
        bytes.len() >= value_bytes.len()
            && match test {
                StringTest::StartsWith => bytes_equal(&bytes[..value_bytes.len()], value_bytes),
                StringTest::EndsWith => {
                    bytes_equal(&bytes[bytes.len() - value_bytes.len()..], value_bytes)
                }
                StringTest::Contains => false,
            }
    })
}

fn number_test(test: NumberTest, number: f64, value: f64) -> bool {
    match test {
        NumberTest::Eq => number == value,
        NumberTest::Gt => number > value,
        NumberTest::Gte => number >= value,
        NumberTest::Lt => number < value,
        NumberTest::Lte => number <= value,
    }
}

/// Every other combination of operator and attribute: numbers and booleans read as text,
/// case-insensitive strings, dates, missing attributes.
#[inline(never)]
fn test_attribute_otherwise(
    test: &Test,
    name: &str,
    attribute: Option<&AttributeValue>,
    context: &Context,
) -> bool {
    match test {
        Test::In(list) => attribute
            .and_then(AttributeValue::as_text)
            .is_some_and(|text| contains_sorted(&list.values, &text)),
        Test::Str {
            test,
            values,
            case_insensitive,
            ..
        } => {
            let Some(text) = attribute.and_then(AttributeValue::as_text) else {
                return false;
            };
            if *case_insensitive {
                string_test(*test, values, &to_lowercase(&text))
            } else {
                string_test(*test, values, &text)
            }
        }
        Test::Number { test, value } => {
            let number = match attribute {
                Some(AttributeValue::Integer(integer)) => *integer as f64,
                Some(AttributeValue::Number(number)) => *number,
                Some(AttributeValue::String(text)) => match parse_number(text) {
                    Some(number) => number,
                    None => return false,
                },
                _ => return false,
            };
            number_test(*test, number, *value)
        }
        Test::DateAfter(limit) | Test::DateBefore(limit) => {
            let moment = match attribute {
                Some(AttributeValue::String(text)) => parse_rfc3339_millis(text),
                // Unleash's date operators read `currentTime`; the caller passes the clock in.
                None if name == CURRENT_TIME => context.now_millis(),
                _ => None,
            };
            match (moment, test) {
                (Some(moment), Test::DateAfter(_)) => moment > *limit,
                (Some(moment), _) => moment < *limit,
                (None, _) => false,
            }
        }
        Test::Semver(ordering, version) => match attribute {
            Some(AttributeValue::String(text)) => version.compare_text(text) == Some(*ordering),
            _ => false,
        },
        Test::InSegment(_) | Test::UsableUnit => false,
    }
}

fn unit_text(context: &Context, attribute: &str) -> Result<Cow<'static, str>, Fault> {
    match context.get(attribute) {
        Some(AttributeValue::String(text)) if !text.is_empty() => Ok(Cow::Owned(text.clone())),
        Some(AttributeValue::Integer(integer)) => Ok(Cow::Owned(alloc::format!("{integer}"))),
        Some(AttributeValue::String(_)) | None => Err(Fault::MissingUnit),
        Some(_) => Err(Fault::BadUnit),
    }
}

/// Assigns a unit to the baseline or a treatment lane.
fn assign(split: &Split, baseline: usize, context: &Context) -> Result<(usize, Bucket), Fault> {
    // The common case (a string unit) hashes the borrowed text without copying it, and the
    // usual unit, a targeting key of up to `INLINE_UNIT` bytes, is read from the context itself.
    let owned;
    let unit: &[u8] = match context.inline_unit().filter(|_| split.by_targeting_key) {
        Some(bytes) => bytes,
        None => match context.get_named(&split.bucket_by) {
            Some(AttributeValue::String(text)) if !text.is_empty() => text.as_bytes(),
            _ => {
                owned = unit_text(context, &split.bucket_by.text)?;
                owned.as_bytes()
            }
        },
    };
    let layer_slot = split
        .layer
        .as_ref()
        .map(|layer| slot_with_prefix(&layer.seed_prefix, unit));
    let slot = slot_with_prefix(&split.seed_prefix, unit);
    if let (Some(layer), Some(layer_slot)) = (&split.layer, layer_slot)
        && (layer_slot < layer.start || layer_slot >= layer.end)
    {
        return Ok((
            baseline,
            Bucket {
                slot,
                lane: None,
                layer_slot: Some(layer_slot),
                in_experiment: false,
            },
        ));
    }
    let lane = split.lanes.lane_of(slot);
    let variant = lane.map_or(baseline, |lane| split.treatments[lane]);
    Ok((
        variant,
        Bucket {
            slot,
            lane: lane.map(|lane| lane as u32),
            layer_slot,
            in_experiment: true,
        },
    ))
}

fn served<'r>(
    flag: &'r Flag,
    ruleset: &'r Ruleset,
    variant: usize,
    reason: Reason,
) -> Evaluation<'r> {
    let variant = &flag.variants[variant];
    Evaluation {
        key: Cow::Borrowed(&flag.key),
        value: Some(&variant.value),
        variant: Some(&variant.key),
        reason,
        error_code: None,
        error_message: None,
        rule_index: None,
        rule_id: None,
        bucket: None,
        prompt: variant.prompt.map(|index| &ruleset.prompts[index]),
    }
}

fn error<'r>(flag: &'r Flag, ruleset: &'r Ruleset, (code, message): Failure) -> Evaluation<'r> {
    let mut evaluation = served(flag, ruleset, flag.baseline, Reason::Error);
    evaluation.error_code = Some(code);
    evaluation.error_message = Some(message);
    evaluation
}

fn not_found(flag_key: &str) -> Evaluation<'static> {
    Evaluation {
        key: Cow::Owned(String::from(flag_key)),
        value: None,
        variant: None,
        reason: Reason::Error,
        error_code: Some(ErrorCode::FlagNotFound),
        error_message: Some("no flag has this key"),
        rule_index: None,
        rule_id: None,
        bucket: None,
        prompt: None,
    }
}

/// An evaluation for a context that could not be read: the flag's baseline with
/// `PARSE_ERROR` (text that is not JSON) or `INVALID_CONTEXT` (JSON that is not an object).
pub fn context_error<'r>(
    ruleset: &'r Ruleset,
    flag_key: &str,
    problem: &crate::ContextError,
) -> Evaluation<'r> {
    let failure = match problem {
        crate::ContextError::Parse(_) => (ErrorCode::ParseError, "the context is not valid JSON"),
        _ => (
            ErrorCode::InvalidContext,
            "the context must be a JSON object",
        ),
    };
    match ruleset.flag(flag_key) {
        Some(flag) => error(flag, ruleset, failure),
        None => not_found(flag_key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluations_serialise_in_camel_case_down_to_the_bucket() {
        let bucket = Bucket {
            slot: 12,
            lane: Some(0),
            layer_slot: Some(34),
            in_experiment: true,
        };
        let json = serde_json::to_value(bucket).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"slot": 12, "lane": 0, "layerSlot": 34, "inExperiment": true})
        );
    }

    /// The inline route decides exactly what the full one does, for every condition it takes
    /// and every value it accepts: a condition of each operator it handles (and of some it
    /// leaves alone), against string values of every shape, numbers and booleans.
    #[test]
    fn quick_tests_agree_with_the_full_test() {
        let conditions = serde_json::json!([
            { "attribute": "a", "op": "in", "values": ["IE", "GB", "FR", "", "é"] },
            { "attribute": "a", "op": "in", "values": ["pro-monthly", "IE", "team-annual"] },
            { "attribute": "a", "op": "in", "values": ["exactly16bytes!!", "IE"] },
            { "attribute": "a", "op": "in", "values": ["1", "2", "3", "4", "5", "6", "7", "8", "IE"] },
            { "attribute": "a", "op": "not_in", "values": ["IE", "10"] },
            { "attribute": "a", "op": "str_starts_with", "values": ["pro", "team", ""] },
            { "attribute": "a", "op": "str_starts_with", "values": ["exactly16bytes!!"] },
            { "attribute": "a", "op": "str_ends_with", "values": ["annual"] },
            { "attribute": "a", "op": "num_gte", "values": ["10"] },
            { "attribute": "a", "op": "num_lt", "values": ["9.5"] },
            { "attribute": "a", "op": "num_eq", "values": ["10"] },
            { "attribute": "a", "op": "semver_gt", "values": ["2.3.0"] },
            { "attribute": "a", "op": "semver_lt", "values": ["3.1.0-beta.10"] },
            { "attribute": "a", "op": "semver_eq", "values": ["1.2.3"] },
            { "op": "in_segment", "values": ["s"] }
        ]);
        let document = serde_json::json!({
            "schema": 1, "environment": "test", "revision": 1,
            "segments": { "s": { "conditions": [
                { "attribute": "a", "op": "num_gt", "values": ["0"] }
            ] } },
            "flags": { "f": {
                "kind": "boolean", "baseline": "off",
                "variants": { "off": { "value": false }, "on": { "value": true } },
                "rules": [ { "when": conditions, "serve": { "variant": "on" } } ]
            } }
        });
        let ruleset = Ruleset::from_json_str(&serde_json::to_string(&document).unwrap()).unwrap();
        let flag = ruleset.flag("f").unwrap();
        let texts = [
            "",
            "IE",
            "GB",
            "ie",
            "é",
            "pro",
            "pro-monthly",
            "team-annual",
            "teams",
            "annual",
            "10",
            "9",
            "09",
            "0010",
            "12345678",
            "123456789",
            "-5",
            "+5",
            "1.5",
            " 10",
            "1e1",
            "2.3.0",
            "2.10.3",
            "3.1.0-beta.2",
            "3.1.0-beta.10",
            "3.1.0",
            "1.2.3",
            "1.2.3+b",
            "v1.2.3",
            "01.2.3",
            "1.2.3-",
            "2.4",
            "exactly16bytes!!",
            "exactly16bytes!!x",
            "seventeen bytes!!",
        ];
        let mut values: Vec<AttributeValue> = texts
            .iter()
            .map(|text| AttributeValue::String(String::from(*text)))
            .collect();
        values.extend([
            AttributeValue::Integer(10),
            AttributeValue::Number(9.5),
            AttributeValue::Bool(true),
            AttributeValue::Unsupported,
        ]);
        let mut quick = 0;
        for value in &values {
            // Alone, among other attributes (so it sits at different places in the hot
            // entries), with an array beside it, and in a context too large for the table.
            let mut contexts = alloc::vec![Context::new(); 4];
            contexts[1].set("0", AttributeValue::Bool(false));
            contexts[1].set("b", AttributeValue::String(String::from("x")));
            contexts[2].set("z", AttributeValue::Unsupported);
            for index in 0..20 {
                contexts[3].set(
                    &alloc::format!("{index:02}"),
                    AttributeValue::Integer(index),
                );
            }
            for context in &mut contexts {
                context.set("a", value.clone());
            }
            contexts.push(Context::new());
            for context in &contexts {
                for condition in &flag.rules[0].conditions {
                    if let Some(held) = quick_test(condition, context) {
                        quick += 1;
                        assert_eq!(
                            Ok(held),
                            ruleset
                                .test(condition, context)
                                .map_err(|fault| fault.failure()),
                            "{:?} on {value:?}",
                            condition.test
                        );
                    }
                }
            }
        }
        assert!(quick > 200, "the inline route took only {quick} cases");
    }

    /// A split buckets the targeting key as `docs/ruleset.md` says whether the context holds a copy of it
    /// (a string of up to `INLINE_UNIT` bytes) or not (longer, an integer, set again later),
    /// and a split on another attribute is not confused by the copy.
    #[test]
    fn splits_hash_the_unit_with_or_without_the_inline_copy() {
        let split = |bucket_by: &str| {
            serde_json::json!({
                "kind": "boolean", "baseline": "off",
                "variants": { "off": { "value": false }, "on": { "value": true } },
                "default": { "split": {
                    "bucket_by": bucket_by,
                    "treatments": [ { "variant": "on", "weight": 50_000 } ]
                } }
            })
        };
        let document = serde_json::json!({
            "schema": 1, "environment": "test", "revision": 1,
            "flags": { "by-key": split("targetingKey"), "by-team": split("team") }
        });
        let ruleset = Ruleset::from_json_str(&serde_json::to_string(&document).unwrap()).unwrap();
        let slot_of = |evaluation: Evaluation<'_>| evaluation.bucket.map(|bucket| bucket.slot);
        for length in 1..=crate::context::INLINE_UNIT + 8 {
            let key: String = (0..length)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let mut context = Context::new().with("team", "blue").with_targeting_key(&key);
            assert_eq!(
                slot_of(ruleset.evaluate("by-key", &context)),
                Some(crate::bucket::slot("by-key", &key)),
                "a key of {length} bytes"
            );
            assert_eq!(
                slot_of(ruleset.evaluate("by-team", &context)),
                Some(crate::bucket::slot("by-team", "blue"))
            );
            context.set(
                crate::context::TARGETING_KEY,
                AttributeValue::Integer(length as i64),
            );
            assert_eq!(
                slot_of(ruleset.evaluate("by-key", &context)),
                Some(crate::bucket::slot("by-key", &alloc::format!("{length}")))
            );
            context.set(
                crate::context::TARGETING_KEY,
                AttributeValue::String(String::new()),
            );
            assert_eq!(
                ruleset.evaluate("by-key", &context).error_code,
                Some(ErrorCode::TargetingKeyMissing)
            );
        }
    }

    #[test]
    fn short_digits_agree_with_parse_integer_exactly() {
        let mut texts: Vec<String> = (0..10_000).map(|n| alloc::format!("{n}")).collect();
        for n in [
            99_999u64,
            100_000,
            1_234_567,
            9_999_999,
            10_000_000,
            12_345_678,
            99_999_999,
            100_000_000,
        ] {
            texts.push(alloc::format!("{n}"));
        }
        for text in [
            "0010",
            "00000000",
            "0000000001",
            "",
            "-1",
            "+1",
            "1a",
            "a1",
            "1 2",
            "12.5",
            "/",
            ":",
            "9:",
            "0/",
            "١",
            "12345678\u{ff}",
            "\u{ff}",
            "1e3",
        ] {
            texts.push(String::from(text));
        }
        for byte in 0u8..=127 {
            for at in 0..3 {
                let mut text = alloc::vec![b'5'; 3];
                text[at] = byte;
                if let Ok(text) = String::from_utf8(text) {
                    texts.push(text);
                }
            }
        }
        for text in &texts {
            let fast = short_digits(&Print::of(text));
            let expected = if text.len() <= 8 {
                parse_integer_exactly(text.as_bytes()).filter(|_| !text.starts_with('-'))
            } else {
                None
            };
            assert_eq!(fast, expected, "{text:?}");
        }
    }

    #[test]
    fn integer_fast_path_agrees_with_parse_number() {
        let texts = [
            "0",
            "-0",
            "7",
            "10",
            "0010",
            "-42",
            "999999999999999",
            "1000000000000000",
            "9007199254740993",
            "+5",
            " 5",
            "5 ",
            "",
            "-",
            "1.5",
            "1e3",
            "12a",
            "٣",
        ];
        for text in texts {
            if let Some(fast) = parse_integer_exactly(text.as_bytes()) {
                assert_eq!(Some(fast), parse_number(text), "{text:?}");
            }
        }
        assert_eq!(
            parse_integer_exactly(b"999999999999999"),
            Some(999_999_999_999_999.0)
        );
        assert_eq!(parse_integer_exactly(b"1000000000000000"), None);
    }
}
