//! Treatment-versus-baseline tests: configuration, results, and the fixed-horizon t-tests.
//!
//! Both metric kinds go through the same test, exactly as in gbstats 0.8.0
//! (`gbstats/frequentist/tests.py`): an unequal-variance (Welch) t-test on the difference of
//! means, where a proportion is the mean of 0/1 outcomes with variance `p (1 − p)`. For a mean
//! metric this is Welch's t-test; for a proportion it is the unpooled two-proportion test with
//! Welch–Satterthwaite degrees of freedom (for the sample sizes of an A/B test indistinguishable
//! from the z-test; see [`pooled_two_proportion_z_test`] for the textbook pooled variant).
//!
//! The effect is always treatment minus baseline:
//! - absolute: `Δ = m_t − m_b`, with variance `v_t / n_t + v_b / n_b`;
//! - relative: `Δ / m_b`, with the delta-method variance
//!   `v_t / (m_b² n_t) + v_b m_t² / (m_b⁴ n_b)`.
//!
//! The Welch–Satterthwaite degrees of freedom are computed from the per-unit variances, and are
//! the same for the absolute and the relative effect. Sequential designs live in
//! [`crate::sequential`]; [`difference_test`] dispatches on [`TestConfig::test`].

use crate::StatsError;
use crate::distributions::{normal_sf, student_t_cdf, student_t_quantile, student_t_sf};
use crate::sequential;
use crate::summary::{MeanSummary, Moments, ProportionSummary, Summary};
use serde::{Deserialize, Serialize};

/// GrowthBook's default sequential tuning parameter: the total sample size at which the
/// confidence sequence is tightest.
pub const DEFAULT_TUNING_PARAMETER: f64 = 5000.0;

/// The conventional significance level.
pub const DEFAULT_ALPHA: f64 = 0.05;

/// Which difference between treatment and baseline is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceType {
    /// `m_t − m_b`, in the metric's units.
    Absolute,
    /// `(m_t − m_b) / m_b`, a fraction of the baseline (0.05 is +5 %).
    Relative,
}

/// The alternative hypothesis, which fixes the sides of the interval and of the p-value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alternative {
    /// The effect differs from 0; the interval is two-sided.
    #[default]
    TwoSided,
    /// The treatment is greater than the baseline; the interval is `[lower, +∞)`.
    Greater,
    /// The treatment is less than the baseline; the interval is `(−∞, upper]`.
    Less,
}

/// Fixed-horizon or always-valid sequential.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestKind {
    /// Valid when looked at once, at a sample size fixed in advance.
    #[default]
    Fixed,
    /// An always-valid confidence sequence: valid however often it is looked at.
    Sequential,
}

/// How to test. Deserializes from `{"test": "sequential", "alpha": 0.05, "tuning_parameter":
/// 5000, "alternative": "two_sided"}`, every field optional.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TestConfig {
    /// Fixed-horizon or sequential.
    pub test: TestKind,
    /// Significance level; the interval's confidence level is `1 − alpha`.
    pub alpha: f64,
    /// The sequential tuning parameter (ignored by fixed tests): the total sample size, over
    /// both variants, at which the confidence sequence is tightest.
    pub tuning_parameter: f64,
    /// Two-sided or one-sided.
    pub alternative: Alternative,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self {
            test: TestKind::Fixed,
            alpha: DEFAULT_ALPHA,
            tuning_parameter: DEFAULT_TUNING_PARAMETER,
            alternative: Alternative::TwoSided,
        }
    }
}

impl TestConfig {
    /// A two-sided fixed-horizon test at level `alpha`.
    pub fn fixed(alpha: f64) -> Self {
        Self {
            test: TestKind::Fixed,
            alpha,
            ..Self::default()
        }
    }

    /// A two-sided sequential test at level `alpha` with this tuning parameter.
    pub fn sequential(alpha: f64, tuning_parameter: f64) -> Self {
        Self {
            test: TestKind::Sequential,
            alpha,
            tuning_parameter,
            ..Self::default()
        }
    }

    /// The same test with another alternative.
    pub fn with_alternative(self, alternative: Alternative) -> Self {
        Self {
            alternative,
            ..self
        }
    }

    /// Checks `alpha` and, for sequential tests, the tuning parameter.
    pub fn validate(&self) -> Result<(), StatsError> {
        let alpha = self.alpha;
        if !(alpha.is_finite() && alpha > 0.0 && alpha < 1.0) {
            return Err(StatsError::InvalidAlpha { alpha });
        }
        if self.test == TestKind::Sequential {
            let value = self.tuning_parameter;
            if !(value.is_finite() && value > 0.0) {
                return Err(StatsError::InvalidTuningParameter { value });
            }
            // The one-sided mixture boundary is built from 2·alpha (GrowthBook refuses
            // alpha ≥ 0.5 for the same reason).
            if self.alternative != Alternative::TwoSided && alpha >= 0.5 {
                return Err(StatsError::InvalidAlpha { alpha });
            }
        }
        Ok(())
    }
}

/// The estimate, its interval and its p-value, for one difference type.
///
/// A one-sided interval has an infinite bound (`−∞` or `+∞`; serde_json writes it as `null`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// Point estimate of the effect (treatment minus baseline, absolute or relative).
    pub effect: f64,
    /// Lower bound of the `1 − alpha` confidence interval (or sequence).
    pub ci_lower: f64,
    /// Upper bound of the `1 − alpha` confidence interval (or sequence).
    pub ci_upper: f64,
    /// p-value of the null hypothesis "no effect" against the configured alternative.
    pub p_value: f64,
    /// Standard error of the effect estimate.
    pub standard_error: f64,
    /// Welch–Satterthwaite degrees of freedom (fixed-horizon tests only).
    pub degrees_of_freedom: Option<f64>,
}

/// The absolute and the relative effect of a treatment against a baseline, under one config.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Treatment minus baseline.
    pub absolute: TestResult,
    /// (Treatment minus baseline) / baseline.
    pub relative: TestResult,
}

/// The point estimate of the effect and its variance: everything the fixed and the sequential
/// tests share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EffectMoments {
    pub(crate) effect: f64,
    pub(crate) variance: f64,
    pub(crate) degrees_of_freedom: f64,
    pub(crate) total_count: f64,
}

impl EffectMoments {
    /// gbstats' `TTest` quantities, with its refusals (`compute_result`) in the same order.
    pub(crate) fn new<M: Moments + ?Sized>(
        baseline: &M,
        treatment: &M,
        difference: DifferenceType,
    ) -> Result<Self, StatsError> {
        if baseline.kind() != treatment.kind() {
            return Err(StatsError::MismatchedSummaries);
        }
        baseline.validate()?;
        treatment.validate()?;
        let mean_a = baseline.mean();
        let mean_b = treatment.mean();
        // A regression-adjusted (CUPED) summary's relative effect divides by the unadjusted
        // baseline mean, and the delta method uses the unadjusted means (gbstats' `TTest`).
        let raw_a = baseline.unadjusted_mean();
        let raw_b = treatment.unadjusted_mean();
        if mean_a == 0.0 || raw_a == 0.0 {
            return Err(StatsError::ZeroBaselineMean);
        }
        let var_a = baseline.variance();
        let var_b = treatment.variance();
        if var_a <= 0.0 || var_b <= 0.0 {
            return Err(StatsError::ZeroVariance);
        }
        let n_a = baseline.count() as f64;
        let n_b = treatment.count() as f64;
        let (effect, variance) = match difference {
            DifferenceType::Absolute => (mean_b - mean_a, var_b / n_b + var_a / n_a),
            DifferenceType::Relative => (
                (mean_b - mean_a) / raw_a,
                var_b / (raw_a.powi(2) * n_b) + var_a * raw_b.powi(2) / (raw_a.powi(4) * n_a),
            ),
        };
        let degrees_of_freedom = (var_b / n_b + var_a / n_a).powi(2)
            / (var_b.powi(2) / (n_b.powi(2) * (n_b - 1.0))
                + var_a.powi(2) / (n_a.powi(2) * (n_a - 1.0)));
        Ok(Self {
            effect,
            variance,
            degrees_of_freedom,
            total_count: n_a + n_b,
        })
    }

    pub(crate) fn standard_error(&self) -> f64 {
        self.variance.sqrt()
    }
}

/// Tests a treatment against a baseline of the same metric kind, for one difference type.
///
/// Dispatches on `config.test` to the fixed-horizon t-test or the sequential confidence
/// sequence ([`crate::sequential`]). Errors on an invalid config or summary, and on the
/// degenerate inputs for which gbstats returns its default output
/// ([`StatsError::ZeroBaselineMean`], [`StatsError::ZeroVariance`]).
pub fn difference_test<M: Moments + ?Sized>(
    baseline: &M,
    treatment: &M,
    difference: DifferenceType,
    config: &TestConfig,
) -> Result<TestResult, StatsError> {
    config.validate()?;
    let moments = EffectMoments::new(baseline, treatment, difference)?;
    Ok(match config.test {
        TestKind::Fixed => fixed_horizon(&moments, config.alpha, config.alternative),
        TestKind::Sequential => sequential::confidence_sequence(
            &moments,
            config.alpha,
            config.tuning_parameter,
            config.alternative,
        ),
    })
}

/// Welch's t-test of a numeric metric (gbstats `TwoSidedTTest` and its one-sided and
/// sequential siblings on `SampleMeanStatistic`s).
pub fn welch_t_test(
    baseline: &MeanSummary,
    treatment: &MeanSummary,
    difference: DifferenceType,
    config: &TestConfig,
) -> Result<TestResult, StatsError> {
    difference_test(baseline, treatment, difference, config)
}

/// The two-proportion test of a binary metric (gbstats' t-test on `ProportionStatistic`s:
/// unpooled variance `p (1 − p)` per arm, Welch–Satterthwaite degrees of freedom).
pub fn two_proportion_test(
    baseline: &ProportionSummary,
    treatment: &ProportionSummary,
    difference: DifferenceType,
    config: &TestConfig,
) -> Result<TestResult, StatsError> {
    difference_test(baseline, treatment, difference, config)
}

/// Both the absolute and the relative effect of `treatment` against `baseline`: what
/// `promptflag analyze` prints.
pub fn compare(
    baseline: &Summary,
    treatment: &Summary,
    config: &TestConfig,
) -> Result<Comparison, StatsError> {
    Ok(Comparison {
        absolute: difference_test(baseline, treatment, DifferenceType::Absolute, config)?,
        relative: difference_test(baseline, treatment, DifferenceType::Relative, config)?,
    })
}

/// The fixed-horizon t-test on precomputed moments.
fn fixed_horizon(moments: &EffectMoments, alpha: f64, alternative: Alternative) -> TestResult {
    let effect = moments.effect;
    let standard_error = moments.standard_error();
    let dof = moments.degrees_of_freedom;
    let critical_value = effect / standard_error;
    let (ci_lower, ci_upper, p_value) = match alternative {
        Alternative::TwoSided => {
            let width = student_t_quantile(1.0 - alpha / 2.0, dof) * standard_error;
            let p_value = (2.0 * student_t_sf(critical_value.abs(), dof)).min(1.0);
            (effect - width, effect + width, p_value)
        }
        Alternative::Greater => {
            let width = student_t_quantile(1.0 - alpha, dof) * standard_error;
            (
                effect - width,
                f64::INFINITY,
                student_t_sf(critical_value, dof),
            )
        }
        Alternative::Less => {
            // gbstats 0.8.0 returns `[-inf, effect - width]` here, a sign slip fixed in later
            // GrowthBook releases; the upper bound of a one-sided interval is effect + width.
            let width = student_t_quantile(1.0 - alpha, dof) * standard_error;
            (
                f64::NEG_INFINITY,
                effect + width,
                student_t_cdf(critical_value, dof),
            )
        }
    };
    TestResult {
        effect,
        ci_lower,
        ci_upper,
        p_value,
        standard_error,
        degrees_of_freedom: Some(dof),
    }
}

/// The textbook two-proportion z-test with a pooled proportion under the null hypothesis.
///
/// Not what gbstats does (it uses the unpooled variance and the t distribution; see
/// [`two_proportion_test`]); provided for comparison with published examples and for callers
/// that want the classical test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PooledZTest {
    /// `p_t − p_b`.
    pub effect: f64,
    /// `√(p̄ (1 − p̄) (1/n_b + 1/n_t))` with the pooled proportion `p̄`.
    pub standard_error: f64,
    /// `effect / standard_error`.
    pub z: f64,
    /// Two-sided p-value `2 (1 − Φ(|z|))`.
    pub p_value: f64,
}

/// Runs the textbook pooled two-proportion z-test of `treatment` against `baseline`.
pub fn pooled_two_proportion_z_test(
    baseline: &ProportionSummary,
    treatment: &ProportionSummary,
) -> Result<PooledZTest, StatsError> {
    baseline.validate()?;
    treatment.validate()?;
    let n_b = baseline.n as f64;
    let n_t = treatment.n as f64;
    let pooled = (baseline.successes + treatment.successes) as f64 / (n_b + n_t);
    let standard_error = (pooled * (1.0 - pooled) * (1.0 / n_b + 1.0 / n_t)).sqrt();
    if standard_error.is_nan() || standard_error <= 0.0 {
        return Err(StatsError::ZeroVariance);
    }
    let effect = treatment.mean() - baseline.mean();
    let z = effect / standard_error;
    Ok(PooledZTest {
        effect,
        standard_error,
        z,
        p_value: 2.0 * normal_sf(z.abs()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_rejects_bad_alpha_and_tuning() {
        assert!(TestConfig::fixed(0.0).validate().is_err());
        assert!(TestConfig::fixed(1.0).validate().is_err());
        assert!(TestConfig::fixed(f64::NAN).validate().is_err());
        assert!(TestConfig::sequential(0.05, 0.0).validate().is_err());
        let one_sided = TestConfig::sequential(0.6, 5000.0).with_alternative(Alternative::Less);
        assert_eq!(
            one_sided.validate(),
            Err(StatsError::InvalidAlpha { alpha: 0.6 })
        );
        assert!(TestConfig::sequential(0.05, 5000.0).validate().is_ok());
    }

    #[test]
    fn config_deserializes_with_defaults() {
        let config: TestConfig = serde_json::from_str(r#"{"test": "sequential"}"#).unwrap();
        assert_eq!(config, TestConfig::sequential(0.05, 5000.0));
        let config: TestConfig =
            serde_json::from_str(r#"{"alpha": 0.01, "alternative": "less"}"#).unwrap();
        assert_eq!(
            config,
            TestConfig::fixed(0.01).with_alternative(Alternative::Less)
        );
    }

    #[test]
    fn mismatched_summaries_are_refused() {
        let mean = Summary::Mean(MeanSummary::new(10, 10.0, 20.0));
        let proportion = Summary::Proportion(ProportionSummary::new(10, 5));
        assert_eq!(
            compare(&mean, &proportion, &TestConfig::default()),
            Err(StatsError::MismatchedSummaries)
        );
    }

    #[test]
    fn one_sided_less_interval_is_the_mirror_of_greater() {
        let baseline = ProportionSummary::new(1000, 100);
        let treatment = ProportionSummary::new(1000, 120);
        let greater = TestConfig::fixed(0.05).with_alternative(Alternative::Greater);
        let less = TestConfig::fixed(0.05).with_alternative(Alternative::Less);
        let g =
            two_proportion_test(&baseline, &treatment, DifferenceType::Absolute, &greater).unwrap();
        let l =
            two_proportion_test(&baseline, &treatment, DifferenceType::Absolute, &less).unwrap();
        assert!((g.effect - g.ci_lower - (l.ci_upper - l.effect)).abs() < 1e-15);
        assert!((g.p_value + l.p_value - 1.0).abs() < 1e-15);
        assert_eq!(l.ci_lower, f64::NEG_INFINITY);
        assert_eq!(g.ci_upper, f64::INFINITY);
    }
}
