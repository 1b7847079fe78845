//! Reading JSON objects field by field from a `serde_json::Value`. The Worker's Wasm already
//! parses `Value`s; derived deserializers would each add their own parser code to its budgeted
//! upload, so the gate's inputs and the registry are read through this instead, with the same
//! strictness (unknown fields refused, types checked, a path in every error).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Parses JSON text into a `Value`, with `wrap` making the error.
pub fn parse(text: &str, wrap: fn(String) -> Error) -> Result<Value> {
    serde_json::from_slice(text.as_bytes()).map_err(|e| wrap(format!("{e}")))
}

/// A `Value` as JSON text. Serializing a `Value` cannot fail (its keys are strings).
pub fn text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// An object being read: its fields, where it is (for errors) and how errors are made.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    path: String,
    wrap: fn(String) -> Error,
}

impl<'a> Fields<'a> {
    /// Reads `value` as an object whose keys are all in `allowed`.
    pub fn new(
        value: &'a Value,
        path: String,
        allowed: &[&str],
        wrap: fn(String) -> Error,
    ) -> Result<Fields<'a>> {
        let object = value
            .as_object()
            .ok_or_else(|| wrap(format!("{path} must be a JSON object")))?;
        if let Some(unknown) = object.keys().find(|key| !allowed.contains(&key.as_str())) {
            return Err(wrap(format!("{path} has an unknown field {unknown:?}")));
        }
        Ok(Fields { object, path, wrap })
    }

    fn wrong(&self, name: &str, expected: &str) -> Error {
        (self.wrap)(format!("{}.{name} must be {expected}", self.path))
    }

    /// A field as it is (`None` when absent or null).
    pub fn value(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|value| !value.is_null())
    }

    /// An optional string.
    pub fn string(&self, name: &str) -> Result<Option<String>> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(self.wrong(name, "a string")),
        }
    }

    /// A required string.
    pub fn required_string(&self, name: &str) -> Result<String> {
        self.string(name)?
            .ok_or_else(|| self.wrong(name, "present (a string)"))
    }

    /// An optional boolean (absent: false).
    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.value(name) {
            None => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(_) => Err(self.wrong(name, "true or false")),
        }
    }

    /// A required unsigned integer.
    pub fn required_u64(&self, name: &str) -> Result<u64> {
        self.value(name)
            .and_then(Value::as_u64)
            .ok_or_else(|| self.wrong(name, "a whole number of at least 0"))
    }

    /// An optional array of at most `limit` items (absent: empty).
    pub fn array(&self, name: &str, limit: usize) -> Result<&'a [Value]> {
        match self.value(name) {
            None => Ok(&[]),
            Some(Value::Array(items)) if items.len() <= limit => Ok(items),
            Some(Value::Array(items)) => Err((self.wrap)(format!(
                "{}.{name} holds {} items; at most {limit}",
                self.path,
                items.len()
            ))),
            Some(_) => Err(self.wrong(name, "an array")),
        }
    }

    /// An optional array of strings (absent: empty).
    pub fn strings(&self, name: &str, limit: usize) -> Result<Vec<String>> {
        self.array(name, limit)?
            .iter()
            .map(|item| {
                item.as_str()
                    .map(String::from)
                    .ok_or_else(|| self.wrong(name, "an array of strings"))
            })
            .collect()
    }

    /// The path of an item of array `name`, for its own errors.
    pub fn item_path(&self, name: &str, index: usize) -> String {
        format!("{}.{name}[{index}]", self.path)
    }
}
