//! `promptflag hygiene` (and `promptflag audit stale`): prompt families and flags past their
//! review or deletion date, without an owner, or with no exposure in the window, read from the
//! repository and the telemetry store.

use anyhow::{Context, Result};
use serde_json::json;

use crate::Output;
use crate::args::HiArgs;
use crate::exit::ExitCode;
use promptflag_authoring::hygiene::{self, Exposure};

pub(crate) fn run_hygiene(
    args: &HiArgs,
    window_seconds: u64,
    today: Option<&str>,
) -> Result<Output> {
    let (repo, _) = promptflag_authoring::repo::load(&args.repo)?;
    let today = match today {
        Some(text) => hygiene::parse_day(text)
            .with_context(|| format!("--today {text:?} is not a date YYYY-MM-DD"))?,
        None => hygiene::today(),
    };
    let window_ms = i64::try_from(window_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let since_ms = today
        .saturating_add(1)
        .saturating_mul(86_400_000)
        .saturating_sub(window_ms);
    // Without a telemetry database nothing is known about exposures: the check is skipped
    // rather than reporting every prompt as unused.
    let exposure = if args.db.is_file() {
        let connection = rusqlite::Connection::open_with_flags(
            &args.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .with_context(|| format!("opening the telemetry database {}", args.db.display()))?;
        let activity = promptflag_telemetry::read::activity_since(&connection, since_ms)?;
        let mut exposure = Exposure {
            flags: activity.flags,
            families: activity.prompt_ids,
        };
        for family in repo.families.values() {
            let by_hash: u64 = family
                .versions
                .iter()
                .filter_map(|v| v.sha256.as_ref())
                .filter_map(|sha| activity.prompt_hashes.get(sha))
                .sum();
            *exposure.families.entry(family.dir.clone()).or_insert(0) += by_hash;
        }
        Some(exposure)
    } else {
        None
    };
    let findings = hygiene::audit(&repo, today, exposure.as_ref());
    let days = window_seconds as f64 / 86_400.0;
    let mut text = String::new();
    if exposure.is_none() {
        text.push_str(&format!(
            "no telemetry database at {}: exposures not checked\n",
            args.db.display()
        ));
    }
    for finding in &findings {
        let mut details = Vec::new();
        if let Some(date) = &finding.review_by {
            details.push(format!("review_by {date}"));
        }
        if let Some(date) = &finding.delete_after {
            details.push(format!("delete_after {date}"));
        }
        if let Some(count) = finding.exposures {
            details.push(format!("{count} exposure(s) in {days} day(s)"));
        }
        text.push_str(&format!(
            "{} {} ({}): {}\n  owner {}; {}\n",
            finding.kind,
            finding.name,
            finding.file,
            finding.reasons.join(", "),
            finding.owner.as_deref().unwrap_or("none"),
            details.join("; ")
        ));
    }
    text.push_str(&format!("{} stale prompt(s) and flag(s)\n", findings.len()));
    let json = json!({
        "ok": findings.is_empty(),
        "window_seconds": window_seconds,
        "exposures_checked": exposure.is_some(),
        "stale": findings,
    });
    Ok(Output {
        text,
        json,
        code: if findings.is_empty() {
            ExitCode::Ok
        } else {
            ExitCode::Problems
        },
    })
}
