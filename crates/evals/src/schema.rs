//! The JSON Schema subset that output schemas and tool argument schemas use, checked by hand.
//!
//! Supported keywords: `type` (a name or a list), `enum`, `const`, `properties`, `required`,
//! `additionalProperties` (a boolean or a schema), `items`, `minItems`, `maxItems`,
//! `uniqueItems`, `minLength`, `maxLength`, `pattern`, `minimum`, `maximum`,
//! `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `allOf`, `anyOf`, `oneOf`, `not`.
//! Annotations (`$schema`, `title`, `description`, `examples`, `default`, `$comment`) are ignored.
//! Any other keyword is reported by [`unsupported_keywords`] (lint shows it), and skipped by
//! [`validate`], so a schema never passes silently because of a keyword nobody checks.
//!
//! A full validator crate would pull in a network-capable `$ref` resolver and a large regex and
//! format stack; output schemas of prompts are small and self-contained, so the subset is
//! written out here. Costs are bounded: nesting deeper than [`MAX_DEPTH`] is a violation, and
//! `pattern` regexes are compiled with a size limit.

use serde_json::Value;

/// Deepest schema nesting followed before reporting a violation instead of recursing.
pub const MAX_DEPTH: usize = 64;

/// Keywords [`validate`] checks or deliberately ignores.
const KNOWN_KEYWORDS: &[&str] = &[
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "examples",
    "default",
];

/// One way an instance fails its schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// Where in the instance, as a JSON pointer (`""` is the whole value).
    pub path: String,
    /// What is wrong, for people.
    pub message: String,
}

/// Every violation of `schema` by `instance` (empty when it matches).
pub fn validate(schema: &Value, instance: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    check(schema, instance, "", 0, &mut out);
    out
}

/// Whether `instance` matches `schema`.
pub fn matches(schema: &Value, instance: &Value) -> bool {
    validate(schema, instance).is_empty()
}

/// Keywords of `schema` (at any depth) that [`validate`] does not check, as JSON pointers into
/// the schema.
pub fn unsupported_keywords(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_unsupported(schema, "", 0, &mut out);
    out
}

fn collect_unsupported(schema: &Value, path: &str, depth: usize, out: &mut Vec<String>) {
    let Value::Object(map) = schema else { return };
    if depth > MAX_DEPTH {
        return;
    }
    for (key, value) in map {
        let here = format!("{path}/{key}");
        if !KNOWN_KEYWORDS.contains(&key.as_str()) {
            out.push(here.clone());
            continue;
        }
        match key.as_str() {
            "properties" => {
                if let Value::Object(properties) = value {
                    for (name, sub) in properties {
                        collect_unsupported(sub, &format!("{here}/{name}"), depth + 1, out);
                    }
                }
            }
            "items" | "additionalProperties" | "not" => {
                collect_unsupported(value, &here, depth + 1, out)
            }
            "allOf" | "anyOf" | "oneOf" => {
                if let Value::Array(items) = value {
                    for (index, sub) in items.iter().enumerate() {
                        collect_unsupported(sub, &format!("{here}/{index}"), depth + 1, out);
                    }
                }
            }
            _ => {}
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn has_type(value: &Value, wanted: &str) -> bool {
    let actual = type_name(value);
    actual == wanted || (wanted == "number" && actual == "integer")
}

fn push(out: &mut Vec<Violation>, path: &str, message: String) {
    out.push(Violation {
        path: path.to_string(),
        message,
    });
}

/// Equality as JSON Schema defines it: numbers compare by value (`1` equals `1.0`).
fn json_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, x)| b.get(key).is_some_and(|y| json_equal(x, y)))
        }
        _ => left == right,
    }
}

fn check(schema: &Value, instance: &Value, path: &str, depth: usize, out: &mut Vec<Violation>) {
    if depth > MAX_DEPTH {
        push(
            out,
            path,
            format!("the schema nests deeper than {MAX_DEPTH} levels"),
        );
        return;
    }
    let map = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            push(out, path, String::from("no value is allowed here"));
            return;
        }
        Value::Object(map) => map,
        _ => return,
    };
    if let Some(wanted) = map.get("type") {
        let names: Vec<&str> = match wanted {
            Value::String(name) => vec![name.as_str()],
            Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !names.is_empty() && !names.iter().any(|name| has_type(instance, name)) {
            push(
                out,
                path,
                format!(
                    "expected {}, found {}",
                    names.join(" or "),
                    type_name(instance)
                ),
            );
            // The other keywords assume the right type; their messages would only repeat this one.
            return;
        }
    }
    if let Some(Value::Array(allowed)) = map.get("enum")
        && !allowed
            .iter()
            .any(|candidate| json_equal(candidate, instance))
    {
        push(
            out,
            path,
            format!(
                "{} is not one of {}",
                compact(instance),
                compact(&Value::Array(allowed.clone()))
            ),
        );
    }
    if let Some(constant) = map.get("const")
        && !json_equal(constant, instance)
    {
        push(
            out,
            path,
            format!("{} is not {}", compact(instance), compact(constant)),
        );
    }
    match instance {
        Value::Object(object) => check_object(map, object, path, depth, out),
        Value::Array(items) => check_array(map, items, path, depth, out),
        Value::String(text) => check_string(map, text, path, out),
        Value::Number(number) => {
            if let Some(value) = number.as_f64() {
                check_number(map, value, path, out);
            }
        }
        _ => {}
    }
    check_combinators(map, instance, path, depth, out);
}

fn check_object(
    map: &serde_json::Map<String, Value>,
    object: &serde_json::Map<String, Value>,
    path: &str,
    depth: usize,
    out: &mut Vec<Violation>,
) {
    if let Some(Value::Array(required)) = map.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                push(
                    out,
                    path,
                    format!("the required property {name:?} is missing"),
                );
            }
        }
    }
    let properties = map.get("properties").and_then(Value::as_object);
    for (name, value) in object {
        let here = format!("{path}/{}", escape_pointer(name));
        match properties.and_then(|p| p.get(name)) {
            Some(sub) => check(sub, value, &here, depth + 1, out),
            None => match map.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    push(out, path, format!("the property {name:?} is not allowed"))
                }
                Some(sub @ Value::Object(_)) => check(sub, value, &here, depth + 1, out),
                _ => {}
            },
        }
    }
}

fn check_array(
    map: &serde_json::Map<String, Value>,
    items: &[Value],
    path: &str,
    depth: usize,
    out: &mut Vec<Violation>,
) {
    if let Some(min) = map.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        push(
            out,
            path,
            format!("{} item(s), fewer than minItems {min}", items.len()),
        );
    }
    if let Some(max) = map.get("maxItems").and_then(Value::as_u64)
        && (items.len() as u64) > max
    {
        push(
            out,
            path,
            format!("{} item(s), more than maxItems {max}", items.len()),
        );
    }
    if map.get("uniqueItems") == Some(&Value::Bool(true)) {
        for (index, item) in items.iter().enumerate() {
            if items[..index]
                .iter()
                .any(|earlier| json_equal(earlier, item))
            {
                push(
                    out,
                    &format!("{path}/{index}"),
                    String::from("a repeated item where items must be unique"),
                );
            }
        }
    }
    if let Some(sub) = map.get("items") {
        for (index, item) in items.iter().enumerate() {
            check(sub, item, &format!("{path}/{index}"), depth + 1, out);
        }
    }
}

fn check_string(
    map: &serde_json::Map<String, Value>,
    text: &str,
    path: &str,
    out: &mut Vec<Violation>,
) {
    let length = text.chars().count() as u64;
    if let Some(min) = map.get("minLength").and_then(Value::as_u64)
        && length < min
    {
        push(
            out,
            path,
            format!("{length} character(s), fewer than minLength {min}"),
        );
    }
    if let Some(max) = map.get("maxLength").and_then(Value::as_u64)
        && length > max
    {
        push(
            out,
            path,
            format!("{length} character(s), more than maxLength {max}"),
        );
    }
    if let Some(Value::String(pattern)) = map.get("pattern") {
        match regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
        {
            Ok(regex) if !regex.is_match(text) => push(
                out,
                path,
                format!(
                    "{} does not match the pattern {pattern:?}",
                    compact_str(text)
                ),
            ),
            Ok(_) => {}
            Err(_) => push(
                out,
                path,
                format!("the schema's pattern {pattern:?} is not a valid regular expression"),
            ),
        }
    }
}

fn check_number(
    map: &serde_json::Map<String, Value>,
    value: f64,
    path: &str,
    out: &mut Vec<Violation>,
) {
    let bound = |key: &str| map.get(key).and_then(Value::as_f64);
    if let Some(minimum) = bound("minimum")
        && value < minimum
    {
        push(out, path, format!("{value} is less than minimum {minimum}"));
    }
    if let Some(maximum) = bound("maximum")
        && value > maximum
    {
        push(out, path, format!("{value} is more than maximum {maximum}"));
    }
    if let Some(minimum) = bound("exclusiveMinimum")
        && value <= minimum
    {
        push(out, path, format!("{value} is not more than {minimum}"));
    }
    if let Some(maximum) = bound("exclusiveMaximum")
        && value >= maximum
    {
        push(out, path, format!("{value} is not less than {maximum}"));
    }
    if let Some(step) = bound("multipleOf")
        && step > 0.0
    {
        let quotient = value / step;
        if (quotient - quotient.round()).abs() > 1e-9 {
            push(out, path, format!("{value} is not a multiple of {step}"));
        }
    }
}

fn check_combinators(
    map: &serde_json::Map<String, Value>,
    instance: &Value,
    path: &str,
    depth: usize,
    out: &mut Vec<Violation>,
) {
    let passes = |sub: &Value| {
        let mut scratch = Vec::new();
        check(sub, instance, path, depth + 1, &mut scratch);
        scratch.is_empty()
    };
    if let Some(Value::Array(all)) = map.get("allOf") {
        for sub in all {
            check(sub, instance, path, depth + 1, out);
        }
    }
    if let Some(Value::Array(any)) = map.get("anyOf")
        && !any.iter().any(passes)
    {
        push(out, path, String::from("matches none of anyOf"));
    }
    if let Some(Value::Array(one)) = map.get("oneOf") {
        let matched = one.iter().filter(|sub| passes(sub)).count();
        if matched != 1 {
            push(
                out,
                path,
                format!("matches {matched} of oneOf's schemas, not exactly one"),
            );
        }
    }
    if let Some(not) = map.get("not")
        && passes(not)
    {
        push(out, path, String::from("matches the schema under `not`"));
    }
}

fn escape_pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// A value as short JSON, for messages.
fn compact(value: &Value) -> String {
    compact_str(&value.to_string())
}

fn compact_str(text: &str) -> String {
    const LIMIT: usize = 60;
    if text.chars().count() <= LIMIT {
        return text.to_string();
    }
    let cut: String = text.chars().take(LIMIT).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ticket_schema() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "TicketSummary",
            "type": "object",
            "required": ["summary", "category", "priority", "needs_human"],
            "additionalProperties": false,
            "properties": {
                "summary": {"type": "string", "maxLength": 20},
                "category": {"enum": ["billing", "bug"]},
                "priority": {"enum": ["low", "urgent"]},
                "needs_human": {"type": "boolean"},
                "evidence": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "language": {"type": "string", "pattern": "^[a-z]{2}$"}
            }
        })
    }

    #[test]
    fn a_conforming_object_has_no_violations() {
        let instance = json!({"summary": "Card declined", "category": "billing",
            "priority": "low", "needs_human": false, "evidence": ["declined"], "language": "en"});
        assert_eq!(validate(&ticket_schema(), &instance), Vec::new());
        assert!(unsupported_keywords(&ticket_schema()).is_empty());
    }

    #[test]
    fn each_broken_keyword_is_reported_with_its_path() {
        let instance = json!({"summary": "This summary is far too long to fit", "category": "sales",
            "priority": "low", "evidence": ["a", "b", 3], "language": "EN", "extra": 1});
        let violations = validate(&ticket_schema(), &instance);
        let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
        assert!(
            violations
                .iter()
                .any(|v| v.path.is_empty() && v.message.contains("\"needs_human\" is missing"))
        );
        assert!(
            violations
                .iter()
                .any(|v| v.message.contains("\"extra\" is not allowed"))
        );
        assert!(paths.contains(&"/summary"));
        assert!(paths.contains(&"/category"));
        assert!(paths.contains(&"/evidence"), "maxItems: {violations:?}");
        assert!(paths.contains(&"/evidence/2"), "items type: {violations:?}");
        assert!(paths.contains(&"/language"), "pattern: {violations:?}");
    }

    #[test]
    fn types_numbers_and_combinators() {
        assert!(matches(&json!({"type": "number"}), &json!(3)));
        assert!(matches(&json!({"type": "integer"}), &json!(3.0)));
        assert!(!matches(&json!({"type": "integer"}), &json!(3.5)));
        assert!(matches(&json!({"type": ["string", "null"]}), &json!(null)));
        assert!(!matches(&json!({"minimum": 1, "maximum": 5}), &json!(6)));
        assert!(!matches(&json!({"exclusiveMinimum": 1}), &json!(1)));
        assert!(matches(&json!({"multipleOf": 0.5}), &json!(2.5)));
        assert!(!matches(&json!({"multipleOf": 2}), &json!(3)));
        assert!(matches(&json!({"enum": [1]}), &json!(1.0)));
        assert!(matches(
            &json!({"anyOf": [{"type": "string"}, {"type": "integer"}]}),
            &json!(2)
        ));
        assert!(!matches(
            &json!({"oneOf": [{"type": "number"}, {"type": "integer"}]}),
            &json!(2)
        ));
        assert!(!matches(&json!({"not": {"const": "x"}}), &json!("x")));
        assert!(!matches(
            &json!({"allOf": [{"minLength": 2}, {"maxLength": 3}]}),
            &json!("abcd")
        ));
        assert!(!matches(&json!({"uniqueItems": true}), &json!([1, 2, 1])));
        assert!(!matches(&json!(false), &json!(1)));
        assert!(matches(&json!(true), &json!(1)));
    }

    #[test]
    fn an_invalid_pattern_is_a_violation_not_a_panic() {
        let violations = validate(&json!({"pattern": "(["}), &json!("x"));
        assert_eq!(violations.len(), 1);
        assert!(
            violations[0]
                .message
                .contains("not a valid regular expression")
        );
    }

    #[test]
    fn unknown_keywords_are_listed_and_deep_nesting_is_bounded() {
        let schema =
            json!({"type": "object", "properties": {"a": {"$ref": "#/x", "format": "email"}}});
        assert_eq!(
            unsupported_keywords(&schema),
            vec!["/properties/a/$ref", "/properties/a/format"]
        );
        let mut deep = json!({"type": "array"});
        let mut instance = json!(1);
        for _ in 0..(MAX_DEPTH + 5) {
            deep = json!({"items": deep});
            instance = json!([instance]);
        }
        let violations = validate(&deep, &instance);
        assert!(violations.iter().any(|v| v.message.contains("deeper than")));
    }
}
