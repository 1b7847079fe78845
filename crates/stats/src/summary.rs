//! Per-variant summary statistics: the input of every test in this crate.
//!
//! A metric is summarised per variant, without keeping the observations: `{n, sum, sum_squares}`
//! for a mean (latency, cost, tokens) and `{n, successes}` for a proportion (success, error,
//! refusal rate). These are the JSON shapes `promptflag analyze` reads.

use crate::StatsError;
use serde::{Deserialize, Serialize};

/// The mean and variance a test needs from a variant's summary.
///
/// The definitions are gbstats' (`SampleMeanStatistic`, `ProportionStatistic`): the mean is 0 for
/// an empty sample, a sample mean's variance is the unbiased one (0 below two observations), and
/// a proportion's variance is `p (1 − p)`, without the `n / (n − 1)` correction.
pub trait Moments {
    /// Whether this summarises a numeric or a binary metric; only like kinds can be compared.
    fn kind(&self) -> MetricKind;
    /// Number of units (observations).
    fn count(&self) -> u64;
    /// Sample mean (or proportion); 0 when `count` is 0.
    fn mean(&self) -> f64;
    /// The mean before any regression adjustment (CUPED): what a relative effect divides by.
    /// The same as [`Moments::mean`] for an unadjusted summary.
    fn unadjusted_mean(&self) -> f64 {
        self.mean()
    }
    /// Per-unit variance, as gbstats defines it for this kind of metric.
    fn variance(&self) -> f64;
    /// Rejects summaries that no sample could have.
    fn validate(&self) -> Result<(), StatsError>;
}

/// The two kinds of metric a summary can describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A numeric metric (latency, cost, tokens), summarised by [`MeanSummary`].
    Mean,
    /// A binary metric (success, error, refusal), summarised by [`ProportionSummary`].
    Proportion,
}

/// Summary of a numeric metric: the count, the sum and the sum of squares of the observations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanSummary {
    /// Number of observations.
    pub n: u64,
    /// Sum of the observations.
    pub sum: f64,
    /// Sum of the squared observations.
    pub sum_squares: f64,
}

impl MeanSummary {
    /// A summary from its three parts.
    pub fn new(n: u64, sum: f64, sum_squares: f64) -> Self {
        Self {
            n,
            sum,
            sum_squares,
        }
    }

    /// Summarises a slice of observations.
    pub fn from_values(values: &[f64]) -> Self {
        let mut summary = Self::new(0, 0.0, 0.0);
        for value in values {
            summary.push(*value);
        }
        summary
    }

    /// Adds one observation.
    pub fn push(&mut self, value: f64) {
        self.n += 1;
        self.sum += value;
        self.sum_squares += value * value;
    }
}

impl Moments for MeanSummary {
    fn kind(&self) -> MetricKind {
        MetricKind::Mean
    }

    fn count(&self) -> u64 {
        self.n
    }

    fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / self.n as f64
        }
    }

    fn variance(&self) -> f64 {
        if self.n <= 1 {
            return 0.0;
        }
        let n = self.n as f64;
        (self.sum_squares - self.sum * self.sum / n) / (n - 1.0)
    }

    fn validate(&self) -> Result<(), StatsError> {
        if !self.sum.is_finite() || !self.sum_squares.is_finite() {
            return Err(StatsError::InvalidSummary {
                reason: "sum and sum_squares must be finite",
            });
        }
        if self.sum_squares < 0.0 {
            return Err(StatsError::InvalidSummary {
                reason: "sum_squares is negative",
            });
        }
        if self.n == 0 && (self.sum != 0.0 || self.sum_squares != 0.0) {
            return Err(StatsError::InvalidSummary {
                reason: "an empty sample has non-zero sums",
            });
        }
        Ok(())
    }
}

/// Summary of a binary metric: the number of units and how many of them succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProportionSummary {
    /// Number of units.
    pub n: u64,
    /// Number of units with the outcome (success, error, refusal, …).
    pub successes: u64,
}

impl ProportionSummary {
    /// A summary from its two parts.
    pub fn new(n: u64, successes: u64) -> Self {
        Self { n, successes }
    }
}

impl Moments for ProportionSummary {
    fn kind(&self) -> MetricKind {
        MetricKind::Proportion
    }

    fn count(&self) -> u64 {
        self.n
    }

    fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.successes as f64 / self.n as f64
        }
    }

    fn variance(&self) -> f64 {
        let p = self.mean();
        p * (1.0 - p)
    }

    fn validate(&self) -> Result<(), StatsError> {
        if self.successes > self.n {
            return Err(StatsError::InvalidSummary {
                reason: "successes exceed n",
            });
        }
        Ok(())
    }
}

/// Either kind of summary, as read from JSON: `{"n", "sum", "sum_squares"}` is a mean,
/// `{"n", "successes"}` a proportion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Summary {
    /// A numeric metric.
    Mean(MeanSummary),
    /// A binary metric.
    Proportion(ProportionSummary),
}

impl From<MeanSummary> for Summary {
    fn from(summary: MeanSummary) -> Self {
        Summary::Mean(summary)
    }
}

impl From<ProportionSummary> for Summary {
    fn from(summary: ProportionSummary) -> Self {
        Summary::Proportion(summary)
    }
}

impl Moments for Summary {
    fn kind(&self) -> MetricKind {
        match self {
            Summary::Mean(_) => MetricKind::Mean,
            Summary::Proportion(_) => MetricKind::Proportion,
        }
    }

    fn count(&self) -> u64 {
        match self {
            Summary::Mean(summary) => summary.count(),
            Summary::Proportion(summary) => summary.count(),
        }
    }

    fn mean(&self) -> f64 {
        match self {
            Summary::Mean(summary) => summary.mean(),
            Summary::Proportion(summary) => summary.mean(),
        }
    }

    fn variance(&self) -> f64 {
        match self {
            Summary::Mean(summary) => summary.variance(),
            Summary::Proportion(summary) => summary.variance(),
        }
    }

    fn validate(&self) -> Result<(), StatsError> {
        match self {
            Summary::Mean(summary) => summary.validate(),
            Summary::Proportion(summary) => summary.validate(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_summary_moments() {
        let summary = MeanSummary::from_values(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(summary.n, 8);
        assert_eq!(summary.mean(), 5.0);
        // Unbiased variance of the classic example: 32 / 7.
        assert!((summary.variance() - 32.0 / 7.0).abs() < 1e-14);
        assert_eq!(MeanSummary::new(1, 3.0, 9.0).variance(), 0.0);
        assert_eq!(MeanSummary::new(0, 0.0, 0.0).mean(), 0.0);
    }

    #[test]
    fn proportion_variance_has_no_small_sample_correction() {
        let summary = ProportionSummary::new(10, 3);
        assert!((summary.variance() - 0.21).abs() < 1e-15);
        assert!(ProportionSummary::new(3, 4).validate().is_err());
    }

    #[test]
    fn untagged_json_shapes() {
        let mean: Summary =
            serde_json::from_str(r#"{"n": 3, "sum": 6.0, "sum_squares": 14}"#).unwrap();
        assert_eq!(mean, Summary::Mean(MeanSummary::new(3, 6.0, 14.0)));
        let proportion: Summary = serde_json::from_str(r#"{"n": 10, "successes": 4}"#).unwrap();
        assert_eq!(
            proportion,
            Summary::Proportion(ProportionSummary::new(10, 4))
        );
        assert!(serde_json::from_str::<Summary>(r#"{"n": 10}"#).is_err());
    }
}
