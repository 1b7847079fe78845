//! Always-valid sequential tests: the asymptotic normal-mixture confidence sequence.
//!
//! This is GrowthBook's sequential testing. A `1 − α` confidence sequence `(C_N)` covers the
//! true effect at every total sample size `N` simultaneously, so a rollout may look at it after
//! every batch of events and stop the first time it excludes a value, with the probability of
//! ever wrongly excluding the truth still at most `α`. The price is a wider interval than the
//! fixed-horizon one.
//!
//! With `σ̂²` the estimated variance of the effect estimate, `N = n_b + n_t`, `s² = σ̂² N` and
//! `V = N ρ² + 1`:
//!
//! - two-sided (gbstats 0.8.0 `SequentialTwoSidedTTest`, eq. 9 of Waudby-Smith et al. 2023,
//!   arXiv:2103.06476v7): half-width `√s² · √(2 V ln(√V / α) / (N ρ)²)`, with
//!   `ρ = √((−2 ln α + ln(−2 ln α + 1)) / τ)` (eq. 161), where `τ` is the tuning parameter,
//!   the `N` at which the sequence is tightest (default 5000). The p-value is the reciprocal of
//!   the mixture e-value, `min(1, √V · exp(−ρ² N Δ̂² / (2 V σ̂² N)))` (eq. 155).
//! - one-sided (GrowthBook's later `SequentialOneSided…TTest`, used by its safe rollouts; the
//!   one-sided normal mixture bound of Howard et al. 2021, eq. 14): half-width
//!   `√(s² · 2V / (N ρ)² · ln(1 + √V / (2α)))`, with `ρ` computed as above from `2α`. The
//!   p-value is the smallest `α` at which that bound (with `ρ` held fixed) excludes 0, which
//!   has the closed form `√V / (2 (exp(ρ² N Δ̂² / (2 V σ̂² N)) − 1))`; GrowthBook finds the same
//!   value by bisection, clamped to `[10⁻⁵, 0.4999]`.

use crate::frequentist::{Alternative, EffectMoments, TestResult};

/// The mixing parameter `ρ` of the normal mixture, chosen so that the confidence sequence is
/// tightest at a total sample size of `tuning_parameter`.
///
/// One-sided sequences use `2α` in place of `α`, as GrowthBook does.
pub fn sequential_rho(alpha: f64, tuning_parameter: f64, two_sided: bool) -> f64 {
    let alpha = if two_sided { alpha } else { 2.0 * alpha };
    let log_term = -2.0 * alpha.ln();
    ((log_term + (log_term + 1.0).ln()) / tuning_parameter).sqrt()
}

/// Half-width of the two-sided confidence sequence for an effect whose estimate has variance
/// `effect_variance`, after `total_count` units over both variants.
pub fn two_sided_halfwidth(effect_variance: f64, total_count: f64, alpha: f64, rho: f64) -> f64 {
    let s2 = effect_variance * total_count;
    let v = total_count * rho * rho + 1.0;
    s2.sqrt() * (2.0 * v * (v.sqrt() / alpha).ln() / (total_count * rho).powi(2)).sqrt()
}

/// Half-width of the one-sided confidence sequence (the distance from the estimate to its one
/// finite bound).
pub fn one_sided_halfwidth(effect_variance: f64, total_count: f64, alpha: f64, rho: f64) -> f64 {
    let s2 = effect_variance * total_count;
    let v = total_count * rho * rho + 1.0;
    let scale = 2.0 * v / (total_count * rho).powi(2);
    (s2 * scale * (1.0 + v.sqrt() / (2.0 * alpha)).ln()).sqrt()
}

/// The confidence sequence, and its p-value, for precomputed effect moments.
pub(crate) fn confidence_sequence(
    moments: &EffectMoments,
    alpha: f64,
    tuning_parameter: f64,
    alternative: Alternative,
) -> TestResult {
    let effect = moments.effect;
    let variance = moments.variance;
    let total = moments.total_count;
    let two_sided = alternative == Alternative::TwoSided;
    let rho = sequential_rho(alpha, tuning_parameter, two_sided);
    let v = total * rho * rho + 1.0;
    // ρ² · (N Δ̂² / σ̂²N) / (2V): the log of the mixture e-value, less ½ ln V.
    let exponent = rho * rho * (effect * effect * total / variance) / (2.0 * v);
    let (ci_lower, ci_upper, p_value) = match alternative {
        Alternative::TwoSided => {
            let width = two_sided_halfwidth(variance, total, alpha, rho);
            // 1 / e-value, computed in logs so a huge e-value gives 0 rather than overflowing.
            let p_value = (0.5 * v.ln() - exponent).exp().min(1.0);
            (effect - width, effect + width, p_value)
        }
        Alternative::Greater => {
            let width = one_sided_halfwidth(variance, total, alpha, rho);
            let p_value = one_sided_p_value(effect > 0.0, exponent, v);
            (effect - width, f64::INFINITY, p_value)
        }
        Alternative::Less => {
            let width = one_sided_halfwidth(variance, total, alpha, rho);
            let p_value = one_sided_p_value(effect < 0.0, exponent, v);
            (f64::NEG_INFINITY, effect + width, p_value)
        }
    };
    TestResult {
        effect,
        ci_lower,
        ci_upper,
        p_value,
        standard_error: variance.sqrt(),
        degrees_of_freedom: None,
    }
}

/// Smallest `α` at which the one-sided bound excludes 0: solve
/// `ln(1 + √V / (2α)) = exponent` for `α`. An estimate on the wrong side never excludes 0.
fn one_sided_p_value(on_tested_side: bool, exponent: f64, v: f64) -> f64 {
    if !on_tested_side {
        return 1.0;
    }
    (v.sqrt() / (2.0 * exponent.exp_m1())).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rho_matches_its_definition() {
        // α = 0.05, τ = 5000: −2 ln 0.05 = 5.991464547…
        let log_term: f64 = -2.0 * 0.05_f64.ln();
        let expected = ((log_term + (log_term + 1.0).ln()) / 5000.0).sqrt();
        assert_eq!(sequential_rho(0.05, 5000.0, true), expected);
        assert_eq!(
            sequential_rho(0.05, 5000.0, false),
            sequential_rho(0.1, 5000.0, true)
        );
    }

    #[test]
    fn one_sided_bound_is_tighter_than_two_sided() {
        let rho_two = sequential_rho(0.05, 5000.0, true);
        let rho_one = sequential_rho(0.05, 5000.0, false);
        for total in [100.0, 5000.0, 1e6] {
            let two = two_sided_halfwidth(1e-4, total, 0.05, rho_two);
            let one = one_sided_halfwidth(1e-4, total, 0.05, rho_one);
            assert!(one < two, "N = {total}");
        }
    }

    #[test]
    fn one_sided_p_value_is_where_the_bound_touches_zero() {
        let rho = sequential_rho(0.05, 5000.0, false);
        let (effect, variance, total) = (0.02, 2.5e-5, 8000.0);
        let v = total * rho * rho + 1.0;
        let exponent = rho * rho * (effect * effect * total / variance) / (2.0 * v);
        let p = one_sided_p_value(true, exponent, v);
        let width = one_sided_halfwidth(variance, total, p, rho);
        assert!(
            (effect - width).abs() < 1e-12,
            "bound at p = {p} is {}",
            effect - width
        );
    }
}
