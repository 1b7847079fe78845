//! Per-variant metrics from telemetry's per-variant aggregates: requests, success and error
//! rates, p50/p95/p99 latency, time to first token, cost per request and per success, tokens per
//! request, parser-failure, refusal and hallucination rates — and, for each metric, the summary
//! the statistics need ([`MetricSample`]). Pure: the aggregates come in as values.
//!
//! Percentiles are ranked here (nearest rank). Rates are over all requests of the variant.
//!
//! CUPED: when telemetry supplies the success rate's pre-exposure covariate (each call's unit's
//! success rate before its first exposure), [`adjusted_pair`] gives the baseline and an arm as
//! regression-adjusted summaries with a pooled `θ`, and the guardrails and the promotion test
//! use them instead of the raw proportions. The other metrics have no covariate yet.
//!
//! Percentiles are compared with the asymptotic variance of a sample quantile,
//! `p (1 − p) · s(p)²` per unit, where the sparsity `s(p)` (the reciprocal of the density at the
//! quantile) is estimated from order statistics with the Hall–Sheather bandwidth. Cost per
//! success is a ratio of two means, compared with its delta-method variance.

use serde::Serialize;

use promptflag_stats::distributions::{normal_pdf, normal_quantile};
use promptflag_stats::{
    AdjustedSummary, Covariate, MeanSummary, MetricKind, Moments, ProportionSummary, StatsError,
    Summary, regression_adjust,
};

use promptflag_authoring::policy::Metric;
use promptflag_telemetry::read::Aggregate;

/// A metric's summary for the statistics: a proportion, a mean, a quantile or a ratio. All
/// implement [`Moments`], so every guardrail goes through `promptflag_stats::evaluate_guardrail`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetricSample {
    /// `{n, successes}`.
    Proportion(ProportionSummary),
    /// `{n, sum, sum_squares}`.
    Mean(MeanSummary),
    /// A sample quantile with its estimated per-unit variance.
    Quantile {
        /// Observations.
        n: u64,
        /// The quantile's value.
        value: f64,
        /// `p (1 − p) s(p)²`.
        per_unit_variance: f64,
    },
    /// A ratio of means (cost per success) with its delta-method per-unit variance.
    Ratio {
        /// Calls.
        n: u64,
        /// The ratio.
        value: f64,
        /// Delta-method variance per call.
        per_unit_variance: f64,
    },
}

impl Moments for MetricSample {
    fn kind(&self) -> MetricKind {
        match self {
            MetricSample::Proportion(_) => MetricKind::Proportion,
            _ => MetricKind::Mean,
        }
    }

    fn count(&self) -> u64 {
        match self {
            MetricSample::Proportion(summary) => summary.n,
            MetricSample::Mean(summary) => summary.n,
            MetricSample::Quantile { n, .. } | MetricSample::Ratio { n, .. } => *n,
        }
    }

    fn mean(&self) -> f64 {
        match self {
            MetricSample::Proportion(summary) => summary.mean(),
            MetricSample::Mean(summary) => summary.mean(),
            MetricSample::Quantile { value, .. } | MetricSample::Ratio { value, .. } => *value,
        }
    }

    fn variance(&self) -> f64 {
        match self {
            MetricSample::Proportion(summary) => summary.variance(),
            MetricSample::Mean(summary) => summary.variance(),
            MetricSample::Quantile {
                per_unit_variance, ..
            }
            | MetricSample::Ratio {
                per_unit_variance, ..
            } => *per_unit_variance,
        }
    }

    fn validate(&self) -> std::result::Result<(), StatsError> {
        match self {
            MetricSample::Proportion(summary) => summary.validate(),
            MetricSample::Mean(summary) => summary.validate(),
            MetricSample::Quantile {
                value,
                per_unit_variance,
                ..
            }
            | MetricSample::Ratio {
                value,
                per_unit_variance,
                ..
            } => {
                if value.is_finite() && per_unit_variance.is_finite() && *per_unit_variance >= 0.0 {
                    Ok(())
                } else {
                    Err(StatsError::InvalidSummary {
                        reason: "a quantile or ratio summary must be finite",
                    })
                }
            }
        }
    }
}

/// The nearest-rank percentile of sorted values (`q` in `[0, 1]`); 0 when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A sample quantile and its asymptotic per-unit variance (Hall–Sheather sparsity estimate).
pub fn quantile_sample(sorted: &[f64], q: f64) -> MetricSample {
    let n = sorted.len();
    let value = percentile(sorted, q);
    if n < 2 {
        return MetricSample::Quantile {
            n: n as u64,
            value,
            per_unit_variance: 0.0,
        };
    }
    let z = normal_quantile(q);
    let density = normal_pdf(z);
    let bandwidth = (n as f64).powf(-1.0 / 3.0)
        * normal_quantile(0.975).powf(2.0 / 3.0)
        * (1.5 * density * density / (2.0 * z * z + 1.0)).powf(1.0 / 3.0);
    let low = (q - bandwidth).max(0.0);
    let high = (q + bandwidth).min(1.0);
    let sparsity = (percentile(sorted, high) - percentile(sorted, low)) / (high - low).max(1e-12);
    MetricSample::Quantile {
        n: n as u64,
        value,
        per_unit_variance: q * (1.0 - q) * sparsity * sparsity,
    }
}

/// Per-variant metrics over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantMetrics {
    /// The variant.
    pub variant: String,
    /// Calls.
    pub requests: u64,
    /// Successful calls.
    pub successes: u64,
    /// Share of calls with status `success`.
    pub success_rate: f64,
    /// Share of calls with status `error` or `timeout`.
    pub error_rate: f64,
    /// Median latency.
    pub latency_p50_ms: f64,
    /// 95th-percentile latency.
    pub latency_p95_ms: f64,
    /// 99th-percentile latency.
    pub latency_p99_ms: f64,
    /// Median time to first token.
    pub ttft_p50_ms: f64,
    /// 95th-percentile time to first token.
    pub ttft_p95_ms: f64,
    /// Mean cost of a call.
    pub cost_per_request_usd: f64,
    /// Total cost divided by the successful calls (0 without successes).
    pub cost_per_success_usd: f64,
    /// Mean input tokens.
    pub input_tokens: f64,
    /// Mean output tokens.
    pub output_tokens: f64,
    /// Mean input plus output tokens.
    pub tokens_per_request: f64,
    /// Share of calls whose output did not parse.
    pub parser_failure_rate: f64,
    /// Share of calls refused.
    pub refusal_rate: f64,
    /// Share of calls flagged as hallucinated.
    pub hallucination_rate: f64,
    /// Share of calls whose output cited a source that was not provided.
    pub citation_mismatch_rate: f64,
    /// Share of calls with an undeclared or ill-formed tool call.
    pub tool_call_mismatch_rate: f64,
    /// Share of calls with numbers absent from the input and sources.
    pub unsupported_numeric_claim_rate: f64,
    /// Mean judge score over the judged calls (0 when none was judged).
    pub judge_score: f64,
    /// Calls the sampled judge scored.
    pub judged: u64,
    /// The success rate's pre-exposure covariate, when telemetry had unit history (CUPED).
    pub success_covariate: Option<Covariate>,
    /// The summaries behind the statistics, per metric.
    #[serde(skip)]
    samples: Vec<(Metric, MetricSample)>,
}

/// The baseline and an arm as regression-adjusted (CUPED) summaries of `metric`, with one
/// pooled `θ`; `None` when the metric has no covariate or either variant lacks one, so the
/// caller falls back to the raw summaries.
pub fn adjusted_pair(
    baseline: &VariantMetrics,
    arm: &VariantMetrics,
    metric: Metric,
) -> Option<(AdjustedSummary, AdjustedSummary)> {
    let (Some(base_x), Some(arm_x)) = (baseline.covariate(metric), arm.covariate(metric)) else {
        return None;
    };
    let (MetricSample::Proportion(base_y), MetricSample::Proportion(arm_y)) =
        (baseline.sample(metric), arm.sample(metric))
    else {
        return None;
    };
    regression_adjust(
        (&Summary::Proportion(base_y), &base_x),
        (&Summary::Proportion(arm_y), &arm_x),
    )
    .ok()
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl VariantMetrics {
    /// Computes the metrics of one variant from its aggregate.
    pub fn from_aggregate(variant: &str, mut aggregate: Aggregate) -> VariantMetrics {
        aggregate.latencies.sort_by(f64::total_cmp);
        aggregate.ttfts.sort_by(f64::total_cmp);
        VariantMetrics::from_sorted(variant, &aggregate)
    }

    /// Computes the metrics of one variant from an aggregate whose `latencies` and `ttfts` are
    /// already sorted ascending (no copy; for callers that keep them sorted).
    pub fn from_sorted(variant: &str, aggregate: &Aggregate) -> VariantMetrics {
        let requests = aggregate.requests;
        let n = requests as f64;
        let mean = |sum: f64| if requests == 0 { 0.0 } else { sum / n };
        let proportion =
            |count: u64| MetricSample::Proportion(ProportionSummary::new(requests, count));
        let cost_per_success = if aggregate.successes == 0 {
            0.0
        } else {
            aggregate.cost_sum / aggregate.successes as f64
        };
        // Cost per success R = mean(X) / mean(Y), X = cost of a call, Y = 1 on success.
        let ratio = {
            let y_bar = share(aggregate.successes, requests);
            let variance = if requests < 2 || y_bar == 0.0 {
                0.0
            } else {
                let x_bar = aggregate.cost_sum / n;
                let var_x = (aggregate.cost_squares - n * x_bar * x_bar) / (n - 1.0);
                let var_y = (aggregate.successes as f64 - n * y_bar * y_bar) / (n - 1.0);
                let cov = (aggregate.cost_success_sum - n * x_bar * y_bar) / (n - 1.0);
                let r = cost_per_success;
                ((var_x - 2.0 * r * cov + r * r * var_y) / (y_bar * y_bar)).max(0.0)
            };
            MetricSample::Ratio {
                n: requests,
                value: cost_per_success,
                per_unit_variance: variance,
            }
        };
        let samples = vec![
            (Metric::SuccessRate, proportion(aggregate.successes)),
            (Metric::ErrorRate, proportion(aggregate.errors)),
            (
                Metric::LatencyP50Ms,
                quantile_sample(&aggregate.latencies, 0.50),
            ),
            (
                Metric::LatencyP95Ms,
                quantile_sample(&aggregate.latencies, 0.95),
            ),
            (
                Metric::LatencyP99Ms,
                quantile_sample(&aggregate.latencies, 0.99),
            ),
            (
                Metric::CostPerRequestUsd,
                MetricSample::Mean(MeanSummary::new(
                    requests,
                    aggregate.cost_sum,
                    aggregate.cost_squares,
                )),
            ),
            (Metric::CostPerSuccessUsd, ratio),
            (
                Metric::InputTokens,
                MetricSample::Mean(MeanSummary::new(
                    requests,
                    aggregate.input_sum,
                    aggregate.input_squares,
                )),
            ),
            (
                Metric::OutputTokens,
                MetricSample::Mean(MeanSummary::new(
                    requests,
                    aggregate.output_sum,
                    aggregate.output_squares,
                )),
            ),
            (
                Metric::ParserFailureRate,
                proportion(aggregate.parser_failures),
            ),
            (Metric::RefusalRate, proportion(aggregate.refusals)),
            (
                Metric::HallucinationRate,
                proportion(aggregate.hallucinations),
            ),
            (
                Metric::CitationMismatchRate,
                proportion(aggregate.citation_mismatches),
            ),
            (
                Metric::ToolCallMismatchRate,
                proportion(aggregate.tool_call_mismatches),
            ),
            (
                Metric::UnsupportedNumericClaimRate,
                proportion(aggregate.unsupported_numeric_claims),
            ),
            // The judge scores a sample of calls: its mean is over those alone.
            (
                Metric::JudgeScore,
                MetricSample::Mean(MeanSummary::new(
                    aggregate.judged,
                    aggregate.judge_sum,
                    aggregate.judge_squares,
                )),
            ),
        ];
        VariantMetrics {
            variant: variant.to_string(),
            requests,
            successes: aggregate.successes,
            success_rate: share(aggregate.successes, requests),
            error_rate: share(aggregate.errors, requests),
            latency_p50_ms: percentile(&aggregate.latencies, 0.50),
            latency_p95_ms: percentile(&aggregate.latencies, 0.95),
            latency_p99_ms: percentile(&aggregate.latencies, 0.99),
            ttft_p50_ms: percentile(&aggregate.ttfts, 0.50),
            ttft_p95_ms: percentile(&aggregate.ttfts, 0.95),
            cost_per_request_usd: mean(aggregate.cost_sum),
            cost_per_success_usd: cost_per_success,
            input_tokens: mean(aggregate.input_sum),
            output_tokens: mean(aggregate.output_sum),
            tokens_per_request: mean(aggregate.input_sum + aggregate.output_sum),
            parser_failure_rate: share(aggregate.parser_failures, requests),
            refusal_rate: share(aggregate.refusals, requests),
            hallucination_rate: share(aggregate.hallucinations, requests),
            citation_mismatch_rate: share(aggregate.citation_mismatches, requests),
            tool_call_mismatch_rate: share(aggregate.tool_call_mismatches, requests),
            unsupported_numeric_claim_rate: share(aggregate.unsupported_numeric_claims, requests),
            judge_score: if aggregate.judged == 0 {
                0.0
            } else {
                aggregate.judge_sum / aggregate.judged as f64
            },
            judged: aggregate.judged,
            success_covariate: (aggregate.success_covariate.calls_with_history > 0).then_some(
                Covariate {
                    sum: aggregate.success_covariate.sum,
                    sum_squares: aggregate.success_covariate.sum_squares,
                    sum_products: aggregate.success_covariate.sum_products,
                },
            ),
            samples,
        }
    }

    /// The point value of a metric.
    pub fn value(&self, metric: Metric) -> f64 {
        match metric {
            Metric::SuccessRate => self.success_rate,
            Metric::ErrorRate => self.error_rate,
            Metric::LatencyP50Ms => self.latency_p50_ms,
            Metric::LatencyP95Ms => self.latency_p95_ms,
            Metric::LatencyP99Ms => self.latency_p99_ms,
            Metric::CostPerRequestUsd => self.cost_per_request_usd,
            Metric::CostPerSuccessUsd => self.cost_per_success_usd,
            Metric::InputTokens => self.input_tokens,
            Metric::OutputTokens => self.output_tokens,
            Metric::ParserFailureRate => self.parser_failure_rate,
            Metric::RefusalRate => self.refusal_rate,
            Metric::HallucinationRate => self.hallucination_rate,
            Metric::CitationMismatchRate => self.citation_mismatch_rate,
            Metric::ToolCallMismatchRate => self.tool_call_mismatch_rate,
            Metric::UnsupportedNumericClaimRate => self.unsupported_numeric_claim_rate,
            Metric::JudgeScore => self.judge_score,
        }
    }

    /// The pre-exposure covariate of a metric, when there is one (only the success rate's).
    pub fn covariate(&self, metric: Metric) -> Option<Covariate> {
        match metric {
            Metric::SuccessRate => self.success_covariate,
            _ => None,
        }
    }

    /// The statistics summary of a metric.
    pub fn sample(&self, metric: Metric) -> MetricSample {
        self.samples
            .iter()
            .find(|(m, _)| *m == metric)
            .map(|(_, sample)| *sample)
            .unwrap_or(MetricSample::Proportion(ProportionSummary::new(0, 0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptflag_telemetry::read::Observation;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.95), 95.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&values, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn quantile_variance_matches_the_normal_theory() {
        // For N(0, 1) the per-unit variance of the median is π/2 ≈ 1.571.
        let n = 20_001;
        let sorted: Vec<f64> = (1..=n)
            .map(|i| normal_quantile(i as f64 / (n + 1) as f64))
            .collect();
        let MetricSample::Quantile {
            per_unit_variance, ..
        } = quantile_sample(&sorted, 0.5)
        else {
            panic!()
        };
        assert!(
            (per_unit_variance - std::f64::consts::FRAC_PI_2).abs() < 0.05,
            "{per_unit_variance}"
        );
    }

    #[test]
    fn aggregate_metrics() {
        let mut aggregate = Aggregate::default();
        for i in 0..10 {
            aggregate.push(&Observation {
                success: i < 8,
                error: i == 9,
                parser_failure: i == 8,
                latency_ms: f64::from(100 * (i + 1)),
                cost_usd: 0.01,
                input_tokens: 100.0,
                output_tokens: 50.0,
                ..Observation::default()
            });
        }
        let metrics = VariantMetrics::from_aggregate("a", aggregate);
        assert_eq!(metrics.success_rate, 0.8);
        assert_eq!(metrics.error_rate, 0.1);
        assert_eq!(metrics.parser_failure_rate, 0.1);
        assert_eq!(metrics.latency_p50_ms, 500.0);
        assert_eq!(metrics.latency_p95_ms, 1000.0);
        assert!((metrics.cost_per_success_usd - 0.0125).abs() < 1e-12);
        assert_eq!(metrics.tokens_per_request, 150.0);
    }

    #[test]
    fn signal_rates_count_every_call_and_the_judge_averages_the_judged_ones() {
        let mut aggregate = Aggregate::default();
        for i in 0..10 {
            aggregate.push(&Observation {
                success: true,
                citation_mismatch: i < 2,
                tool_call_mismatch: i == 3,
                unsupported_numeric_claims: i < 5,
                judge_score: (i % 5 == 0).then_some(if i == 0 { 0.4 } else { 0.8 }),
                ..Observation::default()
            });
        }
        let metrics = VariantMetrics::from_aggregate("a", aggregate);
        assert_eq!(metrics.value(Metric::CitationMismatchRate), 0.2);
        assert_eq!(metrics.value(Metric::ToolCallMismatchRate), 0.1);
        assert_eq!(metrics.value(Metric::UnsupportedNumericClaimRate), 0.5);
        assert!((metrics.value(Metric::JudgeScore) - 0.6).abs() < 1e-12);
        assert_eq!(metrics.judged, 2);
        let MetricSample::Mean(judge) = metrics.sample(Metric::JudgeScore) else {
            panic!("the judge score is a mean")
        };
        assert_eq!(judge.n, 2);
        assert!(Metric::JudgeScore.higher_is_better());
        assert!(
            Metric::ALL
                .into_iter()
                .any(|m| m.as_str() == "citation_mismatch_rate")
        );
    }
}
