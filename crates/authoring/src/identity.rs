//! The content id of a prompt version: what an eval result, and anything else that must name
//! exactly what a model is given, is keyed by.
//!
//! A version's body hash alone does not say what runs: the same body on another model, or at
//! another temperature, answers differently. The content id is the SHA-256 of the canonical JSON
//! `{"body_sha256": …, "model": {"name": …, "parameters": {…}}}`, with the family's parameters
//! merged under the version's, so changing either the body or the model configuration gives a
//! new id, while reordering or reformatting the metadata does not.

use serde_json::{Map, Value, json};

use crate::repo::PromptVersion;
use promptflag_contracts::digest::{canonical_json, sha256_hex};

/// The content id of a body (its SHA-256) on a model with parameters.
pub fn content_id(body_sha256: &str, model: &str, parameters: &Map<String, Value>) -> String {
    let value = json!({
        "body_sha256": body_sha256,
        "model": {"name": model, "parameters": parameters},
    });
    sha256_hex(canonical_json(&value).as_bytes())
}

impl PromptVersion {
    /// The version's content id; `None` when its body or model is missing (lint reports those).
    pub fn content_id(&self) -> Option<String> {
        let body = self.sha256.as_ref()?;
        let model = self.model.as_ref()?;
        let empty = Map::new();
        let parameters = self.parameters.as_ref().map_or(&empty, |p| &p.value);
        Some(content_id(body, &model.value, parameters))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_changes_with_body_model_or_parameters_and_not_with_key_order() {
        let parameters = |text: &str| serde_json::from_str::<Map<String, Value>>(text).unwrap();
        let base = content_id(
            "b1",
            "m",
            &parameters(r#"{"temperature": 0.2, "top_p": 1}"#),
        );
        assert_eq!(
            base,
            content_id(
                "b1",
                "m",
                &parameters(r#"{"top_p": 1, "temperature": 0.2}"#)
            )
        );
        assert_ne!(
            base,
            content_id(
                "b2",
                "m",
                &parameters(r#"{"temperature": 0.2, "top_p": 1}"#)
            )
        );
        assert_ne!(
            base,
            content_id(
                "b1",
                "n",
                &parameters(r#"{"temperature": 0.2, "top_p": 1}"#)
            )
        );
        assert_ne!(
            base,
            content_id(
                "b1",
                "m",
                &parameters(r#"{"temperature": 0.3, "top_p": 1}"#)
            )
        );
        assert_eq!(base.len(), 64);
    }
}
