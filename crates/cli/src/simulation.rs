//! `promptflag simulate`: synthetic LLM traffic driving a real rollout with a simulated clock.
//!
//! Two modes share the traffic model, the policy and the real [`Controller`]:
//!
//! - **through the Worker** ([`run_through_worker`]): the built Worker (Miniflare, started from
//!   the shared harness `tests/support/worker-server.mjs`) assigns every user with
//!   `POST /v1/resolve/{flag}`; the calls go as events to an in-process collector
//!   (`POST /v1/events`, SQLite); the controller reads the collector's database and publishes
//!   each decision through the Worker's admin API, then waits until the Worker serves it (the
//!   revert cycle time of a rollback is measured there, in real milliseconds);
//! - **in process** ([`run_in_process`]), for `--runs 200`: the same controller, publishing to an
//!   in-memory store; users are assigned by `promptflag-core` evaluating the live ruleset (the
//!   evaluation every runtime shares) and the metrics are aggregated in memory.
//!
//! Scenarios: `verbose` (the treatment costs 40 % more per request), `regression` (its success
//! rate drops 8 points), `improvement` (+5 points), `aa` (identical arms).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use promptflag_core::Context;
use promptflag_harness::{Locations, WorkerOptions, WorkerProcess};
use promptflag_stats::random::{beta, standard_normal};
use promptflag_stats::{RandomSource, Xoshiro256StarStar};
use serde::Serialize;
use serde_json::{Value, json};

use anyhow::{Context as _, Result, anyhow};
use promptflag_authoring::build::ruleset_publish_bytes;
use promptflag_authoring::policy::{
    Change, Guardrail, HardLimit, Metric, PrimaryMetric, Promotion, PromotionAction, Requirement,
    RolloutPolicy, Stage,
};
use promptflag_contracts::digest::sha256_hex;
use promptflag_controller::attribution::{AttributionInputs, AttributionQuery};
use promptflag_controller::{
    self as controller, CheckRecord, Clock, Command as LoopCommand, Controller, ControllerConfig,
    Decision, ManualClock, MetricsSource, Snapshot, SnapshotQuery, SqlMetrics, Status,
};
use promptflag_release::audit::AuditLog;
use promptflag_release::memstore::MemoryStore;
use promptflag_release::store::{Http, NoProgress, RetryPolicy, Store, WorkerAdmin};
use promptflag_rollout::attribution::{
    Attribution, AttributionConfig, Baseline, BaselineSource, Degradation, WindowPoint,
    detect_variant, first_attribution,
};
use promptflag_rollout::metrics::VariantMetrics;
use promptflag_telemetry::collector::db::Synchronous;
use promptflag_telemetry::collector::{Collector, CollectorConfig};
use promptflag_telemetry::forensics::{VariantOnset, WindowAggregates};
use promptflag_telemetry::read::{Aggregate, Observation};

/// The flag the simulation rolls out.
pub const FLAG: &str = "sim_prompt";
/// Its baseline variant.
pub const BASELINE: &str = "stable";
/// Its treatment variant.
pub const TREATMENT: &str = "candidate";
/// The environment.
pub const ENVIRONMENT: &str = "dev";
/// Simulated start: 2030-01-01T00:00:00Z.
const START_MS: i64 = 1_893_456_000_000;

/// A scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// The treatment raises cost per request by 40 %.
    Verbose,
    /// The treatment's success rate is 8 points lower.
    Regression,
    /// The treatment's success rate is 5 points higher.
    Improvement,
    /// Identical arms.
    Aa,
}

impl Scenario {
    /// Parses `verbose`, `regression`, `improvement`, `aa`.
    pub fn parse(text: &str) -> Option<Scenario> {
        match text {
            "verbose" => Some(Scenario::Verbose),
            "regression" => Some(Scenario::Regression),
            "improvement" => Some(Scenario::Improvement),
            "aa" => Some(Scenario::Aa),
            _ => None,
        }
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Verbose => "verbose",
            Scenario::Regression => "regression",
            Scenario::Improvement => "improvement",
            Scenario::Aa => "aa",
        }
    }

    /// The decision a perfect controller takes.
    pub fn expected(self) -> &'static str {
        match self {
            Scenario::Verbose | Scenario::Regression => "rollback",
            Scenario::Improvement => "promote",
            Scenario::Aa => "no rollback (hold or, rarely, promote)",
        }
    }
}

/// How a variant behaves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Profile {
    /// P(success).
    pub success: f64,
    /// P(error), among the non-successes.
    pub error: f64,
    /// P(parser failure).
    pub parser_failure: f64,
    /// P(refusal).
    pub refusal: f64,
    /// P(hallucination).
    pub hallucination: f64,
    /// Median latency (log-normal).
    pub latency_median_ms: f64,
    /// Log-normal sigma of latency.
    pub latency_sigma: f64,
    /// Mean output tokens.
    pub output_tokens: f64,
    /// Multiplier of the cost of a call.
    pub cost_factor: f64,
}

/// The baseline's behaviour.
pub const BASE: Profile = Profile {
    success: 0.80,
    error: 0.004,
    parser_failure: 0.01,
    refusal: 0.01,
    hallucination: 0.02,
    latency_median_ms: 900.0,
    latency_sigma: 0.35,
    output_tokens: 150.0,
    cost_factor: 1.0,
};

/// Baseline and treatment of a scenario.
pub fn profiles(scenario: Scenario) -> (Profile, Profile) {
    let treatment = match scenario {
        Scenario::Verbose => Profile {
            cost_factor: 1.4,
            output_tokens: BASE.output_tokens * 1.4,
            ..BASE
        },
        Scenario::Regression => Profile {
            success: BASE.success - 0.08,
            ..BASE
        },
        Scenario::Improvement => Profile {
            success: BASE.success + 0.05,
            ..BASE
        },
        Scenario::Aa => BASE,
    };
    (BASE, treatment)
}

/// Correlation between a call's pre-exposure covariate and its success.
pub const COVARIATE_CORRELATION: f64 = 0.5;

/// The success probability of a call from a unit whose baseline propensity is `propensity`,
/// under `profile`: the propensity scaled so the profile's mean success rate is exact (a drop
/// scales success, a rise scales failure), so no unit's probability leaves `[0, 1]`.
fn success_probability(propensity: f64, profile: &Profile) -> f64 {
    if profile.success <= BASE.success {
        propensity * profile.success / BASE.success
    } else {
        1.0 - (1.0 - propensity) * (1.0 - profile.success) / (1.0 - BASE.success)
    }
}

/// Draws calls of a profile.
///
/// Each call comes from a unit with its own success propensity `p`, drawn from a Beta
/// distribution with the baseline's mean and variance `ρ² s (1 − s)`, so that `p`, which is
/// the unit's long-run success rate before the rollout (its pre-exposure covariate, carried
/// in `pre_success`), correlates `ρ` = [`COVARIATE_CORRELATION`] with the call's success. A
/// call succeeds with the profile's transform of `p`. Every call is drawn independently, as
/// if each came from a fresh unit: repeated calls of one unit would be correlated through `p`,
/// which the call-level tests do not model. The marginal success rate is the profile's, as
/// before the covariate existed.
pub fn observe(rng: &mut Xoshiro256StarStar, profile: &Profile) -> Observation {
    let concentration = 1.0 / (COVARIATE_CORRELATION * COVARIATE_CORRELATION) - 1.0;
    let propensity = beta(
        rng,
        BASE.success * concentration,
        (1.0 - BASE.success) * concentration,
    );
    let success = rng.next_f64() < success_probability(propensity, profile);
    // Errors are a share of the failures, so the error rate stays the profile's.
    let error = !success && rng.next_f64() < profile.error / (1.0 - profile.success);
    let latency = profile.latency_median_ms * (profile.latency_sigma * standard_normal(rng)).exp();
    let ttft = latency * 0.25 * (0.2 * standard_normal(rng)).exp();
    let input = (300.0 + 30.0 * standard_normal(rng)).max(1.0).round();
    // Output length is long-tailed (log-normal, CV ≈ 0.55), which makes cost noisy per call.
    let output = (profile.output_tokens * (0.5 * standard_normal(rng) - 0.125).exp())
        .max(1.0)
        .round();
    // $2.50 per million input tokens, $10 per million output tokens, for the baseline's shape.
    let base_output = output / (profile.output_tokens / BASE.output_tokens);
    let cost = (input * 2.5e-6 + base_output * 1e-5) * profile.cost_factor;
    Observation {
        success,
        error,
        parser_failure: rng.next_f64() < profile.parser_failure,
        refused: rng.next_f64() < profile.refusal,
        hallucinated: rng.next_f64() < profile.hallucination,
        latency_ms: latency.round(),
        ttft_ms: ttft.round(),
        cost_usd: cost,
        input_tokens: input,
        output_tokens: output,
        pre_success: Some(propensity),
        ..Observation::default()
    }
}

/// The policies `simulate` runs.
pub fn preset_policy(preset: &str) -> RolloutPolicy {
    let stage = |percent: f64, hold_minutes: u64, samples: u64| Stage {
        percent,
        weight: (percent * 1000.0).round() as u32,
        min_hold_seconds: hold_minutes * 60,
        min_samples: samples,
    };
    let (check, stages) = if preset == "quick" {
        (
            60,
            vec![stage(10.0, 5, 100), stage(50.0, 5, 200), stage(100.0, 0, 0)],
        )
    } else {
        (
            300,
            vec![
                stage(1.0, 30, 250),
                stage(5.0, 60, 1000),
                stage(10.0, 60, 1500),
                stage(25.0, 60, 2500),
                stage(50.0, 120, 4000),
                stage(100.0, 0, 0),
            ],
        )
    };
    RolloutPolicy {
        flag: FLAG.to_string(),
        environment: ENVIRONMENT.to_string(),
        treatment: TREATMENT.to_string(),
        check_interval_seconds: check,
        stages,
        guardrails: vec![
            Guardrail {
                metric: Metric::SuccessRate,
                max_regression: Change::Absolute(0.02),
            },
            Guardrail {
                metric: Metric::ErrorRate,
                max_regression: Change::Absolute(0.01),
            },
            Guardrail {
                metric: Metric::LatencyP95Ms,
                max_regression: Change::Relative(0.10),
            },
            Guardrail {
                metric: Metric::CostPerRequestUsd,
                max_regression: Change::Relative(0.15),
            },
            Guardrail {
                metric: Metric::HallucinationRate,
                max_regression: Change::Absolute(0.01),
            },
        ],
        hard_limits: vec![HardLimit {
            metric: Metric::ErrorRate,
            threshold: 0.02,
            min_samples: 100,
            alpha: promptflag_authoring::policy::default_hard_limit_alpha(),
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

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The scenario.
    pub scenario: Scenario,
    /// The rollout policy (flag, environment and treatment are forced to the simulation's).
    pub policy: RolloutPolicy,
    /// Calls per simulated minute.
    pub rate_per_minute: u64,
    /// Distinct users.
    pub users: u64,
    /// Simulated hours before a run stops undecided.
    pub max_hours: f64,
    /// Feed the calls' pre-exposure covariate to the metrics (CUPED); the traffic is the same
    /// either way.
    pub cuped: bool,
    /// Never roll back: record what would have fired and go on (see [`power`]).
    pub shadow: bool,
    /// In shadow mode, stop a run once the sequential rule has fired and the naive score has
    /// passed this threshold (both detections are then known).
    pub stop_after_naive: Option<f64>,
}

/// One row of the per-check CSV.
#[derive(Debug, Clone, Serialize)]
pub struct CsvRow {
    /// Check number.
    pub check: u64,
    /// Simulated minutes since the start.
    pub minute: f64,
    /// Stage (1-based) when checked.
    pub stage: usize,
    /// Treatment percent when checked.
    pub percent: f64,
    /// The decision.
    pub decision: String,
    /// Baseline calls so far.
    pub baseline_calls: u64,
    /// Treatment calls so far.
    pub treatment_calls: u64,
    /// Baseline success rate.
    pub baseline_success: f64,
    /// Treatment success rate.
    pub treatment_success: f64,
    /// Lower bound of the success-rate guardrail's sequence (absolute difference).
    pub success_ci_lower: f64,
    /// Upper bound.
    pub success_ci_upper: f64,
    /// Baseline cost per request.
    pub baseline_cost: f64,
    /// Treatment cost per request.
    pub treatment_cost: f64,
    /// Lower bound of the cost guardrail's sequence (relative difference).
    pub cost_ci_lower: f64,
    /// Upper bound.
    pub cost_ci_upper: f64,
    /// Baseline p95 latency.
    pub baseline_p95_ms: f64,
    /// Treatment p95 latency.
    pub treatment_p95_ms: f64,
    /// Baseline error rate.
    pub baseline_error_rate: f64,
    /// Treatment error rate.
    pub treatment_error_rate: f64,
    /// SRM p-value of the stage.
    pub srm_p: f64,
    /// Whether the naive rule would roll back here.
    pub naive_rollback: bool,
    /// The naive rule's score (largest worsening as a multiple of its allowance).
    pub naive_score: f64,
    /// In shadow mode, whether the sequential rule (hard limits and guardrails) would roll back.
    pub would_roll_back: bool,
    /// Revision published by this check.
    pub revision: String,
    /// Milliseconds until the Worker served it.
    pub served_ms: String,
}

impl CsvRow {
    /// The header line.
    pub const HEADER: &'static str = "check,minute,stage,percent,decision,baseline_calls,treatment_calls,baseline_success,treatment_success,success_ci_lower,success_ci_upper,baseline_cost,treatment_cost,cost_ci_lower,cost_ci_upper,baseline_p95_ms,treatment_p95_ms,baseline_error_rate,treatment_error_rate,srm_p,naive_rollback,revision,served_ms,naive_score,would_roll_back";

    /// The row as CSV.
    pub fn line(&self) -> String {
        format!(
            "{},{:.1},{},{},{},{},{},{:.5},{:.5},{:.5},{:.5},{:.7},{:.7},{:.5},{:.5},{},{},{:.5},{:.5},{:.3e},{},{},{},{:.4},{}",
            self.check,
            self.minute,
            self.stage,
            self.percent,
            self.decision,
            self.baseline_calls,
            self.treatment_calls,
            self.baseline_success,
            self.treatment_success,
            self.success_ci_lower,
            self.success_ci_upper,
            self.baseline_cost,
            self.treatment_cost,
            self.cost_ci_lower,
            self.cost_ci_upper,
            self.baseline_p95_ms,
            self.treatment_p95_ms,
            self.baseline_error_rate,
            self.treatment_error_rate,
            self.srm_p,
            self.naive_rollback,
            self.revision,
            self.served_ms,
            self.naive_score,
            self.would_roll_back
        )
    }
}

/// What one run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// The seed.
    pub seed: u64,
    /// Through the Worker or in process.
    pub through_worker: bool,
    /// The decision that ended it (`rollback`, `promote`, `pause`), or `none` at the horizon.
    pub outcome: String,
    /// Every decision other than hold, with its simulated minute.
    pub decisions: Vec<(f64, String)>,
    /// Simulated minutes from the start to the decisive check.
    pub detection_minutes: Option<f64>,
    /// Treatment calls at the decisive check.
    pub detection_treatment_calls: Option<u64>,
    /// All calls (both arms) at the decisive check.
    pub detection_total_calls: Option<u64>,
    /// Wall-clock milliseconds from the start of the run to the decisive check.
    pub detection_wall_ms: Option<u128>,
    /// Simulated minutes from the start (when the treatment began serving, the regression's
    /// onset) to the attribution of a degradation to the treatment's version.
    pub attribution_minutes: Option<f64>,
    /// What the attribution named.
    pub attribution: Option<String>,
    /// Milliseconds from the decisive check to the Worker serving its revision.
    pub revert_cycle_ms: Option<u128>,
    /// After a rollback, whether treatment users were served the baseline by the Worker.
    pub baseline_served_after_rollback: Option<bool>,
    /// What fired at the sequential rule's first rollback (or shadow rollback): `hard limit
    /// <metric>` and `guardrail <metric>` entries; empty when nothing fired.
    pub rollback_causes: Vec<String>,
    /// Whether the naive rule would have rolled back at some check.
    pub naive_rollback: bool,
    /// Simulated minute of the naive rule's first rollback.
    pub naive_minute: Option<f64>,
    /// Checks run.
    pub checks: usize,
    /// Calls generated.
    pub calls: u64,
    /// Wall-clock milliseconds of the run.
    pub wall_ms: u128,
    /// The per-check rows.
    #[serde(skip)]
    pub rows: Vec<CsvRow>,
}

/// Progress of a run: simulated minutes done and the horizon.
pub type ProgressFn<'a> = &'a mut dyn FnMut(f64, f64, &str);

fn guardrail_bounds(record: &CheckRecord, metric: Metric) -> (f64, f64) {
    record
        .outcome
        .as_ref()
        .and_then(|o| o.guardrails.iter().find(|g| g.metric == metric))
        .map_or((f64::NAN, f64::NAN), |g| {
            (g.outcome.ci_lower, g.outcome.ci_upper)
        })
}

fn row(record: &CheckRecord, start_ms: i64) -> CsvRow {
    let empty = VariantMetrics::from_aggregate("", Aggregate::default());
    let baseline = record.baseline.as_ref().unwrap_or(&empty);
    let treatment = record.arms.first().unwrap_or(&empty);
    let (success_ci_lower, success_ci_upper) = guardrail_bounds(record, Metric::SuccessRate);
    let (cost_ci_lower, cost_ci_upper) = guardrail_bounds(record, Metric::CostPerRequestUsd);
    CsvRow {
        check: record.seq,
        minute: (record.time_ms - start_ms) as f64 / 60_000.0,
        stage: record.stage + 1,
        percent: f64::from(record.weights.first().copied().unwrap_or(0)) / 1000.0,
        decision: record.decision.as_str().to_string(),
        baseline_calls: baseline.requests,
        treatment_calls: treatment.requests,
        baseline_success: baseline.success_rate,
        treatment_success: treatment.success_rate,
        success_ci_lower,
        success_ci_upper,
        baseline_cost: baseline.cost_per_request_usd,
        treatment_cost: treatment.cost_per_request_usd,
        cost_ci_lower,
        cost_ci_upper,
        baseline_p95_ms: baseline.latency_p95_ms,
        treatment_p95_ms: treatment.latency_p95_ms,
        baseline_error_rate: baseline.error_rate,
        treatment_error_rate: treatment.error_rate,
        srm_p: record
            .outcome
            .as_ref()
            .and_then(|o| o.srm)
            .map_or(f64::NAN, |s| s.p_value),
        naive_rollback: record.outcome.as_ref().is_some_and(|o| o.naive_rollback),
        naive_score: record.outcome.as_ref().map_or(0.0, |o| o.naive_score),
        would_roll_back: record
            .outcome
            .as_ref()
            .is_some_and(|o| o.shadow_rollback.is_some()),
        revision: record.revision.map_or_else(String::new, |r| r.to_string()),
        served_ms: record.served_ms.map_or_else(String::new, |s| s.to_string()),
    }
}

/// Prompt bodies keyed by their SHA-256.
pub type Bodies = Vec<(String, Vec<u8>)>;

/// The simulation's initial ruleset (revision 1) and the two prompt bodies it names.
pub fn initial_ruleset() -> Result<(Vec<u8>, Bodies)> {
    let stable = b"You are a support assistant. Answer the customer's question about {{product}} politely and completely.\n".to_vec();
    let candidate = b"You are a support assistant. Answer the customer's question about {{product}} in three sentences or fewer.\n".to_vec();
    let (h1, h2) = (sha256_hex(&stable), sha256_hex(&candidate));
    let raw: promptflag_core::RawRuleset = serde_json::from_value(json!({
        "schema": 1, "environment": ENVIRONMENT, "revision": 1, "source": "simulate",
        "prompts": {
            h1.clone(): {"id": "sim_support", "version": "1.0.0", "model": "gpt-4o-mini", "parameters": {"temperature": 0.3}},
            h2.clone(): {"id": "sim_support", "version": "2.0.0", "model": "gpt-4o-mini", "parameters": {"temperature": 0.3}}
        },
        "flags": {FLAG: {"kind": "prompt", "baseline": BASELINE,
            "variants": {BASELINE: {"prompt": h1.clone()}, TREATMENT: {"prompt": h2.clone()}}}}
    }))
    .map_err(|e| anyhow!(format!("the simulation ruleset: {e}")))?;
    promptflag_core::compile(&raw).map_err(|e| anyhow!(e.to_string()))?;
    Ok((
        ruleset_publish_bytes(&raw)?,
        vec![(h1, stable), (h2, candidate)],
    ))
}

/// The prompt family, versions and bodies the simulation's two variants serve.
fn served_prompt(arm: usize) -> (&'static str, &'static str) {
    if arm == 1 {
        ("sim_support", "2.0.0")
    } else {
        ("sim_support", "1.0.0")
    }
}

/// Attribution as the simulation watches it: each check interval is a window; after each, the
/// treatment's windows of the policy's guardrail and hard-limit metrics go through the same
/// change-point detection `promptflag attribute` runs, against the baseline arm, until one
/// degradation is found and attributed. It also keeps the windows for the control loop's own
/// attribution of a rollback (in process).
#[derive(Default)]
struct AttributionWatch {
    metrics: Vec<Metric>,
    window: [Aggregate; 2],
    windows: Vec<WindowAggregates>,
    points: Vec<Vec<WindowPoint>>,
    onsets: Vec<VariantOnset>,
    found: Option<Attribution>,
}

impl AttributionWatch {
    fn new(policy: &RolloutPolicy) -> AttributionWatch {
        let mut metrics: Vec<Metric> = policy
            .hard_limits
            .iter()
            .map(|limit| limit.metric)
            .chain(policy.guardrails.iter().map(|g| g.metric))
            .collect();
        metrics.dedup();
        AttributionWatch {
            points: vec![Vec::new(); metrics.len()],
            metrics,
            ..AttributionWatch::default()
        }
    }

    fn record(&mut self, arm: usize, call: &Observation) {
        self.window[arm].push(call);
    }

    /// Notes the first time an arm is served under a revision (the onset candidates).
    fn served(&mut self, arm: usize, revision: Option<u64>, time_ms: i64) {
        let variant = if arm == 1 { TREATMENT } else { BASELINE };
        if self
            .onsets
            .iter()
            .any(|o| o.variant == variant && o.revision == revision)
        {
            return;
        }
        let (family, version) = served_prompt(arm);
        self.onsets.push(VariantOnset {
            variant: variant.to_string(),
            prompt_id: Some(family.to_string()),
            prompt_version: Some(version.to_string()),
            prompt_hash: None,
            revision,
            first_ms: time_ms,
        });
    }

    /// Closes the window `[start_ms, end_ms)` and, until it has one, looks for an attribution.
    fn close(&mut self, start_ms: i64, end_ms: i64, baseline: &Aggregate, audit: &AuditLog) {
        let [stable, candidate] = std::mem::take(&mut self.window);
        for (metric, points) in self.metrics.iter().zip(&mut self.points) {
            points.push(WindowPoint::of(*metric, start_ms, end_ms, &candidate));
        }
        self.windows.push(WindowAggregates {
            start_ms,
            end_ms,
            variants: vec![
                (BASELINE.to_string(), stable),
                (TREATMENT.to_string(), candidate),
            ],
        });
        if self.found.is_some() {
            return;
        }
        let config = AttributionConfig::default();
        let found: Vec<Degradation> = self
            .metrics
            .iter()
            .zip(&self.points)
            .filter_map(|(metric, points)| {
                let base = Baseline::of(*metric, baseline, BaselineSource::OtherVariants)?;
                detect_variant(FLAG, TREATMENT, *metric, &base, points, &config)
            })
            .collect();
        let publishes =
            controller::attribution::publishes(audit, Some(ENVIRONMENT)).unwrap_or_default();
        self.found = first_attribution(found, &self.onsets, &publishes, end_ms);
    }

    fn inputs(&self, query: &AttributionQuery) -> AttributionInputs {
        AttributionInputs {
            history: Vec::new(),
            series: self
                .windows
                .iter()
                .filter(|w| w.start_ms >= query.from_ms && w.end_ms <= query.to_ms)
                .cloned()
                .collect(),
            onsets: self.onsets.clone(),
        }
    }
}

/// In-memory per-variant aggregates, with this stage's calls and units.
#[derive(Default)]
struct SimData {
    cumulative: [Aggregate; 2],
    sorted_latencies: [usize; 2],
    stage_requests: [u64; 2],
    stage_units: [u64; 2],
    stage_seen: Vec<bool>,
    watch: AttributionWatch,
}

impl SimData {
    fn new_stage(&mut self, users: usize) {
        self.stage_requests = [0, 0];
        self.stage_units = [0, 0];
        self.stage_seen = vec![false; users];
    }

    fn record(&mut self, user: usize, arm: usize, call: &Observation, cuped: bool) {
        self.watch.record(arm, call);
        if cuped {
            self.cumulative[arm].push(call);
        } else {
            self.cumulative[arm].push(&Observation {
                pre_success: None,
                ..*call
            });
        }
        self.stage_requests[arm] += 1;
        if let Some(seen) = self.stage_seen.get_mut(user)
            && !*seen
        {
            *seen = true;
            self.stage_units[arm] += 1;
        }
    }

    /// Keeps latencies sorted so a check sorts nothing: sort the new tail, then merge.
    fn settle(&mut self) {
        for arm in 0..2 {
            let aggregate = &mut self.cumulative[arm];
            for values in [&mut aggregate.latencies, &mut aggregate.ttfts] {
                let done = self.sorted_latencies[arm].min(values.len());
                let mut tail = values.split_off(done);
                tail.sort_by(f64::total_cmp);
                let head = std::mem::take(values);
                *values = merge(head, tail);
            }
            self.sorted_latencies[arm] = aggregate.latencies.len();
        }
    }
}

fn merge(a: Vec<f64>, b: Vec<f64>) -> Vec<f64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

struct SimMetrics(Arc<Mutex<SimData>>);

impl MetricsSource for SimMetrics {
    fn snapshot(&mut self, query: &SnapshotQuery) -> controller::Result<Snapshot> {
        let data = self.0.lock().map_err(|_| {
            controller::Error::Invalid(String::from("simulation data lock poisoned"))
        })?;
        Ok(Snapshot {
            baseline: VariantMetrics::from_sorted(&query.baseline, &data.cumulative[0]),
            arms: vec![VariantMetrics::from_sorted(TREATMENT, &data.cumulative[1])],
            stage_requests: vec![data.stage_requests[1]],
            stage_units: vec![data.stage_units[0], data.stage_units[1]],
        })
    }

    fn attribution_inputs(
        &mut self,
        query: &AttributionQuery,
    ) -> controller::Result<AttributionInputs> {
        let data = self.0.lock().map_err(|_| {
            controller::Error::Invalid(String::from("simulation data lock poisoned"))
        })?;
        Ok(data.watch.inputs(query))
    }
}

fn sim_policy(config: &SimConfig) -> RolloutPolicy {
    let mut policy = config.policy.clone();
    policy.flag = FLAG.to_string();
    policy.environment = ENVIRONMENT.to_string();
    policy.treatment = TREATMENT.to_string();
    policy.bandit = None;
    policy
}

fn start_command(connection: &rusqlite::Connection, policy: &RolloutPolicy) -> Result<()> {
    controller::enqueue_command(
        connection,
        FLAG,
        LoopCommand::Start,
        &json!({ "policy": policy }),
        "simulate",
        "simulation",
        START_MS,
    )?;
    Ok(())
}

/// Follows the records of one tick; returns the decisive record, if any.
#[derive(Default)]
struct Tally {
    rows: Vec<CsvRow>,
    decisions: Vec<(f64, String)>,
    naive_minute: Option<f64>,
    decisive: Option<(CheckRecord, u128)>,
    causes: Option<Vec<String>>,
}

/// What fired in a check that rolled back (or would have, in shadow mode).
fn causes(record: &CheckRecord) -> Option<Vec<String>> {
    let outcome = record.outcome.as_ref()?;
    if record.decision != Decision::Rollback && outcome.shadow_rollback.is_none() {
        return None;
    }
    let mut found: Vec<String> = outcome
        .hard_limits
        .iter()
        .filter(|l| l.crossed)
        .map(|l| format!("hard limit {}", l.metric))
        .collect();
    found.extend(
        outcome
            .guardrails
            .iter()
            .filter(|g| g.outcome.decision == promptflag_stats::GuardrailDecision::Violated)
            .map(|g| format!("guardrail {}", g.metric)),
    );
    Some(found)
}

impl Tally {
    fn take(&mut self, records: Vec<CheckRecord>, wall: &Instant) {
        for record in records {
            let minute = (record.time_ms - START_MS) as f64 / 60_000.0;
            if self.causes.is_none() {
                self.causes = causes(&record);
            }
            if record.baseline.is_some() {
                let row = row(&record, START_MS);
                if row.naive_rollback && self.naive_minute.is_none() {
                    self.naive_minute = Some(minute);
                }
                self.rows.push(row);
            } else if let Some(last) = self.rows.last_mut()
                && record.seq == last.check
            {
                // The publish that followed a check: its revision and serve time.
                last.revision = record.revision.map_or_else(String::new, |r| r.to_string());
                last.served_ms = record.served_ms.map_or_else(String::new, |s| s.to_string());
            }
            if record.decision != Decision::Hold {
                self.decisions
                    .push((minute, record.decision.as_str().to_string()));
            }
            if matches!(
                record.decision,
                Decision::Rollback | Decision::Promote | Decision::Pause
            ) && self.decisive.is_none()
            {
                self.decisive = Some((record, wall.elapsed().as_millis()));
            }
        }
    }
}

fn finish(
    seed: u64,
    through_worker: bool,
    tally: Tally,
    calls: u64,
    wall: Instant,
    baseline_served: Option<bool>,
) -> RunResult {
    let decisive = tally.decisive.as_ref();
    let decisive_row = decisive.and_then(|(record, _)| {
        tally
            .rows
            .iter()
            .find(|r| r.check == record.seq)
            .or(tally.rows.last())
    });
    RunResult {
        seed,
        through_worker,
        outcome: decisive.map_or_else(
            || String::from("none"),
            |(r, _)| r.decision.as_str().to_string(),
        ),
        decisions: tally.decisions.clone(),
        detection_minutes: decisive.map(|(r, _)| (r.time_ms - START_MS) as f64 / 60_000.0),
        detection_treatment_calls: decisive_row.map(|r| r.treatment_calls),
        detection_total_calls: decisive_row.map(|r| r.treatment_calls + r.baseline_calls),
        detection_wall_ms: decisive.map(|(_, wall)| *wall),
        attribution_minutes: None,
        attribution: None,
        revert_cycle_ms: decisive.and_then(|(r, _)| r.served_ms),
        baseline_served_after_rollback: baseline_served,
        rollback_causes: tally.causes.clone().unwrap_or_default(),
        naive_rollback: tally.naive_minute.is_some(),
        naive_minute: tally.naive_minute,
        checks: tally.rows.len(),
        calls,
        wall_ms: wall.elapsed().as_millis(),
        rows: tally.rows,
    }
}

/// A run's result with what the attribution watch found.
fn with_attribution(mut result: RunResult, found: Option<Attribution>) -> RunResult {
    if let Some(found) = found {
        result.attribution_minutes = Some((found.attributed_ms - START_MS) as f64 / 60_000.0);
        result.attribution = Some(promptflag_rollout::attribution::describe(&found));
    }
    result
}

fn controller_for(
    store: Box<dyn Store>,
    metrics: Box<dyn MetricsSource>,
    clock: Arc<ManualClock>,
    state_db: rusqlite::Connection,
    audit: AuditLog,
    (serve, seed, shadow): (Option<(String, String)>, u64, bool),
) -> Result<Controller> {
    Ok(Controller::new(
        state_db,
        audit,
        store,
        metrics,
        clock,
        ControllerConfig {
            actor: String::from("simulate"),
            serve_read_key: serve.as_ref().map(|(_, key)| key.clone()),
            serve_url: serve.map(|(url, _)| url),
            alert_webhook: None,
            wait_timeout: Duration::from_secs(60),
            seed,
            shadow_rollbacks: shadow,
            sync_repo: None,
        },
        Http::new(
            Duration::from_secs(30),
            RetryPolicy {
                attempts: 3,
                base: Duration::from_millis(20),
                max: Duration::from_millis(500),
            },
        ),
    )?)
}

fn running(connection: &rusqlite::Connection) -> Result<bool> {
    Ok(controller::load_state(connection, FLAG)?.is_some_and(|s| s.status == Status::Running))
}

/// One run in process: core assigns users from the live ruleset of an in-memory store.
pub fn run_in_process(
    config: &SimConfig,
    seed: u64,
    progress: ProgressFn<'_>,
) -> Result<RunResult> {
    let wall = Instant::now();
    let policy = sim_policy(config);
    let store = Arc::new(MemoryStore::new());
    let (bytes, _) = initial_ruleset()?;
    store.put_ruleset(ENVIRONMENT, 1, &bytes, None)?;
    let clock = Arc::new(ManualClock::new(START_MS));
    let data = Arc::new(Mutex::new(SimData {
        watch: AttributionWatch::new(&policy),
        ..SimData::default()
    }));
    let state_db = rusqlite::Connection::open_in_memory()?;
    controller::init_state(&state_db)?;
    start_command(&state_db, &policy)?;
    let status_db = state_db;
    let mut controller = controller_for(
        Box::new(store.clone()),
        Box::new(SimMetrics(data.clone())),
        clock.clone(),
        status_db,
        AuditLog::open(std::path::Path::new(":memory:"))?,
        (None, seed, config.shadow),
    )?;
    let mut rng = Xoshiro256StarStar::seed_from_u64(seed);
    let (base, treated) = profiles(config.scenario);
    let users = config.users.max(1) as usize;
    let interval_ms = (policy.check_interval_seconds as i64) * 1000;
    let per_interval = config.rate_per_minute * policy.check_interval_seconds / 60;
    let horizon = config.max_hours * 60.0;
    let mut tally = Tally::default();
    tally.take(controller.tick()?, &wall);
    let mut revision = None;
    let mut assignment: Vec<u8> = Vec::new();
    let mut calls = 0;
    loop {
        let minute = (clock.now_ms() - START_MS) as f64 / 60_000.0;
        progress(minute, horizon, "");
        if minute >= horizon || !running(controller.state_db())? {
            break;
        }
        if let Some(threshold) = config.stop_after_naive
            && tally.rows.iter().any(|r| r.would_roll_back)
            && tally.rows.iter().any(|r| r.naive_score > threshold)
        {
            break;
        }
        let live = store.state(ENVIRONMENT)?.live;
        if live != revision {
            revision = live;
            assignment = vec![0; users];
            if let Ok(mut data) = data.lock() {
                data.new_stage(users);
            }
        }
        let ruleset = store
            .live_bytes(ENVIRONMENT)
            .and_then(|b| serde_json::from_slice::<promptflag_core::RawRuleset>(&b).ok())
            .and_then(|raw| promptflag_core::compile(&raw).ok())
            .ok_or_else(|| anyhow!(String::from("the live ruleset does not compile")))?;
        {
            let mut data = data
                .lock()
                .map_err(|_| anyhow!(String::from("simulation data lock poisoned")))?;
            for _ in 0..per_interval {
                let user = (rng.next_u64() % users as u64) as usize;
                if assignment[user] == 0 {
                    let context = Context::new().with_targeting_key(&format!("u-{user}"));
                    let evaluation = ruleset.evaluate(FLAG, &context);
                    assignment[user] = if evaluation.variant == Some(TREATMENT) {
                        2
                    } else {
                        1
                    };
                }
                let arm = usize::from(assignment[user] == 2);
                data.watch.served(arm, revision, clock.now_ms());
                let call = observe(&mut rng, if arm == 1 { &treated } else { &base });
                data.record(user, arm, &call, config.cuped);
                calls += 1;
            }
            data.settle();
            let start = clock.now_ms();
            let baseline = data.cumulative[0].clone();
            data.watch
                .close(start, start + interval_ms, &baseline, controller.audit());
        }
        clock.advance(interval_ms);
        tally.take(controller.tick()?, &wall);
    }
    let found = data.lock().ok().and_then(|mut d| d.watch.found.take());
    Ok(with_attribution(
        finish(seed, false, tally, calls, wall, None),
        found,
    ))
}

/// A Worker started from the shared harness; stopped, with its workerd, when dropped.
pub struct SpawnedWorker {
    _process: WorkerProcess,
    /// Its base URL.
    pub url: String,
    /// Its admin token.
    pub token: String,
    /// Its server read key (the harness's test key).
    pub read_key: String,
}

/// A scratch folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("promptflag-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the built Worker in Miniflare through the shared harness (`promptflag-harness`).
/// Node and the repository come from `PROMPTFLAG_NODE` / `PROMPTFLAG_ROOT`, else the toolchain
/// `cargo xtask setup` installs. Miniflare's log is shown with `PROMPTFLAG_SIM_WORKER_LOG=1`.
pub fn spawn_worker(token: &str) -> Result<SpawnedWorker> {
    spawn_worker_with_sink(token, None)
}

/// [`spawn_worker`], sending the Worker's exposure batches to `exposure_sink` (a collector's
/// `/v1/events`).
pub fn spawn_worker_with_sink(token: &str, exposure_sink: Option<&str>) -> Result<SpawnedWorker> {
    let locations = Locations::from_env_or_defaults();
    let options = WorkerOptions {
        admin_token: Some(token.to_string()),
        environment: ENVIRONMENT.to_string(),
        cache_ttl_ms: 50,
        exposure_sink: exposure_sink.map(str::to_string),
        quiet: std::env::var_os("PROMPTFLAG_SIM_WORKER_LOG").is_none(),
        ..WorkerOptions::default()
    };
    let process = WorkerProcess::start(&locations, &options).map_err(|e| {
        anyhow!(format!(
            "{e} (set PROMPTFLAG_NODE to Node 22 and PROMPTFLAG_ROOT to the repository, or run \
             `cargo xtask setup` and `cargo xtask build-worker`)"
        ))
    })?;
    let url = process.url().to_string();
    Ok(SpawnedWorker {
        _process: process,
        url,
        token: token.to_string(),
        read_key: promptflag_harness::TEST_SERVER_KEY.to_string(),
    })
}

/// An in-process collector on 127.0.0.1 with its own runtime thread, stopped (its writer
/// drained) when dropped: the simulation's, and tests'.
pub struct LocalCollector {
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LocalCollector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl LocalCollector {
    /// Starts a collector with this configuration on a free port.
    pub fn start(config: CollectorConfig) -> Result<LocalCollector> {
        start_local_collector(config)
    }
}

fn start_collector(db: &std::path::Path) -> Result<LocalCollector> {
    start_local_collector(CollectorConfig {
        db_path: db.to_path_buf(),
        synchronous: Synchronous::Normal,
        ..CollectorConfig::default()
    })
}

fn start_local_collector(config: CollectorConfig) -> Result<LocalCollector> {
    let (collector, writer) = Collector::start(config)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, bound) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        else {
            return;
        };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let _ = runtime.block_on(promptflag_telemetry::collector::serve(
            collector,
            addr,
            move |bound| {
                let _ = ready.send(bound);
            },
            async move {
                let _ = stopped.await;
            },
        ));
        writer.join();
    });
    let addr = bound
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| anyhow!(String::from("the collector did not start")))?;
    Ok(LocalCollector {
        url: format!("http://{addr}"),
        stop: Some(stop),
        thread: Some(thread),
    })
}

fn resolve(http: &Http, worker: &SpawnedWorkerRef<'_>, user: &str) -> Result<(bool, u64)> {
    let body = serde_json::to_vec(&json!({"context": {"targetingKey": user}}))
        .map_err(|e| anyhow!(e.to_string()))?;
    let url = worker.url;
    let reply = http.send(
        "POST",
        &format!("{url}/v1/resolve/{FLAG}"),
        &[
            ("Content-Type", String::from("application/json")),
            ("Authorization", format!("Bearer {}", worker.read_key)),
        ],
        Some(&body),
        true,
    )?;
    if reply.status != 200 {
        return Err(anyhow!(
            "POST {url}/v1/resolve/{FLAG}: {}",
            reply.error_text()
        ));
    }
    let value = reply.json();
    Ok((
        value["variant"].as_str() == Some(TREATMENT),
        value["revision"].as_u64().unwrap_or(0),
    ))
}

/// Resolves many users through the Worker, four at a time.
fn resolve_all(
    http: &Http,
    worker: &SpawnedWorkerRef<'_>,
    users: &[usize],
) -> Result<Vec<(usize, bool)>> {
    let chunks: Vec<&[usize]> = users.chunks(users.len().div_ceil(4).max(1)).collect();
    let results: Vec<Result<Vec<(usize, bool)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|user| {
                            resolve(http, worker, &format!("u-{user}")).map(|(t, _)| (*user, t))
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!(String::from("a resolver thread panicked"))))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(users.len());
    for result in results {
        out.extend(result?);
    }
    Ok(out)
}

fn event(
    run: u64,
    index: u64,
    time_ms: i64,
    user: usize,
    treated: bool,
    call: &Observation,
) -> Value {
    json!({
        "timestamp": promptflag_release::audit::format_rfc3339(Duration::from_millis(time_ms.max(0) as u64)),
        "request_id": format!("sim-{run}-{index}"),
        "environment": ENVIRONMENT,
        "flag_key": FLAG,
        "variant": if treated { TREATMENT } else { BASELINE },
        "prompt_id": served_prompt(usize::from(treated)).0,
        "prompt_version": served_prompt(usize::from(treated)).1,
        "user_id": format!("u-{user}"),
        "model": "gpt-4o-mini",
        "input_tokens": call.input_tokens as u64,
        "output_tokens": call.output_tokens as u64,
        "latency_ms": call.latency_ms,
        "ttft_ms": call.ttft_ms,
        "status": if call.success { "success" } else if call.error { "error" } else { "failure" },
        "parser_valid": !call.parser_failure,
        "refused": call.refused,
        "hallucinated": call.hallucinated,
        "cost_usd": call.cost_usd,
    })
}

/// One run through the real Worker and the collector.
pub fn run_through_worker(
    config: &SimConfig,
    seed: u64,
    worker: &SpawnedWorkerRef<'_>,
    progress: ProgressFn<'_>,
) -> Result<RunResult> {
    let wall = Instant::now();
    let policy = sim_policy(config);
    let scratch = TempDir::new("simulate")?;
    let db = scratch.0.join("telemetry.sqlite3");
    let collector = start_collector(&db)?;
    let http = Http::new(
        Duration::from_secs(30),
        RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(50),
            max: Duration::from_secs(2),
        },
    );
    let admin = WorkerAdmin::new(worker.url, worker.token, http.clone())
        .with_read_key(Some(worker.read_key));
    let (bytes, bodies) = initial_ruleset()?;
    admin.put_prompts(&bodies, &NoProgress)?;
    let state = admin.state(ENVIRONMENT)?;
    // A Worker reused across runs keeps its revisions: publish the initial ruleset on top.
    let revision = promptflag_contracts::revision::next(state.latest, state.live)
        .map_err(|e| anyhow!("the simulation cannot publish: {e}"))?;
    let mut raw: promptflag_core::RawRuleset =
        serde_json::from_slice(&bytes).map_err(|e| anyhow!(e.to_string()))?;
    raw.revision = revision;
    let bytes = ruleset_publish_bytes(&raw)?;
    admin.put_ruleset(ENVIRONMENT, revision, &bytes, state.live)?;
    promptflag_release::ops::wait_until_served(
        &http,
        worker.url,
        Some(worker.read_key),
        ENVIRONMENT,
        revision,
        Instant::now(),
        Duration::from_secs(60),
        Duration::from_millis(10),
    )?;

    let clock = Arc::new(ManualClock::new(START_MS));
    let state_db = controller::open_state(&db.with_file_name("rollouts.sqlite3"))?;
    start_command(&state_db, &policy)?;
    let metrics_db = rusqlite::Connection::open(&db)?;
    metrics_db.busy_timeout(Duration::from_secs(30))?;
    let mut controller = controller_for(
        Box::new(
            WorkerAdmin::new(worker.url, worker.token, http.clone())
                .with_read_key(Some(worker.read_key)),
        ),
        Box::new(SqlMetrics::new(metrics_db)),
        clock.clone(),
        state_db,
        AuditLog::open(&scratch.0.join("audit.sqlite3"))?,
        (
            Some((worker.url.to_string(), worker.read_key.to_string())),
            seed,
            false,
        ),
    )?;
    let mut rng = Xoshiro256StarStar::seed_from_u64(seed);
    let (base, treated) = profiles(config.scenario);
    let users = config.users.max(1) as usize;
    let interval_ms = (policy.check_interval_seconds as i64) * 1000;
    let per_interval = config.rate_per_minute * policy.check_interval_seconds / 60;
    let horizon = config.max_hours * 60.0;
    let mut tally = Tally::default();
    tally.take(controller.tick()?, &wall);
    let mut assignment: HashMap<usize, bool> = HashMap::new();
    let mut served_revision = None;
    let mut calls = 0u64;
    let mut treated_users: Vec<usize> = Vec::new();
    let mut watch = AttributionWatch::new(&policy);
    let mut baseline_calls = Aggregate::default();
    loop {
        let minute = (clock.now_ms() - START_MS) as f64 / 60_000.0;
        progress(minute, horizon, "through the Worker");
        if minute >= horizon || !running(controller.state_db())? {
            break;
        }
        let live = controller::load_state(controller.state_db(), FLAG)?.and_then(|s| s.revision);
        if live != served_revision {
            served_revision = live;
            assignment.clear();
        }
        let picks: Vec<usize> = (0..per_interval)
            .map(|_| (rng.next_u64() % users as u64) as usize)
            .collect();
        let mut unknown: Vec<usize> = picks
            .iter()
            .copied()
            .filter(|u| !assignment.contains_key(u))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        for (user, treated_user) in resolve_all(&http, worker, &unknown)? {
            assignment.insert(user, treated_user);
            if treated_user {
                treated_users.push(user);
            }
        }
        let start = clock.now_ms();
        let mut batch = Vec::with_capacity(2000);
        for (i, user) in picks.iter().enumerate() {
            let treated_user = assignment.get(user).copied().unwrap_or(false);
            let call = observe(&mut rng, if treated_user { &treated } else { &base });
            let time = start + (i as i64 * interval_ms) / per_interval.max(1) as i64;
            let arm = usize::from(treated_user);
            watch.served(arm, served_revision, time);
            watch.record(arm, &call);
            if arm == 0 {
                baseline_calls.push(&call);
            }
            batch.push(event(seed, calls, time, *user, treated_user, &call));
            calls += 1;
            if batch.len() == 2000 {
                post_events(&http, &collector.url, &batch)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            post_events(&http, &collector.url, &batch)?;
        }
        watch.close(
            start,
            start + interval_ms,
            &baseline_calls,
            controller.audit(),
        );
        clock.advance(interval_ms);
        tally.take(controller.tick()?, &wall);
    }
    // After a rollback the Worker must serve the baseline to users who had the treatment.
    let baseline_served = match &tally.decisive {
        Some((record, _)) if record.decision == Decision::Rollback => {
            treated_users.sort_unstable();
            treated_users.dedup();
            let sample: Vec<usize> = treated_users.iter().copied().take(20).collect();
            Some(
                resolve_all(&http, worker, &sample)?
                    .iter()
                    .all(|(_, t)| !*t),
            )
        }
        _ => None,
    };
    drop(collector);
    Ok(with_attribution(
        finish(seed, true, tally, calls, wall, baseline_served),
        watch.found.take(),
    ))
}

fn post_events(http: &Http, collector: &str, events: &[Value]) -> Result<()> {
    let body = serde_json::to_vec(events).map_err(|e| anyhow!(e.to_string()))?;
    let reply = http.send(
        "POST",
        &format!("{collector}/v1/events"),
        &[("Content-Type", String::from("application/json"))],
        Some(&body),
        true,
    )?;
    if reply.status != 200 || reply.json()["rejected"].as_u64() != Some(0) {
        let message: String = String::from_utf8_lossy(&reply.body)
            .chars()
            .take(400)
            .collect();
        return Err(anyhow!("POST {collector}/v1/events: {message}"));
    }
    Ok(())
}

/// A Worker to run against: a spawned harness or one already running.
pub struct SpawnedWorkerRef<'a> {
    /// Base URL.
    pub url: &'a str,
    /// Admin token.
    pub token: &'a str,
    /// A server read key (it reads the ruleset and resolves prompts).
    pub read_key: &'a str,
}

/// Decision rates over many runs.
#[derive(Debug, Clone, Serialize)]
pub struct Rates {
    /// Runs.
    pub runs: usize,
    /// Outcome → share of runs.
    pub outcomes: Vec<(String, usize, f64)>,
    /// Share of runs the naive rule would have rolled back.
    pub naive_rollback_rate: f64,
    /// Share of runs the sequential rule rolled back.
    pub sequential_rollback_rate: f64,
    /// Median simulated minutes to the decisive check (runs that decided).
    pub median_detection_minutes: Option<f64>,
    /// Median treatment calls at the decisive check.
    pub median_detection_treatment_calls: Option<u64>,
    /// Median calls (both arms) at the decisive check.
    pub median_detection_total_calls: Option<u64>,
    /// Median simulated minutes to an attribution (runs that attributed one).
    pub median_attribution_minutes: Option<f64>,
    /// Share of runs in which a degradation was attributed to the treatment.
    pub attribution_rate: f64,
    /// How many runs' first rollback each cause took part in (a rollback can have several).
    pub rollback_causes: Vec<(String, usize)>,
}

fn median<T: Copy + PartialOrd>(mut values: Vec<T>) -> Option<T> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    Some(values[values.len() / 2])
}

/// Summarises runs.
pub fn rates(results: &[RunResult]) -> Rates {
    let runs = results.len().max(1);
    let mut outcomes: Vec<(String, usize, f64)> = Vec::new();
    for name in ["rollback", "promote", "pause", "none"] {
        let count = results.iter().filter(|r| r.outcome == name).count();
        outcomes.push((name.to_string(), count, count as f64 / runs as f64));
    }
    let decided: Vec<&RunResult> = results.iter().filter(|r| r.outcome != "none").collect();
    Rates {
        runs: results.len(),
        naive_rollback_rate: results.iter().filter(|r| r.naive_rollback).count() as f64
            / runs as f64,
        sequential_rollback_rate: results.iter().filter(|r| r.outcome == "rollback").count() as f64
            / runs as f64,
        median_detection_minutes: median(
            decided.iter().filter_map(|r| r.detection_minutes).collect(),
        ),
        median_detection_treatment_calls: median(
            decided
                .iter()
                .filter_map(|r| r.detection_treatment_calls)
                .collect(),
        ),
        median_detection_total_calls: median(
            decided
                .iter()
                .filter_map(|r| r.detection_total_calls)
                .collect(),
        ),
        median_attribution_minutes: median(
            results
                .iter()
                .filter_map(|r| r.attribution_minutes)
                .collect(),
        ),
        attribution_rate: results
            .iter()
            .filter(|r| r.attribution_minutes.is_some())
            .count() as f64
            / runs as f64,
        rollback_causes: cause_counts(results),
        outcomes,
    }
}

/// How many runs' first rollback each cause took part in, most frequent first.
pub fn cause_counts(results: &[RunResult]) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for cause in results.iter().flat_map(|r| r.rollback_causes.iter()) {
        match counts.iter_mut().find(|(c, _)| c == cause) {
            Some((_, n)) => *n += 1,
            None => counts.push((cause.clone(), 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

/// When a rule first fired in a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Detection {
    /// Simulated minutes from the start.
    pub minute: f64,
    /// Treatment calls by then.
    pub treatment_calls: u64,
    /// Calls of both variants by then.
    pub total_calls: u64,
}

fn detection(row: &CsvRow) -> Detection {
    Detection {
        minute: row.minute,
        treatment_calls: row.treatment_calls,
        total_calls: row.treatment_calls + row.baseline_calls,
    }
}

/// The sequential rule's first rollback in a run: the decision itself, or in shadow mode the
/// first check that would have rolled back (the same check, since the traffic up to it is the
/// same).
pub fn sequential_detection(run: &RunResult) -> Option<Detection> {
    run.rows
        .iter()
        .find(|r| r.would_roll_back || r.decision == "rollback")
        .map(detection)
}

/// The naive rule's first rollback in a run with its allowances scaled by `threshold`.
pub fn naive_detection(run: &RunResult, threshold: f64) -> Option<Detection> {
    run.rows
        .iter()
        .find(|r| r.naive_score > threshold)
        .map(detection)
}

/// The smallest scale `c` of the naive rule's allowances at which at most `rate` of the A/A
/// runs would be rolled back: the naive rule "tuned to the same false-alarm rate". Runs are
/// ranked by their largest naive score; `c` is the score of the first run past the allowed
/// count, so exactly the runs above it fire (fewer when scores tie).
pub fn naive_threshold(aa: &[RunResult], rate: f64) -> f64 {
    let mut maxima: Vec<f64> = aa
        .iter()
        .map(|run| run.rows.iter().map(|r| r.naive_score).fold(0.0, f64::max))
        .collect();
    maxima.sort_by(|a, b| b.total_cmp(a));
    let allowed = (rate * aa.len() as f64 + 1e-9).floor() as usize;
    maxima.get(allowed).copied().unwrap_or(0.0)
}

/// One rule on one scenario: how often and how fast it rolled back, beside its A/A rate.
#[derive(Debug, Clone, Serialize)]
pub struct PowerRow {
    /// The scenario.
    pub scenario: Scenario,
    /// Whether the metrics used the pre-exposure covariate.
    pub cuped: bool,
    /// `sequential` or `naive`.
    pub rule: &'static str,
    /// The rule's A/A rollback rate, from all causes, on the A/A runs of the same setting.
    pub aa_rollback_rate: f64,
    /// Runs.
    pub runs: usize,
    /// Share of runs the rule rolled back.
    pub rollback_rate: f64,
    /// Median treatment calls at the rollback (runs it rolled back).
    pub median_treatment_calls: Option<u64>,
    /// Median calls of both variants at the rollback.
    pub median_total_calls: Option<u64>,
    /// Median simulated minutes to the rollback.
    pub median_minutes: Option<f64>,
    /// Share of runs promoted before any rollback (the sequential rule's promotion test).
    pub promote_rate: Option<f64>,
    /// Share of runs paused by a sample-ratio mismatch before any rollback.
    pub pause_rate: f64,
}

/// The sequential and the naive row of a scenario's shadow runs; `naive` is the tuned scale
/// of the naive rule and the A/A rates are the two rules' on the same setting.
pub fn power_rows(
    scenario: Scenario,
    cuped: bool,
    runs: &[RunResult],
    aa_rates: (f64, f64),
    naive: f64,
) -> [PowerRow; 2] {
    let total = runs.len().max(1) as f64;
    let row = |rule: &'static str, aa_rollback_rate: f64, found: Vec<Detection>| PowerRow {
        scenario,
        cuped,
        rule,
        aa_rollback_rate,
        runs: runs.len(),
        rollback_rate: found.len() as f64 / total,
        median_treatment_calls: median(found.iter().map(|d| d.treatment_calls).collect()),
        median_total_calls: median(found.iter().map(|d| d.total_calls).collect()),
        median_minutes: median(found.iter().map(|d| d.minute).collect()),
        promote_rate: None,
        pause_rate: 0.0,
    };
    let mut sequential = row(
        "sequential",
        aa_rates.0,
        runs.iter().filter_map(sequential_detection).collect(),
    );
    let quiet = |r: &&RunResult| sequential_detection(r).is_none();
    sequential.promote_rate = Some(
        runs.iter()
            .filter(quiet)
            .filter(|r| r.outcome == "promote")
            .count() as f64
            / total,
    );
    sequential.pause_rate = runs
        .iter()
        .filter(quiet)
        .filter(|r| r.outcome == "pause")
        .count() as f64
        / total;
    let naive_row = row(
        "naive",
        aa_rates.1,
        runs.iter()
            .filter_map(|r| naive_detection(r, naive))
            .collect(),
    );
    [sequential, naive_row]
}
