//! Hard limits decided on evidence: an always-valid bound of one variant's own rate or mean,
//! compared with a fixed threshold.
//!
//! A hard limit ("the treatment's error rate must stay under 2 %") is checked at every look of
//! the control loop. Comparing the raw ratio with the threshold fires by chance whenever a few
//! unlucky calls push a small sample over it; the more looks, the surer that becomes. Here a
//! limit fires only when an always-valid confidence bound of the true value crosses it: the
//! lower bound for a limit the value must stay below ([`LimitSide::Above`] fires), the upper
//! bound for a limit it must stay above ([`LimitSide::Below`] fires). The chance that a limit
//! ever fires, over every look of the whole rollout, on a variant whose true value is on the
//! allowed side is at most `alpha`.
//!
//! - **Proportions** use the beta-binomial mixture martingale (Robbins 1970; Howard et al. 2021,
//!   "Time-uniform, nonparametric, nonasymptotic confidence sequences", section 3). With `s`
//!   successes in `n` trials and a Beta(`a`, `b`) mixing distribution,
//!   `M_n(p) = B(a + s, b + n − s) / B(a, b) / (pˢ (1 − p)ⁿ⁻ˢ)` is a nonnegative martingale with
//!   mean 1 under the rate `p`, so by Ville's inequality `P(ever M_n(p) ≥ 1/α) ≤ α`. The
//!   confidence sequence is `{p : M_n(p) < 1/α}`; the bound is found by bisection, since
//!   `ln M_n(p)` is monotone on each side of `s/n`. The guarantee is exact (no normal
//!   approximation), which matters at the small rates and small samples hard limits see. The
//!   mixing distribution is centred on the threshold, `a = t k`, `b = (1 − t) k` with
//!   `k = 1 / min(t, 1 − t)` (`t` clamped to `[0.001, 0.999]`), so the bound is tightest for rates near the limit; it is fixed
//!   before any data is seen, which is all the guarantee needs.
//! - **Means, quantiles and ratios** use the one-sided normal-mixture confidence sequence of the
//!   sequential tests ([`crate::sequential`]) on the variant's own mean, with variance
//!   `σ̂² / n`. Its guarantee is asymptotic (the variance is estimated), as for the guardrails.

use crate::StatsError;
use crate::sequential::{one_sided_halfwidth, sequential_rho};
use crate::special::ln_beta;
use crate::summary::{Moments, ProportionSummary};
use serde::{Deserialize, Serialize};

/// Which crossing of the threshold the limit forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitSide {
    /// The value must stay at or below the threshold (error rate, latency, cost): the limit
    /// fires when the lower bound rises above it.
    Above,
    /// The value must stay at or above the threshold (success rate): the limit fires when the
    /// upper bound falls below it.
    Below,
}

/// A hard limit judged on one variant's data, with the numbers behind it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LimitEvidence {
    /// The point estimate (the raw ratio or mean).
    pub estimate: f64,
    /// The always-valid bound on the forbidden side's opposite: the lower bound for
    /// [`LimitSide::Above`], the upper bound for [`LimitSide::Below`]. `None` while the data
    /// cannot bound the value yet (no observation, or a mean without variance).
    pub bound: Option<f64>,
    /// The threshold.
    pub threshold: f64,
    /// Whether the bound lies beyond the threshold.
    pub crossed: bool,
}

fn check_alpha(alpha: f64) -> Result<(), StatsError> {
    if alpha.is_finite() && alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidAlpha { alpha })
    }
}

/// `ln M_n(p)` of the beta-binomial mixture: the log of the evidence against the rate `p`.
fn log_evidence(n: f64, s: f64, p: f64, a: f64, b: f64) -> f64 {
    let log_likelihood = if s > 0.0 { s * p.ln() } else { 0.0 }
        + if n - s > 0.0 {
            (n - s) * (-p).ln_1p()
        } else {
            0.0
        };
    ln_beta(a + s, b + n - s) - ln_beta(a, b) - log_likelihood
}

/// Bisects for the `p` in `[low, high]` where the monotone `ln M_n(p)` equals `level`;
/// `falling` says whether it decreases from `low` to `high`.
fn bisect(mut low: f64, mut high: f64, falling: bool, level: f64, f: impl Fn(f64) -> f64) -> f64 {
    // 200 halvings take any interval inside (0, 1) below the spacing of doubles.
    for _ in 0..200 {
        let middle = 0.5 * (low + high);
        if middle <= low || middle >= high {
            break;
        }
        let above = f(middle) >= level;
        // Points whose evidence reaches the level are excluded from the sequence; move the
        // end that is still excluded towards the boundary.
        if above == falling {
            low = middle;
        } else {
            high = middle;
        }
    }
    if falling { low } else { high }
}

/// The beta-binomial mixture's always-valid bound of a rate, judged against `threshold`.
///
/// `threshold` must lie in `[0, 1]`; `alpha` in `(0, 1)` is the chance of ever firing on a rate on the allowed side.
pub fn proportion_limit(
    summary: &ProportionSummary,
    threshold: f64,
    side: LimitSide,
    alpha: f64,
) -> Result<LimitEvidence, StatsError> {
    check_alpha(alpha)?;
    summary.validate()?;
    if !(0.0..=1.0).contains(&threshold) {
        return Err(StatsError::InvalidMargin { value: threshold });
    }
    let n = summary.n as f64;
    let s = summary.successes as f64;
    if summary.n == 0 {
        return Ok(LimitEvidence {
            estimate: 0.0,
            bound: None,
            threshold,
            crossed: false,
        });
    }
    let estimate = s / n;
    // A limit at 0 or 1 (no error at all tolerated) still needs a proper mixing distribution.
    let centre = threshold.clamp(1e-3, 1.0 - 1e-3);
    let k = 1.0 / centre.min(1.0 - centre);
    let (a, b) = (centre * k, (1.0 - centre) * k);
    let level = (1.0 / alpha).ln();
    let evidence = |p: f64| log_evidence(n, s, p, a, b);
    let bound = match side {
        // Below the estimate the evidence falls as p rises; with no success the bound is 0.
        LimitSide::Above if s == 0.0 => 0.0,
        LimitSide::Above => bisect(0.0, estimate, true, level, evidence),
        // Above the estimate the evidence rises with p; with every trial a success it is 1.
        LimitSide::Below if s == n => 1.0,
        LimitSide::Below => bisect(estimate, 1.0, false, level, evidence),
    };
    let crossed = match side {
        LimitSide::Above => bound > threshold,
        LimitSide::Below => bound < threshold,
    };
    Ok(LimitEvidence {
        estimate,
        bound: Some(bound),
        threshold,
        crossed,
    })
}

/// The one-sided normal-mixture always-valid bound of a mean (or of a quantile or ratio with
/// its per-unit variance), judged against `threshold`. `tuning_parameter` is the sample size
/// at which the sequence is tightest.
pub fn mean_limit<M: Moments + ?Sized>(
    sample: &M,
    threshold: f64,
    side: LimitSide,
    alpha: f64,
    tuning_parameter: f64,
) -> Result<LimitEvidence, StatsError> {
    check_alpha(alpha)?;
    sample.validate()?;
    if !threshold.is_finite() {
        return Err(StatsError::InvalidMargin { value: threshold });
    }
    if !(tuning_parameter.is_finite() && tuning_parameter > 0.0) {
        return Err(StatsError::InvalidTuningParameter {
            value: tuning_parameter,
        });
    }
    let n = sample.count() as f64;
    let estimate = sample.mean();
    let variance = sample.variance();
    if sample.count() < 2 || variance.is_nan() || variance <= 0.0 {
        return Ok(LimitEvidence {
            estimate,
            bound: None,
            threshold,
            crossed: false,
        });
    }
    let rho = sequential_rho(alpha, tuning_parameter, false);
    let width = one_sided_halfwidth(variance / n, n, alpha, rho);
    let (bound, crossed) = match side {
        LimitSide::Above => (estimate - width, estimate - width > threshold),
        LimitSide::Below => (estimate + width, estimate + width < threshold),
    };
    Ok(LimitEvidence {
        estimate,
        bound: Some(bound),
        threshold,
        crossed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::MeanSummary;

    fn above(n: u64, s: u64) -> LimitEvidence {
        proportion_limit(&ProportionSummary::new(n, s), 0.02, LimitSide::Above, 0.01).unwrap()
    }

    #[test]
    fn a_handful_of_errors_on_a_small_sample_does_not_fire_a_hard_limit() {
        // 4 errors in 150 calls is 2.7 %, over a 2 % limit: the raw ratio would fire.
        let evidence = above(150, 4);
        assert!(evidence.estimate > 0.02);
        assert!(!evidence.crossed, "{evidence:?}");
        assert!(evidence.bound.unwrap() < 0.02);
    }

    #[test]
    fn twelve_errors_in_150_calls_are_the_least_that_fire_a_two_percent_limit() {
        assert!(!above(150, 11).crossed);
        assert!(above(150, 12).crossed);
    }

    #[test]
    fn a_real_breach_fires_a_hard_limit_on_a_small_sample() {
        // 30 errors in 100 calls: a 30 % error rate is not luck under a 2 % limit.
        let evidence = above(100, 30);
        assert!(evidence.crossed, "{evidence:?}");
        assert!(evidence.bound.unwrap() > 0.02 && evidence.bound.unwrap() < 0.30);
    }

    #[test]
    fn the_bound_is_where_the_evidence_reaches_one_over_alpha() {
        let (n, s, t) = (400.0, 25.0, 0.02);
        let evidence = above(400, 25);
        let k = 1.0 / t;
        let at = log_evidence(n, s, evidence.bound.unwrap(), t * k, (1.0 - t) * k);
        assert!((at - 100f64.ln()).abs() < 1e-9, "{at}");
    }

    #[test]
    fn the_upper_bound_of_a_rate_that_must_stay_high() {
        let high = ProportionSummary::new(200, 150);
        let evidence = proportion_limit(&high, 0.9, LimitSide::Below, 0.01).unwrap();
        assert!(evidence.crossed, "{evidence:?}");
        assert!(evidence.bound.unwrap() > 0.75);
        let fine = proportion_limit(&high, 0.7, LimitSide::Below, 0.01).unwrap();
        assert!(!fine.crossed);
    }

    #[test]
    fn no_calls_and_no_errors_never_fire() {
        assert_eq!(above(0, 0).bound, None);
        assert!(!above(0, 0).crossed);
        assert_eq!(above(5000, 0).bound, Some(0.0));
    }

    #[test]
    fn the_bound_narrows_towards_the_estimate_as_data_accumulates() {
        let small = above(200, 10).bound.unwrap();
        let large = above(20_000, 1000).bound.unwrap();
        assert!(small < large && large < 0.05, "{small} {large}");
    }

    #[test]
    fn a_good_rate_rarely_fires_over_many_looks() {
        // Ville's inequality bounds the chance of ever firing by alpha; at a true rate of
        // 1.5 % under a 2 % limit, 300 rollouts of 5 000 calls looked at every 50 calls.
        let mut rng = crate::Xoshiro256StarStar::seed_from_u64(7);
        let mut fired = 0;
        for _ in 0..300 {
            let mut errors = 0u64;
            for n in 1..=5000u64 {
                errors += u64::from(crate::RandomSource::next_f64(&mut rng) < 0.015);
                if n % 50 == 0 && above(n, errors).crossed {
                    fired += 1;
                    break;
                }
            }
        }
        assert!(fired <= 3, "{fired} of 300 fired at alpha 0.01");
    }

    #[test]
    fn a_mean_limit_reads_the_normal_mixture_bound() {
        let values: Vec<f64> = (0..400)
            .map(|i| 1000.0 + f64::from(i % 20) * 10.0)
            .collect();
        let sample = MeanSummary::from_values(&values);
        let over = mean_limit(&sample, 900.0, LimitSide::Above, 0.01, 5000.0).unwrap();
        assert!(over.crossed && over.bound.unwrap() < over.estimate);
        let under = mean_limit(&sample, 1200.0, LimitSide::Above, 0.01, 5000.0).unwrap();
        assert!(!under.crossed);
    }

    #[test]
    fn invalid_thresholds_and_alphas_are_errors() {
        let summary = ProportionSummary::new(10, 1);
        assert!(proportion_limit(&summary, -0.1, LimitSide::Above, 0.01).is_err());
        assert!(proportion_limit(&summary, 1.5, LimitSide::Above, 0.01).is_err());
        assert!(proportion_limit(&summary, 0.1, LimitSide::Above, 1.0).is_err());
    }
}
