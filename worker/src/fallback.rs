//! The fallback compiled into the Worker: a ruleset and its prompt bodies that serve when KV has
//! never yielded a valid ruleset (a fresh deployment, an empty namespace, KV down at cold start).
//!
//! Replace `worker/fallback/ruleset.json` and `worker/fallback/prompts.json` (`{sha256: body}`)
//! before deploying; the tests check that the ruleset validates and that every body it names is
//! present and hashes to its name.

use serde_json::{Map, Value};

/// The fallback ruleset's JSON.
pub const RULESET_JSON: &str = include_str!("../fallback/ruleset.json");

/// The fallback prompt bodies, `{sha256: body}`.
pub const PROMPTS_JSON: &str = include_str!("../fallback/prompts.json");

/// The fallback prompt bodies by hash, each a JSON string (empty if the embedded JSON were not
/// an object of strings, which the tests rule out). Read as a `Value`, whose parser the Worker
/// links anyway, rather than into a map type of its own, which would link another.
pub fn prompts() -> Map<String, Value> {
    match serde_json::from_slice(PROMPTS_JSON.as_bytes()) {
        Ok(Value::Object(bodies)) if bodies.values().all(Value::is_string) => bodies,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptflag_core::Ruleset;
    use sha2::{Digest, Sha256};
    use std::collections::BTreeMap;

    #[test]
    fn fallback_ruleset_validates() {
        let ruleset = Ruleset::from_json_str(RULESET_JSON)
            .unwrap_or_else(|error| panic!("worker/fallback/ruleset.json: {error}"));
        assert!(ruleset.flag_keys().count() > 0);
    }

    #[test]
    fn fallback_bodies_exist_and_hash_to_their_names() {
        let ruleset = Ruleset::from_json_str(RULESET_JSON).unwrap();
        let bodies: BTreeMap<String, String> = serde_json::from_str(PROMPTS_JSON).unwrap();
        for (hash, body) in &bodies {
            let digest = crate::http::hex(&Sha256::digest(body.as_bytes()));
            assert_eq!(
                &digest, hash,
                "worker/fallback/prompts.json: body named {hash}"
            );
        }
        for prompt in ruleset.prompts() {
            assert!(
                bodies.contains_key(&prompt.hash),
                "the fallback ruleset names {} but worker/fallback/prompts.json lacks it",
                prompt.hash
            );
        }
        let read: BTreeMap<String, String> = prompts()
            .into_iter()
            .map(|(hash, body)| (hash, String::from(body.as_str().unwrap())))
            .collect();
        assert_eq!(read, bodies);
    }
}
