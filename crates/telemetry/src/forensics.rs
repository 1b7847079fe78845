//! The forensic half of the read API: who saw what, and when each prompt version and ruleset
//! revision first reached a variant. `promptflag exposures` answers "which units saw
//! `support_reply@2.0.0` between 14:00 and 14:30?" with [`exposure_report`], and attribution
//! (`promptflag attribute`, the control loop's rollback) finds a degradation's onset candidates
//! with [`variant_onsets`] and its metric's time series with [`aggregates_by_window`].
//!
//! Every query filters one flag over a time range, which the exposures' covering index
//! (`collector::db`) answers from index pages alone; the unit list is bounded by the caller's
//! `max_units`, and the counts stay exact when it is cut.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use crate::error::Result;
use crate::read::{Aggregate, Window, aggregates};

/// Which exposures a forensic query covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposureQuery {
    /// The flag.
    pub flag_key: String,
    /// Only exposures of this prompt version.
    pub prompt_version: Option<String>,
    /// Start, inclusive (ms since the epoch).
    pub from_ms: i64,
    /// End, exclusive.
    pub to_ms: i64,
    /// The most unit rows returned (the per-variant counts are exact either way).
    pub max_units: usize,
}

/// Exposures of one variant and prompt version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExposureGroup {
    /// The variant served.
    pub variant: String,
    /// The prompt version served (`None` for flags that are not prompt flags, or for senders
    /// that did not name it).
    pub prompt_version: Option<String>,
    /// Exposures.
    pub exposures: u64,
    /// Distinct units.
    pub units: u64,
    /// The first exposure (ms since the epoch).
    pub first_ms: i64,
    /// The last exposure.
    pub last_ms: i64,
}

/// One unit's exposures to one variant and prompt version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnitExposure {
    /// The unit (the context's targeting key).
    pub unit: String,
    /// The variant served.
    pub variant: String,
    /// The prompt version served.
    pub prompt_version: Option<String>,
    /// Exposures.
    pub exposures: u64,
    /// The unit's first exposure in the window.
    pub first_ms: i64,
    /// Its last.
    pub last_ms: i64,
}

/// The answer to an [`ExposureQuery`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExposureReport {
    /// Per variant and version, sorted by variant then version.
    pub groups: Vec<ExposureGroup>,
    /// Per unit, variant and version, sorted by unit; at most `max_units` rows.
    pub units: Vec<UnitExposure>,
    /// True when there were more unit rows than `max_units`.
    pub units_truncated: bool,
}

/// The rows of one flag in a window, read from the covering index alone (no table lookups).
const SCAN_SQL: &str = "SELECT variant, prompt_version, unit, ts_ms \
    FROM exposures WHERE flag_key = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 \
    AND (?4 IS NULL OR prompt_version = ?4)";

/// The most distinct (unit, variant, version) triples one report tracks, which bounds its memory
/// (about 100 bytes a triple); a window with more is refused with a request to narrow it.
pub const MAX_TRACKED_UNITS: usize = 20_000_000;

/// A column that is not the text the schema says (a file written by something else).
fn from_sql(error: rusqlite::types::FromSqlError) -> crate::error::Error {
    crate::error::Error::Store(rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        Box::new(error),
    ))
}

fn count(value: i64) -> u64 {
    value.max(0) as u64
}

/// Running counts of one group or one unit.
#[derive(Clone, Copy)]
struct Tally {
    exposures: u64,
    first_ms: i64,
    last_ms: i64,
}

impl Tally {
    fn new(ts_ms: i64) -> Tally {
        Tally {
            exposures: 0,
            first_ms: ts_ms,
            last_ms: ts_ms,
        }
    }

    fn add(&mut self, ts_ms: i64) {
        self.exposures += 1;
        self.first_ms = self.first_ms.min(ts_ms);
        self.last_ms = self.last_ms.max(ts_ms);
    }
}

/// The index of a (variant, version) pair in `groups`, added when new (a flag has few).
fn group_index(
    groups: &mut Vec<(String, Option<String>, Tally)>,
    variant: &str,
    version: Option<&str>,
    ts_ms: i64,
) -> usize {
    if let Some(index) = groups
        .iter()
        .position(|(v, p, _)| v == variant && p.as_deref() == version)
    {
        return index;
    }
    groups.push((
        variant.to_string(),
        version.map(str::to_string),
        Tally::new(ts_ms),
    ));
    groups.len() - 1
}

/// Who saw what: the exposures of one flag in a window, per variant and version, and per unit.
///
/// One pass over the covering index, counting in memory: sorting for `GROUP BY` and
/// `COUNT(DISTINCT)` in SQLite costs several times the scan on millions of rows.
pub fn exposure_report(connection: &Connection, query: &ExposureQuery) -> Result<ExposureReport> {
    let mut statement = connection.prepare_cached(SCAN_SQL)?;
    let mut rows = statement.query(params![
        query.flag_key,
        query.from_ms,
        query.to_ms,
        query.prompt_version
    ])?;
    let mut groups: Vec<(String, Option<String>, Tally)> = Vec::new();
    // Per unit, its tally per group (a unit usually sees one or two groups).
    let mut units: HashMap<Box<str>, Vec<(usize, Tally)>> = HashMap::new();
    let mut tracked = 0usize;
    while let Some(row) = rows.next()? {
        let variant = row.get_ref(0)?.as_str().map_err(from_sql)?;
        let version = row.get_ref(1)?.as_str_or_null().map_err(from_sql)?;
        let ts_ms: i64 = row.get(3)?;
        let group = group_index(&mut groups, variant, version, ts_ms);
        groups[group].2.add(ts_ms);
        let Some(unit) = row.get_ref(2)?.as_str_or_null().map_err(from_sql)? else {
            continue;
        };
        let seen = match units.get_mut(unit) {
            Some(seen) => seen,
            None => units.entry(Box::from(unit)).or_default(),
        };
        match seen.iter_mut().find(|(g, _)| *g == group) {
            Some((_, tally)) => tally.add(ts_ms),
            None => {
                tracked += 1;
                if tracked > MAX_TRACKED_UNITS {
                    return Err(crate::error::Error::Invalid(format!(
                        "more than {MAX_TRACKED_UNITS} distinct units in the window; narrow it with --from/--to or --version"
                    )));
                }
                let mut tally = Tally::new(ts_ms);
                tally.add(ts_ms);
                seen.push((group, tally));
            }
        }
    }
    let mut distinct = vec![0u64; groups.len()];
    for seen in units.values() {
        for (group, _) in seen {
            distinct[*group] += 1;
        }
    }
    let mut report_groups: Vec<ExposureGroup> = groups
        .iter()
        .zip(&distinct)
        .map(|((variant, prompt_version, tally), units)| ExposureGroup {
            variant: variant.clone(),
            prompt_version: prompt_version.clone(),
            exposures: tally.exposures,
            units: *units,
            first_ms: tally.first_ms,
            last_ms: tally.last_ms,
        })
        .collect();
    report_groups.sort_by(|a, b| {
        a.variant
            .cmp(&b.variant)
            .then(a.prompt_version.cmp(&b.prompt_version))
    });
    let mut names: Vec<&Box<str>> = units.keys().collect();
    names.sort_unstable();
    let mut report_units = Vec::new();
    let mut units_truncated = false;
    'units: for name in names {
        let mut seen: Vec<&(usize, Tally)> = units[name].iter().collect();
        seen.sort_by(|a, b| {
            let (ga, gb) = (&groups[a.0], &groups[b.0]);
            ga.0.cmp(&gb.0).then(ga.1.cmp(&gb.1))
        });
        for (group, tally) in seen {
            if report_units.len() == query.max_units {
                units_truncated = true;
                break 'units;
            }
            report_units.push(UnitExposure {
                unit: name.to_string(),
                variant: groups[*group].0.clone(),
                prompt_version: groups[*group].1.clone(),
                exposures: tally.exposures,
                first_ms: tally.first_ms,
                last_ms: tally.last_ms,
            });
        }
    }
    Ok(ExposureReport {
        groups: report_groups,
        units: report_units,
        units_truncated,
    })
}

/// When a prompt version or ruleset revision first reached a variant: the candidates an
/// attribution chooses among.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VariantOnset {
    /// The variant.
    pub variant: String,
    /// The prompt family.
    pub prompt_id: Option<String>,
    /// The prompt version.
    pub prompt_version: Option<String>,
    /// The prompt body's SHA-256.
    pub prompt_hash: Option<String>,
    /// The ruleset revision that served it (`None` when only LLM calls name the version).
    pub revision: Option<u64>,
    /// The first exposure (or call) with it, in ms since the epoch.
    pub first_ms: i64,
}

const EXPOSURE_ONSETS_SQL: &str = "SELECT variant, MAX(prompt_id), prompt_version, prompt_hash, revision, MIN(ts_ms) \
    FROM exposures WHERE flag_key = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 \
    AND (?4 IS NULL OR environment IS NULL OR environment = ?4) \
    GROUP BY variant, prompt_version, prompt_hash, revision";

const CALL_ONSETS_SQL: &str = "SELECT variant, MAX(prompt_id), prompt_version, prompt_hash, MIN(ts_ms) \
    FROM calls WHERE flag_key = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 \
    AND (?4 IS NULL OR environment IS NULL OR environment = ?4) \
    GROUP BY variant, prompt_version, prompt_hash";

/// The first exposure of each (variant, prompt version, body, revision) in a window, and the
/// first call of each (variant, prompt version, body) the exposures do not already name (for
/// senders that report calls but no exposures), sorted by time.
pub fn variant_onsets(connection: &Connection, window: &Window) -> Result<Vec<VariantOnset>> {
    let args = params![
        window.flag_key,
        window.from_ms,
        window.to_ms,
        window.environment
    ];
    let mut onsets = Vec::new();
    let mut statement = connection.prepare_cached(EXPOSURE_ONSETS_SQL)?;
    let rows = statement.query_map(args, |row| {
        Ok(VariantOnset {
            variant: row.get(0)?,
            prompt_id: row.get(1)?,
            prompt_version: row.get(2)?,
            prompt_hash: row.get(3)?,
            revision: row.get::<_, Option<i64>>(4)?.map(count),
            first_ms: row.get(5)?,
        })
    })?;
    for row in rows {
        onsets.push(row?);
    }
    let mut statement = connection.prepare_cached(CALL_ONSETS_SQL)?;
    let rows = statement.query_map(args, |row| {
        Ok(VariantOnset {
            variant: row.get(0)?,
            prompt_id: row.get(1)?,
            prompt_version: row.get(2)?,
            prompt_hash: row.get(3)?,
            revision: None,
            first_ms: row.get(4)?,
        })
    })?;
    for row in rows {
        let call = row?;
        let named = onsets.iter().any(|exposure| {
            exposure.variant == call.variant
                && exposure.prompt_version == call.prompt_version
                && exposure.prompt_hash == call.prompt_hash
        });
        if !named {
            onsets.push(call);
        }
    }
    onsets.sort_by(|a, b| a.first_ms.cmp(&b.first_ms).then(a.variant.cmp(&b.variant)));
    Ok(onsets)
}

/// The flags with LLM calls in a window, sorted.
pub fn flags_with_calls(
    connection: &Connection,
    environment: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<String>> {
    let mut statement = connection.prepare_cached(
        "SELECT DISTINCT flag_key FROM calls WHERE ts_ms >= ?1 AND ts_ms < ?2 \
         AND (?3 IS NULL OR environment IS NULL OR environment = ?3) ORDER BY flag_key",
    )?;
    let rows = statement.query_map(params![from_ms, to_ms, environment], |row| row.get(0))?;
    let mut flags = Vec::new();
    for row in rows {
        flags.push(row?);
    }
    Ok(flags)
}

/// One window of a metric's time series: every variant's aggregate over `[start_ms, end_ms)`.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowAggregates {
    /// Start, inclusive.
    pub start_ms: i64,
    /// End, exclusive.
    pub end_ms: i64,
    /// Per variant, sorted.
    pub variants: Vec<(String, Aggregate)>,
}

/// The most windows one series holds, so a long range with a short step stays bounded.
pub const MAX_WINDOWS: usize = 10_000;

/// A flag's per-variant aggregates in consecutive windows of `step_ms` over
/// `[window.from_ms, window.to_ms)`; the last window may be shorter. The step grows when the
/// range would need more than [`MAX_WINDOWS`].
pub fn aggregates_by_window(
    connection: &Connection,
    window: &Window,
    step_ms: i64,
) -> Result<Vec<WindowAggregates>> {
    let span = window.to_ms.saturating_sub(window.from_ms).max(0);
    let step = step_ms.max(1).max(span / MAX_WINDOWS as i64 + 1);
    let mut series = Vec::new();
    let mut start = window.from_ms;
    while start < window.to_ms {
        let end = start.saturating_add(step).min(window.to_ms);
        let slice = Window {
            from_ms: start,
            to_ms: end,
            ..window.clone()
        };
        series.push(WindowAggregates {
            start_ms: start,
            end_ms: end,
            variants: aggregates(connection, &slice)?,
        });
        start = end;
    }
    Ok(series)
}
