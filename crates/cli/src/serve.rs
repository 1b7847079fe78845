//! `promptflag serve` and `promptflag rollout …`: the binary's glue over the collector and the
//! control loop of the library.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::exit::ExitCode;
use anyhow::{Context, Result, bail};
use promptflag_authoring::lint;
use promptflag_controller::{
    self, Clock, Command, Controller, ControllerConfig, SqlMetrics, SystemClock,
};
use promptflag_release::audit::AuditLog;
use promptflag_telemetry::collector::db::Synchronous;
use promptflag_telemetry::collector::{Collector, CollectorConfig, TimestampWindow};
use serde_json::{Value, json};

use crate::Output;
use crate::args::{HiArgs, RolloutCommand, ServeArgs, Target};
use promptflag_release::store::Http;

fn resolve_listen(listen: &str) -> Result<SocketAddr> {
    let text = listen.replace("localhost", "127.0.0.1");
    text.parse()
        .with_context(|| format!("--listen {listen:?} is not an address such as 127.0.0.1:8788"))
}

/// Runs the collector (and the control loop) until SIGINT or SIGTERM.
pub fn run_serve(hi: &HiArgs, args: &ServeArgs, target: Option<&(Target, Http)>) -> Result<Output> {
    let addr = resolve_listen(&args.listen)?;
    if !addr.ip().is_loopback() && args.tokens.is_empty() {
        bail!(
            "refusing to listen on {addr} without a writer token: anyone who can reach it could \
             write events; pass --token (or PROMPTFLAG_COLLECTOR_TOKENS), or listen on 127.0.0.1"
        );
    }
    let config = CollectorConfig {
        db_path: hi.db.clone(),
        synchronous: if args.synchronous == "normal" {
            Synchronous::Normal
        } else {
            Synchronous::Full
        },
        queue_capacity: args.queue_capacity.max(1),
        max_batch_events: args.max_batch_events.max(1),
        max_body_bytes: args.max_body_bytes.max(1024),
        max_events_per_request: 100_000,
        retry_after_seconds: args.retry_after.max(1),
        tokens: args.tokens.clone(),
        timestamp_window: (args.max_event_age > 0).then(|| TimestampWindow {
            max_age: Duration::from_secs(args.max_event_age),
            max_ahead: Duration::from_secs(args.max_event_ahead),
        }),
        ..CollectorConfig::default()
    };
    let (collector, writer) = Collector::start(config)
        .with_context(|| format!("opening the telemetry database {}", hi.db.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let loop_thread = match target {
        Some((target, http)) => {
            let wait = crate::args::wait(&args.wait, target, args.target.read_key.as_deref());
            let store = target.open(http.clone());
            let state_db = promptflag_controller::open_state(&hi.state_db)
                .with_context(|| format!("opening the rollout state {}", hi.state_db.display()))?;
            let metrics_db = rusqlite::Connection::open(&hi.db)
                .with_context(|| format!("opening the telemetry database {}", hi.db.display()))?;
            metrics_db.busy_timeout(Duration::from_secs(30))?;
            let audit = AuditLog::open(&hi.audit_db)
                .with_context(|| format!("opening the audit log {}", hi.audit_db.display()))?;
            let mut controller = Controller::new(
                state_db,
                audit,
                store,
                Box::new(SqlMetrics::new(metrics_db)),
                Arc::new(SystemClock),
                ControllerConfig {
                    actor: hi.actor.clone(),
                    serve_url: wait.serve_url.clone(),
                    serve_read_key: wait.read_key.clone(),
                    alert_webhook: args.alert_webhook.clone(),
                    wait_timeout: wait.timeout,
                    seed: SystemClock.now_ms() as u64,
                    shadow_rollbacks: false,
                    sync_repo: args.sync_on_promote.then(|| hi.repo.clone()),
                },
                http.clone(),
            )?;
            let stop = stop.clone();
            let tick = Duration::from_millis(args.tick_ms.max(10));
            Some(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match controller.tick() {
                        Ok(records) => {
                            for record in records {
                                eprintln!(
                                    "{}",
                                    json!({"rollout": record.flag, "decision": record.decision.as_str(), "stage": record.stage + 1,
                                           "weights": record.weights, "revision": record.revision, "served_ms": record.served_ms,
                                           "reason": record.reason})
                                );
                            }
                        }
                        // The next pass reconciles whatever this one left in flight.
                        Err(error) => {
                            eprintln!("{}", json!({"control_loop_error": error.to_string()}))
                        }
                    }
                    std::thread::sleep(tick);
                }
            }))
        }
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let control = loop_thread.is_some();
    let db = hi.db.clone();
    let state_db = hi.state_db.clone();
    let served = runtime.block_on(async move {
        let shutdown = async {
            let interrupt = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut terminate = match tokio::signal::unix::signal(
                    tokio::signal::unix::SignalKind::terminate(),
                ) {
                    Ok(signal) => signal,
                    Err(_) => {
                        let _ = interrupt.await;
                        return;
                    }
                };
                tokio::select! {
                    _ = interrupt => {},
                    _ = terminate.recv() => {},
                }
            }
            #[cfg(not(unix))]
            {
                let _ = interrupt.await;
            }
        };
        promptflag_telemetry::collector::serve(
            collector,
            addr,
            |bound| {
                // One line on stdout for scripts and tests, like the Worker harness.
                println!(
                    "{}",
                    json!({"url": format!("http://{bound}"), "db": db, "state_db": state_db, "control_loop": control})
                );
                eprintln!(
                    "promptflag serve: collector on http://{bound} (POST /v1/events, GET /metrics), database {}{}",
                    db.display(),
                    if control { ", control loop on" } else { ", control loop off (--control)" }
                );
            },
            shutdown,
        )
        .await
    });
    stop.store(true, Ordering::SeqCst);
    // Every sender is gone once the server has stopped: the writer drains and exits.
    writer.join();
    if let Some(thread) = loop_thread {
        let _ = thread.join();
    }
    served?;
    Ok(Output {
        text: String::from("promptflag serve: stopped\n"),
        json: json!({"ok": true, "stopped": true}),
        code: ExitCode::Ok,
    })
}

/// Polls for the loop's answer to a queued command, with a spinner on a terminal (hidden with
/// `--json`).
fn wait_for(
    connection: &rusqlite::Connection,
    id: i64,
    seconds: u64,
    quiet: bool,
) -> Result<Option<Value>> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let spinner = crate::Bar::spinner(quiet);
    loop {
        if let Some(result) = promptflag_controller::command_result(connection, id)? {
            spinner.finish();
            return Ok(Some(result));
        }
        if Instant::now() >= deadline {
            spinner.finish();
            return Ok(None);
        }
        spinner.tick(&format!(
            "waiting for the control loop to run command {id} ({} s of {seconds} s)",
            started.elapsed().as_secs()
        ));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `promptflag rollout …`.
pub fn run_rollout(hi: &HiArgs, command: &RolloutCommand) -> Result<Output> {
    let connection = promptflag_controller::open_state(&hi.state_db)
        .with_context(|| format!("opening the rollout state {}", hi.state_db.display()))?;
    let now = SystemClock.now_ms();
    let (flag, command, payload, reason, wait) = match command {
        RolloutCommand::Status { flag, checks } => {
            return status(&connection, &hi.state_db, flag, *checks);
        }
        RolloutCommand::Start { flag, reason, wait } => {
            let (repo, diagnostics) = lint::check(&hi.repo)?;
            let source = repo
                .rollouts
                .get(flag)
                .with_context(|| format!("{} has no rollouts/{flag}.yaml", hi.repo.display()))?;
            let Some(policy) = &source.policy else {
                let problems: Vec<String> = diagnostics
                    .iter()
                    .filter(|d| d.file == source.file)
                    .map(|d| d.to_string())
                    .collect();
                bail!("rollouts/{flag}.yaml is invalid:\n{}", problems.join("\n"));
            };
            (
                flag,
                Command::Start,
                json!({"policy": policy}),
                reason,
                *wait,
            )
        }
        RolloutCommand::Pause { flag, reason, wait } => {
            (flag, Command::Pause, json!({}), reason, *wait)
        }
        RolloutCommand::Resume { flag, reason, wait } => {
            (flag, Command::Resume, json!({}), reason, *wait)
        }
        RolloutCommand::Abort { flag, reason, wait } => {
            (flag, Command::Abort, json!({}), reason, *wait)
        }
    };
    let id = promptflag_controller::enqueue_command(
        &connection,
        flag,
        command,
        &payload,
        &hi.actor,
        reason,
        now,
    )?;
    if wait == 0 {
        return Ok(Output {
            text: format!(
                "{flag}: command {id} queued in {}; `promptflag serve --control` runs it on its next pass\n",
                hi.state_db.display()
            ),
            json: json!({"ok": true, "command": id, "queued": true}),
            code: ExitCode::Ok,
        });
    }
    let result = wait_for(&connection, id, wait, hi.json)?;
    match result {
        Some(result) if result["ok"] == true => Ok(Output {
            text: format!(
                "{flag}: {} — {}\n",
                result["decision"].as_str().unwrap_or("done"),
                result["reason"].as_str().unwrap_or("")
            ),
            json: json!({"ok": true, "command": id, "result": result}),
            code: ExitCode::Ok,
        }),
        Some(result) => Ok(Output {
            text: format!(
                "{flag}: refused — {}\n",
                result["error"].as_str().unwrap_or("unknown error")
            ),
            json: json!({"ok": false, "command": id, "result": result}),
            code: ExitCode::Usage,
        }),
        None => Ok(Output {
            text: format!(
                "{flag}: no control loop ran command {id} within {wait} s. It stays queued in {}; \
                 start `promptflag --repo {} serve --control …` (the loop reads the state of the \
                 same --repo, or the same --state-db), or check that it is running\n",
                hi.state_db.display(),
                hi.repo.display()
            ),
            json: json!({"ok": false, "command": id, "queued": true,
                         "error": format!("no control loop ran command {id} within {wait} s"),
                         "state_db": hi.state_db}),
            code: ExitCode::Remote,
        }),
    }
}

fn status(
    connection: &rusqlite::Connection,
    state_db: &std::path::Path,
    flag: &str,
    checks: usize,
) -> Result<Output> {
    let Some(state) = promptflag_controller::load_state(connection, flag)? else {
        return Ok(Output {
            text: format!("{flag}: no rollout in {}\n", state_db.display()),
            json: json!({"ok": true, "flag": flag, "rollout": null}),
            code: ExitCode::Ok,
        });
    };
    let recent = promptflag_controller::recent_checks(connection, flag, checks)?;
    let stage = state.policy.stages.get(state.stage);
    let mut text = format!(
        "{flag} in {}: {}, stage {}/{} ({} %), {}; revision {}; {} checks\n  {}\n",
        state.environment,
        state.status.as_str(),
        state.stage + 1,
        state.policy.stages.len(),
        stage.map_or(0.0, |s| s.percent),
        promptflag_controller::describe_weights(&state.arms, &state.weights),
        crate::commands::revision_text(state.revision),
        state.checks,
        state.reason
    );
    if let Some(pending) = &state.pending {
        text.push_str(&format!(
            "  in flight: {} → revision {}\n",
            pending.decision.as_str(),
            pending.target_revision
        ));
    }
    for check in &recent {
        text.push_str(&format!(
            "  check {} at {}: {} — {}\n",
            check["seq"],
            check["time_ms"],
            check["decision"].as_str().unwrap_or(""),
            check["reason"].as_str().unwrap_or("")
        ));
    }
    Ok(Output {
        text,
        json: json!({"ok": true, "flag": flag, "rollout": state, "checks": recent}),
        code: ExitCode::Ok,
    })
}
