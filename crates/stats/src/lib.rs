//! promptflag-stats: the statistics behind `promptflag analyze` and the rollout control loop.
//!
//! Pure functions over per-variant summary statistics: no I/O, no clock, no global randomness
//! (Thompson sampling takes the caller's [`random::RandomSource`]).
//!
//! - [`summary`]: the inputs, [`MeanSummary`] `{n, sum, sum_squares}` and [`ProportionSummary`]
//!   `{n, successes}`.
//! - [`frequentist`]: fixed-horizon Welch t-tests of treatment against baseline on the absolute
//!   and relative (delta-method) difference, matching GrowthBook's gbstats 0.8.0.
//! - [`sequential`]: always-valid normal-mixture confidence sequences (gbstats'
//!   `SequentialTwoSidedTTest`, and the one-sided variant of GrowthBook's safe rollouts).
//! - [`srm`]: the sample-ratio-mismatch chi-square test (gbstats' `check_srm`).
//! - [`bandit`]: Thompson sampling over Beta and Normal posteriors.
//! - [`guardrail`]: the control loop's `Ok | Violated | Inconclusive` decision.
//! - [`cuped`]: regression adjustment on a pre-exposure covariate (gbstats'
//!   `RegressionAdjustedStatistic`).
//! - [`changepoint`]: Page's CUSUM on a metric's time series, with the change's onset.
//! - [`limit`]: hard limits decided on an always-valid bound of one variant's own value.
//! - [`distributions`], [`special`]: normal, Student-t and chi-square functions, written here
//!   rather than borrowed so their accuracy is under our control.
//!
//! ```
//! use promptflag_stats::{compare, ProportionSummary, Summary, TestConfig};
//!
//! let baseline = Summary::Proportion(ProportionSummary::new(1000, 100));
//! let treatment = Summary::Proportion(ProportionSummary::new(1000, 120));
//! let result = compare(&baseline, &treatment, &TestConfig::fixed(0.05))?;
//! assert!((result.absolute.effect - 0.02).abs() < 1e-12);
//! assert!((result.relative.effect - 0.2).abs() < 1e-12);
//! assert!((result.absolute.p_value - 0.152865).abs() < 1e-6); // as gbstats computes
//! # Ok::<(), promptflag_stats::StatsError>(())
//! ```
//!
//! See `docs/statistics.md` for the formulas, the decision rule and what differs from gbstats.

#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod bandit;
pub mod changepoint;
pub mod cuped;
pub mod distributions;
mod error;
pub mod frequentist;
pub mod guardrail;
pub mod limit;
pub mod random;
pub mod sequential;
pub mod special;
pub mod srm;
pub mod summary;

pub use bandit::{BanditAllocation, ThompsonConfig, thompson_means, thompson_proportions};
pub use cuped::{AdjustedSummary, Covariate, regression_adjust};
pub use error::StatsError;
pub use frequentist::{
    Alternative, Comparison, DEFAULT_ALPHA, DEFAULT_TUNING_PARAMETER, DifferenceType, PooledZTest,
    TestConfig, TestKind, TestResult, compare, difference_test, pooled_two_proportion_z_test,
    two_proportion_test, welch_t_test,
};
pub use guardrail::{
    AllowedChange, Guardrail, GuardrailDecision, GuardrailOutcome, GuardrailSides, MetricDirection,
    evaluate_guardrail,
};
pub use limit::{LimitEvidence, LimitSide, mean_limit, proportion_limit};
pub use random::{RandomSource, SplitMix64, Xoshiro256StarStar};
pub use srm::{SrmResult, sample_ratio_mismatch};
pub use summary::{MeanSummary, MetricKind, Moments, ProportionSummary, Summary};
