//! The ruleset as it travels: the serde model of `docs/ruleset.md` that `promptflag build` writes and every
//! runtime reads. Nothing here is validated; [`crate::compile`] turns it into a [`crate::Ruleset`].
//!
//! Keyed collections (`flags`, `segments`, `variants`, …) are JSON objects, read into [`Entries`]
//! so that a duplicated key is kept and reported by validation instead of silently overwritten.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// The ruleset format version this engine reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// A JSON object read in document order, duplicates included.
#[derive(Debug, Clone, PartialEq)]
pub struct Entries<T>(pub Vec<(String, T)>);

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<T> Entries<T> {
    /// The value stored under `key` (the first one, if the key is duplicated).
    pub fn get(&self, key: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Inserts or replaces `key`, keeping the document order of existing keys.
    pub fn insert(&mut self, key: String, value: T) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Iterates over the keys and values in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &T)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The number of entries, duplicates included.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Serialize> Serialize for Entries<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for EntriesVisitor<T> {
            type Value = Entries<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<T>, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
                while let Some((key, value)) = map.next_entry::<String, T>()? {
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn default_true() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// A whole ruleset: one environment at one revision.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuleset {
    /// The format version; must equal [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The environment this ruleset serves (`dev`, `staging`, `prod`, …).
    pub environment: String,
    /// Grows with every publish to the environment.
    pub revision: u64,
    /// The git commit the ruleset was built from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Prompt versions by content id (the SHA-256 of their body and model configuration, see
    /// `docs/interfaces.md`).
    #[serde(default)]
    pub prompts: Entries<RawPrompt>,
    /// Layers for mutually exclusive experiments.
    #[serde(default, skip_serializing_if = "Entries::is_empty")]
    pub layers: Entries<RawLayer>,
    /// Named cohorts.
    #[serde(default)]
    pub segments: Entries<RawSegment>,
    /// The flags, by key.
    #[serde(default)]
    pub flags: Entries<RawFlag>,
    /// Decisions taken on the live environment that git does not hold yet (a kill, the control
    /// loop's rollback, abort, promotion or bandit weights), by flag: the state the next
    /// publish keeps. Evaluation does not read it, so it is kept as JSON here; its shape and
    /// rules are the contracts' `runtime`.
    #[serde(default, skip_serializing_if = "Entries::is_empty")]
    pub runtime: Entries<Value>,
}

/// One prompt version, keyed by its content id.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrompt {
    /// The SHA-256 of the body bytes, which names the body in KV (`prompt:<sha256>`). When it is
    /// absent the key is the body's hash, as in rulesets written before content ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The prompt family's id.
    pub id: String,
    /// The semantic version of this prompt.
    pub version: String,
    /// The model the prompt is written for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// Model parameters (temperature, max_tokens, top_p, …): a JSON object.
    #[serde(default = "empty_object", skip_serializing_if = "is_empty_object")]
    pub parameters: Value,
    /// The JSON schema the model's output must follow, when the version declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// The version's lifecycle status in the prompt repository ([`PROMPT_STATUSES`]), which an
    /// environment that serves no drafts checks before it accepts the ruleset. Evaluation does
    /// not read it, and the content hash leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The lifecycle statuses a prompt version may have, from first draft to retirement.
pub const PROMPT_STATUSES: [&str; 4] = ["draft", "canary", "production", "archived"];

impl RawPrompt {
    /// The SHA-256 of this version's body: `body`, or else the key it is listed under
    /// (rulesets written before content ids keyed prompts by their body's hash).
    pub fn body_hash<'a>(&'a self, key: &'a str) -> &'a str {
        self.body.as_deref().unwrap_or(key)
    }
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

fn is_empty_object(value: &Value) -> bool {
    matches!(value, Value::Object(map) if map.is_empty())
}

/// A layer: splits that name it and hold disjoint ranges of it never share a unit.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLayer {
    /// The attribute that identifies a unit in this layer (default `targetingKey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// A named cohort: explicit include and exclude lists, then conditions.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSegment {
    /// The attribute the lists name (default `targetingKey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_by: Option<String>,
    /// Units always in the segment (unless excluded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included: Vec<String>,
    /// Units never in the segment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
    /// All must hold for a unit not on either list; an empty list matches nobody.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<RawCondition>,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// The type of a flag's values.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum FlagKind {
    /// Each variant names a prompt body by hash; its value is the prompt reference object.
    Prompt,
    /// `true` / `false`.
    Boolean,
    /// A string.
    String,
    /// A number.
    Number,
    /// Any JSON object.
    Object,
}

impl FlagKind {
    /// The lowercase name used in the ruleset.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagKind::Prompt => "prompt",
            FlagKind::Boolean => "boolean",
            FlagKind::String => "string",
            FlagKind::Number => "number",
            FlagKind::Object => "object",
        }
    }
}

/// A flag: variants, targeting rules, a default serve and a kill switch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlag {
    /// The type of the variants' values.
    pub kind: FlagKind,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The named variants.
    pub variants: Entries<RawVariant>,
    /// The variant served when disabled, on any error, and to units outside treatment lanes.
    pub baseline: String,
    /// The kill switch: `false` serves the baseline to everyone.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// Ordered targeting rules; the first that matches serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RawRule>,
    /// What to serve when no rule matches (default: the baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<RawServe>,
}

impl RawServe {
    /// True when this serve can give `variant` to someone: it names it, or a split gives it a
    /// lane wider than 0.
    pub fn serves(&self, variant: &str) -> bool {
        self.variant.as_deref() == Some(variant)
            || self.split.as_ref().is_some_and(|split| {
                split
                    .treatments
                    .iter()
                    .any(|t| t.variant == variant && t.weight > 0)
            })
    }
}

impl RawFlag {
    /// True when the flag can serve `variant` to someone: it is the baseline, or a rule or the
    /// default serves it.
    pub fn serves(&self, variant: &str) -> bool {
        self.baseline == variant
            || self.rules.iter().any(|rule| rule.serve.serves(variant))
            || self
                .default
                .as_ref()
                .is_some_and(|serve| serve.serves(variant))
    }
}

/// One variant of a flag.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariant {
    /// The value, for non-prompt flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The content id of the prompt version (a key of `prompts`), for prompt flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

/// A targeting rule: all conditions must hold.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// An optional name, reported in evaluation details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The conditions; an empty list always matches.
    #[serde(default)]
    pub when: Vec<RawCondition>,
    /// What the rule serves.
    pub serve: RawServe,
}

/// What a rule or the default serves: exactly one of `variant` or `split`.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServe {
    /// A single variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// A percentage split between the baseline and treatments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<RawSplit>,
}

/// A split: treatments own lanes of the 100 000 slots; every other slot gets the baseline.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSplit {
    /// The context attribute that identifies a unit (default `targetingKey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
    /// The hash seed (default: the flag key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// Treatments in lane order, each with its allocation in slots (1/1000 of a percent).
    pub treatments: Vec<RawTreatment>,
    /// Restricts the split to a range of a layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<RawLayerRange>,
}

/// A treatment's share of a split.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTreatment {
    /// The variant served in this lane.
    pub variant: String,
    /// Slots out of 100 000 (so 1 000 is 1 %); at most the lane width `100000 / k`.
    pub weight: u32,
}

/// The part of a layer a split occupies: slots `[start, end)` of the layer's 100 000.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLayerRange {
    /// The layer's name (declared under `layers`).
    pub name: String,
    /// First slot in the range.
    pub start: u32,
    /// One past the last slot in the range.
    pub end: u32,
}

/// A condition on one context attribute.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    /// The context attribute read (`in_segment` reads none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub attribute: String,
    /// The operator name (`in`, `str_contains`, `num_gt`, `semver_lt`, `in_segment`, …).
    pub op: String,
    /// The literals; numbers are accepted and read as their decimal text.
    #[serde(default, deserialize_with = "strings_or_numbers")]
    pub values: Vec<String>,
    /// Inverts the result, as Unleash's `inverted`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub negate: bool,
    /// Compares strings without regard to case (string operators only, as in Unleash).
    #[serde(default, skip_serializing_if = "is_false")]
    pub case_insensitive: bool,
}

fn strings_or_numbers<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    deserializer.deserialize_seq(LiteralsVisitor)
}

/// The `values` array. A hand-written visitor rather than an untagged enum: untagged enums
/// buffer every element through serde's `Content`, which costs code size in every Wasm build.
struct LiteralsVisitor;

impl<'de> Visitor<'de> for LiteralsVisitor {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of strings, numbers or booleans")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Literal(text)) = seq.next_element::<Literal>()? {
            values.push(text);
        }
        Ok(values)
    }
}

/// One literal as its text: a string as it is, a number as JSON writes it, a boolean as
/// `true` / `false`.
struct Literal(String);

impl<'de> Deserialize<'de> for Literal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LiteralVisitor)
    }
}

struct LiteralVisitor;

impl LiteralVisitor {
    fn number<E: serde::de::Error>(number: Option<serde_json::Number>) -> Result<Literal, E> {
        match number {
            Some(number) => Ok(Literal(alloc::format!("{number}"))),
            None => Err(E::custom("not a JSON number")),
        }
    }
}

impl<'de> Visitor<'de> for LiteralVisitor {
    type Value = Literal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a number or a boolean")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Literal, E> {
        Ok(Literal(String::from(text)))
    }

    fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Literal, E> {
        Ok(Literal(text))
    }

    fn visit_bool<E: serde::de::Error>(self, flag: bool) -> Result<Literal, E> {
        Ok(Literal(String::from(if flag { "true" } else { "false" })))
    }

    fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<Literal, E> {
        LiteralVisitor::number(Some(serde_json::Number::from(number)))
    }

    fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<Literal, E> {
        LiteralVisitor::number(Some(serde_json::Number::from(number)))
    }

    fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<Literal, E> {
        LiteralVisitor::number(serde_json::Number::from_f64(number))
    }
}
