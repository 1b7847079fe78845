//! `promptflag`: the thin binary over the companion crates (authoring, release, telemetry, rollout,
//! controller). It parses arguments, calls those libraries, prints text or `--json`, and maps
//! errors to the documented exit codes
//! (0 ok, 1 problems found, 2 usage or I/O, 3 conflict, 4 refused by a gate, 5 remote failure).

mod args;
mod exit;
mod serve;
mod simulate;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use promptflag_authoring::build::{Build, BuildOptions};
use promptflag_authoring::{build, diff, explain, git, lint};
use promptflag_release::audit::AuditLog;
use promptflag_release::store::Progress;
use promptflag_release::{ops, publish};
use serde_json::{Value, json};

use args::{HiArgs, HiCommand, LowArgs};
use exit::ExitCode;

/// An indicatif bar on stderr; hidden for `--json` and when stderr is not a terminal.
struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new(hidden: bool) -> Bar {
        let target = if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Bar {
            bar: ProgressBar::with_draw_target(None, target),
        }
    }
}

impl Progress for Bar {
    fn begin(&self, total: u64, message: &str) {
        self.bar.set_length(total);
        self.bar.set_position(0);
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}") {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_message(message.to_string());
    }
    fn advance(&self, units: u64) {
        self.bar.inc(units);
    }
    fn end(&self) {
        self.bar.finish_and_clear();
    }
}

/// What a command produced: text for people, JSON for machines, and the exit code.
pub(crate) struct Output {
    pub(crate) text: String,
    pub(crate) json: Value,
    pub(crate) code: ExitCode,
}

fn main() {
    let low = LowArgs::parse();
    let json_mode = low.json;
    let code = match HiArgs::from_low(low).and_then(run) {
        Ok(output) => {
            emit(json_mode, &output);
            output.code
        }
        Err(error) => report(json_mode, &error),
    };
    std::process::exit(code.code());
}

fn emit(json_mode: bool, output: &Output) {
    let mut stdout = std::io::stdout().lock();
    let written = if json_mode {
        writeln!(
            stdout,
            "{}",
            serde_json::to_string_pretty(&output.json).unwrap_or_default()
        )
    } else {
        write!(stdout, "{}", output.text)
    };
    // A closed pipe (`promptflag … | head`) is not an error worth a message.
    let _ = written;
}

fn report(json_mode: bool, error: &anyhow::Error) -> ExitCode {
    let (code, diagnostics) = exit::classify(error);
    if json_mode {
        let value = json!({
            "ok": false,
            "exit_code": code.code(),
            "error": format!("{error:#}"),
            "diagnostics": diagnostics,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        for diagnostic in &diagnostics {
            eprintln!("{diagnostic}");
        }
        eprintln!("error: {error:#}");
    }
    code
}

fn run(args: HiArgs) -> Result<Output> {
    match args.command {
        HiCommand::Serve {
            args: ref serve_args,
            ref target,
        } => serve::run_serve(&args, serve_args, target.as_ref()),
        HiCommand::Rollout(ref command) => serve::run_rollout(&args, command),
        HiCommand::Analyze {
            ref input,
            ref overrides,
        } => {
            let text = if input.as_os_str() == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .context("reading the input from stdin")?;
                text
            } else {
                std::fs::read_to_string(input)
                    .with_context(|| format!("reading {}", input.display()))?
            };
            let value: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", input.display()))?;
            let result = promptflag_rollout::analyze::analyze(&value, overrides)?;
            Ok(Output {
                text: format!(
                    "{}\n",
                    serde_json::to_string_pretty(&result).unwrap_or_default()
                ),
                json: result,
                code: ExitCode::Ok,
            })
        }
        HiCommand::Simulate(ref simulate_args) => simulate::run(&args, simulate_args),
        HiCommand::Lint => run_lint(&args.repo),
        HiCommand::Build {
            ref out,
            ref environments,
            ref source,
        } => {
            let build = build_repo(&args.repo, environments.clone(), source.clone())?;
            build.write(out)?;
            let manifest = build.manifest();
            let mut text = format!(
                "built {} from {} into {}\n",
                args.repo.display(),
                build.source,
                out.display()
            );
            for (env, described) in &manifest.environments {
                text.push_str(&format!(
                    "  rulesets/{env}.json  content {}  {} flag(s), {} prompt(s)\n",
                    described.content_hash, described.flags, described.prompts
                ));
            }
            text.push_str(&format!("  prompts/  {} body(ies)\n", build.prompts.len()));
            Ok(Output {
                text,
                json: json!({ "ok": true, "out": out, "manifest": manifest }),
                code: ExitCode::Ok,
            })
        }
        HiCommand::Diff {
            ref old,
            ref new,
            ref environment,
        } => run_diff(&args.repo, old, new.as_deref(), environment.as_deref()),
        HiCommand::Publish {
            ref environment,
            ref build,
            force,
            ref reason,
            dry_run,
            ref target,
            ref http,
        } => {
            let build = match build {
                Some(dir) => Build::read(dir)?,
                None => build_repo(&args.repo, vec![environment.clone()], None)?,
            };
            let store = target.open(http.clone());
            let mut audit = AuditLog::open(&args.audit_db)?;
            let options = publish::PublishOptions {
                environment: environment.clone(),
                actor: args.actor.clone(),
                reason: reason.clone(),
                force,
            };
            let plan = publish::plan(store.as_ref(), &audit, &build, &options)?;
            if dry_run {
                let text = format!(
                    "would publish {environment} revision {} (live {:?}) to {}: content {}, {} body(ies){}\n",
                    plan.revision,
                    plan.expected_live,
                    store.describe(),
                    plan.content_hash,
                    plan.bodies.len(),
                    if plan.overridden.is_empty() {
                        String::new()
                    } else {
                        format!("; overriding: {}", plan.overridden.join("; "))
                    }
                );
                let json = json!({ "ok": true, "dry_run": true, "environment": environment, "revision": plan.revision,
                    "expected_live": plan.expected_live, "content_hash": plan.content_hash, "overridden": plan.overridden, "summary": plan.summary });
                return Ok(Output {
                    text,
                    json,
                    code: ExitCode::Ok,
                });
            }
            let bar = Bar::new(args.json);
            let report = publish::execute(store.as_ref(), &mut audit, plan, &bar)?;
            let mut text = format!(
                "published {} revision {} (was {}) to {}\n  content {}\n  {} body(ies), {} new; audit entry {} by {}\n",
                report.environment,
                report.revision,
                report
                    .previous
                    .map_or_else(|| String::from("none"), |p| p.to_string()),
                store.describe(),
                report.content_hash,
                report.bodies,
                report.bodies_created,
                report.audit_seq,
                args.actor
            );
            for message in &report.overridden {
                text.push_str(&format!("  OVERRIDDEN: {message}\n"));
            }
            Ok(Output {
                text,
                json: json!({ "ok": true, "publish": report }),
                code: ExitCode::Ok,
            })
        }
        HiCommand::Kill {
            ref flag,
            ref environment,
            ref reason,
            ref target,
            ref http,
            ref wait,
        } => {
            let started = Instant::now();
            let store = target.open(http.clone());
            let mut audit = AuditLog::open(&args.audit_db)?;
            let who = ops::Actor {
                actor: args.actor.clone(),
                reason: reason.clone(),
            };
            let mut revert =
                ops::kill(store.as_ref(), &mut audit, environment, flag, &who, started)?;
            finish_revert(&mut revert, http, wait, started)
        }
        HiCommand::Rollback {
            ref environment,
            to,
            ref reason,
            ref target,
            ref http,
            ref wait,
        } => {
            let started = Instant::now();
            let store = target.open(http.clone());
            let mut audit = AuditLog::open(&args.audit_db)?;
            let who = ops::Actor {
                actor: args.actor.clone(),
                reason: reason.clone(),
            };
            let mut revert =
                ops::rollback(store.as_ref(), &mut audit, environment, to, &who, started)?;
            finish_revert(&mut revert, http, wait, started)
        }
        HiCommand::History {
            ref environment,
            ref target,
            ref http,
        } => {
            let store = target.open(http.clone());
            let audit = AuditLog::open(&args.audit_db)?;
            let history = ops::history(store.as_ref(), &audit, environment)?;
            let show = |r: Option<u64>| r.map_or_else(|| String::from("none"), |r| r.to_string());
            let mut text = format!(
                "{environment} on {}: live {}, latest {}, kept {:?}\n",
                store.describe(),
                show(history.state.live),
                show(history.state.latest),
                history.state.kept
            );
            for entry in &history.entries {
                text.push_str(&format!(
                    "  #{:<4} {} {:<8} r{} (from {}) by {}{}\n",
                    entry.seq,
                    entry.time,
                    entry.action.as_str(),
                    show(entry.revision),
                    show(entry.previous_revision),
                    entry.actor,
                    if entry.reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", entry.reason)
                    }
                ));
            }
            Ok(Output {
                text,
                json: json!({ "ok": true, "history": history }),
                code: ExitCode::Ok,
            })
        }
        HiCommand::AuditList { ref environment } => {
            let audit = AuditLog::open(&args.audit_db)?;
            let entries = audit.list(environment.as_deref())?;
            let mut text = String::new();
            for entry in &entries {
                text.push_str(&format!(
                    "#{} {} {} {} {} r{:?}←{:?} by {} {}\n   {}\n",
                    entry.seq,
                    entry.time,
                    entry.action.as_str(),
                    entry.environment,
                    entry
                        .content_hash
                        .as_deref()
                        .map_or("-", |h| &h[..12.min(h.len())]),
                    entry.revision,
                    entry.previous_revision,
                    entry.actor,
                    if entry.reason.is_empty() {
                        String::new()
                    } else {
                        format!("({})", entry.reason)
                    },
                    entry.hash
                ));
            }
            if entries.is_empty() {
                text.push_str("the audit log is empty\n");
            }
            Ok(Output {
                text,
                json: json!({ "ok": true, "entries": entries }),
                code: ExitCode::Ok,
            })
        }
        HiCommand::AuditVerify { ref expect_head } => {
            let audit = AuditLog::open(&args.audit_db)?;
            let verification = audit.verify(expect_head.as_deref())?;
            let mut text = String::new();
            if verification.is_intact() {
                text.push_str(&format!(
                    "audit log intact: {} entries, head {}\n",
                    verification.entries, verification.head
                ));
            } else {
                for problem in &verification.breaks {
                    text.push_str(&format!(
                        "TAMPERED entry {}: {} — {}\n",
                        problem.seq, problem.kind, problem.message
                    ));
                }
            }
            let code = if verification.is_intact() {
                ExitCode::Ok
            } else {
                ExitCode::Problems
            };
            Ok(Output {
                text,
                json: json!({ "ok": verification.is_intact(), "verification": verification }),
                code,
            })
        }
        HiCommand::Eval {
            ref flag,
            ref context,
            ref ruleset,
            ref environment,
            now_millis,
        } => {
            let raw = match (ruleset, environment) {
                (Some(path), _) => build::read_ruleset_file(path)?,
                (None, Some(env)) => {
                    let mut build =
                        build_repo(&args.repo, vec![env.clone()], Some(String::from("eval")))?;
                    build
                        .environments
                        .remove(env)
                        .map(|e| e.ruleset)
                        .with_context(|| format!("no ruleset for {env}"))?
                }
                (None, None) => anyhow::bail!("eval needs --ruleset or --env"),
            };
            let explanation = explain::explain(&raw, flag, context, Some(now_millis))?;
            let mut text = format!(
                "{flag} in {} r{}:\n",
                explanation.environment, explanation.revision
            );
            for line in &explanation.why {
                text.push_str(&format!("  {line}\n"));
            }
            Ok(Output {
                text,
                json: json!({ "ok": true, "eval": explanation }),
                code: ExitCode::Ok,
            })
        }
    }
}

fn finish_revert(
    revert: &mut ops::Revert,
    http: &promptflag_release::store::Http,
    wait: &args::Wait,
    started: Instant,
) -> Result<Output> {
    if !revert.unchanged
        && let Some(url) = &wait.serve_url
    {
        let served = ops::wait_until_served(
            http,
            url,
            revert.revision,
            started,
            wait.timeout,
            std::time::Duration::from_millis(10),
        )?;
        revert.served_ms = Some(served);
    }
    let mut text = match (revert.action, &revert.flag) {
        ("kill", Some(flag)) if revert.unchanged => format!(
            "{flag} is already disabled in {} (revision {})\n",
            revert.environment, revert.revision
        ),
        ("kill", Some(flag)) => format!(
            "killed {flag} in {}: revision {} (was {}) now live; everyone gets the baseline\n",
            revert.environment,
            revert.revision,
            revert
                .previous
                .map_or_else(|| String::from("none"), |p| p.to_string())
        ),
        _ => format!(
            "rolled {} back to revision {} (was {})\n",
            revert.environment,
            revert.revision,
            revert
                .previous
                .map_or_else(|| String::from("none"), |p| p.to_string())
        ),
    };
    if !revert.unchanged {
        text.push_str(&format!(
            "  pointer write acknowledged after {} ms\n",
            revert.write_ms
        ));
        match revert.served_ms {
            Some(ms) => text.push_str(&format!(
                "  revert cycle time: {ms} ms (command start → Worker serving revision {})\n",
                revert.revision
            )),
            None => text
                .push_str("  not waiting for the Worker (no --worker/--serve-url, or --no-wait)\n"),
        }
    }
    Ok(Output {
        text,
        json: json!({ "ok": true, "revert": revert }),
        code: ExitCode::Ok,
    })
}

fn run_lint(repo: &Path) -> Result<Output> {
    let (_, diagnostics) = lint::check(repo)?;
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let mut text = String::new();
    for diagnostic in &diagnostics {
        text.push_str(&format!("{diagnostic}\n"));
    }
    text.push_str(&format!("{errors} error(s), {warnings} warning(s)\n"));
    Ok(Output {
        text,
        json: json!({ "ok": errors == 0, "errors": errors, "warnings": warnings, "diagnostics": diagnostics }),
        code: if errors == 0 {
            ExitCode::Ok
        } else {
            ExitCode::Problems
        },
    })
}

fn build_repo(repo: &Path, environments: Vec<String>, source: Option<String>) -> Result<Build> {
    let (loaded, diagnostics) = lint::check(repo)?;
    Ok(build::build(
        &loaded,
        &diagnostics,
        &BuildOptions {
            source,
            environments,
        },
    )?)
}

/// A scratch folder removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch() -> Result<Scratch> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("promptflag-diff-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(Scratch(dir))
}

/// A diff side: a build folder, or a git revision exported and built.
fn load_side(repo: &Path, spec: Option<&str>, scratches: &mut Vec<Scratch>) -> Result<Build> {
    let Some(spec) = spec else {
        return build_repo(repo, Vec::new(), None);
    };
    let path = Path::new(spec);
    if path.join("manifest.json").is_file() {
        return Ok(Build::read(path)?);
    }
    let dir = scratch()?;
    let commit = git::export_revision(repo, spec, &dir.0).with_context(|| {
        format!("{spec:?} is neither a build folder (with manifest.json) nor a git revision")
    })?;
    let build = build_repo(&dir.0, Vec::new(), Some(commit));
    scratches.push(dir);
    build
}

fn run_diff(
    repo: &Path,
    old: &str,
    new: Option<&str>,
    environment: Option<&str>,
) -> Result<Output> {
    let mut scratches = Vec::new();
    let old_build = load_side(repo, Some(old), &mut scratches)?;
    let new_build = load_side(repo, new, &mut scratches)?;
    let mut envs: Vec<&String> = old_build
        .environments
        .keys()
        .chain(new_build.environments.keys())
        .collect();
    envs.sort();
    envs.dedup();
    let old_body = |hash: &str| {
        old_build
            .prompts
            .get(hash)
            .map(|p| String::from_utf8_lossy(&p.body).into_owned())
    };
    let new_body = |hash: &str| {
        new_build
            .prompts
            .get(hash)
            .map(|p| String::from_utf8_lossy(&p.body).into_owned())
    };
    let mut diffs = Vec::new();
    for env in envs {
        if environment.is_some_and(|wanted| wanted != env) {
            continue;
        }
        let diff = diff::diff_rulesets(
            old_build.environments.get(env).map(|e| &e.ruleset),
            new_build.environments.get(env).map(|e| &e.ruleset),
            Some((&old_body, &new_body)),
        );
        diffs.push(diff);
    }
    let text: String = diffs.iter().map(diff::render).collect();
    Ok(Output {
        text,
        json: json!({ "ok": true, "old": old_build.source, "new": new_build.source, "environments": diffs }),
        code: ExitCode::Ok,
    })
}
