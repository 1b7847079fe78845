//! Runs the shared test vectors of `tests/vectors/` (see its README for the format), the same
//! files the wasm32 and npm runners walk.
//!
//! The files are embedded with `include_str!`, so this runs unchanged on wasm32 under
//! `wasm-bindgen-test-runner`, where there is no filesystem. Derived values (bucket hashes and
//! slots, and the `slot` / `lane` / `layerSlot` / `inExperiment` expectations of cases) are
//! re-blessed from the engine with `UPDATE_EXPECT=1 cargo test -p promptflag-core --test vectors`;
//! they are never edited by hand.

// Test code states its assumptions with unwrap and expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use promptflag_core::bucket::{bucket_hash, slot, slot_of_hash};
use promptflag_core::literal::parse_rfc3339_millis;
use promptflag_core::{
    Context, Evaluation, ExpectedType, RawRuleset, Ruleset, compile, context_error,
};
use serde_json::{Map, Value};

mod common;
use common::{BUCKETS, FILES, INDEX};

/// The issue asks for at least this many evaluation cases across all files.
const MINIMUM_CASES: usize = 150;
/// And about this many golden `(seed, unit)` pairs.
const MINIMUM_BUCKETS: usize = 200;

/// Expectations derived from the engine, which `UPDATE_EXPECT=1` rewrites in place.
const DERIVED_KEYS: [&str; 4] = ["slot", "lane", "layerSlot", "inExperiment"];

#[cfg(not(target_arch = "wasm32"))]
fn blessing() -> bool {
    std::env::var_os("UPDATE_EXPECT").is_some_and(|value| value == "1")
}

#[cfg(target_arch = "wasm32")]
fn blessing() -> bool {
    false
}

#[cfg(not(target_arch = "wasm32"))]
fn write_vector_file(name: &str, text: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors")
        .join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    std::eprintln!("UPDATE_EXPECT: rewrote tests/vectors/{name}");
}

#[cfg(target_arch = "wasm32")]
fn write_vector_file(_name: &str, _text: &str) {
    unreachable!("blessing is native-only");
}

fn parse(name: &str, text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

/// The files of `index.json` that hold evaluation cases (the others hold `rulesets`).
fn evaluation_files() -> impl Iterator<Item = (&'static str, &'static str)> {
    FILES
        .iter()
        .copied()
        .filter(|(name, text)| parse(name, text).get("cases").is_some())
}

fn validation_files() -> impl Iterator<Item = (&'static str, &'static str)> {
    FILES
        .iter()
        .copied()
        .filter(|(name, text)| parse(name, text).get("rulesets").is_some())
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_embedded_files_are_exactly_the_index() {
    let index: Vec<String> =
        serde_json::from_str(INDEX).expect("index.json is a JSON array of file names");
    let embedded: Vec<&str> = FILES.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        index, embedded,
        "tests/vectors/index.json and the runner's vector_files! list differ"
    );
    for (name, text) in FILES {
        let file = parse(name, text);
        assert!(
            file.get("name").and_then(Value::as_str).is_some(),
            "{name} has no name"
        );
        let kinds =
            usize::from(file.get("cases").is_some()) + usize::from(file.get("rulesets").is_some());
        assert_eq!(
            kinds, 1,
            "{name} must hold exactly one of `cases` or `rulesets`"
        );
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn there_are_enough_evaluation_cases() {
    let mut total = 0;
    for (name, text) in evaluation_files() {
        let cases = parse(name, text)["cases"].as_array().map_or(0, Vec::len);
        assert!(cases > 0, "{name} has no cases");
        total += cases;
    }
    assert!(
        total >= MINIMUM_CASES,
        "only {total} evaluation cases; at least {MINIMUM_CASES} are expected"
    );
}

/// One case file, read with the engine's own model so keyed collections keep document order.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[allow(dead_code)]
    name: String,
    ruleset: RawRuleset,
    cases: Vec<Value>,
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn evaluation_vectors_hold() {
    let bless = blessing();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, text) in evaluation_files() {
        let file: CaseFile =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: not a case file: {e}"));
        let ruleset = compile(&file.ruleset)
            .unwrap_or_else(|e| panic!("{name}: the ruleset is invalid: {e}"));
        let mut derived: Vec<Map<String, Value>> = Vec::new();
        for (index, case) in file.cases.iter().enumerate() {
            let description = case
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("(no description)");
            let location = format!("{name} case {index} ({description})");
            checked += 1;
            check_case(
                &ruleset,
                case,
                &location,
                bless,
                &mut failures,
                &mut derived,
            );
        }
        if bless {
            let updated = rewrite_derived(name, text, &derived);
            if updated != text {
                write_vector_file(name, &updated);
            }
        }
    }
    assert!(checked >= MINIMUM_CASES, "only {checked} cases ran");
    assert!(
        failures.is_empty(),
        "{} vector case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn check_case(
    ruleset: &Ruleset,
    case: &Value,
    location: &str,
    bless: bool,
    failures: &mut Vec<String>,
    derived: &mut Vec<Map<String, Value>>,
) {
    let known = [
        "description",
        "flag",
        "context",
        "contextRaw",
        "now",
        "expectedType",
        "resolvePrompt",
        "all",
        "expected",
    ];
    for key in case.as_object().expect("a case is an object").keys() {
        assert!(
            known.contains(&key.as_str()),
            "{location}: unknown case field {key:?}"
        );
    }
    let expected = case
        .get("expected")
        .unwrap_or_else(|| panic!("{location}: no `expected`"));
    let now = case.get("now").map(|now| {
        let text = now
            .as_str()
            .unwrap_or_else(|| panic!("{location}: `now` must be a string"));
        parse_rfc3339_millis(text)
            .unwrap_or_else(|| panic!("{location}: `now` is not RFC 3339: {text}"))
    });
    let context = match (case.get("context"), case.get("contextRaw")) {
        (Some(_), Some(_)) => panic!("{location}: give `context` or `contextRaw`, not both"),
        (_, Some(raw)) => Context::from_json_str(raw.as_str().expect("`contextRaw` is a string")),
        (Some(object), None) => Context::from_json_value(object),
        (None, None) => Ok(Context::new()),
    };

    if case.get("all").and_then(Value::as_bool) == Some(true) {
        let mut context = context
            .unwrap_or_else(|e| panic!("{location}: a bulk case needs a readable context: {e}"));
        context.set_now_millis(now);
        check_bulk(ruleset, &context, expected, location, failures);
        return;
    }

    let flag = case
        .get("flag")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{location}: no `flag`"));
    let evaluation = match context {
        Err(problem) => context_error(ruleset, flag, &problem),
        Ok(mut context) => {
            context.set_now_millis(now);
            if case.get("resolvePrompt").and_then(Value::as_bool) == Some(true) {
                ruleset.resolve_prompt(flag, &context)
            } else if let Some(kind) = case.get("expectedType") {
                ruleset.evaluate_typed(flag, &context, expected_type(kind, location))
            } else {
                ruleset.evaluate(flag, &context)
            }
        }
    };
    let mut mismatch = |what: &str, want: &Value, got: &Value| {
        failures.push(format!("{location}: {what}: expected {want}, got {got}"));
    };

    let expected = expected
        .as_object()
        .unwrap_or_else(|| panic!("{location}: `expected` is an object"));
    let allowed = [
        "value",
        "variant",
        "reason",
        "errorCode",
        "ruleIndex",
        "ruleId",
        "slot",
        "lane",
        "layerSlot",
        "inExperiment",
        "prompt",
    ];
    for key in expected.keys() {
        assert!(
            allowed.contains(&key.as_str()),
            "{location}: unknown expectation {key:?}"
        );
    }
    let actual = actual_fields(&evaluation);
    for key in ["variant", "reason"] {
        assert!(
            expected.contains_key(key),
            "{location}: `expected.{key}` is required"
        );
    }
    for (key, want) in expected {
        if bless && DERIVED_KEYS.contains(&key.as_str()) {
            continue;
        }
        let got = actual.get(key).cloned().unwrap_or(Value::Null);
        if *want != got {
            mismatch(key, want, &got);
        }
    }
    // An error code is asserted even when left out: leaving it out means "no error".
    if !expected.contains_key("errorCode") && evaluation.error_code.is_some() {
        mismatch("errorCode", &Value::Null, &actual["errorCode"]);
    }
    let mut derived_values = Map::new();
    for key in DERIVED_KEYS {
        if expected.contains_key(key) {
            derived_values.insert(
                key.to_string(),
                actual.get(key).cloned().unwrap_or(Value::Null),
            );
        }
    }
    derived.push(derived_values);
}

fn expected_type(kind: &Value, location: &str) -> ExpectedType {
    match kind.as_str() {
        Some("boolean") => ExpectedType::Boolean,
        Some("string") => ExpectedType::String,
        Some("number") => ExpectedType::Number,
        Some("object") => ExpectedType::Object,
        _ => panic!(
            "{location}: `expectedType` must be boolean, string, number or object, not {kind}"
        ),
    }
}

/// The evaluation in the vocabulary of the vector files (`null` for anything absent).
fn actual_fields(evaluation: &Evaluation<'_>) -> Map<String, Value> {
    let mut fields = Map::new();
    let mut put = |key: &str, value: Value| {
        fields.insert(key.to_string(), value);
    };
    put("value", evaluation.value.cloned().unwrap_or(Value::Null));
    put(
        "variant",
        evaluation.variant.map_or(Value::Null, Value::from),
    );
    put("reason", Value::from(evaluation.reason.as_str()));
    put(
        "errorCode",
        evaluation
            .error_code
            .map_or(Value::Null, |code| Value::from(code.as_str())),
    );
    put(
        "ruleIndex",
        evaluation.rule_index.map_or(Value::Null, Value::from),
    );
    put(
        "ruleId",
        evaluation.rule_id.map_or(Value::Null, Value::from),
    );
    let bucket = evaluation.bucket;
    put("slot", bucket.map_or(Value::Null, |b| Value::from(b.slot)));
    put(
        "lane",
        bucket.and_then(|b| b.lane).map_or(Value::Null, Value::from),
    );
    put(
        "layerSlot",
        bucket
            .and_then(|b| b.layer_slot)
            .map_or(Value::Null, Value::from),
    );
    put(
        "inExperiment",
        bucket.map_or(Value::Null, |b| Value::from(b.in_experiment)),
    );
    put(
        "prompt",
        evaluation.prompt.map_or(Value::Null, |prompt| {
            serde_json::to_value(prompt).expect("a prompt serializes")
        }),
    );
    fields
}

fn check_bulk(
    ruleset: &Ruleset,
    context: &Context,
    expected: &Value,
    location: &str,
    failures: &mut Vec<String>,
) {
    let expected = expected
        .as_object()
        .unwrap_or_else(|| panic!("{location}: `expected` maps flag keys to outcomes"));
    let evaluations = ruleset.evaluate_all(context);
    let keys: Vec<&str> = evaluations
        .iter()
        .map(|evaluation| evaluation.key.as_ref())
        .collect();
    let mut expected_keys: Vec<&str> = expected.keys().map(String::as_str).collect();
    expected_keys.sort_unstable();
    if keys != expected_keys {
        failures.push(format!(
            "{location}: bulk flags: expected {expected_keys:?}, got {keys:?}"
        ));
    }
    for evaluation in &evaluations {
        let Some(want) = expected
            .get(evaluation.key.as_ref())
            .and_then(Value::as_object)
        else {
            continue;
        };
        let actual = actual_fields(evaluation);
        for key in want.keys() {
            assert!(
                ["value", "variant", "reason", "errorCode"].contains(&key.as_str()),
                "{location}: bulk expectations hold value, variant, reason and errorCode, not {key:?}"
            );
        }
        for key in ["variant", "reason", "errorCode"] {
            let want = want.get(key).cloned().unwrap_or(Value::Null);
            if want != actual[key] {
                failures.push(format!(
                    "{location}: {}: {key}: expected {want}, got {}",
                    evaluation.key, actual[key]
                ));
            }
        }
        if let Some(value) = want.get("value")
            && *value != actual["value"]
        {
            failures.push(format!(
                "{location}: {}: value: expected {value}, got {}",
                evaluation.key, actual["value"]
            ));
        }
    }
}

/// Rewrites the derived expectations of one case file in place, keeping its layout: the k-th
/// `"slot": …` after `"cases"` gets the k-th case's slot, and so on for each derived key.
fn rewrite_derived(name: &str, text: &str, derived: &[Map<String, Value>]) -> String {
    let cases_start = text
        .find("\"cases\"")
        .unwrap_or_else(|| panic!("{name}: no \"cases\" key"));
    let mut output = String::from(text);
    for key in DERIVED_KEYS {
        let values: Vec<String> = derived
            .iter()
            .filter_map(|case| case.get(key))
            .map(Value::to_string)
            .collect();
        let needle = format!("\"{key}\"");
        let mut rewritten = String::with_capacity(output.len());
        let mut position = 0;
        let mut count = 0;
        let mut search_from = cases_start;
        while let Some(found) = output[search_from..].find(&needle) {
            let start = search_from + found;
            let mut cursor = start + needle.len();
            search_from = cursor;
            if output[..start].ends_with('\\') {
                continue;
            }
            let rest = &output[cursor..];
            let after_colon = rest.trim_start();
            if !after_colon.starts_with(':') {
                continue;
            }
            cursor += rest.len() - after_colon.len() + 1;
            cursor += output[cursor..].len() - output[cursor..].trim_start().len();
            let token_len = output[cursor..]
                .find(|c: char| matches!(c, ',' | '}' | ']') || c.is_whitespace())
                .unwrap_or_else(|| panic!("{name}: unterminated value after {needle}"));
            let value = values.get(count).unwrap_or_else(|| {
                panic!("{name}: more {needle} keys in the text than expectations")
            });
            rewritten.push_str(&output[position..cursor]);
            rewritten.push_str(value);
            position = cursor + token_len;
            count += 1;
        }
        assert_eq!(
            count,
            values.len(),
            "{name}: {needle} keys in the text do not line up with the cases"
        );
        rewritten.push_str(&output[position..]);
        output = rewritten;
    }
    output
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn validation_vectors_report_every_problem() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, text) in validation_files() {
        let file = parse(name, text);
        for (index, entry) in file["rulesets"]
            .as_array()
            .expect("`rulesets` is an array")
            .iter()
            .enumerate()
        {
            let description = entry["description"].as_str().expect("a description");
            let location = format!("{name} ruleset {index} ({description})");
            let source = match (entry.get("ruleset"), entry.get("rulesetText")) {
                (Some(ruleset), None) => {
                    serde_json::to_string(ruleset).expect("a value serializes")
                }
                (None, Some(text)) => text
                    .as_str()
                    .expect("`rulesetText` is a string")
                    .to_string(),
                _ => panic!("{location}: give exactly one of `ruleset` or `rulesetText`"),
            };
            let mut expected: Vec<(String, String)> = entry["problems"]
                .as_array()
                .expect("`problems` is an array")
                .iter()
                .map(|problem| {
                    (
                        problem["path"].as_str().unwrap().to_string(),
                        problem["code"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            let mut actual: Vec<(String, String)> = match Ruleset::from_json_str(&source) {
                Ok(_) => Vec::new(),
                Err(error) => error
                    .problems()
                    .into_iter()
                    .map(|p| (p.path, p.code.to_string()))
                    .collect(),
            };
            expected.sort();
            actual.sort();
            if expected != actual {
                failures.push(format!(
                    "{location}: problems: expected {expected:?}, got {actual:?}"
                ));
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} validation vectors ran");
    assert!(
        failures.is_empty(),
        "{} validation vector(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// xxh3_64 by an implementation that shares no code with the engine's (`twox-hash`).
fn independent_hash(seed: &str, unit: &str) -> u64 {
    twox_hash::XxHash3_64::oneshot(format!("{seed}/{unit}").as_bytes())
}

fn independent_slot(hash: u64) -> u32 {
    ((u128::from(hash) * 100_000) >> 64) as u32
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn golden_buckets_match_the_engine_and_an_independent_xxh3() {
    let bless = blessing();
    let entries = parse("buckets.json", BUCKETS);
    let entries = entries.as_array().expect("buckets.json is an array");
    assert!(
        entries.len() >= MINIMUM_BUCKETS,
        "only {} golden buckets",
        entries.len()
    );
    let mut failures = Vec::new();
    let mut blessed = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let seed = entry["seed"].as_str().expect("a seed string");
        let unit = entry["unit"].as_str().expect("a unit string");
        let location = format!("buckets.json entry {index} ({seed:?}, {unit:?})");
        let engine_hash = bucket_hash(seed, unit);
        let engine_slot = slot(seed, unit);
        // The engine against the independent implementation, whatever the file says.
        let twox = independent_hash(seed, unit);
        if engine_hash != twox {
            failures.push(format!(
                "{location}: engine h {engine_hash} != twox-hash xxh3 {twox}"
            ));
        }
        if engine_slot != independent_slot(twox) || slot_of_hash(twox) != independent_slot(twox) {
            failures.push(format!(
                "{location}: engine slot {engine_slot} != {}",
                independent_slot(twox)
            ));
        }
        if bless {
            blessed.push((seed, unit, engine_hash, engine_slot));
            continue;
        }
        // The file against both.
        let h = entry["h"]
            .as_str()
            .expect("h is a decimal string (u64 exceeds JS number precision)");
        let file_slot = entry["slot"].as_u64().expect("slot is a number");
        match h.parse::<u64>() {
            Ok(h) if h == twox && file_slot == u64::from(independent_slot(h)) => {}
            _ => failures.push(format!(
                "{location}: the file has h {h}, slot {file_slot}; expected {twox}, {engine_slot}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden bucket(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if bless {
        let lines: Vec<String> = blessed
            .iter()
            .map(|(seed, unit, h, slot)| {
                format!(
                    "{{\"seed\": {}, \"unit\": {}, \"h\": \"{h}\", \"slot\": {slot}}}",
                    Value::from(*seed),
                    Value::from(*unit)
                )
            })
            .collect();
        let text = format!("[\n  {}\n]\n", lines.join(",\n  "));
        if text != BUCKETS {
            write_vector_file("buckets.json", &text);
        }
    }
}

/// `Ruleset::attributes_read` names every attribute an evaluation reads: for every case of
/// every file, a context cut down to those attributes gets exactly the evaluation the whole
/// context gets (the npm package passes only those attributes, and none for a flag that reads
/// none).
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn contexts_cut_down_to_the_attributes_read_get_the_same_evaluations() {
    let mut compared = 0;
    for (name, text) in evaluation_files() {
        let file: CaseFile =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: not a case file: {e}"));
        let ruleset = compile(&file.ruleset)
            .unwrap_or_else(|e| panic!("{name}: the ruleset is invalid: {e}"));
        for (index, case) in file.cases.iter().enumerate() {
            let (Some(flag), Some(Value::Object(attributes))) = (
                case.get("flag").and_then(Value::as_str),
                case.get("context"),
            ) else {
                continue;
            };
            let Some(read) = ruleset.attributes_read(flag) else {
                continue;
            };
            let now = case
                .get("now")
                .and_then(Value::as_str)
                .and_then(parse_rfc3339_millis);
            let cut: Map<String, Value> = attributes
                .iter()
                .filter(|(attribute, _)| read.contains(&attribute.as_str()))
                .map(|(attribute, value)| (attribute.clone(), value.clone()))
                .collect();
            let evaluate = |object: &Map<String, Value>| {
                let mut context = Context::from_json_value(&Value::Object(object.clone()))
                    .unwrap_or_else(|e| panic!("{name} case {index}: {e}"));
                context.set_now_millis(now);
                serde_json::to_value(ruleset.evaluate(flag, &context)).unwrap()
            };
            assert_eq!(
                evaluate(&cut),
                evaluate(attributes),
                "{name} case {index}: flag {flag} reads {read:?}"
            );
            compared += 1;
        }
    }
    assert!(
        compared >= MINIMUM_CASES / 2,
        "only {compared} cases compared"
    );
}

#[test]
fn attributes_read_lists_conditions_segments_and_split_units() {
    let ruleset = Ruleset::from_json_str(
        r#"{"schema": 1, "environment": "dev", "revision": 1,
            "segments": {"beta": {"match_by": "accountId", "included": ["a1"],
                "conditions": [{"attribute": "seats", "op": "num_gte", "values": [10]}]}},
            "flags": {
              "static": {"kind": "string", "baseline": "a",
                "variants": {"a": {"value": "A"}, "b": {"value": "B"}}, "default": {"variant": "b"}},
              "off": {"kind": "string", "baseline": "a", "enabled": false,
                "variants": {"a": {"value": "A"}, "b": {"value": "B"}},
                "rules": [{"when": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
                  "serve": {"variant": "b"}}],
                "default": {"variant": "a"}},
              "rule": {"kind": "string", "baseline": "a",
                "variants": {"a": {"value": "A"}, "b": {"value": "B"}},
                "rules": [{"when": [{"attribute": "plan", "op": "in", "values": ["pro"]},
                                    {"op": "in_segment", "values": ["beta"]}],
                  "serve": {"variant": "b"}}],
                "default": {"split": {"bucket_by": "userId",
                  "treatments": [{"variant": "b", "weight": 50000}]}}}}}"#,
    )
    .unwrap();
    assert_eq!(ruleset.attributes_read("static"), Some(vec![]));
    assert_eq!(ruleset.attributes_read("off"), Some(vec![]));
    assert_eq!(
        ruleset.attributes_read("rule"),
        Some(vec!["accountId", "plan", "seats", "userId"])
    );
    assert_eq!(ruleset.attributes_read("missing"), None);
}
