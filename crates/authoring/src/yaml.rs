//! YAML with locations: repository files are parsed into a small tree where every node knows its
//! line, so lint and build can point at the exact line of a bad field, not just at the file.
//!
//! Parsing is serde-saphyr's (panic-free, duplicate keys rejected, errors with line and column);
//! this module only keeps the locations it reports, and offers typed accessors that record a
//! diagnostic instead of failing, so one run reports every problem in a file.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::diagnostic::Diagnostics;

/// A value with the line and column it starts at (both 1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// A YAML node.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Located<Node>>),
    /// A mapping, in document order (duplicate keys are a parse error).
    Map(Vec<(Located<String>, Located<Node>)>),
}

impl Node {
    /// A word for the node's type, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) => "an integer",
            Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line.
    pub line: u32,
    /// What the parser said.
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

fn located<T>(spanned: Spanned<T>) -> Located<T> {
    let location = spanned.referenced;
    Located {
        value: spanned.value,
        line: u32::try_from(location.line()).unwrap_or(u32::MAX).max(1),
        column: u32::try_from(location.column()).unwrap_or(u32::MAX).max(1),
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = access.next_element::<Spanned<Node>>()? {
                    items.push(located(item));
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = access.next_key::<Spanned<Node>>()? {
                    let key = located(key);
                    let text = match &key.value {
                        Node::Str(text) => text.clone(),
                        Node::Int(number) => number.to_string(),
                        Node::Float(number) => number.to_string(),
                        Node::Bool(flag) => flag.to_string(),
                        other => {
                            return Err(serde::de::Error::custom(format!(
                                "a mapping key must be text, not {}",
                                other.kind()
                            )));
                        }
                    };
                    let value = located(access.next_value::<Spanned<Node>>()?);
                    entries.push((
                        Located {
                            value: text,
                            line: key.line,
                            column: key.column,
                        },
                        value,
                    ));
                }
                Ok(Node::Map(entries))
            }
        }
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// Parses one YAML document. An empty document is `Null` at line 1.
pub fn parse(text: &str) -> Result<Located<Node>, YamlError> {
    if text.trim().is_empty() {
        return Ok(Located {
            value: Node::Null,
            line: 1,
            column: 1,
        });
    }
    match serde_saphyr::from_str::<Spanned<Node>>(text) {
        Ok(node) => Ok(located(node)),
        Err(error) => {
            let line = error
                .location()
                .map(|location| u32::try_from(location.line()).unwrap_or(u32::MAX))
                .unwrap_or(1)
                .max(1);
            Err(YamlError {
                line,
                message: first_line_message(&error.to_string()),
            })
        }
    }
}

/// serde-saphyr renders a snippet under its message; keep the message alone, without the
/// `error: line N column M:` prefix (the diagnostic carries the line itself).
fn first_line_message(rendered: &str) -> String {
    let first = rendered.lines().next().unwrap_or(rendered).trim();
    let without_error = first.strip_prefix("error: ").unwrap_or(first);
    if let Some(rest) = without_error.strip_prefix("line ")
        && let Some(position) = rest.find(": ")
        && rest[..position].contains("column")
    {
        return rest[position + 2..].to_string();
    }
    without_error.to_string()
}

/// Converts a node to JSON. Non-finite floats become null.
pub fn to_json(node: &Node) -> Value {
    match node {
        Node::Null => Value::Null,
        Node::Bool(flag) => Value::Bool(*flag),
        Node::Int(number) => Value::from(*number),
        Node::Float(number) => {
            serde_json::Number::from_f64(*number).map_or(Value::Null, Value::Number)
        }
        Node::Str(text) => Value::String(text.clone()),
        Node::Seq(items) => Value::Array(items.iter().map(|item| to_json(&item.value)).collect()),
        Node::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, value)| (key.value.clone(), to_json(&value.value)))
                .collect(),
        ),
    }
}

/// Reads fields of a YAML file while recording diagnostics against it.
pub struct Reader<'d> {
    /// The file, relative to the repository root.
    pub file: String,
    /// Where problems go.
    pub diagnostics: &'d mut Diagnostics,
}

impl<'d> Reader<'d> {
    /// A reader for one file.
    pub fn new(file: impl Into<String>, diagnostics: &'d mut Diagnostics) -> Reader<'d> {
        Reader {
            file: file.into(),
            diagnostics,
        }
    }

    /// Records an error at a line of this file.
    pub fn error(&mut self, line: u32, code: &'static str, message: impl Into<String>) {
        self.diagnostics.error(&self.file, line, code, message);
    }

    /// Records a warning at a line of this file.
    pub fn warning(&mut self, line: u32, code: &'static str, message: impl Into<String>) {
        self.diagnostics.warning(&self.file, line, code, message);
    }

    /// The node as a mapping, or an error naming `what`.
    pub fn map<'n>(
        &mut self,
        node: &'n Located<Node>,
        what: &str,
    ) -> Option<&'n [(Located<String>, Located<Node>)]> {
        match &node.value {
            Node::Map(entries) => Some(entries),
            other => {
                self.error(
                    node.line,
                    "wrong_type",
                    format!("{what} must be a mapping, not {}", other.kind()),
                );
                None
            }
        }
    }

    /// Warns about keys not in `known` (a typo would otherwise be silently ignored).
    pub fn unknown_keys(
        &mut self,
        entries: &[(Located<String>, Located<Node>)],
        known: &[&str],
        what: &str,
    ) {
        for (key, _) in entries {
            if !known.contains(&key.value.as_str()) {
                self.error(
                    key.line,
                    "unknown_field",
                    format!(
                        "{what} has no field {:?} (known fields: {})",
                        key.value,
                        known.join(", ")
                    ),
                );
            }
        }
    }

    /// A required string field; records `missing_field` at `parent_line` when absent.
    pub fn required_str(
        &mut self,
        entries: &[(Located<String>, Located<Node>)],
        key: &str,
        parent_line: u32,
        what: &str,
    ) -> Option<Located<String>> {
        match get(entries, key) {
            Some(node) => self.string(node, &format!("{what}.{key}")),
            None => {
                self.error(
                    parent_line,
                    "missing_field",
                    format!("{what} is missing the required field `{key}`"),
                );
                None
            }
        }
    }

    /// An optional string field.
    pub fn optional_str(
        &mut self,
        entries: &[(Located<String>, Located<Node>)],
        key: &str,
        what: &str,
    ) -> Option<Located<String>> {
        match get(entries, key) {
            Some(Located {
                value: Node::Null, ..
            })
            | None => None,
            Some(node) => self.string(node, &format!("{what}.{key}")),
        }
    }

    /// Checks that an optional `field` of `owner` (`flag`, `segment`, `rollout`) naming the
    /// file's subject, when written, is the name the file name gives it (`key_mismatch`
    /// otherwise); `noun` names it in the message.
    pub fn name_matches_file(
        &mut self,
        entries: &[(Located<String>, Located<Node>)],
        (owner, field, noun): (&str, &str, &str),
        expected: &str,
    ) {
        if let Some(written) = self.optional_str(entries, field, owner)
            && written.value != expected
        {
            self.error(
                written.line,
                "key_mismatch",
                format!(
                    "the {noun} {:?} differs from the file name {expected:?}",
                    written.value
                ),
            );
        }
    }

    /// The node as a non-empty string. Numbers are refused: `1.10` would silently become `1.1`.
    pub fn string(&mut self, node: &Located<Node>, what: &str) -> Option<Located<String>> {
        match &node.value {
            Node::Str(text) if !text.trim().is_empty() => Some(Located {
                value: text.clone(),
                line: node.line,
                column: node.column,
            }),
            Node::Str(_) | Node::Null => {
                self.error(node.line, "empty_field", format!("{what} is empty"));
                None
            }
            Node::Float(_) | Node::Int(_) => {
                self.error(
                    node.line,
                    "wrong_type",
                    format!("{what} must be text; quote it so YAML does not read it as a number"),
                );
                None
            }
            other => {
                self.error(
                    node.line,
                    "wrong_type",
                    format!("{what} must be text, not {}", other.kind()),
                );
                None
            }
        }
    }

    /// An optional boolean field.
    pub fn optional_bool(
        &mut self,
        entries: &[(Located<String>, Located<Node>)],
        key: &str,
        what: &str,
    ) -> Option<Located<bool>> {
        let node = get(entries, key)?;
        match node.value {
            Node::Bool(flag) => Some(Located {
                value: flag,
                line: node.line,
                column: node.column,
            }),
            ref other => {
                self.error(
                    node.line,
                    "wrong_type",
                    format!("{what}.{key} must be true or false, not {}", other.kind()),
                );
                None
            }
        }
    }

    /// A list of strings (a single string is accepted as a list of one).
    pub fn string_list(&mut self, node: &Located<Node>, what: &str) -> Vec<Located<String>> {
        match &node.value {
            Node::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| self.string(item, &format!("{what}[{index}]")))
                .collect(),
            Node::Str(_) => self.string(node, what).into_iter().collect(),
            Node::Null => Vec::new(),
            other => {
                self.error(
                    node.line,
                    "wrong_type",
                    format!("{what} must be a list of text, not {}", other.kind()),
                );
                Vec::new()
            }
        }
    }
}

/// The value under `key` in a mapping.
pub fn get<'n>(
    entries: &'n [(Located<String>, Located<Node>)],
    key: &str,
) -> Option<&'n Located<Node>> {
    entries
        .iter()
        .find(|(k, _)| k.value == key)
        .map(|(_, value)| value)
}
