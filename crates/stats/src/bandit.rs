//! Thompson sampling: how much traffic each arm of a bandit should get.
//!
//! Each arm's mean gets a posterior: Beta(`prior_successes + s`, `prior_failures + n − s`) for a
//! proportion (a uniform Beta(1, 1) prior by default), and the normal approximation
//! `N(x̄, s² / n)` for a numeric metric (a flat prior; it needs two observations). Thompson
//! sampling allocates traffic in proportion to each arm's posterior probability of being best,
//! which is estimated here by `draws` joint draws from the posteriors. The randomness comes
//! from the caller's [`RandomSource`], so the same inputs and seed give the same allocation.
//!
//! Arms are sampled in order within each draw, and a tie goes to the arm with the lower index.
//! An optional floor keeps every arm exploring: weight `= floor + (1 − k · floor) · P(best)`.

use crate::StatsError;
use crate::guardrail::MetricDirection;
use crate::random::{RandomSource, beta, standard_normal};
use crate::summary::{MeanSummary, Moments, ProportionSummary};
use serde::{Deserialize, Serialize};

/// How to run Thompson sampling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ThompsonConfig {
    /// Number of joint posterior draws (the Monte-Carlo error of each probability is about
    /// `√(p (1 − p) / draws)`).
    pub draws: u32,
    /// Which way is better for the metric.
    pub direction: MetricDirection,
    /// Weight every arm gets at least; at most `1 / arms`.
    pub minimum_weight: f64,
    /// Beta prior pseudo-successes for proportion arms.
    pub prior_successes: f64,
    /// Beta prior pseudo-failures for proportion arms.
    pub prior_failures: f64,
}

impl Default for ThompsonConfig {
    fn default() -> Self {
        Self {
            draws: 10_000,
            direction: MetricDirection::HigherIsBetter,
            minimum_weight: 0.0,
            prior_successes: 1.0,
            prior_failures: 1.0,
        }
    }
}

/// The outcome of Thompson sampling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BanditAllocation {
    /// Estimated posterior probability that each arm is best; sums to 1.
    pub probability_best: Vec<f64>,
    /// Traffic weights after applying the floor; sums to 1.
    pub weights: Vec<f64>,
}

/// Thompson sampling over proportion arms with Beta posteriors.
pub fn thompson_proportions<R: RandomSource + ?Sized>(
    arms: &[ProportionSummary],
    config: &ThompsonConfig,
    rng: &mut R,
) -> Result<BanditAllocation, StatsError> {
    validate(arms.len(), config)?;
    let prior_ok = |value: f64| value.is_finite() && value > 0.0;
    if !prior_ok(config.prior_successes) || !prior_ok(config.prior_failures) {
        return Err(StatsError::InvalidWeights {
            reason: "Beta prior parameters must be positive",
        });
    }
    let mut posteriors = Vec::with_capacity(arms.len());
    for arm in arms {
        arm.validate()?;
        posteriors.push((
            config.prior_successes + arm.successes as f64,
            config.prior_failures + (arm.n - arm.successes) as f64,
        ));
    }
    Ok(allocate(arms.len(), config, rng, |rng, arm| {
        let (a, b) = posteriors[arm];
        beta(rng, a, b)
    }))
}

/// Thompson sampling over numeric arms with normal-approximation posteriors `N(x̄, s² / n)`.
///
/// Every arm needs at least two observations ([`StatsError::InsufficientData`] otherwise).
pub fn thompson_means<R: RandomSource + ?Sized>(
    arms: &[MeanSummary],
    config: &ThompsonConfig,
    rng: &mut R,
) -> Result<BanditAllocation, StatsError> {
    validate(arms.len(), config)?;
    let mut posteriors = Vec::with_capacity(arms.len());
    for (index, arm) in arms.iter().enumerate() {
        arm.validate()?;
        if arm.n < 2 {
            return Err(StatsError::InsufficientData { arm: index });
        }
        // Rounding can make a constant sample's variance slightly negative.
        let standard_error = (arm.variance().max(0.0) / arm.n as f64).sqrt();
        posteriors.push((arm.mean(), standard_error));
    }
    Ok(allocate(arms.len(), config, rng, |rng, arm| {
        let (mean, standard_error) = posteriors[arm];
        mean + standard_error * standard_normal(rng)
    }))
}

fn validate(arms: usize, config: &ThompsonConfig) -> Result<(), StatsError> {
    if arms == 0 {
        return Err(StatsError::TooFewArms { arms });
    }
    if config.draws == 0 {
        return Err(StatsError::InvalidDraws);
    }
    let floor = config.minimum_weight;
    if !(floor.is_finite() && floor >= 0.0 && floor * arms as f64 <= 1.0) {
        return Err(StatsError::InvalidWeights {
            reason: "minimum_weight must be between 0 and 1 / arms",
        });
    }
    Ok(())
}

fn allocate<R: RandomSource + ?Sized>(
    arms: usize,
    config: &ThompsonConfig,
    rng: &mut R,
    mut sample: impl FnMut(&mut R, usize) -> f64,
) -> BanditAllocation {
    let mut wins = vec![0u64; arms];
    for _ in 0..config.draws {
        let mut best_arm = 0;
        let mut best_value = f64::NAN;
        for arm in 0..arms {
            let value = sample(rng, arm);
            let better = match config.direction {
                MetricDirection::HigherIsBetter => value > best_value,
                MetricDirection::LowerIsBetter => value < best_value,
            };
            if arm == 0 || better {
                best_arm = arm;
                best_value = value;
            }
        }
        wins[best_arm] += 1;
    }
    let draws = f64::from(config.draws);
    let probability_best: Vec<f64> = wins.iter().map(|&count| count as f64 / draws).collect();
    let floor = config.minimum_weight;
    let spread = 1.0 - floor * arms as f64;
    let weights = probability_best
        .iter()
        .map(|p| floor + spread * p)
        .collect();
    BanditAllocation {
        probability_best,
        weights,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Xoshiro256StarStar;

    #[test]
    fn clearly_better_arm_gets_nearly_all_traffic() {
        let arms = [
            ProportionSummary::new(1000, 100),
            ProportionSummary::new(1000, 200),
        ];
        let mut rng = Xoshiro256StarStar::seed_from_u64(1);
        let allocation = thompson_proportions(&arms, &ThompsonConfig::default(), &mut rng).unwrap();
        assert!(allocation.probability_best[1] > 0.999);
    }

    #[test]
    fn lower_is_better_flips_the_winner() {
        let arms = [
            MeanSummary::from_values(&[1.0, 2.0, 3.0]),
            MeanSummary::from_values(&[9.0, 10.0, 11.0]),
        ];
        let config = ThompsonConfig {
            direction: MetricDirection::LowerIsBetter,
            ..Default::default()
        };
        let mut rng = Xoshiro256StarStar::seed_from_u64(1);
        let allocation = thompson_means(&arms, &config, &mut rng).unwrap();
        assert_eq!(allocation.probability_best, vec![1.0, 0.0]);
    }

    #[test]
    fn floor_is_applied() {
        let arms = [
            ProportionSummary::new(1000, 100),
            ProportionSummary::new(1000, 300),
        ];
        let config = ThompsonConfig {
            minimum_weight: 0.05,
            ..Default::default()
        };
        let mut rng = Xoshiro256StarStar::seed_from_u64(3);
        let allocation = thompson_proportions(&arms, &config, &mut rng).unwrap();
        assert!((allocation.weights[0] - 0.05).abs() < 1e-12);
        assert!((allocation.weights[1] - 0.95).abs() < 1e-12);
    }

    #[test]
    fn invalid_inputs_are_refused() {
        let mut rng = Xoshiro256StarStar::seed_from_u64(3);
        let config = ThompsonConfig::default();
        assert!(thompson_proportions(&[], &config, &mut rng).is_err());
        let no_draws = ThompsonConfig { draws: 0, ..config };
        assert_eq!(
            thompson_proportions(&[ProportionSummary::new(1, 1)], &no_draws, &mut rng),
            Err(StatsError::InvalidDraws)
        );
        let too_high_floor = ThompsonConfig {
            minimum_weight: 0.6,
            ..config
        };
        let two = [ProportionSummary::new(1, 1), ProportionSummary::new(1, 0)];
        assert!(thompson_proportions(&two, &too_high_floor, &mut rng).is_err());
        let one_observation = [MeanSummary::new(5, 5.0, 7.0), MeanSummary::new(1, 1.0, 1.0)];
        assert_eq!(
            thompson_means(&one_observation, &config, &mut rng),
            Err(StatsError::InsufficientData { arm: 1 })
        );
    }
}
