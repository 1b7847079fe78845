//! The forensic half of the read API: who saw what, and when each prompt version and ruleset
//! revision first reached a variant. `promptflag exposures` answers "which units saw
//! `support_reply@2.0.0` between 14:00 and 14:30?" with [`exposure_report`], and attribution
//! (`promptflag attribute`, the control loop's rollback) finds a degradation's onset candidates
//! with [`variant_onsets`] and its metric's time series with [`aggregates_by_window`].
//!
//! Every query filters one flag over a time range, which the exposures' covering indexes
//! (`collector::db`: one in time order, one in unit order) answer from index pages alone; the
//! unit list is bounded by the caller's `max_units`, and the counts stay exact when it is cut.

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

/// The rows of one flag in a window in time order, from the time index alone: for windows that
/// are a small part of the flag's history.
const SCAN_BY_TIME_SQL: &str = "SELECT unit, variant, prompt_version, ts_ms \
    FROM exposures INDEXED BY exposures_flag_time_cover \
    WHERE flag_key = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 \
    AND (?4 IS NULL OR prompt_version = ?4)";

/// The same rows in unit order, from the unit index alone: every (unit, variant, version) is one
/// run of consecutive rows, so the report needs no hashing or sorting, and memory stays bounded
/// by the groups and `max_units` however many units there are. It walks all of the flag's rows,
/// so it serves windows that are a large part of the flag's history.
const SCAN_BY_UNIT_SQL: &str = "SELECT unit, variant, prompt_version, ts_ms \
    FROM exposures INDEXED BY exposures_flag_unit_cover \
    WHERE flag_key = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 \
    AND (?4 IS NULL OR prompt_version = ?4) \
    ORDER BY flag_key, unit, variant, prompt_version";

const FIRST_SQL: &str = "SELECT MIN(ts_ms) FROM exposures WHERE flag_key = ?1";
const LAST_SQL: &str = "SELECT MAX(ts_ms) FROM exposures WHERE flag_key = ?1";

/// A window shorter than this share of the flag's history is read by time, else by unit.
const BY_TIME_SHARE: f64 = 0.1;

fn count(value: i64) -> u64 {
    value.max(0) as u64
}

/// A column that is not the text the schema says (a file written by something else).
fn from_sql(error: rusqlite::types::FromSqlError) -> crate::error::Error {
    crate::error::Error::Store(rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        Box::new(error),
    ))
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

/// One (variant, version) group while the rows stream past.
struct Group {
    variant: String,
    prompt_version: Option<String>,
    tally: Tally,
    units: u64,
}

/// The index of a (variant, version) group, added when new (a flag has few).
fn group_index(groups: &mut Vec<Group>, variant: &str, version: Option<&str>, ts_ms: i64) -> usize {
    if let Some(index) = groups
        .iter()
        .position(|g| g.variant == variant && g.prompt_version.as_deref() == version)
    {
        return index;
    }
    groups.push(Group {
        variant: variant.to_string(),
        prompt_version: version.map(str::to_string),
        tally: Tally::new(ts_ms),
        units: 0,
    });
    groups.len() - 1
}

/// The unit rows being built: the runs of one (unit, group) in unit order.
struct UnitRuns {
    max_units: usize,
    rows: Vec<UnitExposure>,
    truncated: bool,
    current_unit: String,
    current_group: Option<usize>,
    current: Tally,
}

impl UnitRuns {
    /// Ends the current run: one more distinct unit for its group, and a row while there is
    /// room.
    fn close(&mut self, groups: &mut [Group]) {
        let Some(group) = self.current_group.take() else {
            return;
        };
        groups[group].units += 1;
        if self.rows.len() < self.max_units {
            self.rows.push(UnitExposure {
                unit: self.current_unit.clone(),
                variant: groups[group].variant.clone(),
                prompt_version: groups[group].prompt_version.clone(),
                exposures: self.current.exposures,
                first_ms: self.current.first_ms,
                last_ms: self.current.last_ms,
            });
        } else {
            self.truncated = true;
        }
    }
}

/// Who saw what: the exposures of one flag in a window, per variant and version, and per unit.
///
/// Both plans read one covering index without visiting the table. A window that is a small part
/// of the flag's history is read by time and counted in memory (few rows); a larger one is read
/// in unit order and counted as it streams (no hashing, no sort, memory bounded by `max_units`).
pub fn exposure_report(connection: &Connection, query: &ExposureQuery) -> Result<ExposureReport> {
    let first: Option<i64> = connection
        .prepare_cached(FIRST_SQL)?
        .query_row(params![query.flag_key], |row| row.get(0))?;
    let last: Option<i64> = connection
        .prepare_cached(LAST_SQL)?
        .query_row(params![query.flag_key], |row| row.get(0))?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(ExposureReport {
            groups: Vec::new(),
            units: Vec::new(),
            units_truncated: false,
        });
    };
    let span = (last.saturating_sub(first) as f64).max(1.0);
    let covered = (query.to_ms.min(last.saturating_add(1)) - query.from_ms.max(first)).max(0);
    scan(connection, query, (covered as f64) < BY_TIME_SHARE * span)
}

/// Reads the report by time (`by_time`) or by unit; both give the same answer.
fn scan(connection: &Connection, query: &ExposureQuery, by_time: bool) -> Result<ExposureReport> {
    let sql = if by_time {
        SCAN_BY_TIME_SQL
    } else {
        SCAN_BY_UNIT_SQL
    };
    let mut statement = connection.prepare_cached(sql)?;
    let mut rows = statement.query(params![
        query.flag_key,
        query.from_ms,
        query.to_ms,
        query.prompt_version
    ])?;
    let mut groups: Vec<Group> = Vec::new();
    let mut runs = UnitRuns {
        max_units: query.max_units,
        rows: Vec::new(),
        truncated: false,
        current_unit: String::new(),
        current_group: None,
        current: Tally::new(0),
    };
    // Read by time, the rows of one unit are scattered: they are gathered by unit first.
    let mut scattered: HashMap<Box<str>, Vec<(usize, i64)>> = HashMap::new();
    while let Some(row) = rows.next()? {
        let unit = row.get_ref(0)?.as_str_or_null().map_err(from_sql)?;
        let variant = row.get_ref(1)?.as_str().map_err(from_sql)?;
        let version = row.get_ref(2)?.as_str_or_null().map_err(from_sql)?;
        let ts_ms: i64 = row.get(3)?;
        let group = group_index(&mut groups, variant, version, ts_ms);
        groups[group].tally.add(ts_ms);
        let Some(unit) = unit else {
            continue;
        };
        if by_time {
            match scattered.get_mut(unit) {
                Some(seen) => seen.push((group, ts_ms)),
                None => {
                    scattered.insert(Box::from(unit), vec![(group, ts_ms)]);
                }
            }
            continue;
        }
        if runs.current_group != Some(group) || runs.current_unit != unit {
            runs.close(&mut groups);
            runs.current_unit.clear();
            runs.current_unit.push_str(unit);
            runs.current_group = Some(group);
            runs.current = Tally::new(ts_ms);
        }
        runs.current.add(ts_ms);
    }
    runs.close(&mut groups);
    if by_time {
        let mut names: Vec<Box<str>> = scattered.keys().cloned().collect();
        names.sort_unstable();
        // Within a unit, its groups in (variant, version) order, as the unit index has them.
        let mut by_name: Vec<usize> = (0..groups.len()).collect();
        by_name.sort_by(|a, b| {
            (&groups[*a].variant, &groups[*a].prompt_version)
                .cmp(&(&groups[*b].variant, &groups[*b].prompt_version))
        });
        let mut rank = vec![0; groups.len()];
        for (position, group) in by_name.into_iter().enumerate() {
            rank[group] = position;
        }
        for name in names {
            let mut seen = scattered.remove(&name).unwrap_or_default();
            seen.sort_by_key(|(group, ts_ms)| (rank[*group], *ts_ms));
            runs.current_unit = name.into_string();
            for (group, ts_ms) in seen {
                if runs.current_group != Some(group) {
                    runs.close(&mut groups);
                    runs.current_group = Some(group);
                    runs.current = Tally::new(ts_ms);
                }
                runs.current.add(ts_ms);
            }
            runs.close(&mut groups);
        }
    }
    let mut report_groups: Vec<ExposureGroup> = groups
        .into_iter()
        .map(|group| ExposureGroup {
            variant: group.variant,
            prompt_version: group.prompt_version,
            exposures: group.tally.exposures,
            units: group.units,
            first_ms: group.tally.first_ms,
            last_ms: group.tally.last_ms,
        })
        .collect();
    report_groups.sort_by(|a, b| {
        a.variant
            .cmp(&b.variant)
            .then(a.prompt_version.cmp(&b.prompt_version))
    });
    Ok(ExposureReport {
        groups: report_groups,
        units: runs.rows,
        units_truncated: runs.truncated,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::db::{Synchronous, insert_batches, open};
    use crate::collector::event::{ExposureRecord, Record};

    #[test]
    fn reading_by_time_and_by_unit_give_the_same_report() {
        let dir = tempfile::tempdir().unwrap();
        let mut connection = open(&dir.path().join("t.sqlite3"), Synchronous::Normal).unwrap();
        let mut state = 17u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            state >> 33
        };
        let records: Vec<Record> = (0..3000)
            .map(|index| {
                let unit = next() % 300;
                Record::Exposure(ExposureRecord {
                    key: format!("k{index}"),
                    timestamp_ms: (next() % 10_000) as i64,
                    environment: None,
                    flag_key: String::from(if next() % 4 == 0 { "other" } else { "f" }),
                    variant: String::from(["a", "b"][(unit % 2) as usize]),
                    prompt_id: None,
                    prompt_version: [
                        None,
                        Some(String::from("1.0.0")),
                        Some(String::from("2.0.0")),
                    ][(next() % 3) as usize]
                        .clone(),
                    prompt_hash: None,
                    revision: Some(1),
                    unit: (unit != 0).then(|| format!("u{unit}")),
                    reason: None,
                })
            })
            .collect();
        insert_batches(&mut connection, &[&records]).unwrap();
        for (from_ms, to_ms, version, max_units) in [
            (0, 10_000, None, 10_000),
            (2_000, 2_500, None, 10_000),
            (1_000, 9_000, Some("2.0.0"), 10_000),
            (0, 10_000, None, 7),
        ] {
            let query = ExposureQuery {
                flag_key: String::from("f"),
                prompt_version: version.map(str::to_string),
                from_ms,
                to_ms,
                max_units,
            };
            let by_time = scan(&connection, &query, true).unwrap();
            let by_unit = scan(&connection, &query, false).unwrap();
            assert_eq!(by_time, by_unit);
            assert!(!by_time.groups.is_empty());
            let exposures: u64 = by_time.groups.iter().map(|g| g.exposures).sum();
            let expected = records
                .iter()
                .filter(|record| match record {
                    Record::Exposure(e) => {
                        e.flag_key == "f"
                            && (from_ms..to_ms).contains(&e.timestamp_ms)
                            && (version.is_none() || e.prompt_version.as_deref() == version)
                    }
                    Record::Call(_) => false,
                })
                .count() as u64;
            assert_eq!(exposures, expected);
            assert_eq!(exposure_report(&connection, &query).unwrap(), by_time);
        }
    }
}
