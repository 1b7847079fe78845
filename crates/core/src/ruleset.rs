//! The compiled ruleset: validated once, then read by every evaluation. Indices replace names,
//! literals are parsed, lists are sorted for binary search, and seeds carry their separator.

use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;

use serde_json::Value;

use crate::literal::Semver;
use crate::model::FlagKind;

/// A prompt version the ruleset can serve.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PromptMeta {
    /// The SHA-256 of the body (64 lowercase hex digits): the prompt version's identity.
    pub hash: String,
    /// The prompt family's id.
    pub id: String,
    /// The semantic version.
    pub version: String,
    /// The model name.
    pub model: String,
    /// Model parameters, a JSON object.
    pub parameters: Value,
}

/// A validated ruleset, ready to evaluate. Build it with [`Ruleset::from_json`] or
/// [`crate::compile`].
#[derive(Debug, Clone)]
pub struct Ruleset {
    pub(crate) schema: u32,
    pub(crate) environment: String,
    pub(crate) revision: u64,
    pub(crate) source: String,
    /// Sorted by hash.
    pub(crate) prompts: Vec<PromptMeta>,
    pub(crate) segments: Vec<Segment>,
    /// Sorted by key.
    pub(crate) flags: Vec<Flag>,
}

impl Ruleset {
    /// The format version.
    pub fn schema(&self) -> u32 {
        self.schema
    }

    /// The environment this ruleset serves.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The revision number.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The git commit it was built from (empty when unknown).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every prompt version, sorted by hash.
    pub fn prompts(&self) -> &[PromptMeta] {
        &self.prompts
    }

    /// The prompt version with this body hash.
    pub fn prompt(&self, hash: &str) -> Option<&PromptMeta> {
        self.prompts
            .binary_search_by(|prompt| prompt.hash.as_str().cmp(hash))
            .ok()
            .map(|index| &self.prompts[index])
    }

    /// The flag keys, sorted.
    pub fn flag_keys(&self) -> impl Iterator<Item = &str> {
        self.flags.iter().map(|flag| flag.key.as_str())
    }

    /// The kind of a flag, if it exists.
    pub fn flag_kind(&self, key: &str) -> Option<FlagKind> {
        self.flag(key).map(|flag| flag.kind)
    }

    pub(crate) fn flag(&self, key: &str) -> Option<&Flag> {
        self.flags
            .binary_search_by(|flag| flag.key.as_str().cmp(key))
            .ok()
            .map(|index| &self.flags[index])
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Flag {
    pub(crate) key: String,
    pub(crate) kind: FlagKind,
    pub(crate) variants: Vec<Variant>,
    pub(crate) baseline: usize,
    pub(crate) enabled: bool,
    pub(crate) rules: Vec<Rule>,
    pub(crate) default: Serve,
}

#[derive(Debug, Clone)]
pub(crate) struct Variant {
    pub(crate) key: String,
    pub(crate) value: Value,
    /// Index into `Ruleset::prompts`, for prompt flags.
    pub(crate) prompt: Option<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) id: Option<String>,
    pub(crate) conditions: Vec<Condition>,
    pub(crate) serve: Serve,
}

#[derive(Debug, Clone)]
pub(crate) enum Serve {
    Variant(usize),
    Split(Split),
}

#[derive(Debug, Clone)]
pub(crate) struct Split {
    pub(crate) bucket_by: String,
    /// `seed + "/"`, ready to prepend to the unit.
    pub(crate) seed_prefix: Vec<u8>,
    /// Variant indices of the treatments, in lane order.
    pub(crate) treatments: Vec<usize>,
    /// Slots each treatment holds of its lane.
    pub(crate) weights: Vec<u32>,
    pub(crate) layer: Option<LayerSpan>,
}

#[derive(Debug, Clone)]
pub(crate) struct LayerSpan {
    /// `"layer:" + name + "/"`.
    pub(crate) seed_prefix: Vec<u8>,
    pub(crate) start: u32,
    pub(crate) end: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) match_by: String,
    /// Sorted.
    pub(crate) included: Vec<String>,
    /// Sorted.
    pub(crate) excluded: Vec<String>,
    pub(crate) conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) attribute: String,
    pub(crate) test: Test,
    /// `negate` from the ruleset, folded with `not_in` (which is a negated `in`).
    pub(crate) negate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StringTest {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberTest {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// Sorted values.
    In(Vec<String>),
    /// Values, lowercased beforehand when `case_insensitive`.
    Str {
        test: StringTest,
        values: Vec<String>,
        case_insensitive: bool,
    },
    Number {
        test: NumberTest,
        value: f64,
    },
    DateAfter(i64),
    DateBefore(i64),
    /// Holds when the context version compares to the literal as `Ordering`.
    Semver(Ordering, Semver),
    /// Indices into `Ruleset::segments`.
    InSegment(Vec<usize>),
}
