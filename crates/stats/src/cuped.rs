//! CUPED: variance reduction by regression adjustment on a pre-exposure covariate, as gbstats
//! 0.8.0's `RegressionAdjustedStatistic` computes it.
//!
//! Each unit brings, beside its outcome `y`, a covariate `x` measured before its first exposure
//! (the same metric in a window before the rollout, as Statsig and GrowthBook use). Because `x`
//! was fixed before assignment, it is independent of the variant, so subtracting `θ (x − x̄)`
//! from every outcome changes no expected difference but removes the part of the outcome's
//! variance that `x` predicts: a covariate correlated `ρ` with the outcome leaves
//! `1 − ρ²` of the variance.
//!
//! Per variant the inputs are sums, never the units: `n`, the outcome's summary (a mean
//! `{sum, sum_squares}` or a proportion `{successes}`) and the covariate's [`Covariate`]
//! `{sum, sum_squares, sum_products}` (`Σx`, `Σx²`, `Σxy`). [`regression_adjust`] computes one
//! `θ` from both variants pooled (gbstats' `compute_theta`:
//! `θ = cov(x, y) / var(x)` over the union) and returns each variant as an [`AdjustedSummary`],
//! whose mean is `ȳ − θ x̄` and whose per-unit variance is `var(y) + θ² var(x) − 2 θ cov(x, y)`.
//! Every test in this crate takes it, because it implements [`Moments`]; the relative effect
//! divides by the baseline's unadjusted mean, and its delta-method variance uses the
//! unadjusted means, exactly as gbstats does. When either pooled variance is 0, `θ` is 0 and
//! the summaries are the unadjusted ones (gbstats reverts to the plain statistics then).

use crate::StatsError;
use crate::summary::{MeanSummary, MetricKind, Moments, Summary};
use serde::{Deserialize, Serialize};

/// The pre-exposure covariate of a variant's units: `Σx`, `Σx²` and `Σxy` over the same `n`
/// units as the outcome (a unit without pre-exposure data counts with `x = 0`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Covariate {
    /// `Σx`.
    pub sum: f64,
    /// `Σx²`.
    pub sum_squares: f64,
    /// `Σxy`, the sum of products of covariate and outcome.
    pub sum_products: f64,
}

/// One variant's outcome adjusted by its covariate with a pooled `θ`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AdjustedSummary {
    /// The outcome.
    pub post: Summary,
    /// The covariate as a mean summary over the same units.
    pub pre: MeanSummary,
    /// `Σxy`.
    pub sum_products: f64,
    /// The regression coefficient, pooled over the variants compared.
    pub theta: f64,
}

impl AdjustedSummary {
    /// The sample covariance of covariate and outcome (`0` below two units).
    pub fn covariance(&self) -> f64 {
        covariance(
            self.post.count(),
            self.post.mean() * self.post.count() as f64,
            self.pre.sum,
            self.sum_products,
        )
    }
}

fn covariance(n: u64, post_sum: f64, pre_sum: f64, sum_products: f64) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let n = n as f64;
    (sum_products - post_sum * pre_sum / n) / (n - 1.0)
}

impl Moments for AdjustedSummary {
    fn kind(&self) -> MetricKind {
        self.post.kind()
    }

    fn count(&self) -> u64 {
        self.post.count()
    }

    fn mean(&self) -> f64 {
        self.post.mean() - self.theta * self.pre.mean()
    }

    fn unadjusted_mean(&self) -> f64 {
        self.post.mean()
    }

    fn variance(&self) -> f64 {
        if self.post.count() <= 1 {
            return 0.0;
        }
        self.post.variance() + self.theta * self.theta * self.pre.variance()
            - 2.0 * self.theta * self.covariance()
    }

    fn validate(&self) -> Result<(), StatsError> {
        self.post.validate()?;
        self.pre.validate()?;
        if self.pre.n != self.post.count() {
            return Err(StatsError::InvalidSummary {
                reason: "the covariate must cover the same units as the outcome",
            });
        }
        if !self.sum_products.is_finite() || !self.theta.is_finite() {
            return Err(StatsError::InvalidSummary {
                reason: "sum_products and theta must be finite",
            });
        }
        Ok(())
    }
}

fn pooled(a: &Summary, b: &Summary) -> Result<Summary, StatsError> {
    match (a, b) {
        (Summary::Mean(a), Summary::Mean(b)) => Ok(Summary::Mean(MeanSummary::new(
            a.n + b.n,
            a.sum + b.sum,
            a.sum_squares + b.sum_squares,
        ))),
        (Summary::Proportion(a), Summary::Proportion(b)) => Ok(Summary::Proportion(
            crate::ProportionSummary::new(a.n + b.n, a.successes + b.successes),
        )),
        _ => Err(StatsError::MismatchedSummaries),
    }
}

/// Adjusts `baseline` and `treatment` by their covariates with one pooled `θ` (gbstats'
/// `compute_theta`): `θ = cov(x, y) / var(x)` over both variants together, 0 when either
/// pooled variance is 0.
pub fn regression_adjust(
    baseline: (&Summary, &Covariate),
    treatment: (&Summary, &Covariate),
) -> Result<(AdjustedSummary, AdjustedSummary), StatsError> {
    let adjusted = |post: &Summary, covariate: &Covariate| AdjustedSummary {
        post: *post,
        pre: MeanSummary::new(post.count(), covariate.sum, covariate.sum_squares),
        sum_products: covariate.sum_products,
        theta: 0.0,
    };
    let mut a = adjusted(baseline.0, baseline.1);
    let mut b = adjusted(treatment.0, treatment.1);
    a.validate()?;
    b.validate()?;
    let joint_post = pooled(&a.post, &b.post)?;
    let joint_pre = MeanSummary::new(
        a.pre.n + b.pre.n,
        a.pre.sum + b.pre.sum,
        a.pre.sum_squares + b.pre.sum_squares,
    );
    if joint_pre.variance() == 0.0 || joint_post.variance() == 0.0 {
        return Ok((a, b));
    }
    let joint_covariance = covariance(
        joint_post.count(),
        joint_post.mean() * joint_post.count() as f64,
        joint_pre.sum,
        a.sum_products + b.sum_products,
    );
    let theta = joint_covariance / joint_pre.variance();
    a.theta = theta;
    b.theta = theta;
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProportionSummary;

    fn unit_sums(pairs: &[(f64, f64)]) -> (Summary, Covariate) {
        let mut post = MeanSummary::new(0, 0.0, 0.0);
        let mut covariate = Covariate::default();
        for (x, y) in pairs {
            post.push(*y);
            covariate.sum += x;
            covariate.sum_squares += x * x;
            covariate.sum_products += x * y;
        }
        (Summary::Mean(post), covariate)
    }

    #[test]
    fn theta_is_the_pooled_least_squares_slope() {
        // y = 2x + noise-free offset per arm: the pooled slope is exactly 2.
        let a = unit_sums(&[(1.0, 3.0), (2.0, 5.0), (3.0, 7.0)]);
        let b = unit_sums(&[(1.0, 4.0), (2.0, 6.0), (4.0, 10.0)]);
        let (adjusted_a, adjusted_b) = regression_adjust((&a.0, &a.1), (&b.0, &b.1)).unwrap();
        assert!((adjusted_a.theta - 2.0).abs() < 0.2, "{}", adjusted_a.theta);
        assert_eq!(adjusted_a.theta, adjusted_b.theta);
        assert_eq!(adjusted_a.unadjusted_mean(), 5.0);
    }

    #[test]
    fn a_covariate_without_variance_leaves_the_summaries_unadjusted() {
        let post = Summary::Proportion(ProportionSummary::new(100, 80));
        let flat = Covariate {
            sum: 50.0,
            sum_squares: 25.0,
            sum_products: 40.0,
        };
        let (a, b) = regression_adjust((&post, &flat), (&post, &flat)).unwrap();
        assert_eq!(a.theta, 0.0);
        assert_eq!(a.mean(), 0.8);
        assert_eq!(b.variance(), post.variance());
    }

    #[test]
    fn a_covariate_over_other_units_is_refused() {
        let post = Summary::Mean(MeanSummary::new(1, 2.0, 4.0));
        let bad = Covariate {
            sum: f64::NAN,
            ..Covariate::default()
        };
        assert!(regression_adjust((&post, &bad), (&post, &Covariate::default())).is_err());
    }
}
