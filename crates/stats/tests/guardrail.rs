//! The control loop's guardrail decision on scripted metric streams, and its false-alarm rate
//! under repeated looks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use promptflag_stats::{
    AllowedChange, Alternative, DifferenceType, Guardrail, GuardrailDecision, GuardrailSides,
    MeanSummary, MetricDirection, ProportionSummary, RandomSource, StatsError, TestConfig,
    Xoshiro256StarStar, difference_test, evaluate_guardrail,
};

fn guardrail(direction: MetricDirection, allowed_change: AllowedChange) -> Guardrail {
    Guardrail {
        direction,
        allowed_change,
        alpha: 0.05,
        tuning_parameter: 5000.0,
        sides: GuardrailSides::OneSided,
    }
}

fn mean_summary(n: u64, mean: f64, sd: f64) -> MeanSummary {
    let n_f = n as f64;
    MeanSummary::new(n, mean * n_f, (n_f - 1.0) * sd * sd + n_f * mean * mean)
}

#[test]
fn success_rate_drop_of_eight_points_is_a_violation() {
    let baseline = ProportionSummary::new(2000, 1800); // 90 %
    let treatment = ProportionSummary::new(2000, 1640); // 82 %
    let rule = guardrail(
        MetricDirection::HigherIsBetter,
        AllowedChange::Absolute(0.02),
    );
    let outcome = evaluate_guardrail(&baseline, &treatment, &rule).unwrap();
    assert_eq!(outcome.decision, GuardrailDecision::Violated, "{outcome:?}");
    assert_eq!(outcome.threshold, -0.02);
    assert!(outcome.ci_upper < -0.02);
    assert_eq!(outcome.difference, DifferenceType::Absolute);
}

#[test]
fn forty_percent_cost_increase_is_a_violation_of_a_ten_percent_allowance() {
    let baseline = mean_summary(3000, 0.0042, 0.003);
    let treatment = mean_summary(3000, 0.00588, 0.004);
    let rule = guardrail(
        MetricDirection::LowerIsBetter,
        AllowedChange::Relative(0.10),
    );
    let outcome = evaluate_guardrail(&baseline, &treatment, &rule).unwrap();
    assert_eq!(outcome.decision, GuardrailDecision::Violated, "{outcome:?}");
    assert!((outcome.effect - 0.4).abs() < 1e-12);
    assert!(outcome.ci_lower > 0.10);
}

#[test]
fn equal_arms_with_plenty_of_data_are_ok() {
    let baseline = ProportionSummary::new(50_000, 45_000);
    let treatment = ProportionSummary::new(50_000, 45_010);
    let rule = guardrail(
        MetricDirection::HigherIsBetter,
        AllowedChange::Absolute(0.02),
    );
    let outcome = evaluate_guardrail(&baseline, &treatment, &rule).unwrap();
    assert_eq!(outcome.decision, GuardrailDecision::Ok, "{outcome:?}");
    assert!(outcome.ci_lower > -0.02);
}

#[test]
fn a_small_sample_is_inconclusive() {
    let baseline = ProportionSummary::new(60, 54);
    let treatment = ProportionSummary::new(55, 46);
    let rule = guardrail(
        MetricDirection::HigherIsBetter,
        AllowedChange::Absolute(0.02),
    );
    let outcome = evaluate_guardrail(&baseline, &treatment, &rule).unwrap();
    assert_eq!(
        outcome.decision,
        GuardrailDecision::Inconclusive,
        "{outcome:?}"
    );
    assert_eq!(outcome.degenerate, None);
}

#[test]
fn a_lower_is_better_improvement_is_ok() {
    let baseline = mean_summary(4000, 1200.0, 300.0);
    let treatment = mean_summary(4000, 1100.0, 280.0);
    let rule = guardrail(
        MetricDirection::LowerIsBetter,
        AllowedChange::Absolute(20.0),
    );
    let outcome = evaluate_guardrail(&baseline, &treatment, &rule).unwrap();
    assert_eq!(outcome.decision, GuardrailDecision::Ok, "{outcome:?}");
}

/// No errors at all in the baseline yet: gbstats cannot compute a variance, so the guardrail
/// waits (hard limits in the control loop cover this case).
#[test]
fn degenerate_data_is_inconclusive_not_an_error() {
    let baseline = ProportionSummary::new(500, 0);
    let treatment = ProportionSummary::new(500, 40);
    let rule = guardrail(
        MetricDirection::LowerIsBetter,
        AllowedChange::Absolute(0.01),
    );
    let outcome = evaluate_guardrail(&baseline, &treatment, &rule).unwrap();
    assert_eq!(outcome.decision, GuardrailDecision::Inconclusive);
    assert_eq!(outcome.degenerate, Some(StatsError::ZeroBaselineMean));
    let json = serde_json::to_value(&outcome).unwrap();
    assert_eq!(json["decision"], "inconclusive");
    assert_eq!(json["degenerate"], "the baseline mean is zero");
}

#[test]
fn invalid_guardrails_are_errors() {
    let arm = ProportionSummary::new(100, 50);
    let negative = guardrail(
        MetricDirection::HigherIsBetter,
        AllowedChange::Relative(-0.1),
    );
    assert_eq!(
        evaluate_guardrail(&arm, &arm, &negative),
        Err(StatsError::InvalidMargin { value: -0.1 })
    );
    let bad_alpha = Guardrail {
        alpha: 0.5,
        ..guardrail(
            MetricDirection::HigherIsBetter,
            AllowedChange::Absolute(0.0),
        )
    };
    assert!(matches!(
        evaluate_guardrail(&arm, &arm, &bad_alpha),
        Err(StatsError::InvalidAlpha { .. })
    ));
}

#[test]
fn guardrail_deserializes_with_defaults() {
    let rule: Guardrail = serde_json::from_str(
        r#"{"direction": "lower_is_better", "allowed_change": {"relative": 0.1}}"#,
    )
    .unwrap();
    assert_eq!(
        rule,
        guardrail(MetricDirection::LowerIsBetter, AllowedChange::Relative(0.1))
    );
}

/// The one-sided sequences are tighter, so some violations are visible to them before the
/// two-sided sequence sees them; never the other way round.
#[test]
fn two_sided_sequence_is_more_conservative() {
    let mut one_sided_only = 0;
    for drop in 0..60 {
        let baseline = ProportionSummary::new(3000, 2700);
        let treatment = ProportionSummary::new(3000, 2700 - 5 * drop);
        let one = guardrail(
            MetricDirection::HigherIsBetter,
            AllowedChange::Absolute(0.01),
        );
        let two = Guardrail {
            sides: GuardrailSides::TwoSided,
            ..one
        };
        let one = evaluate_guardrail(&baseline, &treatment, &one)
            .unwrap()
            .decision;
        let two = evaluate_guardrail(&baseline, &treatment, &two)
            .unwrap()
            .decision;
        if two == GuardrailDecision::Violated {
            assert_eq!(one, GuardrailDecision::Violated);
        }
        if one == GuardrailDecision::Violated && two != GuardrailDecision::Violated {
            one_sided_only += 1;
        }
    }
    assert!(one_sided_only > 0);
}

/// Counts, over `runs` A/A rollouts each looked at `looks` times, how often the sequential
/// guardrail and a naive repeated fixed-horizon test ever declare a violation.
fn aa_false_alarms(runs: u32, looks: u32, batch: u64, rate: f64, seed: u64) -> (u32, u32) {
    let mut rng = Xoshiro256StarStar::seed_from_u64(seed);
    let rule = guardrail(
        MetricDirection::HigherIsBetter,
        AllowedChange::Absolute(0.0),
    );
    let naive = TestConfig::fixed(0.05).with_alternative(Alternative::Less);
    let (mut sequential_alarms, mut naive_alarms) = (0, 0);
    for _ in 0..runs {
        let mut baseline = ProportionSummary::new(0, 0);
        let mut treatment = ProportionSummary::new(0, 0);
        let (mut sequential_fired, mut naive_fired) = (false, false);
        for _ in 0..looks {
            for _ in 0..batch {
                baseline.n += 1;
                baseline.successes += u64::from(rng.next_f64() < rate);
                treatment.n += 1;
                treatment.successes += u64::from(rng.next_f64() < rate);
            }
            let outcome = evaluate_guardrail(&baseline, &treatment, &rule).unwrap();
            sequential_fired |= outcome.decision == GuardrailDecision::Violated;
            if let Ok(result) =
                difference_test(&baseline, &treatment, DifferenceType::Absolute, &naive)
            {
                naive_fired |= result.p_value < 0.05;
            }
        }
        sequential_alarms += u32::from(sequential_fired);
        naive_alarms += u32::from(naive_fired);
    }
    (sequential_alarms, naive_alarms)
}

/// Peeking 40 times at an A/A rollout: the always-valid guardrail keeps its false-violation
/// rate under alpha = 5 %, while repeating a fixed-horizon one-sided test at every look does
/// not. (Seeded, so the counts are fixed; printed with `--nocapture`.)
#[test]
fn repeated_looks_keep_the_false_violation_rate_under_alpha() {
    let runs = 300;
    let (sequential, naive) = aa_false_alarms(runs, 40, 250, 0.9, 20_250_515);
    println!(
        "A/A, {runs} runs × 40 looks: sequential guardrail {sequential} false violations, \
         repeated fixed-horizon test {naive}"
    );
    assert!(
        f64::from(sequential) <= 0.05 * f64::from(runs),
        "{sequential} of {runs}"
    );
    assert!(
        naive > 2 * sequential.max(1),
        "naive {naive}, sequential {sequential}"
    );
    assert!(
        f64::from(naive) > 0.05 * f64::from(runs),
        "peeking inflates the naive rate"
    );
}
