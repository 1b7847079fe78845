//! `POST /v1/resolve/{flag}`: evaluates a prompt flag and returns everything an edge function
//! needs to call the model in one round trip: the variant and why, the prompt's id, version,
//! content id, body hash, model, parameters and output schema, its body inline, and the
//! revision that decided.

use promptflag_core::{ErrorCode, Evaluation, PromptMeta, Ruleset};
use serde::Serialize;
use serde_json::Value;

use crate::exposure::ExposureLog;
use crate::input::{InputError, evaluation_input};
use crate::reply::{Failure, Reply};

/// A prompt flag's evaluation, before its body is fetched.
pub struct Decision<'r> {
    pub evaluation: Evaluation<'r>,
    pub prompt: &'r PromptMeta,
}

/// Evaluates `flag` for the request body; every failure is a 4xx.
pub fn decide<'r>(
    ruleset: &'r Ruleset,
    flag: &str,
    body: &[u8],
    now: u64,
    exposures: &mut ExposureLog,
) -> Result<Decision<'r>, Failure> {
    let input = evaluation_input(body, now).map_err(|error| match error {
        InputError::NotJson(message) => Failure::bad_json(message),
        InputError::NotAnObject => Failure::bad_request(error.message()),
        InputError::ContextNotAnObject => Failure::api(400, "invalid_context", error.message()),
    })?;
    let evaluation = ruleset.resolve_prompt(flag, &input.context);
    if let Some(code) = evaluation.error_code {
        let message = evaluation
            .error_message
            .unwrap_or("the flag could not be evaluated");
        return Err(match code {
            ErrorCode::FlagNotFound => Failure::api(
                404,
                "flag_not_found",
                format!("no flag has the key {flag:?}"),
            ),
            ErrorCode::TypeMismatch => Failure::api(
                400,
                "not_a_prompt_flag",
                format!("{flag:?} is not a prompt flag; evaluate it through OFREP"),
            ),
            ErrorCode::TargetingKeyMissing => Failure::api(400, "targeting_key_missing", message),
            ErrorCode::InvalidContext => Failure::api(400, "invalid_context", message),
            _ => Failure::api(400, "evaluation_error", message),
        });
    }
    let Some(prompt) = evaluation.prompt else {
        return Err(Failure::api(
            400,
            "not_a_prompt_flag",
            format!("{flag:?} served no prompt"),
        ));
    };
    exposures.set_unit(input.targeting_key());
    exposures.record(&evaluation);
    Ok(Decision { evaluation, prompt })
}

#[derive(Serialize)]
struct Resolution<'a> {
    flag: &'a str,
    variant: &'a str,
    reason: &'static str,
    environment: &'a str,
    revision: u64,
    prompt: Prompt<'a>,
}

#[derive(Serialize)]
struct Prompt<'a> {
    id: &'a str,
    version: &'a str,
    content_id: &'a str,
    hash: &'a str,
    model: &'a str,
    parameters: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_schema: Option<&'a Value>,
    body: &'a str,
}

/// What decides a resolution's body besides the ruleset: the flag, the variant and the reason
/// (the variant decides the prompt, whose body its hash names).
pub fn key(decision: &Decision<'_>) -> String {
    let evaluation = &decision.evaluation;
    let variant = evaluation.variant.unwrap_or_default();
    let reason = evaluation.reason.as_str();
    let mut key = String::with_capacity(evaluation.key.len() + variant.len() + reason.len() + 10);
    key.push_str("resolve\n");
    key.push_str(&evaluation.key);
    key.push('\n');
    key.push_str(variant);
    key.push('\n');
    key.push_str(reason);
    key
}

/// The `200` body, once the prompt body is at hand.
pub fn body(ruleset: &Ruleset, decision: &Decision<'_>, body: &str) -> Vec<u8> {
    let resolution = Resolution {
        flag: &decision.evaluation.key,
        variant: decision.evaluation.variant.unwrap_or_default(),
        reason: decision.evaluation.reason.as_str(),
        environment: ruleset.environment(),
        revision: ruleset.revision(),
        prompt: Prompt {
            id: &decision.prompt.id,
            version: &decision.prompt.version,
            content_id: &decision.prompt.content_id,
            hash: &decision.prompt.hash,
            model: &decision.prompt.model,
            parameters: &decision.prompt.parameters,
            output_schema: decision.prompt.output_schema.as_ref(),
            body,
        },
    };
    Reply::json(200, &resolution).body
}

/// The `200` reply with its body.
pub fn reply(body: Vec<u8>) -> Reply {
    Reply::bytes(200, crate::reply::JSON, body).with_header("Cache-Control", "private, no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULESET: &str = include_str!("../tests/fixtures/ruleset.json");

    #[test]
    fn resolves_a_prompt_with_its_metadata_and_body() {
        let ruleset = Ruleset::from_json_str(RULESET).unwrap();
        let decision = decide(
            &ruleset,
            "support_prompt",
            br#"{"context": {"targetingKey": "user-internal-1"}}"#,
            0,
            &mut ExposureLog::disabled(),
        )
        .unwrap();
        let reply = reply(body(&ruleset, &decision, "BODY"));
        assert_eq!(reply.header("Cache-Control"), Some("private, no-store"));
        assert_eq!(
            key(&decision),
            "resolve\nsupport_prompt\nconcise\nTARGETING_MATCH"
        );
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["flag"], "support_prompt");
        assert_eq!(body["variant"], "concise");
        assert_eq!(body["reason"], "TARGETING_MATCH");
        assert_eq!(body["revision"], 1);
        assert_eq!(body["prompt"]["version"], "1.1.0");
        assert_eq!(body["prompt"]["body"], "BODY");
        assert_eq!(body["prompt"]["parameters"]["max_tokens"], 200);
    }

    #[test]
    fn failures_are_client_errors() {
        let ruleset = Ruleset::from_json_str(RULESET).unwrap();
        let cases: [(&str, &[u8], u16, &str); 5] = [
            ("nope", b"{}", 404, "flag_not_found"),
            ("greeting", b"{}", 400, "not_a_prompt_flag"),
            ("support_prompt", b"{}", 400, "targeting_key_missing"),
            ("support_prompt", b"{x", 400, "bad_json"),
            (
                "support_prompt",
                br#"{"context": []}"#,
                400,
                "invalid_context",
            ),
        ];
        for (flag, body, status, code) in cases {
            let failure = decide(&ruleset, flag, body, 0, &mut ExposureLog::disabled())
                .err()
                .unwrap();
            let reply = Reply::from(failure);
            let json: Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!(
                (reply.status, json["error"]["code"].as_str()),
                (status, Some(code))
            );
        }
    }
}
