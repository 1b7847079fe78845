//! `promptflag analyze` end to end: JSON in, JSON out, bad input as a usage error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

fn analyze(args: &[&str], input: &str) -> (i32, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_promptflag"))
        .args(["--json", "analyze", "-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap(),
        serde_json::from_slice(&output.stdout).unwrap(),
    )
}

#[test]
fn fixed_and_sequential_proportions() {
    let input = r#"{"baseline": {"n": 1000, "successes": 100}, "treatment": {"n": 1000, "successes": 120}}"#;
    let (code, fixed) = analyze(&["--test", "fixed"], input);
    assert_eq!(code, 0, "{fixed}");
    let result = &fixed["results"][0];
    // gbstats 0.8.0 on the same input (docs/statistics.md): p = 0.152865.
    assert!((result["absolute"]["p_value"].as_f64().unwrap() - 0.152865).abs() < 1e-6);
    assert!((result["relative"]["effect"].as_f64().unwrap() - 0.2).abs() < 1e-12);
    let (_, sequential) = analyze(
        &["--test", "sequential", "--tuning-parameter", "5000"],
        input,
    );
    let seq = &sequential["results"][0]["absolute"];
    // An always-valid interval is wider than the fixed-horizon one.
    assert!(
        seq["ci_upper"].as_f64().unwrap() - seq["ci_lower"].as_f64().unwrap()
            > result["absolute"]["ci_upper"].as_f64().unwrap()
                - result["absolute"]["ci_lower"].as_f64().unwrap()
    );
    assert_eq!(sequential["test"], "sequential");
}

#[test]
fn means_by_variant_name() {
    let input = r#"{"test": "fixed", "alpha": 0.05, "baseline": "control",
        "variants": {"control": {"n": 10, "sum": 50.0, "sum_squares": 270.0},
                     "b": {"n": 10, "sum": 60.0, "sum_squares": 380.0}}}"#;
    let (code, out) = analyze(&[], input);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["results"][0]["treatment"], "b");
    assert!((out["results"][0]["absolute"]["effect"].as_f64().unwrap() - 1.0).abs() < 1e-12);
}

#[test]
fn bad_input_is_a_usage_error() {
    let (code, out) = analyze(&[], r#"{"baseline": {"n": 10}}"#);
    assert_eq!(code, 2);
    assert_eq!(out["ok"], false);
    let (code, _) = analyze(&[], "not json");
    assert_eq!(code, 2);
}

#[test]
fn analyze_refuses_an_unknown_key() {
    // A misspelt setting used to be ignored: "tuning" ran with the default 5 000.
    let input = r#"{"test": "sequential", "tuning": 1000,
        "baseline": {"n": 1000, "successes": 100}, "treatment": {"n": 1000, "successes": 120}}"#;
    let (code, out) = analyze(&[], input);
    assert_eq!(code, 2, "{out}");
    let message = out.to_string();
    assert!(message.contains("tuning"), "{message}");
    assert!(message.contains("tuning_parameter"), "{message}");
}
