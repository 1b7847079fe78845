//! The publish gate's signature decision, exported to JavaScript: the two pure steps of
//! `promptflag-governance` over JSON. [`governance_checks`] lists the Ed25519 checks to make;
//! `worker/js/signatures.js` makes them with workerd's WebCrypto (no signature library is in
//! the Wasm); [`governance_decide`] turns their results into the decision. Each answers a JSON
//! error object (`{"error": {"code", "message"}}`) for an input it cannot use, never a trap.

use wasm_bindgen::prelude::*;

/// The checks for a gate input (`docs/interfaces.md`, "The gate's input"): a JSON array of
/// `{public_key, signed_data, signature}`, each base64.
#[wasm_bindgen]
pub fn governance_checks(input: &str) -> String {
    promptflag_governance::gate::checks_json(input).unwrap_or_else(|error| error_json(&error))
}

/// The decision for a gate input, given one boolean per check (a JSON array, in the order
/// [`governance_checks`] listed them).
#[wasm_bindgen]
pub fn governance_decide(input: &str, results: &str) -> String {
    promptflag_governance::gate::decide_json(input, results)
        .unwrap_or_else(|error| error_json(&error))
}

/// `{"error": {"code": …, "message": …}}`.
fn error_json(error: &promptflag_governance::Error) -> String {
    let mut inner = serde_json::Map::new();
    inner.insert("code".into(), error.code().into());
    inner.insert("message".into(), error.to_string().into());
    let mut outer = serde_json::Map::new();
    outer.insert("error".into(), serde_json::Value::Object(inner));
    promptflag_governance::json::text(&serde_json::Value::Object(outer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_input_is_a_json_error() {
        let answer: serde_json::Value = serde_json::from_str(&governance_checks("nope")).unwrap();
        assert_eq!(answer["error"]["code"], "invalid_gate_input");
        let answer: serde_json::Value =
            serde_json::from_str(&governance_decide("{\"environment\":\"prod\"}", "[true]"))
                .unwrap();
        assert_eq!(answer["error"]["code"], "invalid_gate_input");
    }

    #[test]
    fn an_input_without_signatures_needs_no_checks_and_is_decided() {
        let input = r#"{"environment": "dev"}"#;
        assert_eq!(governance_checks(input), "[]");
        let decision: serde_json::Value =
            serde_json::from_str(&governance_decide(input, "[]")).unwrap();
        assert_eq!(decision["allowed"], true);
    }
}
