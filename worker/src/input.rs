//! Reading an evaluation request body (`{"context": {...}}`, as OFREP and `/v1/resolve` take it)
//! into a core [`Context`], with the caller's clock for date operators.

use promptflag_core::{AttributeValue, Context};
use serde_json::Value;

/// Request-body limits. The evaluation bodies are small; rulesets have core's own limit.
pub mod limits {
    /// An evaluation request (`{"context": ...}`).
    pub const EVALUATION_BYTES: usize = 64 * 1024;
    /// A prompt body uploaded through the admin API.
    pub const PROMPT_BYTES: usize = 1024 * 1024;
    /// A rollback request.
    pub const ROLLBACK_BYTES: usize = 4 * 1024;
    /// A ruleset uploaded through the admin API (core refuses anything larger anyway).
    pub const RULESET_BYTES: usize = promptflag_core::compile::limits::MAX_RULESET_BYTES;
}

/// Why an evaluation request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// The body is not JSON.
    NotJson(String),
    /// The body is JSON but not an object.
    NotAnObject,
    /// `context` is present and not an object.
    ContextNotAnObject,
}

impl InputError {
    pub fn message(&self) -> String {
        match self {
            InputError::NotJson(message) => {
                format!("the request body is not valid JSON: {message}")
            }
            InputError::NotAnObject => {
                String::from("the request body must be a JSON object such as {\"context\": {}}")
            }
            InputError::ContextNotAnObject => {
                String::from("`context` must be a JSON object of attributes")
            }
        }
    }
}

/// An evaluation request: the context to evaluate and its JSON (for entity tags).
#[derive(Debug, Clone)]
pub struct EvaluationInput {
    pub context: Context,
    /// The `context` object as sent (canonical: serde_json sorts object keys), `{}` when absent.
    pub context_json: Value,
}

impl EvaluationInput {
    /// The targeting key as text, when present (the exposure's unit).
    pub fn targeting_key(&self) -> Option<String> {
        match self.context.get("targetingKey") {
            Some(AttributeValue::String(text)) => Some(text.clone()),
            Some(AttributeValue::Integer(number)) => Some(number.to_string()),
            _ => None,
        }
    }
}

/// Reads `{"context": {...}}`. An empty body and a missing `context` mean an empty context;
/// `"context": null` is not an object (as core reads a `null` context everywhere).
pub fn evaluation_input(body: &[u8], now_millis: u64) -> Result<EvaluationInput, InputError> {
    let context_json = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(serde_json::Map::new())
    } else {
        let value: Value =
            serde_json::from_slice(body).map_err(|error| InputError::NotJson(error.to_string()))?;
        let Value::Object(mut request) = value else {
            return Err(InputError::NotAnObject);
        };
        match request.remove("context") {
            None => Value::Object(serde_json::Map::new()),
            Some(context @ Value::Object(_)) => context,
            Some(_) => return Err(InputError::ContextNotAnObject),
        }
    };
    let mut context =
        Context::from_json_value(&context_json).map_err(|_| InputError::ContextNotAnObject)?;
    context.set_now_millis(Some(i64::try_from(now_millis).unwrap_or(i64::MAX)));
    Ok(EvaluationInput {
        context,
        context_json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_bodies_and_missing_contexts_are_empty_contexts() {
        for body in [&b""[..], b"  \n", b"{}", br#"{"context": {}}"#] {
            let input = evaluation_input(body, 5).unwrap();
            assert_eq!(input.context.iter().count(), 0);
            assert_eq!(input.context.now_millis(), Some(5));
            assert_eq!(input.context_json, serde_json::json!({}));
        }
    }

    #[test]
    fn contexts_are_read_with_their_targeting_key() {
        let input =
            evaluation_input(br#"{"context": {"targetingKey": "u-1", "plan": "pro"}}"#, 0).unwrap();
        assert_eq!(input.targeting_key().as_deref(), Some("u-1"));
        assert_eq!(
            input.context.get("plan"),
            Some(&AttributeValue::String("pro".into()))
        );
        let numeric = evaluation_input(br#"{"context": {"targetingKey": 42}}"#, 0).unwrap();
        assert_eq!(numeric.targeting_key().as_deref(), Some("42"));
    }

    #[test]
    fn bad_bodies_are_classified() {
        assert!(matches!(
            evaluation_input(b"{", 0),
            Err(InputError::NotJson(_))
        ));
        assert_eq!(
            evaluation_input(b"[1]", 0).unwrap_err(),
            InputError::NotAnObject
        );
        assert_eq!(
            evaluation_input(br#"{"context": "x"}"#, 0).unwrap_err(),
            InputError::ContextNotAnObject
        );
        assert_eq!(
            evaluation_input(br#"{"context": [1]}"#, 0).unwrap_err(),
            InputError::ContextNotAnObject
        );
        assert_eq!(
            evaluation_input(br#"{"context": null}"#, 0).unwrap_err(),
            InputError::ContextNotAnObject
        );
    }
}
