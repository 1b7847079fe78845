//! The canonical approval message: the exact text a reviewer signs to approve one prompt
//! version for one environment. It names the prompt, the environment and the author, and pins
//! the content: the body's SHA-256 and the model configuration as the build emits it (model,
//! parameters as canonical JSON, the output schema's SHA-256). Editing any of them, or retyping
//! a hash, makes every earlier signature fail to verify.
//!
//! ```text
//! promptflag approval v1
//! prompt: support_reply@2.0.0
//! environment: prod
//! author: carol@acme.example
//! body-sha256: b0eadff2…
//! model: gpt-4o-mini
//! parameters: {"max_tokens":300,"temperature":0.2,"top_p":1}
//! output-schema-sha256: none
//! ```

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use promptflag_contracts::digest::is_sha256_hex;
use promptflag_contracts::keys::environment as check_environment;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::json::Fields;

/// The first line of every approval message (it also keeps approvals apart from registry
/// changes, which are JSON).
pub const HEADER: &str = "promptflag approval v1";

/// The longest approval message made (the parameters are the only open-ended part).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// What one approval covers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApprovalSubject {
    /// `<prompt id>@<version>`, as the ruleset's `prompts` entry names it.
    pub prompt: String,
    /// The registry name of the version's author.
    pub author: String,
    /// The SHA-256 of the body bytes (lowercase hex).
    pub body_sha256: String,
    /// The model name (empty when none is set).
    pub model: String,
    /// The model parameters, a JSON object (written as canonical JSON).
    pub parameters: Value,
    /// The SHA-256 of the output schema's canonical JSON, when the version has one.
    pub output_schema_sha256: Option<String>,
}

impl ApprovalSubject {
    /// Reads the JSON form (`{prompt, author, body_sha256, model?, parameters?,
    /// output_schema_sha256?}`); `path` names it in errors.
    pub fn from_json(value: &Value, path: String) -> Result<ApprovalSubject> {
        let fields = Fields::new(
            value,
            path,
            &[
                "prompt",
                "author",
                "body_sha256",
                "model",
                "parameters",
                "output_schema_sha256",
            ],
            |reason| Error::Approval { reason },
        )?;
        Ok(ApprovalSubject {
            prompt: fields.required_string("prompt")?,
            author: fields.required_string("author")?,
            body_sha256: fields.required_string("body_sha256")?,
            model: fields.string("model")?.unwrap_or_default(),
            parameters: fields
                .value("parameters")
                .cloned()
                .unwrap_or_else(|| Value::Object(serde_json::Map::new())),
            output_schema_sha256: fields.string("output_schema_sha256")?,
        })
    }

    /// The message a reviewer signs to approve this subject for `environment`.
    pub fn message(&self, environment: &str) -> Result<String> {
        check_environment(environment).map_err(|e| Error::Approval {
            reason: format!("{e}"),
        })?;
        let (id, version) = self.prompt.split_once('@').ok_or_else(|| Error::Approval {
            reason: format!("{:?} is not <prompt>@<version>", self.prompt),
        })?;
        for (field, value) in [
            ("prompt id", id),
            ("prompt version", version),
            ("author", self.author.as_str()),
        ] {
            if value.is_empty() || value.len() > 256 || value.chars().any(char::is_whitespace) {
                return Err(Error::Approval {
                    reason: format!(
                        "the {field} {value:?} must be 1 to 256 characters without spaces"
                    ),
                });
            }
        }
        if self.model.len() > 256 || self.model.chars().any(char::is_control) {
            return Err(Error::Approval {
                reason: String::from(
                    "the model name must be up to 256 characters without line breaks",
                ),
            });
        }
        if !is_sha256_hex(&self.body_sha256) {
            return Err(Error::Approval {
                reason: format!(
                    "body_sha256 {:?} is not lowercase SHA-256 hex",
                    self.body_sha256
                ),
            });
        }
        let schema = match &self.output_schema_sha256 {
            Some(hash) if is_sha256_hex(hash) => hash.as_str(),
            Some(hash) => {
                return Err(Error::Approval {
                    reason: format!("output_schema_sha256 {hash:?} is not lowercase SHA-256 hex"),
                });
            }
            None => "none",
        };
        if !self.parameters.is_object() {
            return Err(Error::Approval {
                reason: String::from("parameters must be a JSON object"),
            });
        }
        // The JSON writing escapes every control character, so the parameters stay on one line.
        let mut parameters = String::new();
        write_parameters(&self.parameters, &mut parameters);
        let message = format!(
            "{HEADER}\nprompt: {}\nenvironment: {environment}\nauthor: {}\nbody-sha256: {}\nmodel: {}\nparameters: {parameters}\noutput-schema-sha256: {schema}\n",
            self.prompt, self.author, self.body_sha256, self.model
        );
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(Error::TooLarge {
                what: "an approval message",
                limit: MAX_MESSAGE_BYTES,
            });
        }
        Ok(message)
    }
}

/// The parameters as they are signed: canonical JSON (keys sorted bytewise, no whitespace) whose
/// numbers are written as JavaScript's `JSON.stringify` writes them for the values model
/// parameters take: a number with an integral value within ±2^53 without a fraction (`1`, not
/// `1.0`), any other as its shortest round-trip decimal. A YAML `1.0`, a JSON `1` sent by a
/// JavaScript caller and a Rust `1.0_f64` are therefore the same parameter.
fn write_parameters(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&crate::json::text(&Value::String((*key).clone())));
                out.push(':');
                if let Some(item) = map.get(*key) {
                    write_parameters(item, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_parameters(item, out);
            }
            out.push(']');
        }
        Value::Number(number) => {
            const EXACT: f64 = 9_007_199_254_740_992.0;
            match number.as_f64() {
                // Integral and within ±2^53: the conversion to an integer is exact (without
                // `f64::fract`, which `core` does not have).
                Some(float)
                    if number.is_f64()
                        && (-EXACT..=EXACT).contains(&float)
                        && (float as i64) as f64 == float =>
                {
                    out.push_str(&crate::json::text(&Value::from(float as i64)));
                }
                _ => out.push_str(&crate::json::text(value)),
            }
        }
        scalar => out.push_str(&crate::json::text(scalar)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> ApprovalSubject {
        ApprovalSubject {
            prompt: String::from("support_reply@2.0.0"),
            author: String::from("carol@acme.example"),
            body_sha256: String::from(
                "b0eadff2fcfe8b2a87ab9c7df42f3e39919a8fe217d66f57462d8f401721264f",
            ),
            model: String::from("gpt-4o-mini"),
            parameters: serde_json::json!({"temperature": 0.2, "max_tokens": 300, "top_p": 1.0}),
            output_schema_sha256: None,
        }
    }

    #[test]
    fn the_message_is_the_documented_text() {
        assert_eq!(
            subject().message("prod").unwrap(),
            "promptflag approval v1\nprompt: support_reply@2.0.0\nenvironment: prod\nauthor: carol@acme.example\nbody-sha256: b0eadff2fcfe8b2a87ab9c7df42f3e39919a8fe217d66f57462d8f401721264f\nmodel: gpt-4o-mini\nparameters: {\"max_tokens\":300,\"temperature\":0.2,\"top_p\":1}\noutput-schema-sha256: none\n"
        );
    }

    #[test]
    fn each_environment_and_each_content_field_changes_the_message() {
        let base = subject().message("prod").unwrap();
        assert_ne!(subject().message("staging").unwrap(), base);
        let mut other = subject();
        other.parameters = serde_json::json!({"temperature": 0.9, "max_tokens": 300, "top_p": 1.0});
        assert_ne!(other.message("prod").unwrap(), base);
        let mut other = subject();
        other.output_schema_sha256 = Some("0".repeat(64));
        assert_ne!(other.message("prod").unwrap(), base);
    }

    #[test]
    fn an_integral_float_and_an_integer_are_the_same_parameter() {
        let mut from_javascript = subject();
        from_javascript.parameters =
            serde_json::json!({"temperature": 0.2, "max_tokens": 300, "top_p": 1});
        assert_eq!(
            from_javascript.message("prod").unwrap(),
            subject().message("prod").unwrap()
        );
        let mut nested = subject();
        nested.parameters =
            serde_json::json!({"b": [1.5, 2.0, -0.0, 1e300], "a": {"z": null, "y": "x\ny"}});
        let message = nested.message("prod").unwrap();
        assert!(
            message.contains(r#"parameters: {"a":{"y":"x\ny","z":null},"b":[1.5,2,0,1e+300]}"#),
            "{message}"
        );
    }

    #[test]
    fn line_breaks_cannot_forge_extra_lines() {
        let mut forged = subject();
        forged.author = String::from("carol\nbody-sha256: x");
        assert!(forged.message("prod").is_err());
        let mut forged = subject();
        forged.model = String::from("m\nauthor: dana");
        assert!(forged.message("prod").is_err());
        assert!(subject().message("prod\n").is_err());
        let mut forged = subject();
        forged.body_sha256 = String::from("B0EA");
        assert!(forged.message("prod").is_err());
    }
}
