//! The one read API over the telemetry store: per-variant aggregates of LLM calls and the units
//! exposed per variant, over a window. The control loop and every report that summarises
//! telemetry read through here; only this crate knows the tables.
//!
//! Sums and counts come from one SQL aggregate per window; percentiles need the values, so
//! latencies are returned unsorted for the caller to rank. [`aggregates_with_history`] adds each
//! call's pre-exposure covariate for CUPED (see [`SuccessCovariate`]). An event without
//! `parser_valid`,
//! `refused`, `hallucinated` or a hallucination signal counts as "no" (a judge score is
//! averaged over the calls that have one); a call without `cost_usd` or token counts counts
//! as 0, so send them on every call.

use rusqlite::{Connection, params};

use crate::error::Result;

/// Everything needed to compute one variant's metrics: counts, sums and the raw latencies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregate {
    /// Calls.
    pub requests: u64,
    /// Calls with status `success`.
    pub successes: u64,
    /// Calls with status `error` or `timeout`.
    pub errors: u64,
    /// Calls whose output did not parse.
    pub parser_failures: u64,
    /// Calls the model refused.
    pub refusals: u64,
    /// Calls flagged as hallucinated.
    pub hallucinations: u64,
    /// Calls whose output cited a source that was not provided.
    pub citation_mismatches: u64,
    /// Calls with an undeclared tool call or arguments failing its schema.
    pub tool_call_mismatches: u64,
    /// Calls whose output held numbers absent from the input and sources.
    pub unsupported_numeric_claims: u64,
    /// Calls a sampled judge scored.
    pub judged: u64,
    /// Σ judge score.
    pub judge_sum: f64,
    /// Σ judge score².
    pub judge_squares: f64,
    /// Σ cost.
    pub cost_sum: f64,
    /// Σ cost².
    pub cost_squares: f64,
    /// Σ cost over successful calls.
    pub cost_success_sum: f64,
    /// Σ input tokens.
    pub input_sum: f64,
    /// Σ input tokens².
    pub input_squares: f64,
    /// Σ output tokens.
    pub output_sum: f64,
    /// Σ output tokens².
    pub output_squares: f64,
    /// Latencies (ms), any order.
    pub latencies: Vec<f64>,
    /// Times to first token (ms), any order.
    pub ttfts: Vec<f64>,
    /// The pre-exposure covariate of the success rate, for CUPED.
    pub success_covariate: SuccessCovariate,
}

/// The pre-exposure covariate of the success rate over a variant's calls: for each call, `x` is
/// the success rate of the call's unit (`user_id`) over its calls of the same flag in a window
/// before the rollout started, that is before the unit's first exposure in the rollout (every
/// call of the flag is itself an exposure, so later calls are not pre-exposure). A call whose
/// unit has no such calls counts with `x = 0`, as GrowthBook does.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SuccessCovariate {
    /// Calls whose unit had pre-exposure calls; 0 means there is no covariate to adjust by.
    pub calls_with_history: u64,
    /// `Σx`.
    pub sum: f64,
    /// `Σx²`.
    pub sum_squares: f64,
    /// `Σxy`, with `y` 1 for a successful call.
    pub sum_products: f64,
}

/// One call, for building an [`Aggregate`] without the database (simulation, tests).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Observation {
    /// Succeeded.
    pub success: bool,
    /// Errored or timed out.
    pub error: bool,
    /// Output did not parse.
    pub parser_failure: bool,
    /// Refused.
    pub refused: bool,
    /// Hallucinated.
    pub hallucinated: bool,
    /// Cited a source that was not provided.
    pub citation_mismatch: bool,
    /// Made an undeclared or ill-formed tool call.
    pub tool_call_mismatch: bool,
    /// Held unsupported numbers.
    pub unsupported_numeric_claims: bool,
    /// A sampled judge's score.
    pub judge_score: Option<f64>,
    /// Latency.
    pub latency_ms: f64,
    /// Time to first token.
    pub ttft_ms: f64,
    /// Cost.
    pub cost_usd: f64,
    /// Input tokens.
    pub input_tokens: f64,
    /// Output tokens.
    pub output_tokens: f64,
    /// The success rate of the call's unit before its first exposure, when it had calls then.
    pub pre_success: Option<f64>,
}

impl Aggregate {
    /// Adds one call.
    pub fn push(&mut self, call: &Observation) {
        self.requests += 1;
        self.successes += u64::from(call.success);
        self.errors += u64::from(call.error);
        self.parser_failures += u64::from(call.parser_failure);
        self.refusals += u64::from(call.refused);
        self.hallucinations += u64::from(call.hallucinated);
        self.citation_mismatches += u64::from(call.citation_mismatch);
        self.tool_call_mismatches += u64::from(call.tool_call_mismatch);
        self.unsupported_numeric_claims += u64::from(call.unsupported_numeric_claims);
        if let Some(score) = call.judge_score {
            self.judged += 1;
            self.judge_sum += score;
            self.judge_squares += score * score;
        }
        self.cost_sum += call.cost_usd;
        self.cost_squares += call.cost_usd * call.cost_usd;
        if call.success {
            self.cost_success_sum += call.cost_usd;
        }
        self.input_sum += call.input_tokens;
        self.input_squares += call.input_tokens * call.input_tokens;
        self.output_sum += call.output_tokens;
        self.output_squares += call.output_tokens * call.output_tokens;
        self.latencies.push(call.latency_ms);
        self.ttfts.push(call.ttft_ms);
        if let Some(x) = call.pre_success {
            let covariate = &mut self.success_covariate;
            covariate.calls_with_history += 1;
            covariate.sum += x;
            covariate.sum_squares += x * x;
            if call.success {
                covariate.sum_products += x;
            }
        }
    }

    /// Adds another aggregate.
    pub fn merge(&mut self, other: &Aggregate) {
        self.requests += other.requests;
        self.successes += other.successes;
        self.errors += other.errors;
        self.parser_failures += other.parser_failures;
        self.refusals += other.refusals;
        self.hallucinations += other.hallucinations;
        self.citation_mismatches += other.citation_mismatches;
        self.tool_call_mismatches += other.tool_call_mismatches;
        self.unsupported_numeric_claims += other.unsupported_numeric_claims;
        self.judged += other.judged;
        self.judge_sum += other.judge_sum;
        self.judge_squares += other.judge_squares;
        self.cost_sum += other.cost_sum;
        self.cost_squares += other.cost_squares;
        self.cost_success_sum += other.cost_success_sum;
        self.input_sum += other.input_sum;
        self.input_squares += other.input_squares;
        self.output_sum += other.output_sum;
        self.output_squares += other.output_squares;
        self.latencies.extend_from_slice(&other.latencies);
        self.ttfts.extend_from_slice(&other.ttfts);
        let (mine, theirs) = (&mut self.success_covariate, &other.success_covariate);
        mine.calls_with_history += theirs.calls_with_history;
        mine.sum += theirs.sum;
        mine.sum_squares += theirs.sum_squares;
        mine.sum_products += theirs.sum_products;
    }
}

/// Which calls a query covers: one flag, optionally one environment, `[from_ms, to_ms)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The flag.
    pub flag_key: String,
    /// Only calls of this environment (calls without one are included).
    pub environment: Option<String>,
    /// Start, inclusive (ms since the epoch).
    pub from_ms: i64,
    /// End, exclusive.
    pub to_ms: i64,
}

const AGGREGATE_SQL: &str = "SELECT variant, COUNT(*), \
    SUM(status = 'success'), SUM(status IN ('error', 'timeout')), \
    SUM(parser_valid = 0), SUM(refused = 1), SUM(hallucinated = 1), \
    TOTAL(cost_usd), TOTAL(cost_usd * cost_usd), TOTAL(CASE WHEN status = 'success' THEN cost_usd END), \
    TOTAL(input_tokens), TOTAL(input_tokens * input_tokens), TOTAL(output_tokens), TOTAL(output_tokens * output_tokens), \
    SUM(citation_mismatch = 1), SUM(tool_call_mismatch = 1), SUM(unsupported_numeric_claims = 1), \
    COUNT(judge_score), TOTAL(judge_score), TOTAL(judge_score * judge_score) \
    FROM calls WHERE flag_key = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 AND (?4 IS NULL OR environment IS NULL OR environment = ?4) \
    GROUP BY variant ORDER BY variant";

const LATENCY_SQL: &str = "SELECT variant, latency_ms, ttft_ms FROM calls \
    WHERE flag_key = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 AND (?4 IS NULL OR environment IS NULL OR environment = ?4)";

/// The aggregates of every variant seen in a window, sorted by variant.
pub fn aggregates(connection: &Connection, window: &Window) -> Result<Vec<(String, Aggregate)>> {
    let mut out: Vec<(String, Aggregate)> = Vec::new();
    let args = params![
        window.flag_key,
        window.from_ms,
        window.to_ms,
        window.environment
    ];
    let mut statement = connection.prepare_cached(AGGREGATE_SQL)?;
    let rows = statement.query_map(args, |row| {
        let count = |i: usize| {
            row.get::<_, Option<i64>>(i)
                .map(|v| v.unwrap_or(0).max(0) as u64)
        };
        Ok((
            row.get::<_, String>(0)?,
            Aggregate {
                requests: count(1)?,
                successes: count(2)?,
                errors: count(3)?,
                parser_failures: count(4)?,
                refusals: count(5)?,
                hallucinations: count(6)?,
                cost_sum: row.get(7)?,
                cost_squares: row.get(8)?,
                cost_success_sum: row.get(9)?,
                input_sum: row.get(10)?,
                input_squares: row.get(11)?,
                output_sum: row.get(12)?,
                output_squares: row.get(13)?,
                citation_mismatches: count(14)?,
                tool_call_mismatches: count(15)?,
                unsupported_numeric_claims: count(16)?,
                judged: count(17)?,
                judge_sum: row.get(18)?,
                judge_squares: row.get(19)?,
                latencies: Vec::new(),
                ttfts: Vec::new(),
                success_covariate: SuccessCovariate::default(),
            },
        ))
    })?;
    for row in rows {
        out.push(row?);
    }
    let mut statement = connection.prepare_cached(LATENCY_SQL)?;
    let mut rows = statement.query(args)?;
    while let Some(row) = rows.next()? {
        let variant: String = row.get(0)?;
        if let Some((_, aggregate)) = out.iter_mut().find(|(v, _)| *v == variant) {
            if let Some(latency) = row.get::<_, Option<f64>>(1)? {
                aggregate.latencies.push(latency);
            }
            if let Some(ttft) = row.get::<_, Option<f64>>(2)? {
                aggregate.ttfts.push(ttft);
            }
        }
    }
    Ok(out)
}

/// Each call's unit's success rate over its calls of the flag in `[?5, ?2)` (before the
/// window, hence before the unit's first exposure in it), summed per variant over the window's
/// calls; a call without such history contributes `x = 0` (the `LEFT JOIN` gives `NULL`, which
/// `TOTAL` skips).
const COVARIATE_SQL: &str = "WITH pre AS (SELECT user_id, AVG(status = 'success') AS x FROM calls \
    WHERE flag_key = ?1 AND ts_ms >= ?5 AND ts_ms < ?2 AND user_id IS NOT NULL \
    AND (?4 IS NULL OR environment IS NULL OR environment = ?4) GROUP BY user_id) \
    SELECT c.variant, COUNT(pre.x), TOTAL(pre.x), TOTAL(pre.x * pre.x), \
    TOTAL(CASE WHEN c.status = 'success' THEN pre.x END) \
    FROM calls c LEFT JOIN pre ON pre.user_id = c.user_id \
    WHERE c.flag_key = ?1 AND c.ts_ms >= ?2 AND c.ts_ms < ?3 \
    AND (?4 IS NULL OR c.environment IS NULL OR c.environment = ?4) \
    GROUP BY c.variant ORDER BY c.variant";

/// [`aggregates`] with each variant's [`SuccessCovariate`] from the `lookback_ms` before the
/// window's start (GrowthBook's default lookback is 14 days).
pub fn aggregates_with_history(
    connection: &Connection,
    window: &Window,
    lookback_ms: i64,
) -> Result<Vec<(String, Aggregate)>> {
    let mut out = aggregates(connection, window)?;
    let mut statement = connection.prepare_cached(COVARIATE_SQL)?;
    let mut rows = statement.query(params![
        window.flag_key,
        window.from_ms,
        window.to_ms,
        window.environment,
        window.from_ms.saturating_sub(lookback_ms.max(0))
    ])?;
    while let Some(row) = rows.next()? {
        let variant: String = row.get(0)?;
        if let Some((_, aggregate)) = out.iter_mut().find(|(v, _)| *v == variant) {
            aggregate.success_covariate = SuccessCovariate {
                calls_with_history: row.get::<_, i64>(1)?.max(0) as u64,
                sum: row.get(2)?,
                sum_squares: row.get(3)?,
                sum_products: row.get(4)?,
            };
        }
    }
    Ok(out)
}

/// Units per variant in a window, for the sample-ratio check: distinct units of `SPLIT`
/// exposures when the window has any, else distinct `user_id` of calls (the request id when a
/// call has none).
pub fn units_per_variant(connection: &Connection, window: &Window) -> Result<Vec<(String, u64)>> {
    let exposed = counts_per_variant(
        connection,
        "SELECT variant, COUNT(DISTINCT unit) FROM exposures WHERE flag_key = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 \
         AND (?4 IS NULL OR environment IS NULL OR environment = ?4) AND reason = 'SPLIT' AND unit IS NOT NULL \
         GROUP BY variant ORDER BY variant",
        window,
    )?;
    if !exposed.is_empty() {
        return Ok(exposed);
    }
    counts_per_variant(
        connection,
        "SELECT variant, COUNT(DISTINCT COALESCE(user_id, request_id)) FROM calls WHERE flag_key = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 \
         AND (?4 IS NULL OR environment IS NULL OR environment = ?4) GROUP BY variant ORDER BY variant",
        window,
    )
}

/// Calls per variant in a window (every call, whatever its status).
pub fn calls_per_variant(connection: &Connection, window: &Window) -> Result<Vec<(String, u64)>> {
    counts_per_variant(
        connection,
        "SELECT variant, COUNT(*) FROM calls WHERE flag_key = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 \
         AND (?4 IS NULL OR environment IS NULL OR environment = ?4) GROUP BY variant ORDER BY variant",
        window,
    )
}

/// What was served since a time, for hygiene: exposures plus calls per flag, per prompt id
/// (calls name it) and per prompt body hash (exposures and calls carry it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Activity {
    /// Exposures and calls per flag key.
    pub flags: std::collections::BTreeMap<String, u64>,
    /// Calls per prompt id.
    pub prompt_ids: std::collections::BTreeMap<String, u64>,
    /// Exposures and calls per prompt body hash.
    pub prompt_hashes: std::collections::BTreeMap<String, u64>,
}

/// Which count table of an [`Activity`] a grouped query fills.
type CountsOf = fn(&mut Activity) -> &mut std::collections::BTreeMap<String, u64>;

/// Exposures and calls at or after `since_ms`, counted per flag, prompt id and body hash. One
/// grouped scan per table and key; the answer has one row per distinct key, so it is bounded by
/// the number of flags and prompts, not of events.
pub fn activity_since(connection: &Connection, since_ms: i64) -> Result<Activity> {
    let mut activity = Activity::default();
    let grouped: [(&str, CountsOf); 5] = [
        (
            "SELECT flag_key, COUNT(*) FROM exposures WHERE ts_ms >= ?1 GROUP BY flag_key",
            |a| &mut a.flags,
        ),
        (
            "SELECT flag_key, COUNT(*) FROM calls WHERE ts_ms >= ?1 GROUP BY flag_key",
            |a| &mut a.flags,
        ),
        (
            "SELECT prompt_id, COUNT(*) FROM calls WHERE ts_ms >= ?1 AND prompt_id IS NOT NULL GROUP BY prompt_id",
            |a| &mut a.prompt_ids,
        ),
        (
            "SELECT prompt_hash, COUNT(*) FROM exposures WHERE ts_ms >= ?1 AND prompt_hash IS NOT NULL GROUP BY prompt_hash",
            |a| &mut a.prompt_hashes,
        ),
        (
            "SELECT prompt_hash, COUNT(*) FROM calls WHERE ts_ms >= ?1 AND prompt_hash IS NOT NULL GROUP BY prompt_hash",
            |a| &mut a.prompt_hashes,
        ),
    ];
    for (sql, target) in grouped {
        let mut statement = connection.prepare_cached(sql)?;
        let rows = statement.query_map(params![since_ms], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?.max(0) as u64,
            ))
        })?;
        for row in rows {
            let (key, count) = row?;
            *target(&mut activity).entry(key).or_insert(0) += count;
        }
    }
    Ok(activity)
}

/// Runs a `SELECT variant, COUNT(…)` over a window (parameters: flag, from, to, environment).
fn counts_per_variant(
    connection: &Connection,
    sql: &str,
    window: &Window,
) -> Result<Vec<(String, u64)>> {
    let mut statement = connection.prepare_cached(sql)?;
    let rows = statement.query_map(
        params![
            window.flag_key,
            window.from_ms,
            window.to_ms,
            window.environment
        ],
        |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?.max(0) as u64,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database with the collector's schema and a few calls: `(ts_ms, variant, user, status)`.
    fn database(calls: &[(i64, &str, &str, &str)]) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let connection = crate::collector::db::open(
            &dir.path().join("t.sqlite3"),
            crate::collector::db::Synchronous::Normal,
        )
        .unwrap();
        for (index, (ts, variant, user, status)) in calls.iter().enumerate() {
            connection
                .execute(
                    "INSERT INTO calls (request_id, ts_ms, environment, flag_key, variant, user_id, status) \
                     VALUES (?1, ?2, 'dev', 'f', ?3, ?4, ?5)",
                    params![format!("r{index}"), ts, variant, user, status],
                )
                .unwrap();
        }
        (dir, connection)
    }

    #[test]
    fn the_covariate_is_each_units_success_rate_before_the_window() {
        let (_dir, connection) = database(&[
            // Before the rollout: u1 succeeded 1 of 2, u2 2 of 2, u3 never called.
            (10, "a", "u1", "success"),
            (20, "a", "u1", "failure"),
            (30, "a", "u2", "success"),
            (40, "a", "u2", "success"),
            // The rollout's window starts at 100.
            (110, "a", "u1", "success"),
            (120, "b", "u2", "failure"),
            (130, "b", "u2", "success"),
            (140, "b", "u3", "success"),
        ]);
        let window = Window {
            flag_key: String::from("f"),
            environment: Some(String::from("dev")),
            from_ms: 100,
            to_ms: 200,
        };
        let all = aggregates_with_history(&connection, &window, 1000).unwrap();
        let a = &all.iter().find(|(v, _)| v == "a").unwrap().1;
        let b = &all.iter().find(|(v, _)| v == "b").unwrap().1;
        assert_eq!(a.requests, 1);
        assert_eq!(
            a.success_covariate,
            SuccessCovariate {
                calls_with_history: 1,
                sum: 0.5,
                sum_squares: 0.25,
                sum_products: 0.5,
            }
        );
        // u2's two calls carry x = 1; u3 has no history and counts with x = 0.
        assert_eq!(
            b.success_covariate,
            SuccessCovariate {
                calls_with_history: 2,
                sum: 2.0,
                sum_squares: 2.0,
                sum_products: 1.0,
            }
        );
        // A lookback that ends before the history sees none of it.
        let none = aggregates_with_history(&connection, &window, 50).unwrap();
        assert!(
            none.iter()
                .all(|(_, a)| a.success_covariate.calls_with_history == 0)
        );
    }
}
