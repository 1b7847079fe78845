//! Published textbook and software-output numbers, checked to the precision they were published
//! with.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use promptflag_stats::distributions::{chi_square_sf, normal_quantile, student_t_quantile};
use promptflag_stats::{
    DifferenceType, MeanSummary, ProportionSummary, TestConfig, pooled_two_proportion_z_test,
    sample_ratio_mismatch, welch_t_test,
};

fn assert_close(what: &str, actual: f64, published: f64, half_unit: f64) {
    assert!(
        (actual - published).abs() <= half_unit,
        "{what}: computed {actual}, published {published} (±{half_unit})"
    );
}

/// R's `t.test(ts1, ts2)` (Welch is R's default) on two samples of ten, as printed:
/// `t = -1.8325, df = 17.9, p-value = 0.08356`, 95 % CI `-2.1469104 0.1469104`.
#[test]
fn welch_t_test_matches_r_output() {
    let ts1 = [11.0, 9.0, 10.0, 11.0, 10.0, 12.0, 9.0, 11.0, 12.0, 9.0];
    let ts2 = [11.0, 13.0, 10.0, 13.0, 12.0, 9.0, 11.0, 12.0, 12.0, 11.0];
    // R reports mean(x) − mean(y) with x = ts1, so ts1 is our treatment and ts2 the baseline.
    let treatment = MeanSummary::from_values(&ts1);
    let baseline = MeanSummary::from_values(&ts2);
    let result = welch_t_test(
        &baseline,
        &treatment,
        DifferenceType::Absolute,
        &TestConfig::fixed(0.05),
    )
    .unwrap();
    assert_close("difference", result.effect, -1.0, 1e-12);
    assert_close("t", result.effect / result.standard_error, -1.8325, 0.00005);
    assert_close("df", result.degrees_of_freedom.unwrap(), 17.9, 0.05);
    assert_close("p-value", result.p_value, 0.08356, 0.000005);
    assert_close("CI lower", result.ci_lower, -2.1469104, 0.00000005);
    assert_close("CI upper", result.ci_upper, 0.1469104, 0.00000005);
}

/// A two-proportion z-test as printed by a statistics package: sample 1 is 9 of 31, sample 2
/// is 8 of 30; `Sample Diff. 0.023655914, Std. Err. 0.1148271, Z-Stat 0.20601333,
/// P-value 0.8368`.
#[test]
fn pooled_two_proportion_z_test_matches_published_table() {
    let baseline = ProportionSummary::new(30, 8);
    let treatment = ProportionSummary::new(31, 9);
    let result = pooled_two_proportion_z_test(&baseline, &treatment).unwrap();
    assert_close("difference", result.effect, 0.023655914, 0.0000000005);
    assert_close(
        "standard error",
        result.standard_error,
        0.1148271,
        0.00000005,
    );
    assert_close("z", result.z, 0.20601333, 0.000000005);
    assert_close("p-value", result.p_value, 0.8368, 0.00005);
}

/// A worked exercise: 140 of 200 against 255 of 340, pooled p = 0.7314815, standard error
/// 0.03949401, z = −1.266015.
#[test]
fn pooled_two_proportion_z_test_matches_worked_exercise() {
    let baseline = ProportionSummary::new(340, 255);
    let treatment = ProportionSummary::new(200, 140);
    let result = pooled_two_proportion_z_test(&baseline, &treatment).unwrap();
    assert_close(
        "standard error",
        result.standard_error,
        0.03949401,
        0.000000005,
    );
    assert_close("z", result.z, -1.266015, 0.0000005);
}

/// Mendel's dihybrid cross (round-yellow, round-green, wrinkled-yellow, wrinkled-green):
/// 315, 108, 101, 32 against 9 : 3 : 3 : 1 gives the textbook χ² = 0.470 on 3 degrees of
/// freedom, p = 0.925.
#[test]
fn chi_square_goodness_of_fit_on_mendels_peas() {
    let result = sample_ratio_mismatch(&[315, 108, 101, 32], &[9.0, 3.0, 3.0, 1.0]).unwrap();
    assert_close("chi-square", result.chi_square, 0.470, 0.0005);
    assert_eq!(result.degrees_of_freedom, 3);
    assert_close("p-value", result.p_value, 0.925, 0.0005);
}

/// Wikipedia's fairness example for Pearson's test: 44 men and 56 women where a 50/50 split is
/// expected gives χ² = 1.44 on 1 degree of freedom, p ≈ 0.23.
#[test]
fn chi_square_fairness_example() {
    let result = sample_ratio_mismatch(&[44, 56], &[0.5, 0.5]).unwrap();
    assert_close("chi-square", result.chi_square, 1.44, 1e-12);
    assert_close("p-value", result.p_value, 0.23, 0.005);
}

/// Critical values from the printed tables.
#[test]
fn table_critical_values() {
    assert_close("z 0.975", normal_quantile(0.975), 1.960, 0.0005);
    assert_close("z 0.995", normal_quantile(0.995), 2.576, 0.0005);
    assert_close(
        "t 0.975, 10 df",
        student_t_quantile(0.975, 10.0),
        2.228,
        0.0005,
    );
    assert_close(
        "t 0.995, 5 df",
        student_t_quantile(0.995, 5.0),
        4.032,
        0.0005,
    );
    assert_close("t 0.95, 1 df", student_t_quantile(0.95, 1.0), 6.314, 0.0005);
    assert_close(
        "t 0.975, 120 df",
        student_t_quantile(0.975, 120.0),
        1.980,
        0.0005,
    );
    // χ² critical values: P(χ²₃ > 7.815) = 0.05, P(χ²₁₀ > 23.209) = 0.01.
    assert_close("chi2 3 df", chi_square_sf(7.815, 3.0), 0.05, 0.00005);
    assert_close("chi2 10 df", chi_square_sf(23.209, 10.0), 0.01, 0.00005);
}
