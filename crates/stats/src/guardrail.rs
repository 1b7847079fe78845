//! Guardrail decisions for the rollout control loop: `Ok`, `Violated` or `Inconclusive`.
//!
//! A guardrail says how much worse than the baseline a metric may get: an absolute or a relative
//! allowed change `m ≥ 0` in the metric's bad direction. The worst acceptable effect (the
//! *threshold*) is `−m` for a higher-is-better metric (success rate) and `+m` for a
//! lower-is-better one (latency, cost, error rate). The decision reads an always-valid
//! confidence sequence for the treatment-minus-baseline effect, so checking it after every
//! batch does not inflate false alarms:
//!
//! - `Violated` when the whole sequence lies beyond the threshold on the bad side (the
//!   treatment is worse than allowed, with confidence);
//! - `Ok` when the whole sequence lies on the good side of the threshold (the treatment is
//!   shown to be no worse than allowed: non-inferiority);
//! - `Inconclusive` otherwise, and whenever the data are still degenerate (no variance yet,
//!   a zero baseline mean); keep collecting.
//!
//! By default each side uses the one-sided sequence at level `alpha`, as GrowthBook's safe
//! rollouts do, so the chance of ever declaring a false violation is at most `alpha`, and so is
//! the chance of ever declaring a false `Ok`. [`GuardrailSides::TwoSided`] uses gbstats 0.8.0's
//! two-sided sequence instead (more conservative on both sides).

use crate::StatsError;
use crate::frequentist::{Alternative, DifferenceType, TestConfig, TestKind, difference_test};
use crate::summary::Moments;
use serde::{Deserialize, Serialize};

/// Which direction of change is good for a metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricDirection {
    /// Success rate, parser validity: up is good.
    #[default]
    HigherIsBetter,
    /// Latency, cost, error, refusal and hallucination rates: down is good.
    LowerIsBetter,
}

/// How much the treatment may worsen the metric, as a non-negative magnitude.
///
/// Serializes as `{"absolute": 0.02}` (two percentage points of a rate, 20 ms of latency) or
/// `{"relative": 0.1}` (10 % of the baseline).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowedChange {
    /// In the metric's units; judged on the absolute difference.
    Absolute(f64),
    /// As a fraction of the baseline mean; judged on the relative difference.
    Relative(f64),
}

impl AllowedChange {
    fn difference_type(self) -> DifferenceType {
        match self {
            AllowedChange::Absolute(_) => DifferenceType::Absolute,
            AllowedChange::Relative(_) => DifferenceType::Relative,
        }
    }

    fn magnitude(self) -> f64 {
        match self {
            AllowedChange::Absolute(value) | AllowedChange::Relative(value) => value,
        }
    }
}

/// Which confidence sequence bounds the decision reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailSides {
    /// Each bound from its own one-sided sequence at `alpha` (GrowthBook safe rollouts).
    #[default]
    OneSided,
    /// Both bounds from the two-sided sequence at `alpha` (gbstats 0.8.0).
    TwoSided,
}

/// A guardrail on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Guardrail {
    /// Which way is good.
    pub direction: MetricDirection,
    /// How much worse than the baseline is still acceptable.
    pub allowed_change: AllowedChange,
    /// Error rate of each kind of decision over the whole rollout.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// The sequential tuning parameter (the total sample size at which the sequence is tightest).
    #[serde(default = "default_tuning_parameter")]
    pub tuning_parameter: f64,
    /// One-sided (default) or two-sided sequence.
    #[serde(default)]
    pub sides: GuardrailSides,
}

fn default_alpha() -> f64 {
    crate::DEFAULT_ALPHA
}

fn default_tuning_parameter() -> f64 {
    crate::DEFAULT_TUNING_PARAMETER
}

/// The verdict on a guardrail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailDecision {
    /// The treatment is shown to be no worse than allowed.
    Ok,
    /// The treatment is shown to be worse than allowed: roll back.
    Violated,
    /// Not enough evidence either way yet.
    Inconclusive,
}

/// A guardrail decision with the statistics behind it (for the audit log).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardrailOutcome {
    /// The verdict.
    pub decision: GuardrailDecision,
    /// The difference the guardrail is judged on.
    pub difference: DifferenceType,
    /// The worst acceptable effect: `−m` (higher is better) or `+m` (lower is better).
    pub threshold: f64,
    /// Point estimate of the effect (0 when degenerate).
    pub effect: f64,
    /// Lower bound of the confidence sequence (`NaN` when degenerate).
    pub ci_lower: f64,
    /// Upper bound of the confidence sequence (`NaN` when degenerate).
    pub ci_upper: f64,
    /// Standard error of the effect (`NaN` when degenerate).
    pub standard_error: f64,
    /// Why the data could not be judged yet, when the decision is `Inconclusive` for that reason
    /// (serialized as its message).
    #[serde(serialize_with = "serialize_error_message")]
    pub degenerate: Option<StatsError>,
}

fn serialize_error_message<S: serde::Serializer>(
    error: &Option<StatsError>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match error {
        Some(error) => serializer.collect_str(error),
        None => serializer.serialize_none(),
    }
}

/// Judges `treatment` against `baseline` under `guardrail`.
///
/// Errors only on an invalid guardrail or summary; degenerate data give an `Inconclusive`
/// outcome with [`GuardrailOutcome::degenerate`] set.
pub fn evaluate_guardrail<M: Moments + ?Sized>(
    baseline: &M,
    treatment: &M,
    guardrail: &Guardrail,
) -> Result<GuardrailOutcome, StatsError> {
    let margin = guardrail.allowed_change.magnitude();
    if !(margin.is_finite() && margin >= 0.0) {
        return Err(StatsError::InvalidMargin { value: margin });
    }
    let difference = guardrail.allowed_change.difference_type();
    let threshold = match guardrail.direction {
        MetricDirection::HigherIsBetter => -margin,
        MetricDirection::LowerIsBetter => margin,
    };
    let config = TestConfig {
        test: TestKind::Sequential,
        alpha: guardrail.alpha,
        tuning_parameter: guardrail.tuning_parameter,
        alternative: Alternative::TwoSided,
    };
    let bounds = match guardrail.sides {
        GuardrailSides::TwoSided => {
            difference_test(baseline, treatment, difference, &config).map(|result| {
                (
                    result.effect,
                    result.ci_lower,
                    result.ci_upper,
                    result.standard_error,
                )
            })
        }
        GuardrailSides::OneSided => {
            let lower = config.with_alternative(Alternative::Greater);
            let upper = config.with_alternative(Alternative::Less);
            difference_test(baseline, treatment, difference, &lower).and_then(|low| {
                difference_test(baseline, treatment, difference, &upper)
                    .map(|high| (low.effect, low.ci_lower, high.ci_upper, low.standard_error))
            })
        }
    };
    let (effect, ci_lower, ci_upper, standard_error) = match bounds {
        Ok(bounds) => bounds,
        Err(error) if error.is_degenerate_data() => {
            return Ok(GuardrailOutcome {
                decision: GuardrailDecision::Inconclusive,
                difference,
                threshold,
                effect: 0.0,
                ci_lower: f64::NAN,
                ci_upper: f64::NAN,
                standard_error: f64::NAN,
                degenerate: Some(error),
            });
        }
        Err(error) => return Err(error),
    };
    let decision = match guardrail.direction {
        MetricDirection::HigherIsBetter if ci_upper < threshold => GuardrailDecision::Violated,
        MetricDirection::HigherIsBetter if ci_lower > threshold => GuardrailDecision::Ok,
        MetricDirection::LowerIsBetter if ci_lower > threshold => GuardrailDecision::Violated,
        MetricDirection::LowerIsBetter if ci_upper < threshold => GuardrailDecision::Ok,
        _ => GuardrailDecision::Inconclusive,
    };
    Ok(GuardrailOutcome {
        decision,
        difference,
        threshold,
        effect,
        ci_lower,
        ci_upper,
        standard_error,
        degenerate: None,
    })
}
