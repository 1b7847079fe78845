//! `promptflag analyze`: treatment against baseline from per-variant summary statistics, through
//! `promptflag-stats` (gbstats-compatible fixed and sequential tests).
//!
//! Input (JSON): the test configuration (`test`: `fixed` | `sequential`, `alpha`,
//! `tuning_parameter`, `alternative`: `two_sided` | `greater` | `less`; all optional) and either
//! `baseline` and `treatment` summaries, or `variants` (an object of name → summary) with
//! `baseline` naming one of them (every other variant is compared with it). A summary is
//! `{"n", "sum", "sum_squares"}` for a mean or `{"n", "successes"}` for a proportion.

use serde_json::{Value, json};

use promptflag_stats::{Summary, TestConfig, compare};

use crate::error::{Error, Result};

fn summary(value: &Value, what: &str) -> Result<Summary> {
    serde_json::from_value(value.clone()).map_err(|_| {
        Error::Invalid(format!(
            "{what} must be {{\"n\", \"sum\", \"sum_squares\"}} (a mean) or {{\"n\", \"successes\"}} (a proportion), got {value}"
        ))
    })
}

/// Runs the comparison(s) described by `input`; `overrides` (from the command line) replace the
/// file's test settings field by field.
pub fn analyze(input: &Value, overrides: &Value) -> Result<Value> {
    if !input.is_object() {
        return Err(Error::Invalid(String::from(
            "the input must be a JSON object with `baseline` and `treatment` (or `variants`)",
        )));
    }
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
    let pairs: Vec<(String, String, Summary, Summary)> = match input.get("variants") {
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
        let comparison = compare(&baseline, &treatment, &config).map_err(|e| {
            Error::Invalid(format!("{treatment_name} against {baseline_name}: {e}"))
        })?;
        results.push(json!({
            "baseline": baseline_name,
            "treatment": treatment_name,
            "absolute": comparison.absolute,
            "relative": comparison.relative,
            "significant": comparison.absolute.p_value < config.alpha,
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
}
