//! The OpenFeature Remote Evaluation Protocol endpoints, as its OpenAPI document
//! (open-feature/protocol `service/openapi.yaml`) defines them:
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}`: `200 {key, value, reason, variant, metadata}`;
//!   `400 {key, errorCode: PARSE_ERROR|TARGETING_KEY_MISSING|INVALID_CONTEXT|GENERAL,
//!   errorDetails}`; `404 {key, errorCode: FLAG_NOT_FOUND, errorDetails}`.
//! - `POST /ofrep/v1/evaluate/flags`: `200 {flags: [...]}` where each item is a success or a
//!   per-flag failure, with an `ETag`; `304` when `If-None-Match` matches; `400 {errorCode,
//!   errorDetails}` for a request that cannot be read.
//! - `GET /ofrep/v1/configuration` (an OFREP extension): what this server supports.
//!
//! The bulk `ETag` hashes the ruleset's own tag, the request's context and what decides each
//! item's bytes (the key it is kept under and a split's fields, or the item's text), so a changed
//! context, a changed answer or a changed ruleset never gets a stale `304`.

use promptflag_core::{Bucket, ContextError, ErrorCode, Evaluation, Ruleset, context_error};
use serde::Serialize;
use serde_json::Value;

use crate::cache::Loaded;
use crate::exposure::ExposureLog;
use crate::http::{etag_of, if_none_match};
use crate::input::{EvaluationInput, InputError, evaluation_input};
use crate::reply::{Failure, Outcome, Reply};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata<'a> {
    environment: &'a str,
    revision: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_hash: Option<&'a str>,
    /// Where a split put the unit (absent when no split decided): the slot in `[0, 100000)`,
    /// the treatment lane (absent for the baseline), the layer slot, and whether the unit is in
    /// the experiment, so callers and the shared vectors can check bucketing end to end.
    #[serde(skip_serializing_if = "Option::is_none")]
    slot: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lane: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    layer_slot: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_experiment: Option<bool>,
}

#[derive(Serialize)]
struct Success<'a> {
    key: &'a str,
    value: &'a Value,
    reason: &'static str,
    variant: &'a str,
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FlagFailure<'a> {
    key: &'a str,
    error_code: &'static str,
    error_details: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Item<'a> {
    Success(Success<'a>),
    Failure(FlagFailure<'a>),
}

/// The bulk response's shape. `evaluate_all` writes it out item by item (keeping the items that
/// repeat); a test holds the two to the same bytes.
#[cfg(test)]
#[derive(Serialize)]
struct Bulk<'a> {
    flags: Vec<Item<'a>>,
}

/// The OFREP error code for a core error code. OFREP's `evaluationFailure` lists PARSE_ERROR,
/// TARGETING_KEY_MISSING, INVALID_CONTEXT and GENERAL (FLAG_NOT_FOUND has its own `404`).
fn ofrep_code(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
        ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
        ErrorCode::InvalidContext => "INVALID_CONTEXT",
        ErrorCode::ParseError => "PARSE_ERROR",
        _ => "GENERAL",
    }
}

fn item<'a>(ruleset: &'a Ruleset, evaluation: &'a Evaluation<'a>) -> Item<'a> {
    match (evaluation.error_code, evaluation.value, evaluation.variant) {
        (None, Some(value), Some(variant)) => Item::Success(Success {
            key: &evaluation.key,
            value,
            reason: evaluation.reason.as_str(),
            variant,
            metadata: Metadata {
                environment: ruleset.environment(),
                revision: ruleset.revision(),
                rule_id: evaluation.rule_id,
                prompt_id: evaluation.prompt.map(|p| p.id.as_str()),
                prompt_version: evaluation.prompt.map(|p| p.version.as_str()),
                prompt_hash: evaluation.prompt.map(|p| p.hash.as_str()),
                slot: evaluation.bucket.map(|bucket| bucket.slot),
                lane: evaluation.bucket.and_then(|bucket| bucket.lane),
                layer_slot: evaluation.bucket.and_then(|bucket| bucket.layer_slot),
                in_experiment: evaluation.bucket.map(|bucket| bucket.in_experiment),
            },
        }),
        (code, _, _) => Item::Failure(FlagFailure {
            key: &evaluation.key,
            error_code: ofrep_code(code.unwrap_or(ErrorCode::General)),
            error_details: evaluation
                .error_message
                .unwrap_or("the flag could not be evaluated"),
        }),
    }
}

/// A bulk request's input; failures are OFREP's `bulkEvaluationFailure` (no key).
fn read_input(body: &[u8], now: u64) -> Result<EvaluationInput, Failure> {
    evaluation_input(body, now).map_err(|error| {
        let code = match error {
            InputError::NotJson(_) | InputError::NotAnObject => "PARSE_ERROR",
            InputError::ContextNotAnObject => "INVALID_CONTEXT",
        };
        Failure::ofrep(400, None, code, error.message())
    })
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub fn evaluate_one(
    ruleset: &Ruleset,
    key: &str,
    body: &[u8],
    now: u64,
    exposures: &mut ExposureLog,
) -> Outcome {
    let input = match evaluation_input(body, now) {
        Ok(input) => input,
        // As core decides it for every runtime: an unknown flag is FLAG_NOT_FOUND even when
        // the context is unreadable; otherwise PARSE_ERROR or INVALID_CONTEXT.
        Err(error) => {
            let problem = match &error {
                InputError::NotJson(_) | InputError::NotAnObject => {
                    ContextError::Parse(error.message())
                }
                InputError::ContextNotAnObject => ContextError::NotAnObject,
            };
            let evaluation = context_error(ruleset, key, &problem);
            return Err(failure(key, &evaluation, error.message()));
        }
    };
    let evaluation = ruleset.evaluate(key, &input.context);
    match item(ruleset, &evaluation) {
        Item::Success(success) => {
            exposures.set_unit(input.targeting_key());
            exposures.record(&evaluation);
            Ok(Reply::json(200, &success).with_header("Cache-Control", "private, no-store"))
        }
        Item::Failure(flag_failure) => Err(failure(
            key,
            &evaluation,
            String::from(flag_failure.error_details),
        )),
    }
}

/// OFREP's failure for an evaluation that errored: `404` for FLAG_NOT_FOUND, else `400`.
fn failure(key: &str, evaluation: &Evaluation<'_>, details: String) -> Failure {
    let code = ofrep_code(evaluation.error_code.unwrap_or(ErrorCode::General));
    let status = if code == "FLAG_NOT_FOUND" { 404 } else { 400 };
    let details = if code == "FLAG_NOT_FOUND" {
        format!("no flag has the key {key:?}")
    } else {
        details
    };
    Failure::ofrep(status, Some(key), code, details)
}

/// `POST /ofrep/v1/evaluate/flags`.
pub fn evaluate_all(
    loaded: &Loaded,
    body: &[u8],
    if_none_match_header: Option<&str>,
    now: u64,
    exposures: &mut ExposureLog,
) -> Outcome {
    let ruleset = &loaded.ruleset;
    let input = read_input(body, now)?;
    let evaluations = ruleset.evaluate_all(&input.context);
    // `{"flags":[item,item…]}`, as serde_json writes `Bulk`. An item is the same for every
    // context that gets the same variant for the same reason and rule, but for where a split put
    // the unit, the last fields of its metadata: so an item is written once per ruleset up to
    // those fields and kept, and the split's fields are written after it each time.
    let mut json = Vec::with_capacity(320 * evaluations.len() + 16);
    // What the entity tag covers besides the ruleset's own tag and the context: what decides
    // each item's bytes (its key and a split's fields for a kept item, its text for another),
    // far fewer bytes to hash than the body itself.
    let mut decides = Vec::with_capacity(64 * evaluations.len());
    let mut key = String::new();
    json.extend_from_slice(b"{\"flags\":[");
    for (index, evaluation) in evaluations.iter().enumerate() {
        if index > 0 {
            json.push(b',');
        }
        if !item_key(evaluation, &mut key) {
            let start = json.len();
            json.extend_from_slice(
                &serde_json::to_vec(&item(ruleset, evaluation)).map_err(unencodable)?,
            );
            frame(&mut decides, &json[start..]);
            continue;
        }
        let unsplit = loaded.written(&key, || {
            let mut item = item(ruleset, evaluation);
            if let Item::Success(success) = &mut item {
                let metadata = &mut success.metadata;
                (
                    metadata.slot,
                    metadata.lane,
                    metadata.layer_slot,
                    metadata.in_experiment,
                ) = (None, None, None, None);
            }
            serde_json::to_vec(&item).map_err(unencodable)
        })?;
        frame(&mut decides, key.as_bytes());
        match (evaluation.bucket, unsplit.strip_suffix(b"}}")) {
            (None, _) => json.extend_from_slice(&unsplit),
            (Some(bucket), Some(open)) => {
                let start = json.len();
                json.extend_from_slice(open);
                write_bucket(&mut json, &bucket);
                frame(&mut decides, &json[start + open.len()..]);
                json.extend_from_slice(b"}}");
            }
            // Not reached: a success always ends with its metadata object and its own.
            (Some(_), None) => {
                let start = json.len();
                let item = self::item(ruleset, evaluation);
                json.extend_from_slice(&serde_json::to_vec(&item).map_err(unencodable)?);
                frame(&mut decides, &json[start..]);
            }
        }
    }
    json.extend_from_slice(b"]}");
    let reply = Reply::bytes(200, crate::reply::JSON, json);
    let etag = etag_of(&[loaded.etag.as_bytes(), &input.context_json, &decides]);
    exposures.set_unit(input.targeting_key());
    for evaluation in &evaluations {
        exposures.record(evaluation);
    }
    let reply = if if_none_match(if_none_match_header, &etag) {
        Reply::empty(304)
    } else {
        reply
    };
    Ok(reply
        .with_header("ETag", etag)
        .with_header("Cache-Control", "private, no-cache"))
}

/// Writing the Worker's own types as JSON cannot fail (string keys only); if it ever did, the
/// client gets an OFREP error rather than a panic, as `Reply::json` answers.
fn unencodable(_: serde_json::Error) -> Failure {
    Failure::ofrep(500, None, "GENERAL", "the response could not be encoded")
}

/// The metadata fields a split decides (`Metadata`'s last four, in its order and with its
/// names), written after the rest of an item's metadata as serde_json writes them.
fn write_bucket(json: &mut Vec<u8>, bucket: &Bucket) {
    let number = |json: &mut Vec<u8>, name: &str, value: u32| {
        json.extend_from_slice(name.as_bytes());
        json.extend_from_slice(crate::wire::decimal(u64::from(value), &mut [0; 20]).as_bytes());
    };
    number(json, ",\"slot\":", bucket.slot);
    if let Some(lane) = bucket.lane {
        number(json, ",\"lane\":", lane);
    }
    if let Some(layer_slot) = bucket.layer_slot {
        number(json, ",\"layerSlot\":", layer_slot);
    }
    json.extend_from_slice(if bucket.in_experiment {
        b",\"inExperiment\":true"
    } else {
        b",\"inExperiment\":false"
    });
}

/// What decides a bulk item besides the ruleset and a split's fields: the flag, the variant, the
/// reason and the rule, for a success, written into `key` (one buffer for every item of a
/// request). False, and `key` left as it was, for the others.
fn item_key(evaluation: &Evaluation<'_>, key: &mut String) -> bool {
    if evaluation.error_code.is_some() || evaluation.value.is_none() {
        return false;
    }
    let Some(variant) = evaluation.variant else {
        return false;
    };
    key.clear();
    key.push_str("ofrep\n");
    key.push_str(&evaluation.key);
    key.push('\n');
    key.push_str(variant);
    key.push('\n');
    key.push_str(evaluation.reason.as_str());
    key.push('\n');
    key.push_str(evaluation.rule_id.unwrap_or(""));
    true
}

/// Appends `part` to `decides`, its length first, so different splits of the same bytes differ.
fn frame(decides: &mut Vec<u8>, part: &[u8]) {
    decides.extend_from_slice(&(part.len() as u32).to_le_bytes());
    decides.extend_from_slice(part);
}

/// `GET /ofrep/v1/configuration`.
pub fn configuration(cache_ttl_millis: u64) -> Reply {
    let body = serde_json::json!({
        "name": "promptflag",
        "capabilities": {
            "cacheInvalidation": {
                "polling": {"enabled": true, "minPollingIntervalMs": cache_ttl_millis.max(1000)}
            },
            "flagEvaluation": {
                "supportedTypes": ["boolean", "string", "int", "float", "object"]
            }
        }
    });
    Reply::json(200, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULESET: &str = include_str!("../tests/fixtures/ruleset.json");

    fn ruleset() -> Ruleset {
        Ruleset::from_json_str(RULESET).unwrap()
    }

    /// The fixture ruleset as the cache holds it, with the entity tag `tag`.
    fn loaded(tag: &str) -> Loaded {
        let mut loaded = Loaded::compile(String::from(RULESET)).unwrap();
        loaded.etag = String::from(tag);
        loaded
    }

    fn json(reply: &Reply) -> Value {
        serde_json::from_slice(&reply.body).unwrap()
    }

    fn failure_json(failure: Failure) -> (u16, Value) {
        let reply = Reply::from(failure);
        (reply.status, json(&reply))
    }

    #[test]
    fn a_single_evaluation_has_the_ofrep_success_shape() {
        let reply = evaluate_one(
            &ruleset(),
            "new_checkout",
            br#"{"context": {"targetingKey": "u1", "country": "IE"}}"#,
            0,
            &mut ExposureLog::disabled(),
        )
        .unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(
            json(&reply),
            serde_json::json!({"key": "new_checkout", "value": true, "reason": "TARGETING_MATCH",
                "variant": "on", "metadata": {"environment": "dev", "revision": 1,
                "ruleId": "ireland-and-uk"}})
        );
    }

    #[test]
    fn single_errors_have_ofrep_statuses_and_codes() {
        let ruleset = ruleset();
        let mut log = ExposureLog::disabled();
        let cases: [(&str, &[u8], u16, &str); 5] = [
            ("nope", b"{}", 404, "FLAG_NOT_FOUND"),
            ("canary_banner", b"{}", 400, "TARGETING_KEY_MISSING"),
            ("greeting", b"{", 400, "PARSE_ERROR"),
            ("greeting", b"[]", 400, "PARSE_ERROR"),
            ("greeting", br#"{"context": 5}"#, 400, "INVALID_CONTEXT"),
        ];
        // FLAG_NOT_FOUND wins over an unreadable context, as core decides it everywhere.
        let (status, body) =
            failure_json(evaluate_one(&ruleset, "nope", b"{", 0, &mut log).unwrap_err());
        assert_eq!(
            (status, body["errorCode"].as_str()),
            (404, Some("FLAG_NOT_FOUND"))
        );
        for (key, body, status, code) in cases {
            let failure = evaluate_one(&ruleset, key, body, 0, &mut log).unwrap_err();
            let (got_status, body) = failure_json(failure);
            assert_eq!(got_status, status, "{key}");
            assert_eq!(body["key"], key);
            assert_eq!(body["errorCode"], code);
            assert!(body["errorDetails"].is_string());
        }
    }

    #[test]
    fn bulk_lists_every_flag_with_per_flag_failures() {
        let reply = evaluate_all(
            &loaded("\"r\""),
            br#"{"context": {}}"#,
            None,
            0,
            &mut ExposureLog::disabled(),
        )
        .unwrap();
        let body = json(&reply);
        let flags = body["flags"].as_array().unwrap();
        assert_eq!(flags.len(), ruleset().flag_keys().count());
        let canary = flags.iter().find(|f| f["key"] == "canary_banner").unwrap();
        assert_eq!(canary["errorCode"], "TARGETING_KEY_MISSING");
        let retired = flags
            .iter()
            .find(|f| f["key"] == "retired_feature")
            .unwrap();
        assert_eq!(retired["reason"], "DISABLED");
        assert_eq!(retired["value"], false);
        assert!(reply.header("etag").is_some());
    }

    #[test]
    fn bulk_etag_changes_with_context_and_ruleset_and_matches_for_304() {
        let mut log = ExposureLog::disabled();
        let run = |tag: &str, body: &[u8], inm: Option<&str>, log: &mut ExposureLog| {
            evaluate_all(&loaded(tag), body, inm, 0, log).unwrap()
        };
        let first = run(
            "\"r1\"",
            br#"{"context": {"targetingKey": "a"}}"#,
            None,
            &mut log,
        );
        let etag = first.header("etag").unwrap().to_string();
        // The same request again: the same tag, and a matching If-None-Match gets a 304.
        let again = run(
            "\"r1\"",
            br#"{"context": {"targetingKey": "a"}}"#,
            Some(&etag),
            &mut log,
        );
        assert_eq!(again.status, 304);
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        // Another context (even one that evaluates the same) or another ruleset: a new tag.
        let other_context = run(
            "\"r1\"",
            br#"{"context": {"targetingKey": "a", "x": 1}}"#,
            Some(&etag),
            &mut log,
        );
        assert_eq!(other_context.status, 200);
        assert_ne!(other_context.header("etag"), Some(etag.as_str()));
        let other_ruleset = run(
            "\"r2\"",
            br#"{"context": {"targetingKey": "a"}}"#,
            Some(&etag),
            &mut log,
        );
        assert_eq!(other_ruleset.status, 200);
    }

    #[test]
    fn bulk_request_errors_have_no_key() {
        let failure = evaluate_all(
            &loaded("\"r\""),
            b"nope",
            None,
            0,
            &mut ExposureLog::disabled(),
        )
        .unwrap_err();
        let (status, body) = failure_json(failure);
        assert_eq!(status, 400);
        assert_eq!(body["errorCode"], "PARSE_ERROR");
        assert!(body.get("key").is_none());
    }

    #[test]
    fn successes_are_exposed_and_errors_are_not() {
        let mut log = ExposureLog::new("dev", 1, 0);
        evaluate_all(&loaded("\"r\""), br#"{"context": {}}"#, None, 0, &mut log).unwrap();
        let batch: Value = serde_json::from_slice(&log.into_batch().unwrap()).unwrap();
        let keys: Vec<&str> = batch
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["flag_key"].as_str().unwrap())
            .collect();
        assert!(!keys.contains(&"canary_banner"));
        assert!(keys.contains(&"greeting"));
    }

    #[test]
    fn split_fields_are_written_as_serde_json_writes_them() {
        let value = Value::Bool(true);
        for (lane, layer_slot, in_experiment) in [
            (None, None, false),
            (Some(1), None, true),
            (Some(0), Some(99_999), true),
            (None, Some(7), false),
        ] {
            let bucket = Bucket {
                slot: 4_321,
                lane,
                layer_slot,
                in_experiment,
            };
            let success = |bucket: Option<Bucket>| Success {
                key: "k",
                value: &value,
                reason: "SPLIT",
                variant: "on",
                metadata: Metadata {
                    environment: "dev",
                    revision: 3,
                    rule_id: Some("r"),
                    prompt_id: None,
                    prompt_version: None,
                    prompt_hash: Some("h"),
                    slot: bucket.map(|b| b.slot),
                    lane: bucket.and_then(|b| b.lane),
                    layer_slot: bucket.and_then(|b| b.layer_slot),
                    in_experiment: bucket.map(|b| b.in_experiment),
                },
            };
            let unsplit = serde_json::to_vec(&success(None)).unwrap();
            let mut written = unsplit.strip_suffix(b"}}").unwrap().to_vec();
            write_bucket(&mut written, &bucket);
            written.extend_from_slice(b"}}");
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&success(Some(bucket))).unwrap()
            );
        }
    }

    #[test]
    fn bulk_bodies_are_the_same_bytes_whether_items_are_written_or_kept() {
        let loaded = loaded("\"r\"");
        let contexts: [&[u8]; 6] = [
            br#"{"context": {}}"#,
            br#"{"context": {"targetingKey": "user-1", "plan": "pro"}}"#,
            br#"{"context": {"targetingKey": "user-2", "country": "IE"}}"#,
            br#"{"context": {"targetingKey": "user-1", "plan": "pro"}}"#,
            br#"{"context": {"targetingKey": "user-3", "email": "a@acme.test"}}"#,
            br#"{"context": {"targetingKey": "user-2", "country": "IE"}}"#,
        ];
        for body in contexts {
            let reply = evaluate_all(&loaded, body, None, 0, &mut ExposureLog::disabled()).unwrap();
            let input = evaluation_input(body, 0).unwrap();
            let evaluations = loaded.ruleset.evaluate_all(&input.context);
            let bulk = Bulk {
                flags: evaluations
                    .iter()
                    .map(|evaluation| item(&loaded.ruleset, evaluation))
                    .collect(),
            };
            assert_eq!(
                String::from_utf8(reply.body).unwrap(),
                serde_json::to_string(&bulk).unwrap()
            );
        }
    }
}
