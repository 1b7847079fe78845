//! The crate's one error type.

use core::fmt;

/// Why a statistic could not be computed.
///
/// Invalid arguments (an `alpha` outside `(0, 1)`, successes above `n`, …) and degenerate data
/// (a zero baseline mean, zero variance) are both reported here. The degenerate cases are the ones
/// where gbstats returns its "default output" (effect 0, CI `[0, 0]`, p-value 1) with an error
/// message; [`StatsError::gbstats_code`] gives that message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StatsError {
    /// `alpha` must be finite and strictly between 0 and 1 (below ½ for one-sided sequential
    /// tests).
    InvalidAlpha {
        /// The value given.
        alpha: f64,
    },
    /// The sequential tuning parameter must be finite and positive.
    InvalidTuningParameter {
        /// The value given.
        value: f64,
    },
    /// A summary is not a possible summary of any sample.
    InvalidSummary {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A proportion summary was compared with a mean summary.
    MismatchedSummaries,
    /// The baseline mean is zero (or the baseline is empty), so gbstats refuses to compute any
    /// effect (`ZERO_NEGATIVE_BASELINE_VARIATION`).
    ZeroBaselineMean,
    /// A variant's variance is zero or undefined (fewer than two observations, or all values or
    /// outcomes alike), so there is no standard error (`ZERO_NEGATIVE_VARIANCE`).
    ZeroVariance,
    /// The SRM test's observed counts and expected weights have different lengths.
    LengthMismatch {
        /// Number of observed counts.
        observed: usize,
        /// Number of weights.
        weights: usize,
    },
    /// Fewer arms than the computation needs (two for an SRM test, one for a bandit).
    TooFewArms {
        /// Number of arms given.
        arms: usize,
    },
    /// A weight or allocation parameter is negative, non-finite, or all weights are zero.
    InvalidWeights {
        /// What is wrong with them.
        reason: &'static str,
    },
    /// Thompson sampling needs at least one draw.
    InvalidDraws,
    /// An arm of a means bandit has fewer than two observations, so it has no posterior.
    InsufficientData {
        /// Index of the arm.
        arm: usize,
    },
    /// A guardrail's allowed change must be finite and non-negative.
    InvalidMargin {
        /// The value given.
        value: f64,
    },
}

impl StatsError {
    /// The error message gbstats 0.8.0 attaches to its default output for the same input, if
    /// gbstats has one.
    pub fn gbstats_code(&self) -> Option<&'static str> {
        match self {
            StatsError::ZeroBaselineMean => Some("ZERO_NEGATIVE_BASELINE_VARIATION"),
            StatsError::ZeroVariance => Some("ZERO_NEGATIVE_VARIANCE"),
            StatsError::MismatchedSummaries => {
                Some("Cannot compare proportion and non-proportion statistics.")
            }
            _ => None,
        }
    }

    /// True for degenerate data (as opposed to invalid arguments): the input is possible, but it
    /// carries no information about the effect yet. A control loop treats these as
    /// "inconclusive, keep collecting".
    pub fn is_degenerate_data(&self) -> bool {
        matches!(
            self,
            StatsError::ZeroBaselineMean
                | StatsError::ZeroVariance
                | StatsError::InsufficientData { .. }
        )
    }
}

impl fmt::Display for StatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsError::InvalidAlpha { alpha } => {
                write!(f, "alpha must be strictly between 0 and 1, got {alpha}")
            }
            StatsError::InvalidTuningParameter { value } => {
                write!(
                    f,
                    "the sequential tuning parameter must be positive, got {value}"
                )
            }
            StatsError::InvalidSummary { reason } => write!(f, "invalid summary: {reason}"),
            StatsError::MismatchedSummaries => {
                write!(f, "cannot compare a proportion summary with a mean summary")
            }
            StatsError::ZeroBaselineMean => write!(f, "the baseline mean is zero"),
            StatsError::ZeroVariance => {
                write!(
                    f,
                    "a variant has zero variance (too few or identical observations)"
                )
            }
            StatsError::LengthMismatch { observed, weights } => write!(
                f,
                "{observed} observed counts but {weights} expected weights"
            ),
            StatsError::TooFewArms { arms } => write!(f, "too few arms: {arms}"),
            StatsError::InvalidWeights { reason } => write!(f, "invalid weights: {reason}"),
            StatsError::InvalidDraws => write!(f, "Thompson sampling needs at least one draw"),
            StatsError::InsufficientData { arm } => {
                write!(f, "arm {arm} has fewer than two observations")
            }
            StatsError::InvalidMargin { value } => write!(
                f,
                "a guardrail's allowed change must be finite and non-negative, got {value}"
            ),
        }
    }
}

impl std::error::Error for StatsError {}
