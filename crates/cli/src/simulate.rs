//! `promptflag simulate`: the binary's glue (progress bars, the CSV file, the summary) over
//! `promptflag_cli::simulation`.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::exit::ExitCode;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use promptflag_authoring::policy::read_policy_file;
use promptflag_cli::simulation::{self, CsvRow, RunResult, Scenario, SimConfig, SpawnedWorkerRef};
use serde_json::json;

use crate::Output;
use crate::args::{HiArgs, SimulateArgs};

fn bar(hidden: bool, length: u64, template: &str) -> ProgressBar {
    let target = if hidden {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(length), target);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn describe(result: &RunResult) -> String {
    let mut text = format!(
        "  outcome: {} after {} checks, {} calls ({} ms wall)\n",
        result.outcome, result.checks, result.calls, result.wall_ms
    );
    if let (Some(minutes), Some(treatment), Some(total)) = (
        result.detection_minutes,
        result.detection_treatment_calls,
        result.detection_total_calls,
    ) {
        let _ = writeln!(
            text,
            "  time to detection: {:.0} simulated minutes ({:.2} h), {treatment} treatment calls, {total} calls in all, {} ms wall",
            minutes,
            minutes / 60.0,
            result.detection_wall_ms.unwrap_or(0)
        );
    }
    match (result.attribution_minutes, &result.attribution) {
        (Some(minutes), Some(named)) => {
            let _ = writeln!(
                text,
                "  time to attribution: {minutes:.0} simulated minutes ({:.2} h): {named}",
                minutes / 60.0
            );
        }
        _ => {
            let _ = writeln!(text, "  time to attribution: no degradation attributed");
        }
    }
    if let Some(ms) = result.revert_cycle_ms {
        let _ = writeln!(
            text,
            "  revert cycle time: {ms} ms (decision → the Worker serving the new revision){}",
            match result.baseline_served_after_rollback {
                Some(true) => "; treatment users now get the baseline",
                Some(false) => "; WARNING: a treatment user still got the treatment",
                None => "",
            }
        );
    }
    let decisions: Vec<String> = result
        .decisions
        .iter()
        .map(|(minute, decision)| format!("{decision}@{minute:.0}m"))
        .collect();
    let _ = writeln!(text, "  decisions: {}", decisions.join(", "));
    let _ = writeln!(
        text,
        "  naive rule (roll back when an observed change passes a guardrail, any check): {}",
        match result.naive_minute {
            Some(minute) => format!("would have rolled back at minute {minute:.0}"),
            None => String::from("would not have rolled back"),
        }
    );
    text
}

fn write_csv(path: &PathBuf, rows: &[CsvRow]) -> Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut text = String::from(CsvRow::HEADER);
    text.push('\n');
    for row in rows {
        text.push_str(&row.line());
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Runs `runs` in-process shadow runs of `config` on seeds `seed…`.
fn shadow_runs(
    config: &SimConfig,
    seed: u64,
    runs: u32,
    progress: &ProgressBar,
) -> Result<Vec<RunResult>> {
    let mut out = Vec::with_capacity(runs as usize);
    for index in 0..runs {
        out.push(simulation::run_in_process(
            config,
            seed + u64::from(index),
            &mut |_, _, _| {},
        )?);
        progress.inc(1);
    }
    Ok(out)
}

fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

fn or_dash<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| String::from("—"), |v| v.to_string())
}

/// `promptflag simulate --power`: the item-by-item power table (see `--help`).
fn power(hi: &HiArgs, args: &SimulateArgs, base: &SimConfig) -> Result<Output> {
    let started = std::time::Instant::now();
    let scenarios = [
        Scenario::Regression,
        Scenario::Verbose,
        Scenario::Improvement,
    ];
    let total = u64::from(args.runs) * 8;
    let progress = bar(hi.json, total, "power {bar:30} {pos}/{len} runs {msg}");
    let mut rows = Vec::new();
    let mut settings = Vec::new();
    for cuped in [false, true] {
        let setting = |scenario, stop| SimConfig {
            scenario,
            cuped,
            shadow: true,
            stop_after_naive: stop,
            ..base.clone()
        };
        progress.set_message(format!("aa, CUPED {}", if cuped { "on" } else { "off" }));
        let aa = shadow_runs(
            &setting(Scenario::Aa, None),
            args.seed,
            args.runs,
            &progress,
        )?;
        let runs = aa.len().max(1) as f64;
        let sequential_rate = aa
            .iter()
            .filter(|r| simulation::sequential_detection(r).is_some())
            .count() as f64
            / runs;
        let threshold = simulation::naive_threshold(&aa, sequential_rate);
        let naive_rate = aa
            .iter()
            .filter(|r| simulation::naive_detection(r, threshold).is_some())
            .count() as f64
            / runs;
        let untuned_rate = aa
            .iter()
            .filter(|r| simulation::naive_detection(r, 1.0).is_some())
            .count() as f64
            / runs;
        settings.push(json!({
            "aa_sequential_causes": simulation::cause_counts(&aa),
            "cuped": cuped,
            "aa_sequential_rollback_rate": sequential_rate,
            "naive_scale": threshold,
            "aa_naive_rollback_rate": naive_rate,
            "aa_untuned_naive_rollback_rate": untuned_rate,
        }));
        rows.extend(simulation::power_rows(
            Scenario::Aa,
            cuped,
            &aa,
            (sequential_rate, naive_rate),
            threshold,
        ));
        for scenario in scenarios {
            progress.set_message(format!(
                "{}, CUPED {}",
                scenario.as_str(),
                if cuped { "on" } else { "off" }
            ));
            let found = shadow_runs(
                &setting(scenario, Some(threshold)),
                args.seed,
                args.runs,
                &progress,
            )?;
            rows.extend(simulation::power_rows(
                scenario,
                cuped,
                &found,
                (sequential_rate, naive_rate),
                threshold,
            ));
        }
    }
    progress.finish_and_clear();
    let mut text = format!(
        "power, {} runs per scenario and setting on seeds {}..{}, policy {}, {} calls/min, {} users, {} h horizon; in process, shadow mode ({} s wall)\n",
        args.runs,
        args.seed,
        args.seed + u64::from(args.runs) - 1,
        args.policy
            .as_ref()
            .map_or_else(|| args.preset.clone(), |p| p.display().to_string()),
        args.rate,
        args.users,
        args.max_hours,
        started.elapsed().as_secs()
    );
    for setting in &settings {
        let _ = writeln!(
            text,
            "  CUPED {}: A/A rollbacks, sequential {}; naive rule tuned to it with allowances x{:.2} ({} of A/A runs; untuned x1: {})",
            if setting["cuped"] == true {
                "on "
            } else {
                "off"
            },
            percent(
                setting["aa_sequential_rollback_rate"]
                    .as_f64()
                    .unwrap_or(0.0)
            ),
            setting["naive_scale"].as_f64().unwrap_or(0.0),
            percent(setting["aa_naive_rollback_rate"].as_f64().unwrap_or(0.0)),
            percent(
                setting["aa_untuned_naive_rollback_rate"]
                    .as_f64()
                    .unwrap_or(0.0)
            ),
        );
        let causes: Vec<String> = setting["aa_sequential_causes"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|c| format!("{} {}", c[0].as_str().unwrap_or(""), c[1]))
                    .collect()
            })
            .unwrap_or_default();
        if !causes.is_empty() {
            let _ = writeln!(
                text,
                "    sequential A/A rollback causes: {}",
                causes.join(", ")
            );
        }
    }
    let _ = writeln!(
        text,
        "| scenario | CUPED | rule | A/A rollbacks | rolled back | median treatment calls | median calls | median minutes | promoted | paused |"
    );
    let _ = writeln!(text, "|---|---|---|---|---|---|---|---|---|---|");
    for row in &rows {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.scenario.as_str(),
            if row.cuped { "on" } else { "off" },
            row.rule,
            percent(row.aa_rollback_rate),
            percent(row.rollback_rate),
            or_dash(row.median_treatment_calls),
            or_dash(row.median_total_calls),
            or_dash(row.median_minutes.map(|m| format!("{m:.0}"))),
            or_dash(row.promote_rate.map(percent)),
            if row.rule == "sequential" {
                percent(row.pause_rate)
            } else {
                String::from("—")
            },
        );
    }
    Ok(Output {
        text,
        json: json!({
            "ok": true,
            "runs": args.runs,
            "first_seed": args.seed,
            "settings": settings,
            "rows": rows,
        }),
        code: ExitCode::Ok,
    })
}

/// Runs `promptflag simulate`.
pub fn run(hi: &HiArgs, args: &SimulateArgs) -> Result<Output> {
    let scenario = Scenario::parse(&args.scenario).context("unknown scenario")?;
    let policy = match &args.policy {
        Some(path) => read_policy_file(path, simulation::FLAG)?,
        None => simulation::preset_policy(&args.preset),
    };
    let config = SimConfig {
        scenario,
        policy,
        rate_per_minute: args.rate,
        users: args.users,
        max_hours: args.max_hours,
        cuped: !args.no_cuped,
        shadow: false,
        stop_after_naive: None,
    };
    if args.power {
        return power(hi, args, &config);
    }
    let hidden = hi.json;
    let mut text = format!(
        "simulate {} (expected: {}), {} calls/min, {} users, policy {}\n",
        scenario.as_str(),
        scenario.expected(),
        args.rate,
        args.users,
        args.policy
            .as_ref()
            .map_or_else(|| args.preset.clone(), |p| p.display().to_string())
    );
    let mut worker_run = None;
    if !args.no_worker {
        let spawned;
        let (url, token, read_key) = match &args.worker_url {
            Some(url) => (
                url.clone(),
                args.admin_token.clone(),
                args.read_key.clone().ok_or_else(|| {
                    anyhow::anyhow!(
                        "--worker-url needs the Worker's server read key: --read-key (or PROMPTFLAG_READ_KEY)"
                    )
                })?,
            ),
            None => {
                spawned = simulation::spawn_worker("simulate-admin-token-0123456789abcdef")?;
                (
                    spawned.url.clone(),
                    spawned.token.clone(),
                    spawned.read_key.clone(),
                )
            }
        };
        let horizon = (args.max_hours * 60.0) as u64;
        let progress = bar(
            hidden,
            horizon,
            "through the Worker {bar:30} {pos}/{len} simulated min {msg}",
        );
        let result = simulation::run_through_worker(
            &config,
            args.seed,
            &SpawnedWorkerRef {
                url: &url,
                token: &token,
                read_key: &read_key,
            },
            &mut |minute, _, message| {
                progress.set_position(minute as u64);
                progress.set_message(message.to_string());
            },
        )?;
        progress.finish_and_clear();
        let _ = writeln!(
            text,
            "run through the Worker ({url}) and the collector, seed {}:",
            args.seed
        );
        text.push_str(&describe(&result));
        worker_run = Some(result);
    }
    let mut runs = Vec::new();
    // With the Worker, one run goes through it and --runs N > 1 adds N in-process runs.
    let in_process = if args.no_worker || args.runs > 1 {
        args.runs
    } else {
        0
    };
    if in_process > 0 {
        let progress = bar(
            hidden,
            u64::from(in_process),
            "in process {bar:30} {pos}/{len} runs {msg}",
        );
        for index in 0..in_process {
            let seed = args.seed + u64::from(index);
            let result = simulation::run_in_process(&config, seed, &mut |_, _, _| {})?;
            progress.inc(1);
            progress.set_message(result.outcome.clone());
            runs.push(result);
        }
        progress.finish_and_clear();
    }
    if in_process == 1
        && let Some(result) = runs.first()
    {
        let _ = writeln!(text, "run in process (no Worker), seed {}:", result.seed);
        text.push_str(&describe(result));
    }
    let rates = (!runs.is_empty()).then(|| simulation::rates(&runs));
    if let Some(rates) = &rates
        && runs.len() > 1
    {
        let _ = writeln!(
            text,
            "{} runs in process on seeds {}..{} (traffic → metrics → the same controller and decisions, publishing to an in-memory store; {}):",
            rates.runs,
            args.seed,
            args.seed + u64::from(in_process) - 1,
            if args.no_worker {
                "no run went through the Worker (--no-worker)"
            } else {
                "the run above went through the real Worker"
            }
        );
        for (outcome, count, share) in &rates.outcomes {
            let _ = writeln!(text, "  {outcome:<9} {count:>4}  {:>6.1} %", share * 100.0);
        }
        let _ = writeln!(
            text,
            "  rollback rate: sequential rule {:.1} % (alpha {}), naive rule {:.1} %",
            rates.sequential_rollback_rate * 100.0,
            config.policy.alpha,
            rates.naive_rollback_rate * 100.0
        );
        if !rates.rollback_causes.is_empty() {
            let causes: Vec<String> = rates
                .rollback_causes
                .iter()
                .map(|(cause, n)| format!("{cause} {n}"))
                .collect();
            let _ = writeln!(text, "  rollback causes: {}", causes.join(", "));
        }
        if let (Some(minutes), Some(treatment), Some(total)) = (
            rates.median_detection_minutes,
            rates.median_detection_treatment_calls,
            rates.median_detection_total_calls,
        ) {
            let _ = writeln!(
                text,
                "  median time to a decision: {minutes:.0} simulated minutes, {treatment} treatment calls, {total} calls in all"
            );
        }
        let _ = writeln!(
            text,
            "  attribution: {:.1} % of runs{}",
            rates.attribution_rate * 100.0,
            rates
                .median_attribution_minutes
                .map_or_else(String::new, |m| format!(
                    ", median time to attribution {m:.0} simulated minutes"
                ))
        );
    }
    let csv_rows = worker_run
        .as_ref()
        .map(|r| r.rows.clone())
        .or_else(|| runs.first().map(|r| r.rows.clone()))
        .unwrap_or_default();
    let csv = args.csv.clone().unwrap_or_else(|| {
        hi.repo
            .join(".promptflag")
            .join(format!("simulate-{}.csv", scenario.as_str()))
    });
    write_csv(&csv, &csv_rows)?;
    let _ = writeln!(text, "per-check CSV: {}", csv.display());
    Ok(Output {
        text,
        json: json!({
            "ok": true,
            "scenario": scenario,
            "worker_run": worker_run,
            "runs": runs.len(),
            "rates": rates,
            "first_in_process_run": runs.first(),
            "csv": csv,
        }),
        code: ExitCode::Ok,
    })
}
