//! The sample-ratio-mismatch (SRM) test.
//!
//! If the traffic split a rollout observes is too unlikely under the weights it configured,
//! assignment or logging is broken and no effect estimate can be trusted. This is gbstats'
//! `check_srm`: Pearson's chi-square goodness-of-fit statistic over the arms, with `k − 1`
//! degrees of freedom.

use crate::StatsError;
use crate::distributions::chi_square_sf;
use serde::{Deserialize, Serialize};

/// The threshold below which promptflag's control loop treats the split as mismatched.
pub const DEFAULT_SRM_THRESHOLD: f64 = 0.001;

/// The outcome of a sample-ratio-mismatch test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SrmResult {
    /// Pearson's statistic `Σ (o − e)² / e` over the arms with positive weight.
    pub chi_square: f64,
    /// Number of arms minus one.
    pub degrees_of_freedom: usize,
    /// `P(χ²_df > chi_square)`; 1 when no unit has been observed.
    pub p_value: f64,
}

impl SrmResult {
    /// True when the p-value is below `threshold` (such as [`DEFAULT_SRM_THRESHOLD`]).
    pub fn is_mismatch(&self, threshold: f64) -> bool {
        self.p_value < threshold
    }
}

/// Tests observed per-arm unit counts against the expected weights (any non-negative scale:
/// `[0.5, 0.5]`, `[1, 1]` and `[50, 50]` are the same split).
///
/// As in gbstats, an arm whose weight is zero contributes nothing to the statistic but still
/// counts towards the degrees of freedom, and no traffic at all gives a p-value of 1.
pub fn sample_ratio_mismatch(observed: &[u64], weights: &[f64]) -> Result<SrmResult, StatsError> {
    if observed.len() != weights.len() {
        return Err(StatsError::LengthMismatch {
            observed: observed.len(),
            weights: weights.len(),
        });
    }
    if observed.len() < 2 {
        return Err(StatsError::TooFewArms {
            arms: observed.len(),
        });
    }
    if weights
        .iter()
        .any(|weight| !weight.is_finite() || *weight < 0.0)
    {
        return Err(StatsError::InvalidWeights {
            reason: "weights must be finite and non-negative",
        });
    }
    let total_weight: f64 = weights.iter().sum();
    if total_weight <= 0.0 {
        return Err(StatsError::InvalidWeights {
            reason: "all weights are zero",
        });
    }
    let degrees_of_freedom = observed.len() - 1;
    let total_observed: u64 = observed.iter().sum();
    if total_observed == 0 {
        return Ok(SrmResult {
            chi_square: 0.0,
            degrees_of_freedom,
            p_value: 1.0,
        });
    }
    let total_observed = total_observed as f64;
    let mut chi_square = 0.0;
    for (count, weight) in observed.iter().zip(weights) {
        if *weight <= 0.0 {
            continue;
        }
        let expected = weight / total_weight * total_observed;
        chi_square += (*count as f64 - expected).powi(2) / expected;
    }
    let p_value = chi_square_sf(chi_square, degrees_of_freedom as f64);
    Ok(SrmResult {
        chi_square,
        degrees_of_freedom,
        p_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_input() {
        assert!(matches!(
            sample_ratio_mismatch(&[1, 2], &[1.0]),
            Err(StatsError::LengthMismatch { .. })
        ));
        assert!(matches!(
            sample_ratio_mismatch(&[1], &[1.0]),
            Err(StatsError::TooFewArms { .. })
        ));
        assert!(sample_ratio_mismatch(&[1, 2], &[0.0, 0.0]).is_err());
        assert!(sample_ratio_mismatch(&[1, 2], &[-1.0, 2.0]).is_err());
        assert!(sample_ratio_mismatch(&[1, 2], &[f64::NAN, 2.0]).is_err());
    }

    #[test]
    fn perfect_split_has_p_value_one() {
        let result = sample_ratio_mismatch(&[300, 700], &[3.0, 7.0]).unwrap();
        assert_eq!(result.chi_square, 0.0);
        assert_eq!(result.p_value, 1.0);
        assert!(!result.is_mismatch(DEFAULT_SRM_THRESHOLD));
    }
}
