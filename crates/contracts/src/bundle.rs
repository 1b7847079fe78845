//! The fallback bundle: what `promptflag build` writes per environment (`fallback/<env>.json`)
//! so that a cold start with the edge down serves the last built baseline. It holds the ruleset
//! as the exact JSON text that was built, that text's SHA-256, and every body the ruleset names,
//! by the SHA-256 of its bytes. [`Bundle::from_json`] verifies all of it: a bundle that does not
//! verify is refused whole, never served in part. The Worker's compiled-in fallback, the native
//! client and the npm client read this one format.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;

use promptflag_core::model::RawRuleset;

use crate::digest::{is_sha256_hex, sha256_hex};
use crate::error::Error;

/// The bundle format version.
pub const BUNDLE_SCHEMA: u32 = 1;

/// A fallback bundle.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// The format version ([`BUNDLE_SCHEMA`]).
    pub schema: u32,
    /// The environment the ruleset serves.
    pub environment: String,
    /// The git commit it was built from.
    pub source: String,
    /// The ruleset, as the exact JSON text that was built.
    pub ruleset: String,
    /// The SHA-256 of `ruleset`'s bytes.
    pub ruleset_sha256: String,
    /// Every body the ruleset names, by the SHA-256 of its bytes.
    pub prompts: BTreeMap<String, String>,
}

impl Bundle {
    /// Packs a ruleset's JSON text and its bodies.
    pub fn new(
        environment: &str,
        source: &str,
        ruleset: String,
        prompts: BTreeMap<String, String>,
    ) -> Bundle {
        Bundle {
            schema: BUNDLE_SCHEMA,
            environment: String::from(environment),
            source: String::from(source),
            ruleset_sha256: sha256_hex(ruleset.as_bytes()),
            ruleset,
            prompts,
        }
    }

    /// Reads and verifies a bundle.
    pub fn from_json(bytes: &[u8]) -> Result<Bundle, Error> {
        let bundle: Bundle = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("not a fallback bundle: {e}")))?;
        bundle.verify()?;
        Ok(bundle)
    }

    /// Checks the format version, the ruleset's hash, every body's hash, that every body the
    /// ruleset names is there, and that the ruleset validates and serves the bundle's
    /// environment.
    pub fn verify(&self) -> Result<(), Error> {
        if self.schema != BUNDLE_SCHEMA {
            return Err(invalid(format!(
                "schema {} is not {BUNDLE_SCHEMA}",
                self.schema
            )));
        }
        let actual = sha256_hex(self.ruleset.as_bytes());
        if actual != self.ruleset_sha256 {
            return Err(invalid(format!(
                "the ruleset hashes to {actual}, not {}",
                self.ruleset_sha256
            )));
        }
        for (hash, body) in &self.prompts {
            if !is_sha256_hex(hash) || sha256_hex(body.as_bytes()) != *hash {
                return Err(invalid(format!(
                    "the body named {hash} does not hash to its name"
                )));
            }
        }
        let raw: RawRuleset = serde_json::from_str(&self.ruleset)
            .map_err(|e| invalid(format!("the ruleset is not a ruleset: {e}")))?;
        promptflag_core::compile(&raw)
            .map_err(|e| invalid(format!("the ruleset does not validate: {e}")))?;
        if raw.environment != self.environment {
            return Err(invalid(format!(
                "the ruleset serves {:?}, the bundle says {:?}",
                raw.environment, self.environment
            )));
        }
        for (key, prompt) in raw.prompts.iter() {
            let hash = prompt.body_hash(key);
            if !self.prompts.contains_key(hash) {
                return Err(invalid(format!(
                    "the ruleset names the body {hash}, which the bundle lacks"
                )));
            }
        }
        Ok(())
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidBundle { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Bundle {
        let body = String::from("Answer politely.\n");
        let hash = sha256_hex(body.as_bytes());
        let ruleset = format!(
            r#"{{"schema":1,"environment":"prod","revision":0,"prompts":{{"{hash}":{{"id":"s","version":"1.0.0"}}}},"flags":{{"p":{{"kind":"prompt","baseline":"a","variants":{{"a":{{"prompt":"{hash}"}}}}}}}}}}"#
        );
        let mut prompts = BTreeMap::new();
        prompts.insert(hash, body);
        Bundle::new("prod", "abc", ruleset, prompts)
    }

    #[test]
    fn a_built_bundle_verifies_and_round_trips() {
        let bundle = sample();
        let bytes = serde_json::to_vec(&bundle).unwrap();
        assert_eq!(Bundle::from_json(&bytes).unwrap(), bundle);
    }

    #[test]
    fn a_wrong_hash_or_a_missing_body_is_refused() {
        let mut tampered = sample();
        tampered.ruleset = tampered.ruleset.replace("\"a\"", "\"b\"");
        let mut wrong_body = sample();
        for body in wrong_body.prompts.values_mut() {
            body.push('!');
        }
        let mut missing = sample();
        missing.prompts.clear();
        for (bundle, expected) in [
            (tampered, "the ruleset hashes to"),
            (wrong_body, "does not hash to its name"),
            (missing, "which the bundle lacks"),
        ] {
            let bytes = serde_json::to_vec(&bundle).unwrap();
            let error = Bundle::from_json(&bytes).unwrap_err();
            assert_eq!(error.code(), "invalid_bundle");
            assert!(error.to_string().contains(expected), "{error}");
        }
    }
}
