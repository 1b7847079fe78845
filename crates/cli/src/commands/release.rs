//! The release commands: `publish`, `kill`, `rollback`, `history` and `audit`, over
//! `promptflag-release`.

use std::time::Instant;

use anyhow::Result;
use promptflag_authoring::build::Build;
use promptflag_release::audit::AuditLog;
use promptflag_release::{ops, publish};
use serde_json::json;

use super::{revision_text, revisions_text};
use crate::args::{HiArgs, PublishCommand, Revert, RevertAction, Target, Wait};
use crate::exit::ExitCode;
use crate::{Bar, Output};

/// `promptflag publish`: plan against the store, then write (or only describe with `--dry-run`).
pub(crate) fn run_publish(args: &HiArgs, command: &PublishCommand) -> Result<Output> {
    let PublishCommand {
        environment,
        build,
        force,
        reason,
        dry_run,
        target,
        http,
    } = command;
    let (force, dry_run) = (*force, *dry_run);
    let build = match build {
        Some(dir) => Build::read(dir)?,
        None => super::authoring::build_repo(&args.repo, vec![environment.clone()], None)?,
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

/// `promptflag audit list`.
pub(crate) fn run_audit_list(args: &HiArgs, environment: &Option<String>) -> Result<Output> {
    let audit = AuditLog::open(&args.audit_db)?;
    let entries = audit.list(environment.as_deref())?;
    let mut text = String::new();
    for entry in &entries {
        text.push_str(&format!(
            "#{} {} {} {} {} r{} (from {}) by {} {}\n   {}\n",
            entry.seq,
            entry.time,
            entry.action.as_str(),
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
    Ok(Output {
        text,
        json: json!({ "ok": true, "entries": entries }),
        code: ExitCode::Ok,
    })
}

/// `promptflag audit verify`.
pub(crate) fn run_audit_verify(args: &HiArgs, expect_head: &Option<String>) -> Result<Output> {
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
