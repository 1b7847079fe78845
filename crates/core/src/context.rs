//! The evaluation context: the attributes of one request (OpenFeature's evaluation context),
//! plus the caller's clock for date operators, since core reads no clock of its own.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::Value;

/// The attribute OpenFeature uses for the unit of bucketing.
pub const TARGETING_KEY: &str = "targetingKey";

/// The attribute date operators read when the condition names it and the context lacks it.
pub const CURRENT_TIME: &str = "currentTime";

/// One context attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// A string.
    String(String),
    /// A number (JSON numbers are read as `f64`; integers keep their exact text, see below).
    Number(f64),
    /// An integer that fits `i64`, kept exactly so a numeric user id buckets the same everywhere.
    Integer(i64),
    /// A boolean.
    Bool(bool),
    /// An array or object: no operator reads it, and a condition that does reports
    /// `INVALID_CONTEXT`.
    Unsupported,
}

impl AttributeValue {
    /// The value as text, as string operators and bucketing see it.
    pub fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            AttributeValue::String(text) => Some(Cow::Borrowed(text)),
            AttributeValue::Integer(number) => Some(Cow::Owned(number.to_string())),
            AttributeValue::Number(number) => Some(Cow::Owned(format!("{number}"))),
            AttributeValue::Bool(flag) => Some(Cow::Borrowed(if *flag { "true" } else { "false" })),
            AttributeValue::Unsupported => None,
        }
    }

    fn from_json(value: &Value) -> Option<AttributeValue> {
        Some(match value {
            Value::Null => return None,
            Value::Bool(flag) => AttributeValue::Bool(*flag),
            Value::String(text) => AttributeValue::String(text.clone()),
            Value::Number(number) => match number.as_i64() {
                Some(integer) => AttributeValue::Integer(integer),
                None => AttributeValue::Number(number.as_f64().unwrap_or(f64::NAN)),
            },
            Value::Array(_) | Value::Object(_) => AttributeValue::Unsupported,
        })
    }
}

/// Why a context could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextError {
    /// The text is not JSON.
    Parse(String),
    /// The JSON is not an object.
    NotAnObject,
}

impl core::fmt::Display for ContextError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ContextError::Parse(message) => write!(f, "the context is not valid JSON: {message}"),
            ContextError::NotAnObject => {
                f.write_str("the context must be a JSON object of attributes")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ContextError {}

/// Up to this many attributes, [`Context::get`] scans instead of searching.
const LINEAR_LOOKUP_MAX: usize = 16;

/// The attributes of one evaluation, sorted by name for binary search. Build it once and reuse
/// it for every flag of a request (that is the fast path: nothing is re-parsed per flag).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    attributes: Vec<(String, AttributeValue)>,
    now_millis: Option<i64>,
    /// Whether any attribute is [`AttributeValue::Unsupported`], kept exact by every change,
    /// so evaluation can skip looking up an attribute only to rule that out.
    has_unsupported: bool,
}

impl Context {
    /// An empty context.
    pub fn new() -> Context {
        Context::default()
    }

    /// A context from a JSON object; `null` attributes are left out.
    pub fn from_json_value(value: &Value) -> Result<Context, ContextError> {
        let Value::Object(map) = value else {
            return Err(ContextError::NotAnObject);
        };
        let mut context = Context::new();
        for (name, value) in map {
            if let Some(attribute) = AttributeValue::from_json(value) {
                context.attributes.push((name.clone(), attribute));
            }
        }
        // serde_json's map is sorted already; sorting again keeps this independent of its features.
        context.attributes.sort_by(|a, b| a.0.cmp(&b.0));
        context.has_unsupported = context
            .attributes
            .iter()
            .any(|(_, value)| *value == AttributeValue::Unsupported);
        Ok(context)
    }

    /// A context from JSON text.
    pub fn from_json_str(text: &str) -> Result<Context, ContextError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ContextError::Parse(e.to_string()))?;
        Context::from_json_value(&value)
    }

    /// Sets an attribute, replacing an earlier value.
    pub fn set(&mut self, name: &str, value: AttributeValue) -> &mut Context {
        match self
            .attributes
            .binary_search_by(|(key, _)| key.as_str().cmp(name))
        {
            Ok(index) => self.attributes[index].1 = value,
            Err(index) => self.attributes.insert(index, (String::from(name), value)),
        }
        self.has_unsupported = self
            .attributes
            .iter()
            .any(|(_, value)| *value == AttributeValue::Unsupported);
        self
    }

    /// Builder form of [`Context::set`] for a string attribute.
    pub fn with(mut self, name: &str, value: &str) -> Context {
        self.set(name, AttributeValue::String(String::from(value)));
        self
    }

    /// Sets the targeting key (the default bucketing unit).
    pub fn with_targeting_key(self, key: &str) -> Context {
        self.with(TARGETING_KEY, key)
    }

    /// Supplies the current time (milliseconds since the Unix epoch) for date operators.
    pub fn with_now_millis(mut self, now_millis: i64) -> Context {
        self.now_millis = Some(now_millis);
        self
    }

    /// Sets or clears the current time.
    pub fn set_now_millis(&mut self, now_millis: Option<i64>) {
        self.now_millis = now_millis;
    }

    /// The caller's current time, if given.
    pub fn now_millis(&self) -> Option<i64> {
        self.now_millis
    }

    /// The attribute named `name`.
    pub fn get(&self, name: &str) -> Option<&AttributeValue> {
        // Contexts are small, and names differ mostly in length: a scan that compares lengths
        // before bytes touches the bytes of about one name, where a binary search compares the
        // bytes of several. Large contexts keep the binary search.
        if self.attributes.len() <= LINEAR_LOOKUP_MAX {
            return self
                .attributes
                .iter()
                .find(|(key, _)| crate::ruleset::keys_equal(key, name))
                .map(|(_, value)| value);
        }
        self.attributes
            .binary_search_by(|(key, _)| crate::ruleset::compare_keys(key, name))
            .ok()
            .map(|index| &self.attributes[index].1)
    }

    /// Whether some attribute is an array or an object.
    pub(crate) fn has_unsupported(&self) -> bool {
        self.has_unsupported
    }

    /// Iterates over the attributes in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttributeValue)> {
        self.attributes.iter().map(|(k, v)| (k.as_str(), v))
    }
}
