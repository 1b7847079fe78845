//! promptflag-evals: what "good output" means, checked without a network.
//!
//! - [`schema`]: the JSON Schema subset output schemas and tool argument schemas use.
//! - [`criteria`]: an eval case's criteria (schema, required and forbidden content, field values,
//!   numeric tolerance, a token budget) checked against one output.
//! - [`signals`]: the hallucination signals of one LLM call (citation mismatch, tool-call
//!   mismatch, unsupported numeric claims).
//! - [`judge`]: the LLM-as-judge prompt for a rubric and the parsing of its score.
//! - [`suite`]: the eval suite of a prompt family (`evals/<family>/eval.yaml`) as values, and
//!   the content address of its criteria.
//! - [`result`]: the recorded result of a suite run for one content id, its self-hash and the
//!   publish gate's check of it.
//! - `openai` (feature `client`): a blocking client for any OpenAI-compatible chat-completions
//!   endpoint, used by the companion's eval runner and the native client's sampled judge.
//!
//! Everything except `openai` is a pure function of its inputs (no clock, files or network),
//! so each check is unit-tested on values, and crates that must not reach the network (the
//! repository's authoring) use it without the feature.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod criteria;
pub mod judge;
#[cfg(feature = "client")]
pub mod openai;
pub mod result;
pub mod schema;
pub mod signals;
pub mod suite;

/// A path into a JSON value: `a.b[0].c`, or a JSON pointer `/a/b/0/c`.
pub fn lookup<'a>(value: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    if path.is_empty() || path == "$" {
        return Some(value);
    }
    if path.starts_with('/') {
        return value.pointer(path);
    }
    let mut current = value;
    let path = path.strip_prefix("$.").unwrap_or(path);
    for segment in path.split('.') {
        let (name, mut rest) = match segment.find('[') {
            Some(index) => segment.split_at(index),
            None => (segment, ""),
        };
        if !name.is_empty() {
            current = current.get(name)?;
        }
        while let Some(after) = rest.strip_prefix('[') {
            let close = after.find(']')?;
            let index: usize = after[..close].parse().ok()?;
            current = current.get(index)?;
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn lookup_reads_dotted_paths_indices_and_pointers() {
        let value = json!({"a": {"b": [10, {"c": "x"}]}});
        assert_eq!(super::lookup(&value, "a.b[0]"), Some(&json!(10)));
        assert_eq!(super::lookup(&value, "a.b[1].c"), Some(&json!("x")));
        assert_eq!(super::lookup(&value, "/a/b/1/c"), Some(&json!("x")));
        assert_eq!(super::lookup(&value, "$.a.b[0]"), Some(&json!(10)));
        assert_eq!(super::lookup(&value, "a.missing"), None);
        assert_eq!(super::lookup(&value, "a.b[7]"), None);
        assert_eq!(super::lookup(&value, "a.b[x]"), None);
    }
}
