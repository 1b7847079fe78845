//! `promptflag exposures` (who saw what) and `promptflag attribute` (when a per-variant metric
//! degraded, and the prompt version, revision and publish behind it), over the telemetry
//! database and the audit log.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use promptflag_authoring::policy::Metric;
use promptflag_controller::attribution::{AttributionQuery, investigate, publishes, read_inputs};
use promptflag_core::literal::format_rfc3339_millis;
use promptflag_release::audit::AuditLog;
use promptflag_rollout::attribution::{Attribution, describe};
use promptflag_telemetry::collector::db::{Synchronous, open};
use promptflag_telemetry::forensics::{
    ExposureQuery, ExposureReport, exposure_report, flags_with_calls,
};

use crate::Output;
use crate::args::{AttributeArgs, ExposuresArgs, HiArgs};
use crate::exit::ExitCode;

/// Opens the telemetry database for reading; a missing file is an error, not a new database.
fn telemetry(args: &HiArgs) -> Result<rusqlite::Connection> {
    if !args.db.exists() {
        bail!(
            "no telemetry database at {} (give --db, or run `promptflag serve` to collect)",
            args.db.display()
        );
    }
    // Opening through the collector's `open` brings an older file's columns and indexes up to
    // date, so the forensic reads find the index they need.
    open(&args.db, Synchronous::Normal)
        .with_context(|| format!("opening the telemetry database {}", args.db.display()))
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Every group, then every unit, as one CSV table: a group row has an empty `unit` and its
/// distinct units in `units`; a unit row names its unit and has `units` 1.
fn exposures_csv(report: &ExposureReport) -> String {
    let mut text =
        String::from("variant,prompt_version,unit,exposures,units,first_seen,last_seen\n");
    for group in &report.groups {
        text.push_str(&format!(
            "{},{},,{},{},{},{}\n",
            csv_field(&group.variant),
            csv_field(group.prompt_version.as_deref().unwrap_or("")),
            group.exposures,
            group.units,
            format_rfc3339_millis(group.first_ms),
            format_rfc3339_millis(group.last_ms)
        ));
    }
    for unit in &report.units {
        text.push_str(&format!(
            "{},{},{},{},1,{},{}\n",
            csv_field(&unit.variant),
            csv_field(unit.prompt_version.as_deref().unwrap_or("")),
            csv_field(&unit.unit),
            unit.exposures,
            format_rfc3339_millis(unit.first_ms),
            format_rfc3339_millis(unit.last_ms)
        ));
    }
    text
}

fn exposures_text(args: &ExposuresArgs, report: &ExposureReport, from: &str, to: &str) -> String {
    let mut text = format!("{} from {from} to {to}\n", args.flag);
    if report.groups.is_empty() {
        text.push_str("no exposures\n");
        return text;
    }
    let rows: Vec<[String; 4]> = report
        .groups
        .iter()
        .map(|group| {
            [
                group.variant.clone(),
                group.prompt_version.clone().unwrap_or_else(|| "-".into()),
                group.exposures.to_string(),
                group.units.to_string(),
            ]
        })
        .collect();
    let header = ["variant", "version", "exposures", "units"];
    let widths: Vec<usize> = (0..4)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].len())
                .chain([header[column].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 4]| {
        format!(
            "  {:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    text.push_str(&line(header));
    for row in &rows {
        text.push_str(&line([&row[0], &row[1], &row[2], &row[3]]));
    }
    text.push_str(&format!(
        "{} unit rows{} (every row: --format csv or json)\n",
        report.units.len(),
        if report.units_truncated {
            ", cut at --max-units"
        } else {
            ""
        }
    ));
    text
}

/// `promptflag exposures`.
pub(crate) fn run_exposures(
    args: &HiArgs,
    exposures: &ExposuresArgs,
    from_ms: i64,
    to_ms: i64,
) -> Result<Output> {
    let connection = telemetry(args)?;
    let report = exposure_report(
        &connection,
        &ExposureQuery {
            flag_key: exposures.flag.clone(),
            prompt_version: exposures.version.clone(),
            from_ms,
            to_ms,
            max_units: exposures.max_units,
        },
    )?;
    let (from, to) = (format_rfc3339_millis(from_ms), format_rfc3339_millis(to_ms));
    let json = json!({
        "ok": true,
        "flag": exposures.flag,
        "prompt_version": exposures.version,
        "from": from,
        "to": to,
        "groups": report.groups,
        "units": report.units,
        "units_truncated": report.units_truncated,
    });
    let text = match exposures.format.as_str() {
        "csv" => exposures_csv(&report),
        "json" => format!(
            "{}\n",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        ),
        _ => exposures_text(exposures, &report, &from, &to),
    };
    Ok(Output {
        text,
        json,
        code: ExitCode::Ok,
    })
}

/// A duration for people: `1h 2m 3s`, `4m 5s`, `6s`.
pub(crate) fn duration_text(millis: i64) -> String {
    let seconds = millis.max(0) / 1000;
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}h {minutes}m {seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m {seconds}s")
    } else {
        format!("{seconds}s")
    }
}

fn attribution_text(attribution: &Attribution) -> String {
    let degradation = &attribution.degradation;
    let mut text = format!("{}\n", describe(attribution));
    text.push_str(&format!(
        "  onset      {}\n  detected   {}\n",
        format_rfc3339_millis(degradation.onset_ms),
        format_rfc3339_millis(degradation.detected_ms)
    ));
    if let Some(onset) = &attribution.onset {
        text.push_str(&format!(
            "  served     {} {}@{} (body {}) from {}{}\n",
            degradation.variant,
            onset.prompt_id.as_deref().unwrap_or("-"),
            onset.prompt_version.as_deref().unwrap_or("-"),
            // Any text can arrive as a hash: cut it on a character boundary.
            onset
                .prompt_hash
                .as_deref()
                .map_or("-", |hash| hash.get(..12).unwrap_or(hash)),
            format_rfc3339_millis(onset.first_ms),
            onset
                .revision
                .map_or_else(String::new, |revision| format!(", revision {revision}"))
        ));
    }
    match &attribution.publish {
        Some(publish) => text.push_str(&format!(
            "  publish    #{} {} {} {} r{} by {} {}\n",
            publish.seq,
            publish.time,
            publish.action,
            publish.environment,
            publish
                .revision
                .map_or_else(|| String::from("-"), |r| r.to_string()),
            publish.actor,
            publish.hash
        )),
        None => text.push_str("  publish    none found in the audit log\n"),
    }
    text.push_str(&format!(
        "  time to attribution {}\n",
        duration_text(attribution.time_to_attribution_ms)
    ));
    text
}

/// `promptflag attribute`.
pub(crate) fn run_attribute(
    args: &HiArgs,
    attribute: &AttributeArgs,
    metrics: &[Metric],
    since_ms: i64,
    until_ms: i64,
    now_ms: i64,
) -> Result<Output> {
    let connection = telemetry(args)?;
    let audit = AuditLog::open(&args.audit_db)
        .with_context(|| format!("opening the audit log {}", args.audit_db.display()))?;
    let environment = attribute.environment.as_deref();
    let publishes = publishes(&audit, environment)?;
    let flags = match &attribute.flag {
        Some(flag) => vec![flag.clone()],
        None => flags_with_calls(&connection, environment, since_ms, until_ms)?,
    };
    let step_ms = i64::try_from(attribute.window.saturating_mul(1000)).unwrap_or(i64::MAX);
    let history_ms = i64::try_from(attribute.history.saturating_mul(1000)).unwrap_or(i64::MAX);
    let mut found = Vec::new();
    for flag in &flags {
        let inputs = read_inputs(
            &connection,
            &AttributionQuery {
                flag: flag.clone(),
                environment: attribute.environment.clone(),
                history_from_ms: since_ms.saturating_sub(history_ms),
                from_ms: since_ms,
                to_ms: until_ms,
                step_ms,
            },
        )?;
        if let Some(attribution) = investigate(flag, &inputs, &publishes, metrics, &[], now_ms) {
            found.push(attribution);
        }
    }
    let mut text = String::new();
    for attribution in &found {
        text.push_str(&attribution_text(attribution));
    }
    if found.is_empty() {
        text.push_str(&format!(
            "no degradation of {} since {} in {} flag(s)\n",
            metrics
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            format_rfc3339_millis(since_ms),
            flags.len()
        ));
    }
    let json = json!({
        "ok": true,
        "since": format_rfc3339_millis(since_ms),
        "until": format_rfc3339_millis(until_ms),
        "flags": flags,
        "attributions": found
            .iter()
            .map(|a| {
                let mut value = serde_json::to_value(a).unwrap_or(Value::Null);
                value["text"] = json!(describe(a));
                value
            })
            .collect::<Vec<_>>(),
    });
    Ok(Output {
        text,
        json,
        code: ExitCode::Ok,
    })
}
