//! Property tests: Thompson sampling's determinism and normalisation, the duality between the
//! intervals and the p-values, and the symmetries every test must have.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use promptflag_stats::distributions::{student_t_cdf, student_t_quantile};
use promptflag_stats::special::regularized_beta;
use promptflag_stats::{
    Alternative, DifferenceType, MeanSummary, MetricDirection, ProportionSummary, TestConfig,
    ThompsonConfig, Xoshiro256StarStar, difference_test, sample_ratio_mismatch, thompson_means,
    thompson_proportions,
};
use proptest::prelude::*;

fn proportion_arm() -> impl Strategy<Value = ProportionSummary> {
    (1u64..5_000)
        .prop_flat_map(|n| (Just(n), 0..=n))
        .prop_map(|(n, s)| ProportionSummary::new(n, s))
}

fn mean_arm() -> impl Strategy<Value = MeanSummary> {
    (2u64..5_000, -100.0f64..100.0, 0.01f64..50.0).prop_map(|(n, mean, sd)| {
        let n_f = n as f64;
        MeanSummary::new(n, mean * n_f, (n_f - 1.0) * sd * sd + n_f * mean * mean)
    })
}

fn thompson_config() -> impl Strategy<Value = ThompsonConfig> {
    (1u32..2_000, any::<bool>(), 0.0f64..0.2).prop_map(|(draws, higher, floor)| ThompsonConfig {
        draws,
        direction: if higher {
            MetricDirection::HigherIsBetter
        } else {
            MetricDirection::LowerIsBetter
        },
        minimum_weight: floor,
        ..ThompsonConfig::default()
    })
}

/// A pair of proportion arms the tests can analyse (no zero variance, non-zero baseline).
fn analysable_pair() -> impl Strategy<Value = (ProportionSummary, ProportionSummary)> {
    let arm = (100u64..100_000, 0.01f64..0.99).prop_map(|(n, p)| {
        let successes = ((n as f64 * p).round() as u64).clamp(1, n - 1);
        ProportionSummary::new(n, successes)
    });
    (arm.clone(), arm)
}

fn alpha() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.05), Just(0.01), Just(0.1), 0.001f64..0.3]
}

proptest! {
    #[test]
    fn thompson_proportions_is_deterministic_per_seed_and_sums_to_one(
        arms in prop::collection::vec(proportion_arm(), 1..6),
        config in thompson_config(),
        seed in any::<u64>(),
    ) {
        prop_assume!(config.minimum_weight * arms.len() as f64 <= 1.0);
        let first = thompson_proportions(&arms, &config, &mut Xoshiro256StarStar::seed_from_u64(seed)).unwrap();
        let second = thompson_proportions(&arms, &config, &mut Xoshiro256StarStar::seed_from_u64(seed)).unwrap();
        prop_assert_eq!(&first, &second);
        prop_assert!((first.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        prop_assert!((first.probability_best.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for (weight, probability) in first.weights.iter().zip(&first.probability_best) {
            prop_assert!((0.0..=1.0).contains(probability));
            prop_assert!(*weight >= config.minimum_weight - 1e-15);
        }
    }

    #[test]
    fn thompson_means_is_deterministic_per_seed_and_sums_to_one(
        arms in prop::collection::vec(mean_arm(), 1..6),
        config in thompson_config(),
        seed in any::<u64>(),
    ) {
        prop_assume!(config.minimum_weight * arms.len() as f64 <= 1.0);
        let first = thompson_means(&arms, &config, &mut Xoshiro256StarStar::seed_from_u64(seed)).unwrap();
        let second = thompson_means(&arms, &config, &mut Xoshiro256StarStar::seed_from_u64(seed)).unwrap();
        prop_assert_eq!(&first, &second);
        prop_assert!((first.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        prop_assert!((first.probability_best.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    /// p < α exactly when the interval excludes 0, for every design and alternative.
    #[test]
    fn p_value_and_interval_agree(
        (baseline, treatment) in analysable_pair(),
        alpha in alpha(),
        sequential in any::<bool>(),
        tuning in 100.0f64..100_000.0,
        alternative in prop_oneof![Just(Alternative::TwoSided), Just(Alternative::Greater), Just(Alternative::Less)],
        relative in any::<bool>(),
    ) {
        let config = if sequential { TestConfig::sequential(alpha, tuning) } else { TestConfig::fixed(alpha) }
            .with_alternative(alternative);
        let difference = if relative { DifferenceType::Relative } else { DifferenceType::Absolute };
        let result = difference_test(&baseline, &treatment, difference, &config).unwrap();
        prop_assert!(result.ci_lower <= result.effect && result.effect <= result.ci_upper);
        prop_assume!((result.p_value - alpha).abs() > 1e-9 * alpha);
        let excludes_zero = result.ci_lower > 0.0 || result.ci_upper < 0.0;
        prop_assert_eq!(result.p_value < alpha, excludes_zero, "{:?}", result);
    }

    /// Swapping the arms negates the absolute effect and mirrors its interval.
    #[test]
    fn swapping_arms_mirrors_the_absolute_effect(
        (baseline, treatment) in analysable_pair(),
        sequential in any::<bool>(),
    ) {
        let config = if sequential { TestConfig::sequential(0.05, 5000.0) } else { TestConfig::fixed(0.05) };
        let forward = difference_test(&baseline, &treatment, DifferenceType::Absolute, &config).unwrap();
        let backward = difference_test(&treatment, &baseline, DifferenceType::Absolute, &config).unwrap();
        let tolerance = 1e-12 * (1.0 + forward.ci_upper.abs() + forward.ci_lower.abs());
        prop_assert!((forward.effect + backward.effect).abs() <= tolerance);
        prop_assert!((forward.ci_lower + backward.ci_upper).abs() <= tolerance);
        prop_assert!((forward.ci_upper + backward.ci_lower).abs() <= tolerance);
        prop_assert!((forward.p_value - backward.p_value).abs() <= 1e-12);
    }

    /// The price of always-valid inference: the confidence sequence is wider than the
    /// fixed-horizon interval at the same level (with at least 100 units per arm).
    #[test]
    fn sequence_is_wider_than_fixed_interval(
        (baseline, treatment) in analysable_pair(),
        alpha in alpha(),
        tuning in 100.0f64..1_000_000.0,
    ) {
        let fixed = difference_test(&baseline, &treatment, DifferenceType::Absolute, &TestConfig::fixed(alpha)).unwrap();
        let sequential = difference_test(&baseline, &treatment, DifferenceType::Absolute, &TestConfig::sequential(alpha, tuning)).unwrap();
        // gbstats' fixed test uses Student's t with Welch's degrees of freedom, the sequential
        // test a normal-based confidence sequence. With few degrees of freedom t's heavier tail
        // can give the fixed test the larger p-value even though its interval is narrower
        // (baseline 504/50413 against 35/101: df 100, p 1.78e-10 fixed, 1.43e-10 sequential,
        // while the sequence is 1.55 times as wide), so each comparison holds where t is
        // close enough to the normal: many degrees of freedom, and not far out in the tails
        // (at z = 22, p ~ 1e-100, the two tails differ by orders of magnitude even at df 1000).
        let df = fixed.degrees_of_freedom.unwrap_or(f64::INFINITY);
        if df >= 30.0 {
            prop_assert!(sequential.ci_upper - sequential.ci_lower > fixed.ci_upper - fixed.ci_lower);
        }
        if df >= 1_000.0 && fixed.p_value >= 1e-6 {
            prop_assert!(sequential.p_value >= fixed.p_value);
        }
    }

    /// Scaling every weight leaves the SRM test unchanged, and its p-value is a probability.
    #[test]
    fn srm_is_scale_invariant(
        counts in prop::collection::vec(0u64..100_000, 2..6),
        weights in prop::collection::vec(0.01f64..10.0, 6),
        scale in 0.001f64..1000.0,
    ) {
        let weights = &weights[..counts.len()];
        let scaled: Vec<f64> = weights.iter().map(|w| w * scale).collect();
        let plain = sample_ratio_mismatch(&counts, weights).unwrap();
        let rescaled = sample_ratio_mismatch(&counts, &scaled).unwrap();
        prop_assert!((0.0..=1.0).contains(&plain.p_value));
        prop_assert!((plain.p_value - rescaled.p_value).abs() <= 1e-9 * plain.p_value.max(1e-300) + 1e-15);
    }

    #[test]
    fn incomplete_beta_reflection(x in 0.0f64..1.0, a in 0.05f64..500.0, b in 0.05f64..500.0) {
        let left = regularized_beta(x, a, b);
        let right = 1.0 - regularized_beta(1.0 - x, b, a);
        prop_assert!((0.0..=1.0).contains(&left));
        prop_assert!((left - right).abs() <= 1e-12, "I = {left}, 1 − I' = {right}");
    }

    #[test]
    fn student_t_quantile_inverts_cdf(p in 1e-6f64..(1.0 - 1e-6), df in 0.5f64..1e7) {
        let t = student_t_quantile(p, df);
        prop_assert!((student_t_cdf(t, df) - p).abs() <= 1e-12);
    }
}
