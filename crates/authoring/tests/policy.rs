//! Rollout policy files: durations and hard limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use promptflag_authoring::policy::{RolloutPolicy, parse_duration, read_policy_file};
use promptflag_authoring::yaml::Node;

#[test]
fn durations_take_units() {
    assert_eq!(parse_duration(&Node::Str("30m".into())), Some(1800));
    assert_eq!(parse_duration(&Node::Str("2h".into())), Some(7200));
    assert_eq!(parse_duration(&Node::Int(45)), Some(45));
    assert_eq!(parse_duration(&Node::Str("soon".into())), None);
    assert_eq!(parse_duration(&Node::Str("5w".into())), None);
}

fn policy_with_limit(limit: &str) -> promptflag_authoring::error::Result<RolloutPolicy> {
    let text = format!(
        "environment: dev\ntreatment: t\ncheck_interval: 5m\nstages:\n  - {{percent: 5, min_hold: 1h, min_samples: 100}}\n\
         guardrails:\n  - {{metric: success_rate, max_regression: {{absolute: 0.02}}}}\n\
         hard_limits:\n  - {limit}\n\
         primary_metric: {{metric: success_rate, minimum_effect: {{absolute: 0.01}}}}\n\
         promotion: {{require: better, confidence: 0.95, action: promote}}\n\
         sample_ratio_mismatch: {{alpha: 0.001}}\n"
    );
    let path = std::env::temp_dir().join(format!(
        "promptflag-policy-{}-{}.yaml",
        std::process::id(),
        limit.len()
    ));
    std::fs::write(&path, text).map_err(|e| promptflag_authoring::error::Error::io(&path, e))?;
    let policy = read_policy_file(&path, "f");
    let _ = std::fs::remove_file(&path);
    policy
}

#[test]
fn a_hard_limit_takes_an_alpha_and_defaults_to_one_percent() {
    let policy = policy_with_limit("{metric: error_rate, threshold: 0.02}").unwrap();
    assert_eq!(policy.hard_limits[0].alpha, 0.01);
    let policy = policy_with_limit("{metric: error_rate, threshold: 0.02, alpha: 0.001}").unwrap();
    assert_eq!(policy.hard_limits[0].alpha, 0.001);
    let refused =
        policy_with_limit("{metric: error_rate, threshold: 0.02, alpha: 1.5}").unwrap_err();
    assert!(refused.to_string().contains("alpha"), "{refused}");
}
