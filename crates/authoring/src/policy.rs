//! Rollout policies (`rollouts/<flag>.yaml`): how a treatment variant ramps in one environment,
//! what must not regress on the way, and when it is promoted.
//!
//! This module defines the schema and decodes it with locations; the control loop
//! consumes [`RolloutPolicy`], which is also `serde`-(de)serializable as JSON so it can be stored
//! with each decision. The file format is documented in `docs/companion.md`.

use std::fmt;

use crate::yaml::{Located, Node, Reader, get};

/// The metrics a policy can name, computed per variant by the control loop.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Share of calls with status `success`.
    SuccessRate,
    /// Share of calls with status `error`.
    ErrorRate,
    /// Median latency.
    LatencyP50Ms,
    /// 95th-percentile latency.
    LatencyP95Ms,
    /// 99th-percentile latency.
    LatencyP99Ms,
    /// Mean cost of a call.
    CostPerRequestUsd,
    /// Total cost over successful calls.
    CostPerSuccessUsd,
    /// Mean input tokens.
    InputTokens,
    /// Mean output tokens.
    OutputTokens,
    /// Share of outputs that failed to parse.
    ParserFailureRate,
    /// Share of calls the model refused.
    RefusalRate,
    /// Share of outputs flagged as hallucinated.
    HallucinationRate,
    /// Share of calls whose output cited a source that was not provided.
    CitationMismatchRate,
    /// Share of calls with an undeclared tool call or arguments failing its schema.
    ToolCallMismatchRate,
    /// Share of calls whose output held numbers absent from the input and sources.
    UnsupportedNumericClaimRate,
    /// Mean score of the sampled LLM judge, over the calls it judged (higher is better).
    JudgeScore,
}

impl Metric {
    /// Every metric, for messages.
    pub const ALL: [Metric; 16] = [
        Metric::SuccessRate,
        Metric::ErrorRate,
        Metric::LatencyP50Ms,
        Metric::LatencyP95Ms,
        Metric::LatencyP99Ms,
        Metric::CostPerRequestUsd,
        Metric::CostPerSuccessUsd,
        Metric::InputTokens,
        Metric::OutputTokens,
        Metric::ParserFailureRate,
        Metric::RefusalRate,
        Metric::HallucinationRate,
        Metric::CitationMismatchRate,
        Metric::ToolCallMismatchRate,
        Metric::UnsupportedNumericClaimRate,
        Metric::JudgeScore,
    ];

    /// The name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::SuccessRate => "success_rate",
            Metric::ErrorRate => "error_rate",
            Metric::LatencyP50Ms => "latency_p50_ms",
            Metric::LatencyP95Ms => "latency_p95_ms",
            Metric::LatencyP99Ms => "latency_p99_ms",
            Metric::CostPerRequestUsd => "cost_per_request_usd",
            Metric::CostPerSuccessUsd => "cost_per_success_usd",
            Metric::InputTokens => "input_tokens",
            Metric::OutputTokens => "output_tokens",
            Metric::ParserFailureRate => "parser_failure_rate",
            Metric::RefusalRate => "refusal_rate",
            Metric::HallucinationRate => "hallucination_rate",
            Metric::CitationMismatchRate => "citation_mismatch_rate",
            Metric::ToolCallMismatchRate => "tool_call_mismatch_rate",
            Metric::UnsupportedNumericClaimRate => "unsupported_numeric_claim_rate",
            Metric::JudgeScore => "judge_score",
        }
    }

    /// True when a higher value is better (`success_rate` and `judge_score`); a regression is a
    /// move the other way.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::SuccessRate | Metric::JudgeScore)
    }

    /// True for metrics that are shares in `[0, 1]`.
    pub fn is_rate(self) -> bool {
        matches!(
            self,
            Metric::SuccessRate
                | Metric::ErrorRate
                | Metric::ParserFailureRate
                | Metric::RefusalRate
                | Metric::HallucinationRate
                | Metric::CitationMismatchRate
                | Metric::ToolCallMismatchRate
                | Metric::UnsupportedNumericClaimRate
        )
    }

    fn parse(text: &str) -> Option<Metric> {
        Metric::ALL
            .into_iter()
            .find(|metric| metric.as_str() == text)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change against the baseline: absolute (in the metric's unit) or relative (a fraction).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// `treatment - baseline`, in the metric's unit (0.005 = half a percentage point of a rate).
    Absolute(f64),
    /// `(treatment - baseline) / baseline` (0.10 = 10 %).
    Relative(f64),
}

/// One ramp stage.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stage {
    /// Percent of units in the treatment.
    pub percent: f64,
    /// The same in slots (1/1000 of a percent), as the split's `weight`.
    pub weight: u32,
    /// How long the stage holds at least.
    pub min_hold_seconds: u64,
    /// Calls the treatment needs at this stage before it may advance.
    pub min_samples: u64,
}

/// A metric that must not regress beyond an allowed change, tested sequentially.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Guardrail {
    /// The metric.
    pub metric: Metric,
    /// The largest regression tolerated (in the metric's bad direction).
    pub max_regression: Change,
}

/// A bound on the treatment's own value that rolls back at once.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HardLimit {
    /// The metric.
    pub metric: Metric,
    /// Crossing this value in the metric's bad direction rolls back.
    pub threshold: f64,
    /// Treatment calls needed before the limit is applied (a point estimate of a handful of
    /// calls is noise); default 100.
    #[serde(default = "default_hard_limit_samples")]
    pub min_samples: u64,
    /// The chance of the limit ever firing, over the whole rollout, on a treatment whose true
    /// value is within it: the limit fires when an always-valid bound of the treatment's value
    /// (the lower bound for a limit it must stay under) crosses the threshold; default 0.01.
    #[serde(default = "default_hard_limit_alpha")]
    pub alpha: f64,
}

/// The default error rate of a hard limit.
pub fn default_hard_limit_alpha() -> f64 {
    0.01
}

fn default_hard_limit_samples() -> u64 {
    100
}

fn default_alpha() -> f64 {
    0.05
}

fn default_tuning_parameter() -> f64 {
    5000.0
}

/// A multi-armed rollout: Thompson sampling on the primary metric moves the lanes of several
/// treatment variants (guardrails still apply to each arm).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BanditPolicy {
    /// The treatment variants, in lane order (the policy's `treatment` is the first).
    pub arms: Vec<String>,
    /// Every arm's smallest share of traffic while it is in play, in percent.
    pub floor_percent: f64,
}

/// The metric the experiment is about.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PrimaryMetric {
    /// The metric.
    pub metric: Metric,
    /// The smallest improvement worth promoting.
    pub minimum_effect: Change,
}

/// What the treatment must show on the primary metric to be promoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// Better than the baseline by at least `minimum_effect`, at the confidence given.
    Better,
    /// Not worse than the baseline by more than `minimum_effect` (a non-inferiority test).
    NotWorse,
}

/// What promotion does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotionAction {
    /// The treatment becomes the flag's baseline and the split is removed.
    Promote,
    /// Stay at the last stage and wait for a person.
    Hold,
}

/// The promotion rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Promotion {
    /// The test on the primary metric.
    pub require: Requirement,
    /// Confidence of the sequential test, in (0, 1).
    pub confidence: f64,
    /// What happens once the last stage has held and the requirement is met.
    pub action: PromotionAction,
}

/// A whole rollout policy.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RolloutPolicy {
    /// The flag (the file stem).
    pub flag: String,
    /// The environment the rollout runs in.
    pub environment: String,
    /// The variant being rolled out (must not be the baseline).
    pub treatment: String,
    /// How often the control loop checks.
    pub check_interval_seconds: u64,
    /// Ramp stages, percent strictly increasing.
    pub stages: Vec<Stage>,
    /// Sequentially tested limits against the baseline.
    pub guardrails: Vec<Guardrail>,
    /// Absolute limits that roll back at once.
    pub hard_limits: Vec<HardLimit>,
    /// The metric the rollout is judged on.
    pub primary_metric: PrimaryMetric,
    /// When and how the treatment is promoted.
    pub promotion: Promotion,
    /// Significance level of the sample-ratio-mismatch check; a mismatch pauses the rollout.
    pub sample_ratio_alpha: f64,
    /// The chance of ever rolling back a treatment that is no worse than allowed, over the whole
    /// rollout and all guardrails together (split evenly between the guardrails); default 0.05.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// The sequential tests' tuning parameter: the total sample size at which the confidence
    /// sequences are tightest; default 5000.
    #[serde(default = "default_tuning_parameter")]
    pub tuning_parameter: f64,
    /// Run as a bandit over several treatments instead of a single ramp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandit: Option<BanditPolicy>,
}

/// Parses a duration: an integer number of seconds, or a number followed by `s`, `m`, `h` or `d`.
pub fn parse_duration(node: &Node) -> Option<u64> {
    match node {
        Node::Int(seconds) => u64::try_from(*seconds).ok(),
        Node::Str(text) => {
            let text = text.trim();
            let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
            let number: u64 = number.parse().ok()?;
            let factor = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                _ => return None,
            };
            number.checked_mul(factor)
        }
        _ => None,
    }
}

fn number(node: &Node) -> Option<f64> {
    match node {
        Node::Int(value) => Some(*value as f64),
        Node::Float(value) if value.is_finite() => Some(*value),
        _ => None,
    }
}

fn metric(
    reader: &mut Reader<'_>,
    fields: &[(Located<String>, Located<Node>)],
    line: u32,
    what: &str,
) -> Option<Metric> {
    let name = reader.required_str(fields, "metric", line, what)?;
    let parsed = Metric::parse(&name.value);
    if parsed.is_none() {
        let known: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
        reader.error(
            name.line,
            "invalid_value",
            format!(
                "{:?} is not a metric; use one of {}",
                name.value,
                known.join(", ")
            ),
        );
    }
    parsed
}

fn change(
    reader: &mut Reader<'_>,
    fields: &[(Located<String>, Located<Node>)],
    key: &str,
    line: u32,
    what: &str,
) -> Option<Change> {
    let Some(node) = get(fields, key) else {
        reader.error(
            line,
            "missing_field",
            format!("{what} is missing the required field `{key}`"),
        );
        return None;
    };
    let bad = |reader: &mut Reader<'_>| {
        reader.error(
            node.line,
            "invalid_value",
            format!("{what}.{key} must be {{absolute: N}} or {{relative: N}} with N >= 0"),
        );
        None
    };
    let Node::Map(entries) = &node.value else {
        return bad(reader);
    };
    match entries.as_slice() {
        [(kind, value)] => match (kind.value.as_str(), number(&value.value)) {
            ("absolute", Some(amount)) if amount >= 0.0 => Some(Change::Absolute(amount)),
            ("relative", Some(amount)) if amount >= 0.0 => Some(Change::Relative(amount)),
            _ => bad(reader),
        },
        _ => bad(reader),
    }
}

/// Decodes a rollout file. Returns the policy (when complete) and the line of `treatment:`.
pub fn decode(
    flag: &str,
    node: &Located<Node>,
    reader: &mut Reader<'_>,
) -> (Option<RolloutPolicy>, u32) {
    let Some(fields) = reader.map(node, "a rollout policy") else {
        return (None, 1);
    };
    reader.unknown_keys(
        fields,
        &[
            "flag",
            "environment",
            "treatment",
            "check_interval",
            "stages",
            "guardrails",
            "hard_limits",
            "primary_metric",
            "promotion",
            "sample_ratio_mismatch",
            "alpha",
            "tuning_parameter",
            "bandit",
        ],
        "a rollout policy",
    );
    let top = node.line;
    reader.name_matches_file(fields, ("rollout", "flag", "flag"), flag);
    let environment = reader.required_str(fields, "environment", top, "the rollout policy");
    let treatment = reader.required_str(fields, "treatment", top, "the rollout policy");
    let treatment_line = treatment.as_ref().map_or(top, |t| t.line);
    let check_interval = match get(fields, "check_interval") {
        Some(interval) => match parse_duration(&interval.value) {
            Some(seconds) if seconds > 0 => Some(seconds),
            _ => {
                reader.error(
                    interval.line,
                    "invalid_value",
                    "check_interval must be a duration such as 5m, 90s or 1h",
                );
                None
            }
        },
        None => Some(300),
    };

    let mut stages = Vec::new();
    let mut stages_ok = true;
    match get(fields, "stages") {
        Some(Located {
            value: Node::Seq(items),
            line,
            ..
        }) => {
            if items.is_empty() {
                reader.error(*line, "missing_field", "a rollout needs at least one stage");
                stages_ok = false;
            }
            let mut previous = 0.0;
            for (index, item) in items.iter().enumerate() {
                let what = format!("stages[{index}]");
                let Some(stage) = reader.map(item, &what) else {
                    stages_ok = false;
                    continue;
                };
                reader.unknown_keys(stage, &["percent", "min_hold", "min_samples"], &what);
                let percent = get(stage, "percent").and_then(|p| number(&p.value));
                let hold = get(stage, "min_hold").and_then(|h| parse_duration(&h.value));
                let samples = get(stage, "min_samples").and_then(|s| match s.value {
                    Node::Int(n) => u64::try_from(n).ok(),
                    _ => None,
                });
                match (percent, hold, samples) {
                    (Some(percent), Some(hold), Some(samples))
                        if percent > previous && percent <= 100.0 =>
                    {
                        previous = percent;
                        stages.push(Stage {
                            percent,
                            weight: (percent * 1000.0).round() as u32,
                            min_hold_seconds: hold,
                            min_samples: samples,
                        });
                    }
                    (Some(_), Some(_), Some(_)) => {
                        reader.error(
                            item.line,
                            "invalid_value",
                            format!(
                                "{what}.percent must be above the previous stage's and at most 100"
                            ),
                        );
                        stages_ok = false;
                    }
                    _ => {
                        reader.error(item.line, "missing_field", format!("{what} needs percent (number), min_hold (duration such as 30m) and min_samples (integer)"));
                        stages_ok = false;
                    }
                }
            }
        }
        Some(other) => {
            reader.error(other.line, "wrong_type", "stages must be a list");
            stages_ok = false;
        }
        None => {
            reader.error(
                top,
                "missing_field",
                "the rollout policy is missing the required field `stages`",
            );
            stages_ok = false;
        }
    }

    let mut guardrails = Vec::new();
    let mut guardrails_ok = true;
    if let Some(list) = get(fields, "guardrails") {
        match &list.value {
            Node::Seq(items) => {
                for (index, item) in items.iter().enumerate() {
                    let what = format!("guardrails[{index}]");
                    let Some(entry) = reader.map(item, &what) else {
                        guardrails_ok = false;
                        continue;
                    };
                    reader.unknown_keys(entry, &["metric", "max_regression"], &what);
                    match (
                        metric(reader, entry, item.line, &what),
                        change(reader, entry, "max_regression", item.line, &what),
                    ) {
                        (Some(metric), Some(max_regression)) => guardrails.push(Guardrail {
                            metric,
                            max_regression,
                        }),
                        _ => guardrails_ok = false,
                    }
                }
            }
            _ => {
                reader.error(list.line, "wrong_type", "guardrails must be a list");
                guardrails_ok = false;
            }
        }
    }

    let mut hard_limits = Vec::new();
    let mut limits_ok = true;
    if let Some(list) = get(fields, "hard_limits") {
        match &list.value {
            Node::Seq(items) => {
                for (index, item) in items.iter().enumerate() {
                    let what = format!("hard_limits[{index}]");
                    let Some(entry) = reader.map(item, &what) else {
                        limits_ok = false;
                        continue;
                    };
                    reader.unknown_keys(
                        entry,
                        &["metric", "threshold", "min_samples", "alpha"],
                        &what,
                    );
                    let metric = metric(reader, entry, item.line, &what);
                    let threshold = get(entry, "threshold").and_then(|t| number(&t.value));
                    let min_samples = match get(entry, "min_samples").map(|s| &s.value) {
                        None => Some(default_hard_limit_samples()),
                        Some(Node::Int(n)) => u64::try_from(*n).ok(),
                        Some(_) => None,
                    };
                    let alpha = match get(entry, "alpha") {
                        None => Some(default_hard_limit_alpha()),
                        Some(node) => number(&node.value).filter(|a| *a > 0.0 && *a < 1.0),
                    };
                    if alpha.is_none() {
                        reader.error(
                            item.line,
                            "invalid_value",
                            format!("{what}.alpha must be a number between 0 and 1"),
                        );
                        limits_ok = false;
                    }
                    if min_samples.is_none() {
                        reader.error(
                            item.line,
                            "invalid_value",
                            format!("{what}.min_samples must be a non-negative integer"),
                        );
                        limits_ok = false;
                    }
                    if threshold.is_none() {
                        reader.error(
                            item.line,
                            "missing_field",
                            format!("{what} needs a numeric `threshold`"),
                        );
                    }
                    match (metric, threshold) {
                        (Some(metric), Some(threshold)) => hard_limits.push(HardLimit {
                            metric,
                            threshold,
                            min_samples: min_samples.unwrap_or(0),
                            alpha: alpha.unwrap_or_else(default_hard_limit_alpha),
                        }),
                        _ => limits_ok = false,
                    }
                }
            }
            _ => {
                reader.error(list.line, "wrong_type", "hard_limits must be a list");
                limits_ok = false;
            }
        }
    }

    let primary = match get(fields, "primary_metric") {
        Some(node) => reader.map(node, "primary_metric").and_then(|entry| {
            reader.unknown_keys(entry, &["metric", "minimum_effect"], "primary_metric");
            let metric = metric(reader, entry, node.line, "primary_metric");
            let effect = change(reader, entry, "minimum_effect", node.line, "primary_metric");
            Some(PrimaryMetric {
                metric: metric?,
                minimum_effect: effect?,
            })
        }),
        None => {
            reader.error(
                top,
                "missing_field",
                "the rollout policy is missing the required field `primary_metric`",
            );
            None
        }
    };

    let promotion = match get(fields, "promotion") {
        Some(node) => reader.map(node, "promotion").and_then(|entry| {
            reader.unknown_keys(entry, &["require", "confidence", "action"], "promotion");
            let require = match reader.required_str(entry, "require", node.line, "promotion") {
                Some(r) if r.value == "better" => Some(Requirement::Better),
                Some(r) if r.value == "not_worse" => Some(Requirement::NotWorse),
                Some(r) => {
                    reader.error(
                        r.line,
                        "invalid_value",
                        "promotion.require must be `better` or `not_worse`",
                    );
                    None
                }
                None => None,
            };
            let confidence = match get(entry, "confidence").map(|c| (c.line, number(&c.value))) {
                Some((_, Some(c))) if c > 0.0 && c < 1.0 => Some(c),
                Some((line, _)) => {
                    reader.error(
                        line,
                        "invalid_value",
                        "promotion.confidence must be a number between 0 and 1, such as 0.95",
                    );
                    None
                }
                None => Some(0.95),
            };
            let action = match reader.optional_str(entry, "action", "promotion") {
                None => Some(PromotionAction::Promote),
                Some(a) if a.value == "promote" => Some(PromotionAction::Promote),
                Some(a) if a.value == "hold" => Some(PromotionAction::Hold),
                Some(a) => {
                    reader.error(
                        a.line,
                        "invalid_value",
                        "promotion.action must be `promote` or `hold`",
                    );
                    None
                }
            };
            Some(Promotion {
                require: require?,
                confidence: confidence?,
                action: action?,
            })
        }),
        None => {
            reader.error(
                top,
                "missing_field",
                "the rollout policy is missing the required field `promotion`",
            );
            None
        }
    };

    let sample_ratio_alpha = match get(fields, "sample_ratio_mismatch") {
        Some(node) => reader.map(node, "sample_ratio_mismatch").and_then(|entry| {
            reader.unknown_keys(entry, &["alpha"], "sample_ratio_mismatch");
            match get(entry, "alpha").and_then(|a| number(&a.value)) {
                Some(alpha) if alpha > 0.0 && alpha < 1.0 => Some(alpha),
                _ => {
                    reader.error(node.line, "invalid_value", "sample_ratio_mismatch.alpha must be a number between 0 and 1, such as 0.001");
                    None
                }
            }
        }),
        None => Some(0.001),
    };

    let unit_interval =
        |reader: &mut Reader<'_>, key: &str, default: f64, upper: f64| match get(fields, key) {
            None => Some(default),
            Some(node) => match number(&node.value) {
                Some(value) if value > 0.0 && value < upper => Some(value),
                _ => {
                    reader.error(
                        node.line,
                        "invalid_value",
                        format!("{key} must be a number above 0 and below {upper}"),
                    );
                    None
                }
            },
        };
    let alpha = unit_interval(reader, "alpha", default_alpha(), 1.0);
    let tuning_parameter = unit_interval(
        reader,
        "tuning_parameter",
        default_tuning_parameter(),
        f64::INFINITY,
    );
    let mut bandit_ok = true;
    let bandit = match get(fields, "bandit") {
        None => None,
        Some(node) => match reader.map(node, "bandit") {
            Some(entry) => {
                reader.unknown_keys(entry, &["arms", "floor_percent"], "bandit");
                let arms: Option<Vec<String>> = match get(entry, "arms").map(|a| &a.value) {
                    Some(Node::Seq(items)) if items.len() >= 2 => items
                        .iter()
                        .map(|item| match &item.value {
                            Node::Str(text) => Some(text.clone()),
                            _ => None,
                        })
                        .collect(),
                    _ => None,
                };
                let floor = match get(entry, "floor_percent") {
                    None => Some(1.0),
                    Some(f) => number(&f.value).filter(|v| *v >= 0.0 && *v <= 50.0),
                };
                match (arms, floor) {
                    (Some(arms), Some(floor_percent)) => Some(BanditPolicy {
                        arms,
                        floor_percent,
                    }),
                    _ => {
                        reader.error(
                            node.line,
                            "invalid_value",
                            "bandit needs `arms` (a list of at least two treatment variants) and an optional `floor_percent` between 0 and 50",
                        );
                        bandit_ok = false;
                        None
                    }
                }
            }
            None => {
                bandit_ok = false;
                None
            }
        },
    };

    let policy = match (
        environment,
        treatment,
        check_interval,
        primary,
        promotion,
        sample_ratio_alpha,
    ) {
        (
            Some(environment),
            Some(treatment),
            Some(check_interval_seconds),
            Some(primary_metric),
            Some(promotion),
            Some(sample_ratio_alpha),
        ) if stages_ok
            && guardrails_ok
            && limits_ok
            && bandit_ok
            && alpha.is_some()
            && tuning_parameter.is_some() =>
        {
            Some(RolloutPolicy {
                flag: flag.to_string(),
                environment: environment.value,
                treatment: treatment.value,
                check_interval_seconds,
                stages,
                guardrails,
                hard_limits,
                primary_metric,
                promotion,
                sample_ratio_alpha,
                alpha: alpha.unwrap_or(default_alpha()),
                tuning_parameter: tuning_parameter.unwrap_or(default_tuning_parameter()),
                bandit,
            })
        }
        _ => None,
    };
    (policy, treatment_line)
}

/// Reads a rollout policy from a YAML file on its own (outside a repository): `flag` names the
/// flag when the file does not say. Every problem is returned with its line.
pub fn read_policy_file(path: &std::path::Path, flag: &str) -> crate::error::Result<RolloutPolicy> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::error::Error::io(path, e))?;
    let file = path.display().to_string();
    let node = crate::yaml::parse(&text)
        .map_err(|e| crate::error::Error::Invalid(format!("{file}:{}: {}", e.line, e.message)))?;
    let mut diagnostics = crate::diagnostic::Diagnostics::default();
    let written = match &node.value {
        Node::Map(entries) => entries
            .iter()
            .find_map(|(k, v)| match (&k.value[..], &v.value) {
                ("flag", Node::Str(name)) => Some(name.clone()),
                _ => None,
            }),
        _ => None,
    };
    let flag = written.unwrap_or_else(|| flag.to_string());
    let policy = {
        let mut reader = Reader::new(file.clone(), &mut diagnostics);
        decode(&flag, &node, &mut reader).0
    };
    let problems: Vec<String> = diagnostics
        .into_sorted()
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect();
    match policy {
        Some(policy) if problems.is_empty() => Ok(policy),
        _ => Err(crate::error::Error::Invalid(format!(
            "{file} is not a valid rollout policy:\n{}",
            problems.join("\n")
        ))),
    }
}
