//! The pure decision of one rollout check: given the policy, where the rollout stands and the
//! per-variant metrics, decide hold, advance, roll back, promote, pause (sample-ratio mismatch)
//! or, for a bandit, reallocate. No I/O and no clock: the control loop feeds it, and tests drive
//! it with scripted metrics.
//!
//! Order of the checks, first match wins:
//! 1. sample-ratio mismatch on this stage's units (`p < sample_ratio_alpha`) → pause: no effect
//!    estimate can be trusted while assignment or logging is broken;
//! 2. hard limits on the treatment's own value (once it has `min_samples` calls) → roll back
//!    when an always-valid bound of that value crosses the limit (the lower bound for a limit
//!    the value must stay under), so a few unlucky calls on a small sample never fire one while
//!    a real breach does at once; each limit fires on a good treatment with chance at most its
//!    `alpha` over the whole rollout (`promptflag_stats::limit`);
//! 3. guardrails, each an always-valid one-sided sequential test against the baseline at
//!    `alpha / number of guardrails` (so the chance of ever rolling back a treatment that is no
//!    worse than allowed stays under `alpha` over the whole rollout) → roll back on a violation;
//! 4. the stage has held `min_hold` and has `min_samples` treatment calls → advance to the next
//!    stage below 100 %; at the last one, promote when the primary metric meets the promotion
//!    rule (a one-sided sequential test at `1 − confidence`), else hold;
//! 5. otherwise hold.

use promptflag_stats::{
    AllowedChange, Alternative, DifferenceType, Guardrail as StatsGuardrail, GuardrailDecision,
    GuardrailOutcome, GuardrailSides, LimitEvidence, LimitSide, MeanSummary, MetricDirection,
    Moments, RandomSource, SrmResult, TestConfig, TestKind, ThompsonConfig, difference_test,
    mean_limit, proportion_limit, sample_ratio_mismatch, thompson_means, thompson_proportions,
};
use serde::{Deserialize, Serialize};

use crate::metrics::{MetricSample, VariantMetrics, adjusted_pair};
use promptflag_authoring::policy::{
    Change, HardLimit, Metric, PromotionAction, Requirement, RolloutPolicy,
};

/// Slots of the 100 000 a split has.
pub const SLOTS: u32 = 100_000;

/// What a check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Keep the current allocation and keep collecting.
    Hold,
    /// Raise the treatment to the next stage.
    Advance,
    /// Take the treatment (or, for a bandit, the failing arms) back to weight 0.
    Rollback,
    /// Make the treatment the baseline: everyone gets it.
    Promote,
    /// Stop acting until a person resumes (sample-ratio mismatch, outside change, conflict).
    Pause,
    /// Bandit: move lane allocations by Thompson sampling.
    Reallocate,
    /// The rollout started (first stage published).
    Start,
    /// A person resumed a paused rollout.
    Resume,
    /// A person aborted the rollout (treatment back to 0).
    Abort,
}

impl Decision {
    /// The name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Hold => "hold",
            Decision::Advance => "advance",
            Decision::Rollback => "rollback",
            Decision::Promote => "promote",
            Decision::Pause => "pause",
            Decision::Reallocate => "reallocate",
            Decision::Start => "start",
            Decision::Resume => "resume",
            Decision::Abort => "abort",
        }
    }
}

/// What a check looks at.
#[derive(Debug, Clone)]
pub struct CheckInput<'a> {
    /// The policy.
    pub policy: &'a RolloutPolicy,
    /// The current stage (index into `policy.stages`).
    pub stage: usize,
    /// Milliseconds the current stage has held.
    pub held_ms: i64,
    /// The baseline since the rollout started.
    pub baseline: &'a VariantMetrics,
    /// Each arm (treatment) since the rollout started, in arm order.
    pub arms: &'a [VariantMetrics],
    /// Each arm's calls in the current stage.
    pub stage_requests: &'a [u64],
    /// Units in the current stage: the baseline's, then each arm's.
    pub stage_units: &'a [u64],
    /// Each arm's current weight in slots.
    pub weights: &'a [u32],
    /// Record a rollback the check would take in [`CheckOutcome::shadow_rollback`] and go on
    /// deciding as if nothing had fired, so one simulated rollout measures when each rule
    /// (the sequential one and the naive one) would first fire on the same traffic. Off in
    /// the control loop.
    pub shadow: bool,
}

/// One guardrail's verdict for one arm.
#[derive(Debug, Clone, Serialize)]
pub struct GuardrailReport {
    /// The metric.
    pub metric: Metric,
    /// The arm.
    pub arm: String,
    /// The baseline's value.
    pub baseline: f64,
    /// The arm's value.
    pub treatment: f64,
    /// The sequential test.
    pub outcome: GuardrailOutcome,
    /// Whether the test ran on CUPED-adjusted summaries (the pre-exposure covariate was there).
    pub cuped: bool,
    /// Whether the naive rule (the observed change is worse than allowed) would fire.
    pub naive_violation: bool,
}

/// One hard limit for one arm.
#[derive(Debug, Clone, Serialize)]
pub struct HardLimitReport {
    /// The metric.
    pub metric: Metric,
    /// The arm.
    pub arm: String,
    /// The arm's value.
    pub value: f64,
    /// The always-valid bound of the arm's value that is compared with the limit (the lower
    /// bound for a limit the value must stay under); `null` while the data cannot bound it.
    pub bound: Option<f64>,
    /// The limit.
    pub threshold: f64,
    /// Whether the arm had enough calls for the limit to apply.
    pub applied: bool,
    /// Whether it was crossed (and applied).
    pub crossed: bool,
}

/// The promotion test on the primary metric.
#[derive(Debug, Clone, Serialize)]
pub struct PrimaryReport {
    /// The metric.
    pub metric: Metric,
    /// Improvement estimate (in the good direction; relative or absolute per the rule).
    pub improvement: f64,
    /// Lower confidence bound of the improvement (`null` while degenerate).
    pub improvement_lower_bound: Option<f64>,
    /// The bound must exceed this.
    pub required: f64,
    /// Whether the promotion rule is met.
    pub met: bool,
}

/// A check's decision with everything behind it (stored with the check and in the audit log).
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    /// The decision.
    pub decision: Decision,
    /// Why, in a sentence.
    pub reason: String,
    /// The arms' weights after the decision (slots), when it changes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_weights: Option<Vec<u32>>,
    /// The stage after the decision.
    pub next_stage: usize,
    /// The sample-ratio test of this stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srm: Option<SrmResult>,
    /// Hard limits.
    pub hard_limits: Vec<HardLimitReport>,
    /// Guardrails.
    pub guardrails: Vec<GuardrailReport>,
    /// The promotion test, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<PrimaryReport>,
    /// Thompson sampling's probability that each of baseline, arms… is best (bandits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability_best: Option<Vec<f64>>,
    /// Whether the naive rule (roll back when an observed change passes a guardrail's
    /// allowance, at any check, once the arm has 100 calls) would roll back here.
    pub naive_rollback: bool,
    /// The naive rule's score: the largest observed worsening as a multiple of its guardrail's
    /// allowance (0 before both variants have 100 calls). The naive rule with its allowances
    /// scaled by `c` fires when this exceeds `c`; `c = 1` is `naive_rollback`.
    pub naive_score: f64,
    /// In shadow mode, the reason the check would have rolled back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_rollback: Option<String>,
}

/// Minimum treatment calls before the naive rule looks (it has no notion of noise).
pub const NAIVE_MIN_CALLS: u64 = 100;

fn direction(metric: Metric) -> MetricDirection {
    if metric.higher_is_better() {
        MetricDirection::HigherIsBetter
    } else {
        MetricDirection::LowerIsBetter
    }
}

fn allowed(change: Change) -> AllowedChange {
    match change {
        Change::Absolute(m) => AllowedChange::Absolute(m),
        Change::Relative(m) => AllowedChange::Relative(m),
    }
}

/// Whether the observed change is worse than allowed (the naive rule).
fn naive_worse(metric: Metric, change: Change, baseline: f64, treatment: f64) -> bool {
    let delta = if metric.higher_is_better() {
        baseline - treatment
    } else {
        treatment - baseline
    };
    match change {
        Change::Absolute(m) => delta > m,
        Change::Relative(m) => baseline != 0.0 && delta / baseline.abs() > m,
    }
}

/// The evidence on one hard limit: the beta-binomial bound for a rate, the normal-mixture one
/// for a mean, quantile or ratio. `None` when the limit cannot be judged (a rate's threshold
/// outside `[0, 1]`, a non-finite threshold or alpha), which never fires it: the policy
/// reader refuses such limits, so this is only reached by a policy built in code.
fn hard_limit_evidence(
    sample: &MetricSample,
    limit: &HardLimit,
    tuning_parameter: f64,
) -> Option<LimitEvidence> {
    let side = if limit.metric.higher_is_better() {
        LimitSide::Below
    } else {
        LimitSide::Above
    };
    match sample {
        MetricSample::Proportion(summary) => {
            proportion_limit(summary, limit.threshold, side, limit.alpha).ok()
        }
        other => mean_limit(other, limit.threshold, side, limit.alpha, tuning_parameter).ok(),
    }
}

/// The observed worsening as a multiple of the allowance (infinite for a worsening under a
/// zero allowance); what the naive rule, scaled, compares with its threshold.
fn naive_score(metric: Metric, change: Change, baseline: f64, treatment: f64) -> f64 {
    let delta = if metric.higher_is_better() {
        baseline - treatment
    } else {
        treatment - baseline
    };
    let (worsening, allowance) = match change {
        Change::Absolute(m) => (delta, m),
        Change::Relative(m) if baseline != 0.0 => (delta / baseline.abs(), m),
        Change::Relative(_) => return 0.0,
    };
    if worsening <= 0.0 {
        0.0
    } else if allowance > 0.0 {
        worsening / allowance
    } else {
        f64::INFINITY
    }
}

/// The lane width for `arms` treatments.
pub fn lane_width(arms: usize) -> u32 {
    SLOTS / (arms.max(1) as u32)
}

/// The promotion test of the primary metric for one arm, on raw or CUPED-adjusted summaries.
pub fn primary_test<M: Moments + ?Sized>(
    policy: &RolloutPolicy,
    baseline: &M,
    arm: &M,
) -> PrimaryReport {
    let metric = policy.primary_metric.metric;
    let higher = metric.higher_is_better();
    let (difference, m) = match policy.primary_metric.minimum_effect {
        Change::Absolute(m) => (DifferenceType::Absolute, m),
        Change::Relative(m) => (DifferenceType::Relative, m),
    };
    let config = TestConfig {
        test: TestKind::Sequential,
        alpha: (1.0 - policy.promotion.confidence).clamp(1e-9, 0.499),
        tuning_parameter: policy.tuning_parameter,
        alternative: if higher {
            Alternative::Greater
        } else {
            Alternative::Less
        },
    };
    let required = match policy.promotion.require {
        Requirement::Better => m,
        Requirement::NotWorse => -m,
    };
    match difference_test(baseline, arm, difference, &config) {
        Ok(result) => {
            let (improvement, bound) = if higher {
                (result.effect, result.ci_lower)
            } else {
                (-result.effect, -result.ci_upper)
            };
            PrimaryReport {
                metric,
                improvement,
                improvement_lower_bound: bound.is_finite().then_some(bound),
                required,
                met: bound.is_finite() && bound > required,
            }
        }
        Err(_) => PrimaryReport {
            metric,
            improvement: 0.0,
            improvement_lower_bound: None,
            required,
            met: false,
        },
    }
}

/// Decides one check. `rng` feeds Thompson sampling (bandits only).
pub fn decide(input: &CheckInput<'_>, rng: &mut dyn RandomSource) -> CheckOutcome {
    let policy = input.policy;
    let mut outcome = CheckOutcome {
        decision: Decision::Hold,
        reason: String::new(),
        new_weights: None,
        next_stage: input.stage,
        srm: None,
        hard_limits: Vec::new(),
        guardrails: Vec::new(),
        primary: None,
        probability_best: None,
        naive_rollback: false,
        naive_score: 0.0,
        shadow_rollback: None,
    };

    // Sample-ratio mismatch over the arms in play.
    let total_weight: u32 = input.weights.iter().sum();
    let mut weights = vec![f64::from(SLOTS.saturating_sub(total_weight))];
    weights.extend(input.weights.iter().map(|w| f64::from(*w)));
    if input.stage_units.len() == weights.len()
        && input.stage_units.iter().sum::<u64>() > 0
        && let Ok(srm) = sample_ratio_mismatch(input.stage_units, &weights)
    {
        outcome.srm = Some(srm);
        if srm.is_mismatch(policy.sample_ratio_alpha) {
            outcome.decision = Decision::Pause;
            outcome.reason = format!(
                "sample-ratio mismatch in stage {}: units {:?} against weights {:?} (p = {:.2e} < {}); assignment or logging is broken, so no effect can be trusted",
                input.stage + 1,
                input.stage_units,
                weights,
                srm.p_value,
                policy.sample_ratio_alpha
            );
            return outcome;
        }
    }

    // Hard limits and guardrails, per arm still in play.
    let guardrail_alpha = policy.alpha / policy.guardrails.len().max(1) as f64;
    let mut failing: Vec<(usize, String)> = Vec::new();
    for (index, arm) in input.arms.iter().enumerate() {
        if input.weights.get(index).copied().unwrap_or(0) == 0 {
            continue;
        }
        for limit in &policy.hard_limits {
            let value = arm.value(limit.metric);
            let applied = arm.requests >= limit.min_samples;
            let evidence =
                hard_limit_evidence(&arm.sample(limit.metric), limit, policy.tuning_parameter);
            let bound = evidence.and_then(|e| e.bound);
            let crossed = applied && evidence.is_some_and(|e| e.crossed);
            if crossed {
                failing.push((
                    index,
                    format!(
                        "{} of {} is {value:.4} and its always-valid {} bound {:.4} is past the hard limit {} ({} calls, alpha {})",
                        limit.metric,
                        arm.variant,
                        if limit.metric.higher_is_better() { "upper" } else { "lower" },
                        bound.unwrap_or(f64::NAN),
                        limit.threshold,
                        arm.requests,
                        limit.alpha
                    ),
                ));
            }
            outcome.hard_limits.push(HardLimitReport {
                metric: limit.metric,
                arm: arm.variant.clone(),
                value,
                bound,
                threshold: limit.threshold,
                applied,
                crossed,
            });
        }
        for guardrail in &policy.guardrails {
            let metric = guardrail.metric;
            let test = StatsGuardrail {
                direction: direction(metric),
                allowed_change: allowed(guardrail.max_regression),
                alpha: guardrail_alpha,
                tuning_parameter: policy.tuning_parameter,
                sides: GuardrailSides::OneSided,
            };
            let baseline_sample = input.baseline.sample(metric);
            let arm_sample = arm.sample(metric);
            let adjusted = adjusted_pair(input.baseline, arm, metric);
            let cuped = adjusted.is_some();
            let evaluated = match &adjusted {
                Some((baseline, treatment)) => {
                    promptflag_stats::evaluate_guardrail(baseline, treatment, &test)
                }
                None => promptflag_stats::evaluate_guardrail(&baseline_sample, &arm_sample, &test),
            };
            let Ok(result) = evaluated else {
                continue;
            };
            let baseline_value = input.baseline.value(metric);
            let arm_value = arm.value(metric);
            let naive_violation = arm.requests >= NAIVE_MIN_CALLS
                && input.baseline.requests >= NAIVE_MIN_CALLS
                && naive_worse(metric, guardrail.max_regression, baseline_value, arm_value);
            outcome.naive_rollback |= naive_violation;
            if arm.requests >= NAIVE_MIN_CALLS && input.baseline.requests >= NAIVE_MIN_CALLS {
                let score =
                    naive_score(metric, guardrail.max_regression, baseline_value, arm_value);
                outcome.naive_score = outcome.naive_score.max(score);
            }
            if result.decision == GuardrailDecision::Violated {
                failing.push((
                    index,
                    format!(
                        "guardrail {metric} on {}: {arm_value:.4} against the baseline's {baseline_value:.4}; the confidence sequence [{:.4}, {:.4}] lies beyond the allowed change {}",
                        arm.variant, result.ci_lower, result.ci_upper, result.threshold
                    ),
                ));
            }
            outcome.guardrails.push(GuardrailReport {
                metric,
                arm: arm.variant.clone(),
                baseline: baseline_value,
                treatment: arm_value,
                outcome: result,
                cuped,
                naive_violation,
            });
        }
    }
    if !failing.is_empty() && input.shadow {
        outcome.shadow_rollback = Some(
            failing
                .iter()
                .map(|(_, why)| why.clone())
                .collect::<Vec<_>>()
                .join("; "),
        );
    } else if !failing.is_empty() {
        let mut new_weights = input.weights.to_vec();
        for (index, _) in &failing {
            if let Some(weight) = new_weights.get_mut(*index) {
                *weight = 0;
            }
        }
        outcome.decision = Decision::Rollback;
        outcome.reason = failing
            .iter()
            .map(|(_, why)| why.clone())
            .collect::<Vec<_>>()
            .join("; ");
        outcome.new_weights = Some(new_weights);
        return outcome;
    }

    let Some(stage) = policy.stages.get(input.stage) else {
        outcome.reason = String::from("no such stage; holding");
        return outcome;
    };
    let held = input.held_ms >= (stage.min_hold_seconds as i64).saturating_mul(1000);
    let in_play: Vec<usize> = (0..input.arms.len())
        .filter(|i| input.weights.get(*i).copied().unwrap_or(0) > 0)
        .collect();
    let enough = in_play
        .iter()
        .all(|i| input.stage_requests.get(*i).copied().unwrap_or(0) >= stage.min_samples);
    if !(held && enough) {
        let samples: Vec<u64> = in_play
            .iter()
            .map(|i| input.stage_requests.get(*i).copied().unwrap_or(0))
            .collect();
        outcome.reason = format!(
            "stage {} ({} %): held {} of {} s, treatment calls {:?} of {}; no guardrail fired",
            input.stage + 1,
            stage.percent,
            input.held_ms / 1000,
            stage.min_hold_seconds,
            samples,
            stage.min_samples
        );
        return outcome;
    }

    if policy.bandit.is_some() {
        return reallocate(input, outcome, &in_play, rng);
    }

    let next = input.stage + 1;
    if let Some(next_stage) = policy.stages.get(next)
        && next_stage.percent < 100.0
    {
        outcome.decision = Decision::Advance;
        outcome.next_stage = next;
        let width = lane_width(input.arms.len());
        outcome.new_weights = Some(vec![next_stage.weight.min(width); input.arms.len()]);
        outcome.reason = format!(
            "stage {} held and sampled; no guardrail fired: advance to {} %",
            input.stage + 1,
            next_stage.percent
        );
        return outcome;
    }

    // The last stage below 100 %: the promotion rule decides.
    let metric = policy.primary_metric.metric;
    let Some(arm) = input.arms.first() else {
        outcome.reason = String::from("no treatment arm");
        return outcome;
    };
    let primary = match adjusted_pair(input.baseline, arm, metric) {
        Some((baseline, treatment)) => primary_test(policy, &baseline, &treatment),
        None => primary_test(policy, &input.baseline.sample(metric), &arm.sample(metric)),
    };
    let met = primary.met;
    outcome.reason = if met {
        format!(
            "{metric} improvement {:.4} with lower bound {:.4} > {:.4} at {} confidence",
            primary.improvement,
            primary.improvement_lower_bound.unwrap_or(f64::NAN),
            primary.required,
            policy.promotion.confidence
        )
    } else {
        format!(
            "last stage held; waiting for {metric} to meet the promotion rule (improvement {:.4}, lower bound {}, needs > {:.4})",
            primary.improvement,
            primary
                .improvement_lower_bound
                .map_or_else(|| String::from("n/a"), |b| format!("{b:.4}")),
            primary.required
        )
    };
    outcome.primary = Some(primary);
    if met {
        match policy.promotion.action {
            PromotionAction::Promote => {
                outcome.decision = Decision::Promote;
                outcome.new_weights = Some(vec![0; input.arms.len()]);
            }
            PromotionAction::Hold => {
                outcome
                    .reason
                    .push_str("; the policy holds for a person to promote");
            }
        }
    }
    outcome
}

fn reallocate(
    input: &CheckInput<'_>,
    mut outcome: CheckOutcome,
    in_play: &[usize],
    rng: &mut dyn RandomSource,
) -> CheckOutcome {
    let policy = input.policy;
    let metric = policy.primary_metric.metric;
    let floor = policy
        .bandit
        .as_ref()
        .map_or(0.0, |b| b.floor_percent / 100.0);
    let config = ThompsonConfig {
        draws: 10_000,
        direction: direction(metric),
        minimum_weight: floor.min(1.0 / (in_play.len() + 1) as f64),
        prior_successes: 1.0,
        prior_failures: 1.0,
    };
    let mut samples = vec![input.baseline.sample(metric)];
    samples.extend(
        in_play
            .iter()
            .filter_map(|i| input.arms.get(*i).map(|a| a.sample(metric))),
    );
    let allocation = if metric.is_rate() {
        let arms: Vec<_> = samples
            .iter()
            .filter_map(|s| match s {
                MetricSample::Proportion(p) => Some(*p),
                _ => None,
            })
            .collect();
        thompson_proportions(&arms, &config, &mut Rng(rng))
    } else {
        let arms: Vec<_> = samples
            .iter()
            .filter_map(|s| match s {
                MetricSample::Mean(m) => Some(*m),
                _ => None,
            })
            .collect::<Vec<MeanSummary>>();
        thompson_means(&arms, &config, &mut Rng(rng))
    };
    let Ok(allocation) = allocation else {
        outcome.reason = format!("bandit: {metric} cannot be sampled yet; holding");
        return outcome;
    };
    let width = lane_width(input.arms.len());
    let mut new_weights = input.weights.to_vec();
    for (slot, index) in in_play.iter().enumerate() {
        let share = allocation.weights.get(slot + 1).copied().unwrap_or(0.0);
        if let Some(weight) = new_weights.get_mut(*index) {
            *weight = ((share * f64::from(SLOTS)).round() as u32).clamp(1, width);
        }
    }
    outcome.decision = if new_weights == input.weights {
        Decision::Hold
    } else {
        Decision::Reallocate
    };
    outcome.reason = format!(
        "bandit on {metric}: P(best) of baseline and arms {:?} → lane weights {:?}",
        allocation
            .probability_best
            .iter()
            .map(|p| (p * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>(),
        new_weights
    );
    outcome.probability_best = Some(allocation.probability_best);
    outcome.new_weights = Some(new_weights);
    outcome
}

/// Adapts a `&mut dyn RandomSource` to the generic samplers.
struct Rng<'a>(&'a mut dyn RandomSource);

impl RandomSource for Rng<'_> {
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptflag_authoring::policy::{PrimaryMetric, Promotion, Stage, default_hard_limit_alpha};
    use promptflag_stats::{RandomSource, Xoshiro256StarStar};
    use promptflag_telemetry::read::{Aggregate, Observation};

    /// A policy with only the 2 % error-rate hard limit, so nothing else can roll back.
    fn policy() -> RolloutPolicy {
        RolloutPolicy {
            flag: String::from("f"),
            environment: String::from("dev"),
            treatment: String::from("t"),
            check_interval_seconds: 300,
            stages: vec![Stage {
                percent: 1.0,
                weight: 1000,
                min_hold_seconds: 3600,
                min_samples: 100_000,
            }],
            guardrails: Vec::new(),
            hard_limits: vec![HardLimit {
                metric: Metric::ErrorRate,
                threshold: 0.02,
                min_samples: 100,
                alpha: default_hard_limit_alpha(),
            }],
            primary_metric: PrimaryMetric {
                metric: Metric::SuccessRate,
                minimum_effect: Change::Absolute(0.01),
            },
            promotion: Promotion {
                require: Requirement::Better,
                confidence: 0.95,
                action: PromotionAction::Promote,
            },
            sample_ratio_alpha: 0.001,
            alpha: 0.05,
            tuning_parameter: 5000.0,
            bandit: None,
        }
    }

    fn variant(name: &str, calls: u64, errors: u64) -> VariantMetrics {
        let mut aggregate = Aggregate::default();
        for i in 0..calls {
            aggregate.push(&Observation {
                success: i >= errors,
                error: i < errors,
                latency_ms: 900.0,
                cost_usd: 0.002,
                ..Observation::default()
            });
        }
        VariantMetrics::from_aggregate(name, aggregate)
    }

    fn check(treatment_calls: u64, treatment_errors: u64) -> CheckOutcome {
        let policy = policy();
        let baseline = variant("b", 15_000, 60);
        let arms = [variant("t", treatment_calls, treatment_errors)];
        decide(
            &CheckInput {
                policy: &policy,
                stage: 0,
                held_ms: 0,
                baseline: &baseline,
                arms: &arms,
                stage_requests: &[treatment_calls],
                stage_units: &[],
                weights: &[1000],
                shadow: false,
            },
            &mut Xoshiro256StarStar::seed_from_u64(1),
        )
    }

    #[test]
    fn a_handful_of_errors_on_a_small_sample_does_not_fire_a_hard_limit() {
        // Four errors in 150 calls is 2.7 %, over the 2 % limit as a raw ratio.
        let outcome = check(150, 4);
        assert_eq!(outcome.decision, Decision::Hold, "{}", outcome.reason);
        let report = &outcome.hard_limits[0];
        assert!(report.value > 0.02 && report.applied && !report.crossed);
        assert!(report.bound.is_some_and(|b| b < 0.02), "{report:?}");
    }

    #[test]
    fn a_real_breach_rolls_back_at_the_first_check() {
        let outcome = check(100, 25);
        assert_eq!(outcome.decision, Decision::Rollback);
        assert!(outcome.reason.contains("hard limit"), "{}", outcome.reason);
        assert!(outcome.hard_limits[0].bound.is_some_and(|b| b > 0.02));
    }

    /// Calls whose unit propensity `p` (Beta, mean 0.8) is their covariate, so it correlates
    /// 0.5 with success; `with_history: false` drops the covariate from the aggregate.
    fn units(
        rng: &mut Xoshiro256StarStar,
        calls: u64,
        shift: f64,
        with_history: bool,
    ) -> VariantMetrics {
        let mut aggregate = Aggregate::default();
        for _ in 0..calls {
            let p = promptflag_stats::random::beta(rng, 2.4, 0.6);
            aggregate.push(&Observation {
                success: rng.next_f64() < p * (1.0 + shift),
                latency_ms: 900.0,
                cost_usd: 0.002,
                pre_success: with_history.then_some(p),
                ..Observation::default()
            });
        }
        VariantMetrics::from_aggregate("v", aggregate)
    }

    fn success_guardrail(baseline: &VariantMetrics, arm: &VariantMetrics) -> GuardrailReport {
        let mut policy = policy();
        policy.hard_limits.clear();
        policy.guardrails = vec![promptflag_authoring::policy::Guardrail {
            metric: Metric::SuccessRate,
            max_regression: Change::Absolute(0.02),
        }];
        let arms = [arm.clone()];
        let outcome = decide(
            &CheckInput {
                policy: &policy,
                stage: 0,
                held_ms: 0,
                baseline,
                arms: &arms,
                stage_requests: &[arm.requests],
                stage_units: &[],
                weights: &[1000],
                shadow: false,
            },
            &mut Xoshiro256StarStar::seed_from_u64(1),
        );
        outcome.guardrails[0].clone()
    }

    #[test]
    fn cuped_narrows_the_guardrail_when_the_covariate_is_there() {
        let draw = |with_history| {
            let mut rng = Xoshiro256StarStar::seed_from_u64(11);
            (
                units(&mut rng, 20_000, 0.0, with_history),
                units(&mut rng, 2_000, -0.1, with_history),
            )
        };
        let (base, arm) = draw(true);
        let adjusted = success_guardrail(&base, &arm);
        let (base, arm) = draw(false);
        let raw = success_guardrail(&base, &arm);
        assert!(adjusted.cuped && !raw.cuped);
        // A covariate correlated 0.5 leaves 75 % of the variance: the standard error shrinks
        // to about 87 % of the raw one (sampling noise aside).
        let ratio = adjusted.outcome.standard_error / raw.outcome.standard_error;
        assert!(ratio > 0.8 && ratio < 0.93, "{ratio}");
        let width = |r: &GuardrailReport| r.outcome.ci_upper - r.outcome.ci_lower;
        assert!(width(&adjusted) < width(&raw));
    }

    #[test]
    fn a_hard_limit_waits_for_its_minimum_samples() {
        let outcome = check(40, 30);
        assert_eq!(outcome.decision, Decision::Hold);
        assert!(!outcome.hard_limits[0].applied);
    }
}
