//! The release commands: `publish`, `kill`, `rollback`, `history` and `audit`, over
//! `promptflag-release`.

use std::time::Instant;

use anyhow::Result;
use promptflag_authoring::build::Build;
use promptflag_release::audit::AuditLog;
use promptflag_release::store::WorkerAdmin;
use promptflag_release::{drift, ops, publish};
use serde_json::json;

use super::{revision_text, revisions_text};
use crate::args::{HiArgs, PublishCommand, Revert, RevertAction, Target, Wait};
use crate::exit::ExitCode;
use crate::{Bar, Output};

/// `promptflag publish`: plan against the store, then write (or only describe with `--dry-run`).
pub(crate) fn run_publish(args: &HiArgs, command: &PublishCommand) -> Result<Output> {
    let PublishCommand {
        environment,
        eval_results,
        build,
        force,
        revert_runtime,
        reason,
        dry_run,
        target,
        http,
    } = command;
    let (force, dry_run) = (*force, *dry_run);
    let from_repo = build.is_none();
    let build = match build {
        Some(dir) => Build::read(dir)?,
        None => super::authoring::build_repo(
            &args.repo,
            vec![environment.clone()],
            None,
            args.owner_keys.as_deref(),
        )?,
    };
    // The approvals travel with a publish built from the repository, for a Worker whose
    // environment requires them; a prebuilt `--build` has no repository to read them from.
    let approvals = if from_repo {
        super::governance::gate_material(&args.repo, &build, environment)?
    } else {
        None
    };
    let store = target.open(http.clone());
    let mut audit = AuditLog::open(&args.audit_db)?;
    reconcile(store.as_ref(), &mut audit)?;
    let options = publish::PublishOptions {
        environment: environment.clone(),
        actor: args.actor.clone(),
        reason: reason.clone(),
        force,
        revert_runtime: *revert_runtime,
        eval_results: Some(eval_results.clone()),
        approvals,
    };
    let plan = publish::plan(store.as_ref(), &audit, &build, &options)?;
    if dry_run {
        let text = format!(
            "would publish {environment} revision {} (live {}) to {}: content {}, {} body(ies){}\n",
            plan.revision,
            revision_text(plan.expected_live),
            store.describe(),
            plan.content_hash,
            plan.bodies.len(),
            if plan.overridden.is_empty() {
                String::new()
            } else {
                format!("; overriding: {}", plan.overridden.join("; "))
            }
        );
        let text = text + &runtime_text(&plan.runtime);
        let json = json!({ "ok": true, "dry_run": true, "environment": environment, "revision": plan.revision,
            "expected_live": plan.expected_live, "content_hash": plan.content_hash, "overridden": plan.overridden, "summary": plan.summary,
            "runtime": plan.runtime });
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
        revision_text(report.previous),
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
    text.push_str(&runtime_text(&report.runtime));
    Ok(Output {
        text,
        json: json!({ "ok": true, "publish": report }),
        code: ExitCode::Ok,
    })
}

/// `promptflag kill` and `promptflag rollback`: one pointer write, then the wait for the Worker.
pub(crate) fn run_revert(args: &HiArgs, revert: &Revert) -> Result<Output> {
    let started = Instant::now();
    let store = revert.target.open(revert.http.clone());
    let mut audit = AuditLog::open(&args.audit_db)?;
    reconcile(store.as_ref(), &mut audit)?;
    let who = ops::Actor {
        actor: args.actor.clone(),
        reason: revert.reason.clone(),
    };
    let environment = &revert.environment;
    let mut outcome = match &revert.action {
        RevertAction::Kill { flag } => {
            ops::kill(store.as_ref(), &mut audit, environment, flag, &who, started)?
        }
        RevertAction::Rollback { to } => {
            ops::rollback(store.as_ref(), &mut audit, environment, *to, &who, started)?
        }
    };
    finish_revert(&mut outcome, &revert.http, &revert.wait, started, args.json)
}

fn finish_revert(
    revert: &mut ops::Revert,
    http: &promptflag_release::store::Http,
    wait: &Wait,
    started: Instant,
    json_mode: bool,
) -> Result<Output> {
    if !revert.unchanged
        && let Some(url) = &wait.serve_url
    {
        let bar = Bar::new(json_mode);
        let served = ops::wait_until_served_with_progress(
            http,
            url,
            wait.read_key.as_deref(),
            &revert.environment,
            revert.revision,
            started,
            wait.timeout,
            std::time::Duration::from_millis(10),
            &bar,
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
            revision_text(revert.previous)
        ),
        _ => format!(
            "rolled {} back to revision {} (was {})\n",
            revert.environment,
            revert.revision,
            revision_text(revert.previous)
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

/// `promptflag history`: the environment's state and its audit entries.
pub(crate) fn run_history(
    args: &HiArgs,
    environment: &str,
    target: &Target,
    http: &promptflag_release::store::Http,
) -> Result<Output> {
    let store = target.open(http.clone());
    let audit = AuditLog::open(&args.audit_db)?;
    let history = ops::history(store.as_ref(), &audit, environment)?;
    let mut text = format!(
        "{environment} on {}: live {}, latest {}, kept {}\n",
        store.describe(),
        revision_text(history.state.live),
        revision_text(history.state.latest),
        revisions_text(&history.state.kept)
    );
    for entry in &history.entries {
        text.push_str(&format!(
            "  #{:<4} {} {:<8} r{} (from {}) by {}{}\n",
            entry.seq,
            entry.time,
            entry.action.as_str(),
            revision_text(entry.revision),
            revision_text(entry.previous_revision),
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

/// What a publish does with the live runtime decisions, one line each.
fn runtime_text(outcome: &publish::RuntimeOutcome) -> String {
    let mut text = String::new();
    for (label, lines) in [
        (
            "KEPT (git does not hold it; `promptflag sync` writes it back)",
            &outcome.kept,
        ),
        (
            "KEPT (a canary the loop is ramping; its outcome replaces it)",
            &outcome.running,
        ),
        ("REVERTED", &outcome.reverted),
        ("now held by git", &outcome.converged),
        ("ended with its flag", &outcome.orphaned),
    ] {
        for line in lines {
            text.push_str(&format!("  runtime {label}: {line}\n"));
        }
    }
    text
}

/// `promptflag status --env ENV`: per flag, git's intent, what is live, and why they differ.
pub(crate) fn run_status(
    args: &HiArgs,
    environment: &str,
    target: &Target,
    http: &promptflag_release::store::Http,
) -> Result<Output> {
    let build = super::authoring::build_repo(
        &args.repo,
        vec![environment.to_string()],
        None,
        args.owner_keys.as_deref(),
    )?;
    let store = target.open(http.clone());
    let audit = AuditLog::open(&args.audit_db)?;
    let status = drift::status(store.as_ref(), &audit, &build, environment)?;
    let mut text = format!(
        "{environment} on {}: live revision {}\n",
        store.describe(),
        revision_text(status.revision)
    );
    if let Some(rollback) = &status.rollback {
        text.push_str(&format!("  environment: {rollback}\n"));
    }
    for flag in &status.flags {
        let intent = flag.intent.as_deref().unwrap_or("(not in git)");
        if flag.in_sync {
            text.push_str(&format!("  {}: in sync: {intent}\n", flag.flag));
        } else {
            text.push_str(&format!(
                "  {}: DIFFERS\n    git:  {intent}\n    live: {}\n    why:  {}\n",
                flag.flag,
                flag.live.as_deref().unwrap_or("(not live)"),
                flag.why
            ));
        }
    }
    Ok(Output {
        text,
        json: json!({ "ok": true, "status": status }),
        code: ExitCode::Ok,
    })
}

/// `promptflag sync [--env ENV]`: the live decisions written back into the repository files.
pub(crate) fn run_sync(
    args: &HiArgs,
    environment: Option<&str>,
    target: &Target,
    http: &promptflag_release::store::Http,
) -> Result<Output> {
    let environments: Vec<String> = match environment {
        Some(environment) => vec![environment.to_string()],
        None => promptflag_authoring::lint::check(&args.repo)?
            .0
            .config
            .environments
            .iter()
            .map(|e| e.name.clone())
            .collect(),
    };
    let store = target.open(http.clone());
    let audit = AuditLog::open(&args.audit_db)?;
    let mut files = Vec::new();
    let mut summary = Vec::new();
    let mut running = Vec::new();
    for environment in &environments {
        let Some(live) = drift::live_of(store.as_ref(), &audit, environment)? else {
            continue;
        };
        // Load and build afresh: an earlier environment's edits are on disk now.
        let (repo, diagnostics) = promptflag_authoring::lint::check(&args.repo)?;
        let build = promptflag_authoring::build::build(
            &repo,
            &diagnostics,
            &promptflag_authoring::build::BuildOptions {
                source: Some(String::from("sync")),
                environments: vec![environment.clone()],
                owner_keys: args.owner_keys.clone(),
            },
        )?;
        let plan = promptflag_authoring::sync::plan(
            &repo,
            environment,
            &live,
            &build.environments[environment].ruleset,
        )?;
        plan.write(&repo)?;
        files.extend(plan.files.keys().cloned());
        summary.extend(plan.summary);
        running.extend(plan.running);
    }
    files.sort();
    files.dedup();
    let mut text = match (summary.is_empty(), running.is_empty()) {
        (true, true) => String::from("git already holds every live decision; nothing to write\n"),
        (true, false) => String::from("nothing to write back yet\n"),
        (false, _) => {
            String::from("wrote back into the repository (review with `git diff`, then commit):\n")
        }
    };
    for line in &summary {
        text.push_str(&format!("  {line}\n"));
    }
    for file in &files {
        text.push_str(&format!("  M {file}\n"));
    }
    for line in &running {
        text.push_str(&format!(
            "  still running, not written back (sync again once the rollout ends): {line}\n"
        ));
    }
    Ok(Output {
        text,
        json: json!({ "ok": true, "files": files, "summary": summary, "running": running }),
        code: ExitCode::Ok,
    })
}

/// `promptflag audit list`.
pub(crate) fn run_audit_list(
    args: &HiArgs,
    environment: &Option<String>,
    server: Option<&WorkerAdmin>,
) -> Result<Output> {
    let entries: Vec<ListedEntry> = match server {
        Some(worker) => worker
            .served_audit()?
            .entries
            .into_iter()
            .filter(|entry| {
                environment
                    .as_ref()
                    .is_none_or(|env| *env == entry.environment)
            })
            .map(|entry| ListedEntry {
                seq: entry.seq,
                time: entry.time,
                action: entry.action,
                environment: entry.environment,
                content_hash: entry.content_hash,
                revision: entry.revision,
                previous_revision: entry.previous_revision,
                actor: entry.actor,
                reason: entry.reason,
                hash: entry.hash,
                json: serde_json::Value::Null,
            })
            .collect(),
        None => AuditLog::open(&args.audit_db)?
            .list(environment.as_deref())?
            .into_iter()
            .map(|entry| ListedEntry {
                json: serde_json::to_value(&entry).unwrap_or_default(),
                seq: entry.seq,
                time: entry.time,
                action: entry.action.as_str().to_string(),
                environment: entry.environment,
                content_hash: entry.content_hash,
                revision: entry.revision,
                previous_revision: entry.previous_revision,
                actor: entry.actor,
                reason: entry.reason,
                hash: entry.hash,
            })
            .collect(),
    };
    let mut text = String::new();
    for entry in &entries {
        text.push_str(&format!(
            "#{} {} {} {} {} r{} (from {}) by {} {}\n   {}\n",
            entry.seq,
            entry.time,
            entry.action,
            entry.environment,
            entry
                .content_hash
                .as_deref()
                .map_or("-", |h| &h[..12.min(h.len())]),
            revision_text(entry.revision),
            revision_text(entry.previous_revision),
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
    let listed: Vec<serde_json::Value> = entries
        .iter()
        .map(|entry| {
            if entry.json.is_null() {
                json!({"seq": entry.seq, "time": entry.time, "actor": entry.actor,
                       "action": entry.action, "environment": entry.environment,
                       "revision": entry.revision, "previous_revision": entry.previous_revision,
                       "reason": entry.reason, "content_hash": entry.content_hash,
                       "hash": entry.hash})
            } else {
                entry.json.clone()
            }
        })
        .collect();
    Ok(Output {
        text,
        json: json!({ "ok": true, "entries": listed }),
        code: ExitCode::Ok,
    })
}

/// One line of `audit list`, from the Worker's log or the local mirror.
struct ListedEntry {
    seq: u64,
    time: String,
    action: String,
    environment: String,
    content_hash: Option<String>,
    revision: Option<u64>,
    previous_revision: Option<u64>,
    actor: String,
    reason: String,
    hash: String,
    /// The local entry as `--json` printed it before (null for a served entry).
    json: serde_json::Value,
}

/// Finishes a write a previous command left half-recorded (it died between the store's write
/// and the audit append), and says so on standard error.
fn reconcile(store: &dyn promptflag_release::store::Store, audit: &mut AuditLog) -> Result<()> {
    let appended = promptflag_release::reconcile(store, audit)?;
    if appended > 0 {
        eprintln!(
            "reconciled a write an earlier command made but did not record: {appended} audit entr{} appended",
            if appended == 1 { "y" } else { "ies" }
        );
    }
    Ok(())
}

/// `promptflag audit verify`.
pub(crate) fn run_audit_verify(
    args: &HiArgs,
    expect_head: &Option<String>,
    server: Option<&WorkerAdmin>,
) -> Result<Output> {
    let mut audit = AuditLog::open(&args.audit_db)?;
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
    let mut intact = verification.is_intact();
    let mut served_json = serde_json::Value::Null;
    if let Some(worker) = server {
        let served = worker.served_audit()?;
        let breaks = served.verify();
        if breaks.is_empty() {
            text.push_str(&format!(
                "served audit log of {} intact: {} entries, head {}, {} revision anchor(s) match KV\n",
                worker.base(),
                served.entries.len(),
                served.head.hash,
                served.anchors.len()
            ));
        } else {
            intact = false;
            for problem in &breaks {
                text.push_str(&format!(
                    "TAMPERED served entry {}: {} — {}\n",
                    problem.seq, problem.kind, problem.message
                ));
            }
        }
        // The local mirror: what this machine saw the Worker serve before must still be there.
        let mirror = audit.mirror(worker.base(), &served.entries, breaks.is_empty())?;
        match &mirror.divergence {
            Some(divergence) => {
                intact = false;
                text.push_str(&format!(
                    "DIVERGED from the local mirror at entry {}: mirrored {}, served {}; the Worker no longer serves the log this machine saw\n",
                    divergence.seq,
                    divergence.mirrored,
                    divergence.served.as_deref().unwrap_or("nothing (its log ends before it)"),
                ));
            }
            None => text.push_str(&format!(
                "local mirror {}: {} entr{} matched, {} new mirrored\n",
                args.audit_db.display(),
                mirror.matched,
                if mirror.matched == 1 { "y" } else { "ies" },
                mirror.appended,
            )),
        }
        served_json = json!({"entries": served.entries.len(), "head": served.head.hash,
                             "anchors": served.anchors.len(), "breaks": breaks,
                             "mirror": mirror});
    }
    let code = if intact {
        ExitCode::Ok
    } else {
        ExitCode::Problems
    };
    Ok(Output {
        text,
        json: json!({ "ok": intact, "verification": verification, "served": served_json }),
        code,
    })
}
