//! A prompt version's identity: its body and its model configuration (model, parameters, output
//! schema), named by one content id. Bodies stay content-addressed by the SHA-256 of their bytes
//! (`prompt:<sha256>` in KV); the ruleset names each version by its content id, so the same body
//! on two models is two versions that never collide, and a change of model, a parameter or the
//! output schema is a new version exactly as a change of body is. Authoring computes it, lint
//! reports two versions with the same one, and an approval signs it.

use alloc::string::String;

use serde_json::{Map, Value};

use crate::digest::{canonical_json, sha256_hex};

/// Everything that decides what a prompt version makes a model do.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptIdentity<'a> {
    /// The SHA-256 of the body bytes (64 lowercase hex digits).
    pub body_sha256: &'a str,
    /// The model name (empty when the version names none).
    pub model: &'a str,
    /// The model parameters, a JSON object (empty when none).
    pub parameters: &'a Map<String, Value>,
    /// The output JSON schema, when the version declares one.
    pub output_schema: Option<&'a Value>,
}

impl PromptIdentity<'_> {
    /// The canonical text the content id hashes: canonical JSON of
    /// `{"body", "model", "output_schema", "parameters"}` (`output_schema` is `null` when absent).
    pub fn canonical_text(&self) -> String {
        let mut object = Map::new();
        object.insert(
            String::from("body"),
            Value::String(String::from(self.body_sha256)),
        );
        object.insert(
            String::from("model"),
            Value::String(String::from(self.model)),
        );
        object.insert(
            String::from("parameters"),
            Value::Object(self.parameters.clone()),
        );
        object.insert(
            String::from("output_schema"),
            self.output_schema.cloned().unwrap_or(Value::Null),
        );
        canonical_json(&Value::Object(object))
    }

    /// The content id: the SHA-256 hex of [`PromptIdentity::canonical_text`].
    pub fn content_id(&self) -> String {
        sha256_hex(self.canonical_text().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameters(json: &str) -> Map<String, Value> {
        match serde_json::from_str(json).unwrap() {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn the_canonical_text_is_pinned() {
        let params = parameters(r#"{"temperature":0.2,"max_tokens":400}"#);
        let identity = PromptIdentity {
            body_sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            model: "gpt-4o-mini",
            parameters: &params,
            output_schema: None,
        };
        assert_eq!(
            identity.canonical_text(),
            r#"{"body":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","model":"gpt-4o-mini","output_schema":null,"parameters":{"max_tokens":400,"temperature":0.2}}"#
        );
        assert_eq!(
            identity.content_id(),
            sha256_hex(identity.canonical_text().as_bytes())
        );
    }

    #[test]
    fn each_part_of_the_configuration_changes_the_id() {
        let body = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let empty = Map::new();
        let warm = parameters(r#"{"temperature":0.9}"#);
        let schema: Value = serde_json::from_str(r#"{"type":"object"}"#).unwrap();
        let base = PromptIdentity {
            body_sha256: body,
            model: "gpt-4o-mini",
            parameters: &empty,
            output_schema: None,
        };
        let variants = [
            PromptIdentity {
                model: "claude-sonnet-4",
                ..base.clone()
            },
            PromptIdentity {
                parameters: &warm,
                ..base.clone()
            },
            PromptIdentity {
                output_schema: Some(&schema),
                ..base.clone()
            },
            PromptIdentity {
                body_sha256: "0000000000000000000000000000000000000000000000000000000000000000",
                ..base.clone()
            },
        ];
        let mut ids: Vec<String> = variants.iter().map(PromptIdentity::content_id).collect();
        ids.push(base.content_id());
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 5, "every change gives a new id");
    }

    #[test]
    fn parameter_order_does_not_change_the_id() {
        let body = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let one = parameters(r#"{"a":1,"b":2}"#);
        let two = parameters(r#"{"b":2,"a":1}"#);
        let id = |params| {
            PromptIdentity {
                body_sha256: body,
                model: "m",
                parameters: params,
                output_schema: None,
            }
            .content_id()
        };
        assert_eq!(id(&one), id(&two));
    }
}
