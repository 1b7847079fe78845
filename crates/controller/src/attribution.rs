//! The reading half of attribution: the per-window series and the variants' onsets from
//! telemetry (`promptflag_telemetry::forensics`), the publishes from the audit log, handed to the
//! pure `promptflag_rollout::attribution`. `promptflag attribute` and the control loop's rollback
//! both go through [`investigate`], so they name the same version, revision and publish.
//!
//! The publishes are read by [`publishes`] alone, so the source of the audit trail can change
//! (the local hash-chained log today) without touching the rest.

use promptflag_authoring::policy::Metric;
use promptflag_release::audit::AuditLog;
use promptflag_rollout::attribution::{
    Attribution, AttributionConfig, Degradation, PublishRecord, detect, first_attribution,
};
use promptflag_telemetry::forensics::{
    VariantOnset, WindowAggregates, aggregates_by_window, variant_onsets,
};
use promptflag_telemetry::read::Window;
use rusqlite::Connection;

use crate::error::Result;

/// The telemetry an attribution reads: the windows before the range (the variants' own history),
/// the windows of the range, and the variants' onsets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttributionInputs {
    /// Windows before the range, oldest first.
    pub history: Vec<WindowAggregates>,
    /// Windows of the range, oldest first.
    pub series: Vec<WindowAggregates>,
    /// When each version, body and revision first reached each variant.
    pub onsets: Vec<VariantOnset>,
}

/// What to attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributionQuery {
    /// The flag.
    pub flag: String,
    /// The environment (`None`: every environment).
    pub environment: Option<String>,
    /// The history before the range starts here.
    pub history_from_ms: i64,
    /// The range under watch starts here.
    pub from_ms: i64,
    /// And ends here (exclusive).
    pub to_ms: i64,
    /// The window length.
    pub step_ms: i64,
}

/// Reads the inputs of an attribution from the telemetry database.
pub fn read_inputs(connection: &Connection, query: &AttributionQuery) -> Result<AttributionInputs> {
    let window = |from_ms: i64, to_ms: i64| Window {
        flag_key: query.flag.clone(),
        environment: query.environment.clone(),
        from_ms,
        to_ms,
    };
    let history = if query.history_from_ms < query.from_ms {
        aggregates_by_window(
            connection,
            &window(query.history_from_ms, query.from_ms),
            query.step_ms,
        )?
    } else {
        Vec::new()
    };
    Ok(AttributionInputs {
        history,
        series: aggregates_by_window(
            connection,
            &window(query.from_ms, query.to_ms),
            query.step_ms,
        )?,
        // Onsets before the range count: a version published before it may be the cause.
        onsets: variant_onsets(connection, &window(query.history_from_ms, query.to_ms))?,
    })
}

/// The publishes (every audit entry that made a revision current) of an environment, from the
/// audit log.
pub fn publishes(audit: &AuditLog, environment: Option<&str>) -> Result<Vec<PublishRecord>> {
    let mut out = Vec::new();
    for entry in audit.list(environment)? {
        let Some(revision) = entry.revision else {
            continue;
        };
        out.push(PublishRecord {
            seq: entry.seq,
            time_ms: promptflag_core::literal::parse_rfc3339_millis(&entry.time).unwrap_or(0),
            time: entry.time,
            action: entry.action.as_str().to_string(),
            actor: entry.actor,
            environment: entry.environment,
            revision: Some(revision),
            reason: entry.reason,
            hash: entry.hash,
        });
    }
    Ok(out)
}

/// Every degradation of the named metrics among `variants` (all variants when empty).
pub fn degradations(
    flag: &str,
    inputs: &AttributionInputs,
    metrics: &[Metric],
    variants: &[String],
    config: &AttributionConfig,
) -> Vec<Degradation> {
    metrics
        .iter()
        .flat_map(|metric| detect(flag, *metric, &inputs.history, &inputs.series, config))
        .filter(|found| variants.is_empty() || variants.contains(&found.variant))
        .collect()
}

/// The first degradation among the metrics and variants, attributed at `now_ms`.
pub fn investigate(
    flag: &str,
    inputs: &AttributionInputs,
    publishes: &[PublishRecord],
    metrics: &[Metric],
    variants: &[String],
    now_ms: i64,
) -> Option<Attribution> {
    let config = AttributionConfig::default();
    let found = degradations(flag, inputs, metrics, variants, &config);
    first_attribution(found, &inputs.onsets, publishes, now_ms)
}
