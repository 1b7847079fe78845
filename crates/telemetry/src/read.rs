//! The one read API over the telemetry store: per-variant aggregates of LLM calls and the units
//! exposed per variant, over a window. The control loop and every report that summarises
//! telemetry read through here; only this crate knows the tables.
//!
//! Sums and counts come from one SQL aggregate per window; percentiles need the values, so
//! latencies are returned unsorted for the caller to rank. An event without `parser_valid`,
//! `refused` or `hallucinated` counts as "no"; a call without `cost_usd` or token counts counts
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
    }

    /// Adds another aggregate.
    pub fn merge(&mut self, other: &Aggregate) {
        self.requests += other.requests;
        self.successes += other.successes;
        self.errors += other.errors;
        self.parser_failures += other.parser_failures;
        self.refusals += other.refusals;
        self.hallucinations += other.hallucinations;
        self.cost_sum += other.cost_sum;
        self.cost_squares += other.cost_squares;
        self.cost_success_sum += other.cost_success_sum;
        self.input_sum += other.input_sum;
        self.input_squares += other.input_squares;
        self.output_sum += other.output_sum;
        self.output_squares += other.output_squares;
        self.latencies.extend_from_slice(&other.latencies);
        self.ttfts.extend_from_slice(&other.ttfts);
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
    TOTAL(input_tokens), TOTAL(input_tokens * input_tokens), TOTAL(output_tokens), TOTAL(output_tokens * output_tokens) \
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
                latencies: Vec::new(),
                ttfts: Vec::new(),
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
