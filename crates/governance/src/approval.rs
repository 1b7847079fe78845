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
//! parameters: {"max_tokens":300,"temperature":0.2,"top_p":1.0}
//! output-schema-sha256: none
//! ```

use alloc::format;
use alloc::string::String;

use promptflag_contracts::digest::{canonical_json, is_sha256_hex};
use promptflag_contracts::keys::environment as check_environment;
use serde_json::Value;

use crate::error::{Error, Result};

/// The first line of every approval message (it also keeps approvals apart from registry
/// changes, which are JSON).
pub const HEADER: &str = "promptflag approval v1";

/// The longest approval message made (the parameters are the only open-ended part).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// What one approval covers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSubject {
    /// `<prompt id>@<version>`, as the ruleset's `prompts` entry names it.
    pub prompt: String,
    /// The registry name of the version's author.
    pub author: String,
    /// The SHA-256 of the body bytes (lowercase hex).
    pub body_sha256: String,
    /// The model name (empty when none is set).
    #[serde(default)]
    pub model: String,
    /// The model parameters, a JSON object (written as canonical JSON).
    #[serde(default = "empty_object")]
    pub parameters: Value,
    /// The SHA-256 of the output schema's canonical JSON, when the version has one.
    #[serde(default)]
    pub output_schema_sha256: Option<String>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl ApprovalSubject {
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
        // Canonical JSON escapes every control character, so the parameters stay on one line.
        let parameters = canonical_json(&self.parameters);
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
            "promptflag approval v1\nprompt: support_reply@2.0.0\nenvironment: prod\nauthor: carol@acme.example\nbody-sha256: b0eadff2fcfe8b2a87ab9c7df42f3e39919a8fe217d66f57462d8f401721264f\nmodel: gpt-4o-mini\nparameters: {\"max_tokens\":300,\"temperature\":0.2,\"top_p\":1.0}\noutput-schema-sha256: none\n"
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
