//! Evaluation: one flag, or all of them, for one context. It never fails loudly and never
//! panics: whatever goes wrong, the baseline is served with reason `ERROR` and an OpenFeature
//! error code.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::Value;

use crate::bucket::{lane_of_slot, slot_with_prefix};
use crate::context::{AttributeValue, CURRENT_TIME, Context};
use crate::literal::{Semver, parse_number, parse_rfc3339_millis};
use crate::model::FlagKind;
use crate::ruleset::{
    Condition, Flag, NumberTest, PromptMeta, Ruleset, Segment, Serve, Split, StringTest, Test,
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
        if !flag.enabled {
            return served(flag, self, flag.baseline, Reason::Disabled);
        }
        for (index, rule) in flag.rules.iter().enumerate() {
            match self.all_hold(&rule.conditions, context) {
                Ok(true) => {
                    let mut evaluation =
                        match self.serve(flag, &rule.serve, context, Reason::TargetingMatch) {
                            Ok(evaluation) => evaluation,
                            Err(failure) => return error(flag, self, failure),
                        };
                    evaluation.rule_index = Some(index as u32);
                    evaluation.rule_id = rule.id.as_deref();
                    return evaluation;
                }
                Ok(false) => {}
                Err(failure) => return error(flag, self, failure),
            }
        }
        let reason = if flag.rules.is_empty() {
            Reason::Static
        } else {
            Reason::Default
        };
        self.serve(flag, &flag.default, context, reason)
            .unwrap_or_else(|failure| error(flag, self, failure))
    }

    fn serve<'r>(
        &'r self,
        flag: &'r Flag,
        serve: &'r Serve,
        context: &Context,
        reason: Reason,
    ) -> Result<Evaluation<'r>, Failure> {
        match serve {
            Serve::Variant(variant) => Ok(served(flag, self, *variant, reason)),
            Serve::Split(split) => {
                let (variant, bucket) = assign(split, flag.baseline, context)?;
                let reason = if bucket.in_experiment {
                    Reason::Split
                } else {
                    Reason::Default
                };
                let mut evaluation = served(flag, self, variant, reason);
                evaluation.bucket = Some(bucket);
                Ok(evaluation)
            }
        }
    }

    fn all_hold(&self, conditions: &[Condition], context: &Context) -> Result<bool, Failure> {
        for condition in conditions {
            if !self.holds(condition, context)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn holds(&self, condition: &Condition, context: &Context) -> Result<bool, Failure> {
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
            test => {
                let attribute = context.get(&condition.attribute);
                if matches!(attribute, Some(AttributeValue::Unsupported)) {
                    return Err((ErrorCode::InvalidContext, BAD_ATTRIBUTE));
                }
                test_attribute(test, &condition.attribute, attribute, context)
            }
        };
        Ok(result != condition.negate)
    }

    fn in_segment(&self, segment: &Segment, context: &Context) -> Result<bool, Failure> {
        let unit = match context.get(&segment.match_by) {
            Some(AttributeValue::Unsupported) => {
                return Err((ErrorCode::InvalidContext, BAD_ATTRIBUTE));
            }
            Some(value) => value.as_text(),
            None => None,
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

fn contains_sorted(list: &[String], item: &str) -> bool {
    !list.is_empty()
        && list
            .binary_search_by(|probe| probe.as_str().cmp(item))
            .is_ok()
}

fn test_attribute(
    test: &Test,
    name: &str,
    attribute: Option<&AttributeValue>,
    context: &Context,
) -> bool {
    match test {
        Test::In(values) => attribute
            .and_then(AttributeValue::as_text)
            .is_some_and(|text| contains_sorted(values, &text)),
        Test::Str {
            test,
            values,
            case_insensitive,
        } => {
            let Some(text) = attribute.and_then(AttributeValue::as_text) else {
                return false;
            };
            let text: Cow<'_, str> = if *case_insensitive {
                Cow::Owned(text.to_lowercase())
            } else {
                text
            };
            values.iter().any(|value| match test {
                StringTest::Contains => text.contains(value.as_str()),
                StringTest::StartsWith => text.starts_with(value.as_str()),
                StringTest::EndsWith => text.ends_with(value.as_str()),
            })
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
            match test {
                NumberTest::Eq => number == *value,
                NumberTest::Gt => number > *value,
                NumberTest::Gte => number >= *value,
                NumberTest::Lt => number < *value,
                NumberTest::Lte => number <= *value,
            }
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
            Some(AttributeValue::String(text)) => {
                Semver::parse(text).is_some_and(|parsed| parsed.cmp(version) == *ordering)
            }
            _ => false,
        },
        Test::InSegment(_) => false,
    }
}

fn unit_text(context: &Context, attribute: &str) -> Result<Cow<'static, str>, Failure> {
    match context.get(attribute) {
        Some(AttributeValue::String(text)) if !text.is_empty() => Ok(Cow::Owned(text.clone())),
        Some(AttributeValue::Integer(integer)) => Ok(Cow::Owned(alloc::format!("{integer}"))),
        Some(AttributeValue::String(_)) | None => {
            Err((ErrorCode::TargetingKeyMissing, MISSING_UNIT))
        }
        Some(_) => Err((ErrorCode::InvalidContext, BAD_UNIT)),
    }
}

/// Assigns a unit to the baseline or a treatment lane.
fn assign(split: &Split, baseline: usize, context: &Context) -> Result<(usize, Bucket), Failure> {
    // The common case (a string unit) hashes the borrowed text without copying it.
    let owned;
    let unit: &str = match context.get(&split.bucket_by) {
        Some(AttributeValue::String(text)) if !text.is_empty() => text,
        _ => {
            owned = unit_text(context, &split.bucket_by)?;
            &owned
        }
    };
    let layer_slot = split
        .layer
        .as_ref()
        .map(|layer| slot_with_prefix(&layer.seed_prefix, unit));
    let slot = slot_with_prefix(&split.seed_prefix, unit);
    if let (Some(layer), Some(layer_slot)) = (&split.layer, layer_slot) {
        if layer_slot < layer.start || layer_slot >= layer.end {
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
    }
    let lane = lane_of_slot(slot, &split.weights);
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
