//! Attribution: when did a per-variant metric degrade, and which prompt version, ruleset revision
//! and publish explain it. Pure: telemetry's per-window aggregates, the variants' onsets (when a
//! version or revision first reached each variant) and the publishes read from the audit log come
//! in as values, with the time of the attribution.
//!
//! Detection runs Page's CUSUM (`promptflag_stats::changepoint`) on each variant's metric, window
//! by window, against a baseline: the variant's own value before the range under watch when it
//! has [`AttributionConfig::min_baseline_calls`] calls there, else the other variants pooled over
//! the whole range (a new version has no history of its own, and its control is what it must
//! match). The shift worth detecting is [`AttributionConfig::relative_shift`] of the baseline,
//! (of its complement for a success rate), and at least [`AttributionConfig::rate_shift_floor`]
//! for rates. The change's onset is Page's
//! estimate, the first window of the run that alarmed.
//!
//! Explanation: the prompt version (and body) the degraded variant served last before the alarm
//! is what changed, from the first revision that served it to that variant (later revisions
//! that serve the same version, such as a rollout's advances, only moved weights); the publish
//! is the audit entry that published that revision (or, when the onset names no revision, the
//! last publish at or before the onset). Time to attribution runs from the change's onset to the attribution.

use serde::Serialize;

use promptflag_authoring::policy::Metric;
use promptflag_stats::Moments;
use promptflag_stats::changepoint::{CusumConfig, CusumPoint, upper_cusum};
use promptflag_telemetry::forensics::{VariantOnset, WindowAggregates};
use promptflag_telemetry::read::Aggregate;

use crate::metrics::VariantMetrics;

/// How attribution detects a degradation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AttributionConfig {
    /// The smallest degradation worth detecting, as a fraction of the baseline (0.25 = 25 %).
    pub relative_shift: f64,
    /// For rates, the smallest degradation in absolute terms (0.01 = one percentage point).
    pub rate_shift_floor: f64,
    /// The CUSUM's alarm threshold in standard errors.
    pub threshold: f64,
    /// Calls a variant needs before the range for its own history to be its baseline.
    pub min_baseline_calls: u64,
}

impl Default for AttributionConfig {
    fn default() -> AttributionConfig {
        AttributionConfig {
            relative_shift: 0.25,
            rate_shift_floor: 0.01,
            threshold: 5.0,
            min_baseline_calls: 100,
        }
    }
}

/// Where a degradation's baseline came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineSource {
    /// The variant's own calls before the range.
    History,
    /// The other variants' calls over the range.
    OtherVariants,
}

/// A metric of one variant that degraded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Degradation {
    /// The flag.
    pub flag_key: String,
    /// The variant.
    pub variant: String,
    /// The metric.
    pub metric: Metric,
    /// The baseline value.
    pub baseline: f64,
    /// Where it came from.
    pub baseline_source: BaselineSource,
    /// The metric over the windows from the onset to the alarm.
    pub degraded: f64,
    /// The start of the first degraded window (ms since the epoch).
    pub onset_ms: i64,
    /// The end of the window in which the CUSUM alarmed.
    pub detected_ms: i64,
}

/// A publish, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishRecord {
    /// The entry's sequence number.
    pub seq: u64,
    /// When (ms since the epoch).
    pub time_ms: i64,
    /// The entry's time as recorded (RFC 3339).
    pub time: String,
    /// `publish`, `rollout`, `rollback`, `kill` or `override`.
    pub action: String,
    /// Who.
    pub actor: String,
    /// The environment.
    pub environment: String,
    /// The revision it made current.
    pub revision: Option<u64>,
    /// Why, as recorded.
    pub reason: String,
    /// The entry's chain hash.
    pub hash: String,
}

/// A degradation and what explains it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribution {
    /// What degraded, and when.
    pub degradation: Degradation,
    /// The version, body and revision that reached the variant last before the alarm.
    pub onset: Option<VariantOnset>,
    /// The publish that put that revision in place, with its audit entry.
    pub publish: Option<PublishRecord>,
    /// When the attribution was made (ms since the epoch).
    pub attributed_ms: i64,
    /// From the degradation's onset to the attribution.
    pub time_to_attribution_ms: i64,
}

/// The metrics attribution watches when none is named: every rate, the tail latency and the
/// cost of a call.
pub const DEFAULT_METRICS: [Metric; 7] = [
    Metric::SuccessRate,
    Metric::ErrorRate,
    Metric::ParserFailureRate,
    Metric::RefusalRate,
    Metric::HallucinationRate,
    Metric::LatencyP95Ms,
    Metric::CostPerRequestUsd,
];

/// The metric's value, per-call variance and number of calls over an aggregate.
fn measure(metric: Metric, aggregate: &Aggregate) -> (f64, f64, u64) {
    let metrics = VariantMetrics::from_aggregate("", aggregate.clone());
    let sample = metrics.sample(metric);
    (metrics.value(metric), sample.variance(), aggregate.requests)
}

/// One window of one variant's metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowPoint {
    /// Start, inclusive (ms since the epoch).
    pub start_ms: i64,
    /// End, exclusive.
    pub end_ms: i64,
    /// The metric over the window's calls (meaningless when `requests` is 0).
    pub value: f64,
    /// The window's calls.
    pub requests: u64,
}

impl WindowPoint {
    /// The point of one variant's aggregate over a window.
    pub fn of(metric: Metric, start_ms: i64, end_ms: i64, aggregate: &Aggregate) -> WindowPoint {
        let value = if aggregate.requests == 0 {
            0.0
        } else {
            measure(metric, aggregate).0
        };
        WindowPoint {
            start_ms,
            end_ms,
            value,
            requests: aggregate.requests,
        }
    }
}

/// The in-control value a variant is held to, with its per-call variance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    /// The value.
    pub value: f64,
    /// The per-call variance (smoothed for rates, so a rate of 0 or 1 still has one).
    pub variance: f64,
    /// Where it came from.
    pub source: BaselineSource,
}

impl Baseline {
    /// The baseline of `metric` over a pooled aggregate; `None` without calls.
    pub fn of(metric: Metric, pooled: &Aggregate, source: BaselineSource) -> Option<Baseline> {
        if pooled.requests == 0 {
            return None;
        }
        let (value, mut variance, requests) = measure(metric, pooled);
        if metric.is_rate() {
            // A baseline rate of exactly 0 or 1 would make every window's standard error 0:
            // smooth it as (k + 1) / (n + 2) for the variance only.
            let smoothed = (value * requests as f64 + 1.0) / (requests as f64 + 2.0);
            variance = smoothed * (1.0 - smoothed);
        }
        Some(Baseline {
            value,
            variance,
            source,
        })
    }
}

/// The baseline of one variant: its own history when it has enough, else the other variants.
fn baseline(
    metric: Metric,
    variant: &str,
    history: &[WindowAggregates],
    series: &[WindowAggregates],
    config: &AttributionConfig,
) -> Option<Baseline> {
    let pool = |windows: &[WindowAggregates], own: bool| {
        let mut pooled = Aggregate::default();
        for window in windows {
            for (name, aggregate) in &window.variants {
                if (name == variant) == own {
                    pooled.merge(aggregate);
                }
            }
        }
        pooled
    };
    let own = pool(history, true);
    if own.requests >= config.min_baseline_calls {
        Baseline::of(metric, &own, BaselineSource::History)
    } else {
        Baseline::of(metric, &pool(series, false), BaselineSource::OtherVariants)
    }
}

/// Runs the CUSUM over one variant's windows (in time order) against its baseline.
pub fn detect_variant(
    flag_key: &str,
    variant: &str,
    metric: Metric,
    baseline: &Baseline,
    points: &[WindowPoint],
    config: &AttributionConfig,
) -> Option<Degradation> {
    // A metric where higher is better degrades downwards: the CUSUM runs on its negation.
    let sign = if metric.higher_is_better() { -1.0 } else { 1.0 };
    let floor = if metric.is_rate() {
        config.rate_shift_floor
    } else {
        0.0
    };
    // A rate where higher is better degrades through its complement (a success rate of 0.98
    // going to 0.90 is a failure share going from 0.02 to 0.10), so the relative shift is taken
    // of that.
    let scale = if metric.is_rate() && metric.higher_is_better() {
        1.0 - baseline.value
    } else {
        baseline.value.abs()
    };
    let shift = (config.relative_shift * scale).max(floor);
    let cusum_points: Vec<CusumPoint> = points
        .iter()
        .map(|point| {
            if point.requests == 0 {
                CusumPoint {
                    value: f64::NAN,
                    standard_error: 0.0,
                }
            } else {
                CusumPoint {
                    value: sign * point.value,
                    standard_error: (baseline.variance / point.requests as f64).sqrt(),
                }
            }
        })
        .collect();
    let cusum = CusumConfig {
        baseline: sign * baseline.value,
        shift,
        threshold: config.threshold,
    };
    let change = upper_cusum(&cusum_points, &cusum)?;
    // The degraded value: the windows' values weighted by their calls (exact for rates and
    // means, a close estimate for percentiles).
    let (mut weighted, mut calls) = (0.0, 0u64);
    for point in &points[change.onset..=change.alarm] {
        if point.requests > 0 {
            weighted += point.value * point.requests as f64;
            calls += point.requests;
        }
    }
    Some(Degradation {
        flag_key: flag_key.to_string(),
        variant: variant.to_string(),
        metric,
        baseline: baseline.value,
        baseline_source: baseline.source,
        degraded: if calls == 0 {
            0.0
        } else {
            weighted / calls as f64
        },
        onset_ms: points[change.onset].start_ms,
        detected_ms: points[change.alarm].end_ms,
    })
}

/// Finds the first degradation of `metric` for each variant of a flag over `series` (windows in
/// time order), with `history` the windows before the range (possibly empty).
pub fn detect(
    flag_key: &str,
    metric: Metric,
    history: &[WindowAggregates],
    series: &[WindowAggregates],
    config: &AttributionConfig,
) -> Vec<Degradation> {
    let mut variants: Vec<&str> = series
        .iter()
        .flat_map(|window| window.variants.iter().map(|(name, _)| name.as_str()))
        .collect();
    variants.sort_unstable();
    variants.dedup();
    let empty = Aggregate::default();
    let mut found = Vec::new();
    for variant in variants {
        let Some(baseline) = baseline(metric, variant, history, series, config) else {
            continue;
        };
        let points: Vec<WindowPoint> = series
            .iter()
            .map(|window| {
                let aggregate = window
                    .variants
                    .iter()
                    .find(|(name, _)| name == variant)
                    .map_or(&empty, |(_, aggregate)| aggregate);
                WindowPoint::of(metric, window.start_ms, window.end_ms, aggregate)
            })
            .collect();
        found.extend(detect_variant(
            flag_key, variant, metric, &baseline, &points, config,
        ));
    }
    found
}

/// Explains a degradation: the degraded variant's last onset at or before the alarm, and the
/// publish of its revision.
pub fn attribute(
    degradation: Degradation,
    onsets: &[VariantOnset],
    publishes: &[PublishRecord],
    now_ms: i64,
) -> Attribution {
    let candidates = || {
        onsets.iter().filter(|onset| {
            onset.variant == degradation.variant && onset.first_ms <= degradation.detected_ms
        })
    };
    let by_time = |a: &&VariantOnset, b: &&VariantOnset| {
        a.first_ms
            .cmp(&b.first_ms)
            .then(a.revision.cmp(&b.revision))
    };
    // The version the variant served last before the alarm, from the revision that first
    // served it: a later revision that only moved weights (a rollout's advance) serves the same
    // version and explains nothing new.
    let onset = candidates().max_by(by_time).and_then(|latest| {
        candidates()
            .filter(|onset| {
                onset.prompt_version == latest.prompt_version
                    && onset.prompt_hash == latest.prompt_hash
            })
            .min_by(by_time)
            .cloned()
    });
    let publish = onset.as_ref().and_then(|onset| {
        let by_revision = onset.revision.and_then(|revision| {
            publishes
                .iter()
                .filter(|publish| publish.revision == Some(revision))
                .min_by_key(|publish| publish.seq)
        });
        by_revision
            .or_else(|| {
                publishes
                    .iter()
                    .filter(|publish| publish.time_ms <= onset.first_ms)
                    .max_by_key(|publish| publish.seq)
            })
            .cloned()
    });
    Attribution {
        time_to_attribution_ms: now_ms.saturating_sub(degradation.onset_ms).max(0),
        degradation,
        onset,
        publish,
        attributed_ms: now_ms,
    }
}

/// The first degradation among several metrics (earliest alarm, then earliest onset), attributed.
pub fn first_attribution(
    mut degradations: Vec<Degradation>,
    onsets: &[VariantOnset],
    publishes: &[PublishRecord],
    now_ms: i64,
) -> Option<Attribution> {
    degradations.sort_by(|a, b| {
        a.detected_ms
            .cmp(&b.detected_ms)
            .then(a.onset_ms.cmp(&b.onset_ms))
            .then(a.variant.cmp(&b.variant))
    });
    let first = degradations.into_iter().next()?;
    Some(attribute(first, onsets, publishes, now_ms))
}

/// One line naming what an attribution found, for alerts and reports.
pub fn describe(attribution: &Attribution) -> String {
    let degradation = &attribution.degradation;
    let mut text = format!(
        "{} of {}/{} degraded from {} to {}",
        degradation.metric,
        degradation.flag_key,
        degradation.variant,
        round(degradation.baseline),
        round(degradation.degraded)
    );
    if let Some(onset) = &attribution.onset {
        let family = onset.prompt_id.as_deref().unwrap_or(&degradation.flag_key);
        match &onset.prompt_version {
            Some(version) => text.push_str(&format!(" after {family}@{version}")),
            None => text.push_str(" after a change"),
        }
        if let Some(revision) = onset.revision {
            text.push_str(&format!(" (revision {revision})"));
        }
    }
    if let Some(publish) = &attribution.publish {
        text.push_str(&format!(
            ", published by {} (audit entry {})",
            publish.actor, publish.seq
        ));
    }
    text
}

fn round(value: f64) -> String {
    let text = format!("{value:.4}");
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    if trimmed.is_empty() || trimmed == "-" {
        String::from("0")
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptflag_telemetry::read::Observation;

    const MINUTE: i64 = 60_000;

    /// Windows of a minute with `calls` per variant; `b` errs at `bad` from `from_window` on.
    fn series(windows: usize, from_window: usize, bad: f64) -> Vec<WindowAggregates> {
        (0..windows)
            .map(|index| {
                let mut variants = Vec::new();
                for variant in ["a", "b"] {
                    let rate = if variant == "b" && index >= from_window {
                        bad
                    } else {
                        0.02
                    };
                    let mut aggregate = Aggregate::default();
                    for call in 0..200 {
                        let error = (call as f64) < rate * 200.0;
                        aggregate.push(&Observation {
                            success: !error,
                            error,
                            latency_ms: 100.0,
                            ..Observation::default()
                        });
                    }
                    variants.push((variant.to_string(), aggregate));
                }
                WindowAggregates {
                    start_ms: index as i64 * MINUTE,
                    end_ms: (index as i64 + 1) * MINUTE,
                    variants,
                }
            })
            .collect()
    }

    fn onset(variant: &str, version: &str, revision: u64, first_ms: i64) -> VariantOnset {
        VariantOnset {
            variant: variant.to_string(),
            prompt_id: Some(String::from("support")),
            prompt_version: Some(version.to_string()),
            prompt_hash: Some(format!("{version}-hash")),
            revision: Some(revision),
            first_ms,
        }
    }

    fn publish(seq: u64, revision: u64, time_ms: i64) -> PublishRecord {
        PublishRecord {
            seq,
            time_ms,
            time: String::new(),
            action: String::from("publish"),
            actor: String::from("ana"),
            environment: String::from("prod"),
            revision: Some(revision),
            reason: String::new(),
            hash: format!("h{seq}"),
        }
    }

    #[test]
    fn a_regression_of_one_variant_is_found_at_its_onset() {
        let windows = series(20, 12, 0.10);
        let found = detect(
            "f",
            Metric::ErrorRate,
            &[],
            &windows,
            &AttributionConfig::default(),
        );
        assert_eq!(found.len(), 1);
        let degradation = &found[0];
        assert_eq!(degradation.variant, "b");
        assert_eq!(degradation.baseline_source, BaselineSource::OtherVariants);
        assert_eq!(degradation.onset_ms, 12 * MINUTE);
        assert!(degradation.detected_ms > degradation.onset_ms);
        assert!((degradation.baseline - 0.02).abs() < 1e-12);
        assert!((degradation.degraded - 0.10).abs() < 1e-12);
        // Success rate moves the other way and is found too.
        let success = detect(
            "f",
            Metric::SuccessRate,
            &[],
            &windows,
            &AttributionConfig::default(),
        );
        assert_eq!(success[0].onset_ms, 12 * MINUTE);
    }

    #[test]
    fn a_steady_flag_has_no_degradation() {
        let windows = series(30, 30, 0.10);
        for metric in DEFAULT_METRICS {
            assert!(detect("f", metric, &[], &windows, &AttributionConfig::default()).is_empty());
        }
    }

    #[test]
    fn own_history_is_the_baseline_when_there_is_enough() {
        let all = series(20, 10, 0.10);
        let (history, watched) = all.split_at(10);
        let found = detect(
            "f",
            Metric::ErrorRate,
            history,
            watched,
            &AttributionConfig::default(),
        );
        assert_eq!(found[0].baseline_source, BaselineSource::History);
        assert_eq!(found[0].onset_ms, 10 * MINUTE);
    }

    #[test]
    fn the_latest_onset_before_the_alarm_and_its_publish_explain_it() {
        let windows = series(20, 12, 0.10);
        let degradation = detect(
            "f",
            Metric::ErrorRate,
            &[],
            &windows,
            &AttributionConfig::default(),
        )
        .remove(0);
        let onsets = [
            onset("a", "1.0.0", 3, 0),
            onset("b", "1.0.0", 3, 0),
            onset("b", "2.0.0", 4, 12 * MINUTE),
            // A later revision serving the same version (weights moved) explains nothing new.
            onset("b", "2.0.0", 5, 13 * MINUTE),
            // After the alarm: not a cause.
            onset("b", "3.0.0", 6, 40 * MINUTE),
        ];
        let publishes = [publish(1, 3, 0), publish(2, 4, 12 * MINUTE - 500)];
        let now = 20 * MINUTE;
        let attribution = attribute(degradation, &onsets, &publishes, now);
        let found = attribution.onset.as_ref().unwrap();
        assert_eq!(found.prompt_version.as_deref(), Some("2.0.0"));
        assert_eq!(found.revision, Some(4));
        assert_eq!(attribution.publish.as_ref().unwrap().seq, 2);
        assert_eq!(attribution.time_to_attribution_ms, 8 * MINUTE);
        assert_eq!(
            describe(&attribution),
            "error_rate of f/b degraded from 0.02 to 0.1 after support@2.0.0 (revision 4), published by ana (audit entry 2)"
        );
    }

    #[test]
    fn without_a_revision_the_last_publish_before_the_onset_is_named() {
        let windows = series(20, 12, 0.10);
        let degradation = detect(
            "f",
            Metric::ErrorRate,
            &[],
            &windows,
            &AttributionConfig::default(),
        )
        .remove(0);
        let mut from_calls = onset("b", "2.0.0", 0, 12 * MINUTE);
        from_calls.revision = None;
        let publishes = [publish(1, 3, 0), publish(2, 4, 11 * MINUTE)];
        let attribution = attribute(degradation, &[from_calls], &publishes, 20 * MINUTE);
        assert_eq!(attribution.publish.unwrap().seq, 2);
    }
}
