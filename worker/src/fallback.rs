//! The fallback compiled into the Worker: the fallback bundle of a build (`promptflag build`'s
//! `fallback/<env>.json`: a ruleset and every body it names), served when KV has never yielded a
//! valid ruleset (a fresh deployment, an empty namespace, KV down at cold start).
//!
//! `cargo xtask build-worker` writes `worker/fallback/bundle.json` from the prompt repository it
//! is given (`PROMPTFLAG_FALLBACK_REPO`, default `examples/prompts-repo`) and environment
//! (`PROMPTFLAG_FALLBACK_ENV`, default `prod`), so the Worker falls back to the last built
//! baseline. The bundle is verified by hash when an isolate first needs it (the contracts'
//! `bundle`); one that does not verify is not served at all.

use serde_json::{Map, Value};

use promptflag_contracts::digest::sha256_hex;

/// The bundle's JSON.
pub const BUNDLE_JSON: &str = include_str!("../fallback/bundle.json");

/// The bundle's ruleset text and bodies, when every hash matches: the ruleset's
/// (`ruleset_sha256`) and each body's (its name). Read as a `Value`, whose parser the Worker
/// links anyway, rather than through the contracts' `Bundle` type, whose own deserializer would
/// add to the Wasm; the native tests hold this file to `Bundle::from_json` as well.
fn verified() -> Option<(String, Map<String, Value>)> {
    verify(BUNDLE_JSON)
}

fn verify(text: &str) -> Option<(String, Map<String, Value>)> {
    let Value::Object(mut bundle) = serde_json::from_str(text).ok()? else {
        return None;
    };
    let Some(Value::String(ruleset)) = bundle.remove("ruleset") else {
        return None;
    };
    let Some(Value::Object(prompts)) = bundle.remove("prompts") else {
        return None;
    };
    let hash_ok = bundle.get("ruleset_sha256").and_then(Value::as_str)
        == Some(sha256_hex(ruleset.as_bytes()).as_str());
    let bodies_ok = prompts.iter().all(|(hash, body)| {
        body.as_str()
            .is_some_and(|body| sha256_hex(body.as_bytes()) == *hash)
    });
    (hash_ok && bodies_ok).then_some((ruleset, prompts))
}

/// The fallback ruleset's JSON text (empty if the bundle does not verify, which then fails to
/// compile and leaves the Worker without a fallback rather than with a wrong one).
pub fn ruleset_json() -> String {
    verified().map(|(ruleset, _)| ruleset).unwrap_or_default()
}

/// The fallback prompt bodies by hash, each a JSON string (empty if the bundle does not verify).
pub fn prompts() -> Map<String, Value> {
    verified().map(|(_, prompts)| prompts).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptflag_contracts::bundle::Bundle;
    use promptflag_core::Ruleset;

    #[test]
    fn the_compiled_in_bundle_verifies_and_names_only_bodies_it_holds() {
        let bundle = Bundle::from_json(BUNDLE_JSON.as_bytes())
            .unwrap_or_else(|error| panic!("worker/fallback/bundle.json: {error}"));
        let ruleset = Ruleset::from_json_str(&ruleset_json()).unwrap();
        assert!(ruleset.flag_keys().count() > 0);
        let bodies = prompts();
        for prompt in ruleset.prompts() {
            assert_eq!(
                bodies[&prompt.hash].as_str(),
                bundle.prompts.get(&prompt.hash).map(String::as_str)
            );
        }
    }

    #[test]
    fn a_bundle_with_a_wrong_hash_gives_no_fallback() {
        assert!(verify(BUNDLE_JSON).is_some());
        let mut wrong_ruleset: Value = serde_json::from_str(BUNDLE_JSON).unwrap();
        wrong_ruleset["ruleset_sha256"] = Value::String("0".repeat(64));
        let mut wrong_body: Value = serde_json::from_str(BUNDLE_JSON).unwrap();
        for body in wrong_body["prompts"].as_object_mut().unwrap().values_mut() {
            *body = Value::String(format!("{}!", body.as_str().unwrap()));
        }
        for tampered in [wrong_ruleset, wrong_body] {
            let text = serde_json::to_string(&tampered).unwrap();
            assert!(verify(&text).is_none());
            assert!(Bundle::from_json(text.as_bytes()).is_err());
        }
    }
}
