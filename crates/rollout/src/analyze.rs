//! `promptflag analyze`: treatment against baseline from per-variant summary statistics, through
//! `promptflag-stats` (gbstats-compatible fixed and sequential tests).
//!
//! Input (JSON): the test configuration (`test`: `fixed` | `sequential`, `alpha`,
//! `tuning_parameter`, `alternative`: `two_sided` | `greater` | `less`; all optional) and either
//! `baseline` and `treatment` summaries, or `variants` (an object of name → summary) with
//! `baseline` naming one of them (every other variant is compared with it). A summary is
//! `{"n", "sum", "sum_squares"}` for a mean or `{"n", "successes"}` for a proportion.
//!
//! CUPED: a summary may also carry its units' pre-exposure covariate, `pre_sum` (`Σx`),
//! `pre_sum_squares` (`Σx²`) and `sum_products` (`Σxy`), all three or none. When the baseline
//! and a treatment both carry it, that comparison is regression-adjusted with a pooled `θ`
//! (gbstats' `RegressionAdjustedStatistic`, `promptflag_stats::cuped`) and its result says
//! `"cuped": true` with the `theta` used.
//!
//! The input is checked before anything is computed: a key it does not know, or a value of
//! the wrong type, is refused with a message naming the key and the keys accepted there, since
//! a misspelt setting that was silently ignored would run a different test than the one asked
//! for (`"tuning": 1000` would run with the default tuning parameter).

use serde_json::{Value, json};

use promptflag_stats::{
    Covariate, DifferenceType, Summary, TestConfig, compare, difference_test, regression_adjust,
};

use crate::error::{Error, Result};

/// The top-level keys of the input.
const INPUT_KEYS: [&str; 7] = [
    "alpha",
    "alternative",
    "baseline",
    "test",
    "treatment",
    "tuning_parameter",
    "variants",
];

/// The keys of a summary: a mean's, then a proportion's, each with the optional covariate.
const MEAN_KEYS: [&str; 6] = [
    "n",
    "sum",
    "sum_squares",
    "pre_sum",
    "pre_sum_squares",
    "sum_products",
];
const PROPORTION_KEYS: [&str; 5] = [
    "n",
    "successes",
    "pre_sum",
    "pre_sum_squares",
    "sum_products",
];
/// The covariate's keys, all three or none.
const COVARIATE_KEYS: [&str; 3] = ["pre_sum", "pre_sum_squares", "sum_products"];

/// What JSON type a key must have.
#[derive(Clone, Copy)]
enum Kind {
    Number,
    Count,
    Text,
    Object,
    ObjectOrText,
}

impl Kind {
    fn accepts(self, value: &Value) -> bool {
        match self {
            Kind::Number => value.as_f64().is_some_and(f64::is_finite),
            Kind::Count => value.as_u64().is_some(),
            Kind::Text => value.is_string(),
            Kind::Object => value.is_object(),
            Kind::ObjectOrText => value.is_object() || value.is_string(),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Number => "a finite number",
            Kind::Count => "a non-negative integer",
            Kind::Text => "a string",
            Kind::Object => "an object",
            Kind::ObjectOrText => "an object (a summary) or a string (naming a variant)",
        }
    }
}

fn input_kind(key: &str) -> Kind {
    match key {
        "alpha" | "tuning_parameter" => Kind::Number,
        "test" | "alternative" => Kind::Text,
        "baseline" => Kind::ObjectOrText,
        _ => Kind::Object,
    }
}

fn summary_kind(key: &str) -> Kind {
    match key {
        "n" | "successes" => Kind::Count,
        _ => Kind::Number,
    }
}

/// Refuses a key of `object` that is not in `accepted`, and a value of the wrong type.
fn check_keys(
    object: &serde_json::Map<String, Value>,
    accepted: &[&str],
    kind: impl Fn(&str) -> Kind,
    what: &str,
) -> Result<()> {
    for (key, value) in object {
        if !accepted.contains(&key.as_str()) {
            return Err(Error::Invalid(format!(
                "unknown key `{key}` in {what}; the keys accepted there are {}",
                accepted.join(", ")
            )));
        }
        let kind = kind(key);
        if !kind.accepts(value) {
            return Err(Error::Invalid(format!(
                "`{key}` in {what} must be {}, got {value}",
                kind.describe()
            )));
        }
    }
    Ok(())
}

/// Checks one summary's keys: a mean's or a proportion's, never a mixture of the two.
fn check_summary(value: &Value, what: &str) -> Result<()> {
    let Some(object) = value.as_object() else {
        return Err(Error::Invalid(format!(
            "{what} must be an object: {{\"n\", \"sum\", \"sum_squares\"}} (a mean) or {{\"n\", \"successes\"}} (a proportion), got {value}"
        )));
    };
    let accepted: &[&str] = if object.contains_key("successes") {
        &PROPORTION_KEYS
    } else {
        &MEAN_KEYS
    };
    check_keys(object, accepted, summary_kind, what)?;
    let present = COVARIATE_KEYS
        .iter()
        .filter(|k| object.contains_key(**k))
        .count();
    if present != 0 && present != COVARIATE_KEYS.len() {
        return Err(Error::Invalid(format!(
            "{what} has part of a covariate: give all of {} or none",
            COVARIATE_KEYS.join(", ")
        )));
    }
    Ok(())
}

/// Checks the whole input's keys and types before anything is computed.
fn check_input(input: &serde_json::Map<String, Value>) -> Result<()> {
    check_keys(input, &INPUT_KEYS, input_kind, "the input")?;
    match input.get("variants").and_then(Value::as_object) {
        Some(variants) => {
            if let Some(treatment) = input.get("treatment") {
                return Err(Error::Invalid(format!(
                    "`treatment` cannot be given with `variants` (every variant other than `baseline` is a treatment), got {treatment}"
                )));
            }
            for (name, value) in variants {
                check_summary(value, &format!("variant {name:?}"))?;
            }
        }
        None => {
            for key in ["baseline", "treatment"] {
                if let Some(value) = input.get(key) {
                    check_summary(value, &format!("`{key}`"))?;
                }
            }
        }
    }
    Ok(())
}

/// A summary and, when it carries one, its covariate (keys already checked).
fn summary(value: &Value, what: &str) -> Result<(Summary, Option<Covariate>)> {
    let mut object = value.as_object().cloned().unwrap_or_default();
    let number = |object: &serde_json::Map<String, Value>, key: &str| {
        object.get(key).and_then(Value::as_f64).unwrap_or(0.0)
    };
    let covariate = object.contains_key("pre_sum").then(|| Covariate {
        sum: number(&object, "pre_sum"),
        sum_squares: number(&object, "pre_sum_squares"),
        sum_products: number(&object, "sum_products"),
    });
    for key in COVARIATE_KEYS {
        object.remove(key);
    }
    let summary = serde_json::from_value(Value::Object(object)).map_err(|_| {
        Error::Invalid(format!(
            "{what} must be {{\"n\", \"sum\", \"sum_squares\"}} (a mean) or {{\"n\", \"successes\"}} (a proportion), got {value}"
        ))
    })?;
    Ok((summary, covariate))
}

/// Runs the comparison(s) described by `input`; `overrides` (from the command line) replace the
/// file's test settings field by field.
pub fn analyze(input: &Value, overrides: &Value) -> Result<Value> {
    let Some(object) = input.as_object() else {
        return Err(Error::Invalid(String::from(
            "the input must be a JSON object with `baseline` and `treatment` (or `variants`)",
        )));
    };
    check_input(object)?;
    let mut settings = serde_json::Map::new();
    for key in ["test", "alpha", "tuning_parameter", "alternative"] {
        if let Some(value) = overrides.get(key).filter(|v| !v.is_null()) {
            settings.insert(key.to_string(), value.clone());
        } else if let Some(value) = input.get(key) {
            settings.insert(key.to_string(), value.clone());
        }
    }
    let config: TestConfig = serde_json::from_value(Value::Object(settings)).map_err(|e| {
        Error::Invalid(format!(
            "bad test settings ({e}); test is fixed or sequential, alpha in (0, 1), tuning_parameter > 0, alternative two_sided, greater or less"
        ))
    })?;
    config
        .validate()
        .map_err(|e| Error::Invalid(format!("bad test settings: {e}")))?;
    type Side = (Summary, Option<Covariate>);
    let pairs: Vec<(String, String, Side, Side)> = match input.get("variants") {
        Some(Value::Object(variants)) => {
            let baseline_name = input["baseline"].as_str().ok_or_else(|| {
                Error::Invalid(String::from(
                    "with `variants`, `baseline` must name the baseline variant",
                ))
            })?;
            let baseline_value = variants
                .get(baseline_name)
                .ok_or_else(|| Error::Invalid(format!("`variants` has no {baseline_name:?}")))?;
            let baseline = summary(baseline_value, baseline_name)?;
            let mut pairs = Vec::new();
            for (name, value) in variants {
                if name != baseline_name {
                    pairs.push((
                        baseline_name.to_string(),
                        name.clone(),
                        baseline,
                        summary(value, name)?,
                    ));
                }
            }
            if pairs.is_empty() {
                return Err(Error::Invalid(String::from(
                    "`variants` needs a treatment besides the baseline",
                )));
            }
            pairs
        }
        _ => {
            let baseline = summary(&input["baseline"], "baseline")?;
            let treatment = summary(&input["treatment"], "treatment")?;
            vec![(
                String::from("baseline"),
                String::from("treatment"),
                baseline,
                treatment,
            )]
        }
    };
    let mut results = Vec::new();
    for (baseline_name, treatment_name, baseline, treatment) in pairs {
        let failed = |e: promptflag_stats::StatsError| {
            Error::Invalid(format!("{treatment_name} against {baseline_name}: {e}"))
        };
        let (absolute, relative, theta) = match (&baseline.1, &treatment.1) {
            (Some(base_x), Some(treat_x)) => {
                let (a, b) = regression_adjust((&baseline.0, base_x), (&treatment.0, treat_x))
                    .map_err(failed)?;
                (
                    difference_test(&a, &b, DifferenceType::Absolute, &config).map_err(failed)?,
                    difference_test(&a, &b, DifferenceType::Relative, &config).map_err(failed)?,
                    Some(a.theta),
                )
            }
            (None, None) => {
                let comparison = compare(&baseline.0, &treatment.0, &config).map_err(failed)?;
                (comparison.absolute, comparison.relative, None)
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "{treatment_name} against {baseline_name}: a covariate ({}) must be given for both or neither",
                    COVARIATE_KEYS.join(", ")
                )));
            }
        };
        results.push(json!({
            "baseline": baseline_name,
            "treatment": treatment_name,
            "absolute": absolute,
            "relative": relative,
            "significant": absolute.p_value < config.alpha,
            "cuped": theta.is_some(),
            "theta": theta,
        }));
    }
    Ok(json!({
        "test": config.test,
        "alpha": config.alpha,
        "tuning_parameter": config.tuning_parameter,
        "alternative": config.alternative,
        "results": results,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportions_match_the_stats_crate_example() {
        let input = json!({"test": "fixed", "baseline": {"n": 1000, "successes": 100}, "treatment": {"n": 1000, "successes": 120}});
        let out = analyze(&input, &json!({})).unwrap();
        let absolute = &out["results"][0]["absolute"];
        assert!((absolute["effect"].as_f64().unwrap() - 0.02).abs() < 1e-12);
        assert!((absolute["p_value"].as_f64().unwrap() - 0.152865).abs() < 1e-6);
        assert!((out["results"][0]["relative"]["effect"].as_f64().unwrap() - 0.2).abs() < 1e-12);
    }

    #[test]
    fn variants_and_overrides() {
        let input = json!({"baseline": "a", "variants": {"a": {"n": 100, "sum": 1000.0, "sum_squares": 10500.0}, "b": {"n": 100, "sum": 1100.0, "sum_squares": 12700.0}}});
        let out = analyze(&input, &json!({"test": "sequential", "alpha": 0.1})).unwrap();
        assert_eq!(out["test"], "sequential");
        assert_eq!(out["results"][0]["treatment"], "b");
        assert!(analyze(&json!({"baseline": {"n": 3}}), &json!({})).is_err());
        assert!(analyze(&input, &json!({"alpha": 2.0})).is_err());
    }

    fn refusal(input: Value) -> String {
        match analyze(&input, &json!({})) {
            Err(Error::Invalid(message)) => message,
            Ok(out) => panic!("accepted {input}: {out}"),
        }
    }

    #[test]
    fn analyze_refuses_an_unknown_key() {
        let message = refusal(json!({"test": "sequential", "tuning": 1000,
            "baseline": {"n": 1000, "successes": 100}, "treatment": {"n": 1000, "successes": 120}}));
        assert!(message.contains("`tuning`"), "{message}");
        assert!(message.contains("tuning_parameter"), "{message}");
        let message = refusal(
            json!({"baseline": {"n": 1000, "successes": 100, "sum": 3.0},
            "treatment": {"n": 1000, "successes": 120}}),
        );
        assert!(
            message.contains("`sum`") && message.contains("n, successes"),
            "{message}"
        );
        let message = refusal(json!({"baseline": "a", "variants": {
            "a": {"n": 10, "sum": 5.0, "sum_squares": 9.0},
            "b": {"n": 10, "sum": 6.0, "sum_sq": 9.0}}}));
        assert!(
            message.contains("`sum_sq`") && message.contains("\"b\""),
            "{message}"
        );
    }

    #[test]
    fn analyze_adjusts_by_a_covariate_given_for_both_variants() {
        // The first gbstats CUPED reference case (proportions, covariate correlated 0.5).
        let text = include_str!("../../stats/tests/reference/gbstats.json");
        let reference: Value = serde_json::from_str(text).unwrap();
        let case = reference["cuped"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "cuped_proportion_rho_05/fixed/two_sided/absolute")
            .unwrap();
        let side = |summary: &Value, covariate: &Value| {
            let mut object = summary.as_object().unwrap().clone();
            object.insert(String::from("pre_sum"), covariate["sum"].clone());
            object.insert(
                String::from("pre_sum_squares"),
                covariate["sum_squares"].clone(),
            );
            object.insert(
                String::from("sum_products"),
                covariate["sum_products"].clone(),
            );
            Value::Object(object)
        };
        let input = json!({"test": "fixed",
            "baseline": side(&case["baseline"], &case["baseline_covariate"]),
            "treatment": side(&case["treatment"], &case["treatment_covariate"])});
        let out = analyze(&input, &json!({})).unwrap();
        let result = &out["results"][0];
        assert_eq!(result["cuped"], true);
        let expected = &case["expected"];
        for key in [
            "effect",
            "p_value",
            "standard_error",
            "ci_lower",
            "ci_upper",
        ] {
            let ours = result["absolute"][key].as_f64().unwrap();
            let theirs = expected[key].as_f64().unwrap();
            assert!(
                (ours - theirs).abs() < 1e-5,
                "{key}: {ours} against gbstats {theirs}"
            );
        }
        // Without the covariate the same data gives gbstats' unadjusted standard error.
        let plain =
            json!({"test": "fixed", "baseline": case["baseline"], "treatment": case["treatment"]});
        let out = analyze(&plain, &json!({})).unwrap();
        let unadjusted = case["unadjusted_standard_error"].as_f64().unwrap();
        let ours = out["results"][0]["absolute"]["standard_error"]
            .as_f64()
            .unwrap();
        assert!((ours - unadjusted).abs() < 1e-9);
        assert_eq!(out["results"][0]["cuped"], false);
    }

    #[test]
    fn analyze_refuses_a_covariate_on_one_side_only_or_in_part() {
        let message = refusal(json!({
            "baseline": {"n": 100, "successes": 80, "pre_sum": 80.0, "pre_sum_squares": 70.0, "sum_products": 66.0},
            "treatment": {"n": 100, "successes": 75}}));
        assert!(message.contains("both or neither"), "{message}");
        let message = refusal(json!({
            "baseline": {"n": 100, "successes": 80, "pre_sum": 80.0},
            "treatment": {"n": 100, "successes": 75}}));
        assert!(message.contains("part of a covariate"), "{message}");
    }

    #[test]
    fn analyze_refuses_a_value_of_the_wrong_type() {
        let message = refusal(json!({"alpha": "0.1",
            "baseline": {"n": 1000, "successes": 100}, "treatment": {"n": 1000, "successes": 120}}));
        assert!(
            message.contains("`alpha`") && message.contains("number"),
            "{message}"
        );
        let message = refusal(json!({"baseline": {"n": 10.5, "successes": 1},
            "treatment": {"n": 1000, "successes": 120}}));
        assert!(
            message.contains("`n`") && message.contains("integer"),
            "{message}"
        );
    }
}
