//! End to end against the real Worker (the built `worker/build/` in Miniflare, started through
//! `tests/support/worker-server.mjs`): publish, two concurrent publishers, kill and rollback with
//! the revert cycle time, an operator's rollback that a publish from git respects, staging
//! before prod, a draft refused by the server whatever the manifest says, and the local mirror
//! of the served audit log.
//!
//! These tests need Node 22 and the built Worker; `cargo xtask test` provides both; run alone,
//! the harness finds them in the workspace after `cargo xtask setup` and `cargo xtask
//! build-worker`, and fails naming the command when they are missing (never silently).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use promptflag_authoring::build::BuildOptions;
use promptflag_harness::{
    Locations, TEST_CLIENT_KEY, TEST_SERVER_KEY, WorkerOptions, WorkerProcess,
};
use promptflag_release::Error;
use promptflag_release::audit::AuditLog;
use promptflag_release::ops;
use promptflag_release::publish::{self, PublishOptions};
use promptflag_release::store::{Http, NoProgress, RetryPolicy, WorkerAdmin};
use serde_json::json;
use support::*;

const TOKEN: &str = "e2e-admin-token-0123456789abcdef0123";

/// A running Worker, stopped cleanly (with workerd) when dropped.
struct Worker {
    _process: WorkerProcess,
    url: String,
}

fn start_worker() -> Worker {
    start_worker_with(None)
}

/// A Worker whose admin authority enforces `policy` (`ENVIRONMENT_POLICY`).
fn start_worker_with(policy: Option<&str>) -> Worker {
    let locations = Locations::from_env().unwrap_or_else(|e| panic!("{e}"));
    let options = WorkerOptions {
        admin_token: Some(TOKEN.to_string()),
        environment_policy: policy.map(str::to_string),
        ..WorkerOptions::default()
    };
    let process = WorkerProcess::start(&locations, &options).unwrap_or_else(|e| panic!("{e}"));
    let url = process.url().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    Worker {
        _process: process,
        url,
    }
}

fn http() -> Http {
    Http::new(
        Duration::from_secs(30),
        RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
    )
}

fn cli(repo: &std::path::Path, worker: &Worker, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--repo", repo.to_str().unwrap()];
    all.extend_from_slice(args);
    promptflag_with_env(
        &all,
        &[
            ("PROMPTFLAG_WORKER_URL", &worker.url),
            ("PROMPTFLAG_ADMIN_TOKEN", TOKEN),
            ("PROMPTFLAG_READ_KEY", TEST_SERVER_KEY),
        ],
    )
}

fn resolve(worker: &Worker, flag: &str, context: serde_json::Value) -> serde_json::Value {
    let body = serde_json::to_vec(&serde_json::json!({ "context": context })).unwrap();
    let reply = http()
        .send(
            "POST",
            &format!("{}/v1/resolve/{flag}", worker.url),
            &[
                ("Content-Type", "application/json".to_string()),
                ("Authorization", format!("Bearer {TEST_CLIENT_KEY}")),
            ],
            Some(&body),
            false,
        )
        .unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

fn served_revision(worker: &Worker, revision: u64) {
    ops::wait_until_served(
        &http(),
        &worker.url,
        Some(TEST_SERVER_KEY),
        "dev",
        revision,
        Instant::now(),
        Duration::from_secs(60),
        Duration::from_millis(10),
    )
    .unwrap();
}

#[test]
fn e2e_publish_kill_and_rollback_with_the_revert_cycle_time() {
    let worker = start_worker();
    let (_dir, repo) = scratch_repo();
    let published = cli(&repo, &worker, &["--json", "publish", "--env", "dev"]);
    assert_eq!(
        published.status.code(),
        Some(0),
        "{}{}",
        stdout(&published),
        stderr(&published)
    );
    served_revision(&worker, 1);
    let staff = serde_json::json!({ "targetingKey": "user-9", "email": "kim@acme.example" });
    let before = resolve(&worker, "support_prompt", staff.clone());
    assert_eq!(before["variant"], "concise", "{before}");

    let kill = cli(
        &repo,
        &worker,
        &[
            "--json",
            "kill",
            "support_prompt",
            "--env",
            "dev",
            "--reason",
            "e2e",
        ],
    );
    assert_eq!(
        kill.status.code(),
        Some(0),
        "{}{}",
        stdout(&kill),
        stderr(&kill)
    );
    let value: serde_json::Value = serde_json::from_slice(&kill.stdout).unwrap();
    assert_eq!(value["revert"]["revision"], 2);
    let kill_ms = value["revert"]["served_ms"]
        .as_u64()
        .expect("kill waited for the Worker");
    let killed = resolve(&worker, "support_prompt", staff.clone());
    assert_eq!(killed["variant"], "stable", "{killed}");
    assert_eq!(killed["reason"], "DISABLED", "{killed}");

    let rollback = cli(
        &repo,
        &worker,
        &["rollback", "--env", "dev", "--reason", "e2e restore"],
    );
    assert_eq!(
        rollback.status.code(),
        Some(0),
        "{}{}",
        stdout(&rollback),
        stderr(&rollback)
    );
    let text = stdout(&rollback);
    assert!(text.contains("revert cycle time"), "{text}");
    let restored = resolve(&worker, "support_prompt", staff);
    assert_eq!(restored["variant"], "concise", "{restored}");
    eprintln!(
        "e2e revert cycle time (cache TTL 50 ms): kill {kill_ms} ms; rollback: {}",
        text.lines()
            .find(|l| l.contains("cycle"))
            .unwrap_or("")
            .trim()
    );

    let history = cli(&repo, &worker, &["--json", "history", "--env", "dev"]);
    let value: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(value["history"]["state"]["live"], 1);
    assert_eq!(value["history"]["state"]["latest"], 2);
    let verify = cli(&repo, &worker, &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
}

/// Runs the companion and expects an exit code, returning its standard output.
fn expect_exit(repo: &std::path::Path, worker: &Worker, args: &[&str], code: i32) -> String {
    let output = cli(repo, worker, args);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{args:?}: {}{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output) + &stderr(&output)
}

#[test]
fn e2e_an_operators_rollback_is_not_undone_by_a_publish_from_git_unless_reverted_with_a_reason() {
    let worker = start_worker();
    let (_dir, repo) = scratch_repo();
    let user = serde_json::json!({ "targetingKey": "user-1" });
    expect_exit(&repo, &worker, &["publish", "--env", "dev"], 0);
    served_revision(&worker, 1);
    assert_eq!(
        resolve(&worker, "support_prompt", user.clone())["variant"],
        "concise"
    );
    // A change that turns out bad, published as revision 2, then rolled back by an operator.
    edit(
        &repo,
        "flags/support_prompt.yaml",
        "    default:\n      variant: concise",
        "    default:\n      variant: stable",
    );
    expect_exit(&repo, &worker, &["publish", "--env", "dev"], 0);
    let rollback = ["rollback", "--env", "dev", "--reason", "bad answers"];
    expect_exit(&repo, &worker, &rollback, 0);
    assert_eq!(
        resolve(&worker, "support_prompt", user.clone())["variant"],
        "concise"
    );

    let status = expect_exit(&repo, &worker, &["status", "--env", "dev"], 0);
    assert!(
        status.contains("\n  environment: rolled back from revision 2 to 1 at ")
            && status.contains(" because bad answers; git would serve again what it took away (flags.support_prompt), so a publish needs --revert-runtime --reason\n"),
        "{status}"
    );
    assert!(
        status.contains("  support_prompt: DIFFERS\n    git:  on, baseline stable, default stable\n    live: on, baseline stable, default concise\n    why:  rolled back from revision 2 to 1 at "),
        "{status}"
    );
    assert!(status.contains("  summary_prompt: in sync: "), "{status}");

    // The unchanged repository would serve the rolled-back flag again: refused, nothing written.
    let refused = expect_exit(&repo, &worker, &["publish", "--env", "dev"], 4);
    assert!(
        refused.contains("dev was rolled back from revision 2 to 1 at ")
            && refused.contains("(flags.support_prompt as revision 2 had it)")
            && refused.contains("--revert-runtime --reason"),
        "{refused}"
    );
    let history = expect_exit(&repo, &worker, &["--json", "history", "--env", "dev"], 0);
    let value: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(value["history"]["state"]["live"], 1);
    assert_eq!(value["history"]["state"]["latest"], 2);

    // A kill on top keeps the rollback: the revision it writes records it.
    expect_exit(
        &repo,
        &worker,
        &[
            "kill",
            "summary_prompt",
            "--env",
            "dev",
            "--reason",
            "noisy",
        ],
        0,
    );
    let refused = expect_exit(&repo, &worker, &["publish", "--env", "dev"], 4);
    assert!(
        refused.contains("dev was rolled back from revision 2 to 1 at "),
        "{refused}"
    );

    // Told to, with a reason: git's content goes live, and the override is audited.
    let published = expect_exit(
        &repo,
        &worker,
        &[
            "publish",
            "--env",
            "dev",
            "--revert-runtime",
            "--reason",
            "fixed upstream",
        ],
        0,
    );
    assert!(
        published.contains("  runtime REVERTED: environment: rolled back from revision 2 to 1 at "),
        "{published}"
    );
    served_revision(&worker, 4);
    assert_eq!(
        resolve(&worker, "support_prompt", user)["variant"],
        "stable"
    );
    let status = expect_exit(&repo, &worker, &["status", "--env", "dev"], 0);
    assert!(
        !status.contains("environment:") && !status.contains("DIFFERS"),
        "{status}"
    );
    let audit = expect_exit(
        &repo,
        &worker,
        &["--json", "audit", "list", "--env", "dev"],
        0,
    );
    let entries: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let last = entries["entries"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (&last["action"], &last["revision"], &last["reason"]),
        (&json!("publish"), &json!(4), &json!("fixed upstream")),
        "the authority's log has the publish over the rollback with its reason: {audit}"
    );
}

#[test]
fn e2e_two_concurrent_publishers_one_gets_a_conflict() {
    let worker = start_worker();
    let (dir, repo) = scratch_repo();
    let (loaded, diagnostics) = promptflag_authoring::lint::check(&repo).unwrap();
    let build = Arc::new(
        promptflag_authoring::build::build(&loaded, &diagnostics, &BuildOptions::default())
            .unwrap(),
    );
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|n| {
            let (build, barrier, url) = (build.clone(), barrier.clone(), worker.url.clone());
            let db = dir.path().join(format!("audit-{n}.sqlite3"));
            std::thread::spawn(move || {
                let store = WorkerAdmin::new(&url, TOKEN, http());
                let mut audit = AuditLog::open(&db).unwrap();
                let options = PublishOptions {
                    environment: "dev".into(),
                    actor: format!("publisher-{n}"),
                    ..Default::default()
                };
                let plan = publish::plan(&store, &audit, &build, &options).unwrap();
                barrier.wait();
                publish::execute(&store, &mut audit, plan, &NoProgress)
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let wins = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Conflict { .. })))
        .count();
    assert_eq!((wins, conflicts), (1, 1), "{results:?}");
    served_revision(&worker, 1);
}

#[test]
fn e2e_prod_needs_staging_first() {
    let worker = start_worker();
    let (_dir, repo) = scratch_repo();
    let refused = cli(&repo, &worker, &["publish", "--env", "prod"]);
    assert_eq!(refused.status.code(), Some(4), "{}", stderr(&refused));
    let staging = cli(&repo, &worker, &["publish", "--env", "staging"]);
    assert_eq!(staging.status.code(), Some(0), "{}", stderr(&staging));
    let prod = cli(&repo, &worker, &["--json", "publish", "--env", "prod"]);
    assert_eq!(prod.status.code(), Some(0), "{}", stderr(&prod));
    let value: serde_json::Value = serde_json::from_slice(&prod.stdout).unwrap();
    assert_eq!(value["publish"]["revision"], 1);
    let state = cli(&repo, &worker, &["--json", "history", "--env", "prod"]);
    let value: serde_json::Value = serde_json::from_slice(&state.stdout).unwrap();
    assert_eq!(value["history"]["state"]["live"], 1);
}

#[test]
fn e2e_kill_in_prod_is_not_reported_served_by_a_worker_serving_dev() {
    // The Worker serves dev. Both environments reach revision 2, so a wait that compared
    // revision numbers alone would report prod's kill as served by dev's Worker.
    let worker = start_worker();
    let (_dir, repo) = scratch_repo();
    for env in ["dev", "staging", "prod"] {
        let published = cli(&repo, &worker, &["publish", "--env", env]);
        assert_eq!(published.status.code(), Some(0), "{}", stderr(&published));
    }
    let dev_kill = cli(&repo, &worker, &["kill", "support_prompt", "--env", "dev"]);
    assert_eq!(dev_kill.status.code(), Some(0), "{}", stderr(&dev_kill));
    served_revision(&worker, 2);

    let prod_kill = cli(
        &repo,
        &worker,
        &["--json", "kill", "support_prompt", "--env", "prod"],
    );
    assert_eq!(prod_kill.status.code(), Some(5), "{}", stdout(&prod_kill));
    let value: serde_json::Value = serde_json::from_slice(&prod_kill.stdout).unwrap();
    let message = value["error"].as_str().unwrap();
    assert!(message.contains("serves dev, not prod"), "{message}");
    assert!(message.contains("revision 2 is live"), "{message}");
    let history = cli(&repo, &worker, &["--json", "history", "--env", "prod"]);
    let value: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(
        value["history"]["state"]["live"], 2,
        "the kill itself landed"
    );
}

/// The promotion gate holds on the server: a build whose manifest was edited to drop
/// `promote_from` passes the companion's own gate, and the Worker's admin authority still
/// refuses prod until staging has accepted the same prompt bodies, leaving prod unpublished.
#[test]
fn e2e_a_manifest_without_promote_from_is_still_refused_by_the_worker() {
    let worker = start_worker_with(Some(r#"{"prod": {"promote_from": "staging"}}"#));
    let (dir, repo) = scratch_repo();
    let build = dir.path().join("edited-build");
    let built = cli(&repo, &worker, &["build", "--out", build.to_str().unwrap()]);
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    let manifest_path = build.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["environments"]["prod"]["promote_from"] = serde_json::Value::Null;
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();

    let build_arg = build.to_str().unwrap();
    let refused = cli(
        &repo,
        &worker,
        &["publish", "--env", "prod", "--build", build_arg],
    );
    assert_eq!(refused.status.code(), Some(4), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("promotion_required"),
        "{}",
        stderr(&refused)
    );
    let state = cli(&repo, &worker, &["--json", "history", "--env", "prod"]);
    let value: serde_json::Value = serde_json::from_slice(&state.stdout).unwrap();
    assert_eq!(value["history"]["state"]["live"], serde_json::Value::Null);

    let staging = cli(
        &repo,
        &worker,
        &["publish", "--env", "staging", "--build", build_arg],
    );
    assert_eq!(staging.status.code(), Some(0), "{}", stderr(&staging));
    let prod = cli(
        &repo,
        &worker,
        &["publish", "--env", "prod", "--build", build_arg],
    );
    assert_eq!(prod.status.code(), Some(0), "{}", stderr(&prod));
}

/// A draft published from a build whose manifest was edited to allow drafts passes the
/// companion's own gate but not the Worker's, whose `ENVIRONMENT_POLICY` serves no drafts in
/// staging: `draft_not_allowed` (exit 4) from the status the ruleset states, and staging stays
/// unpublished; with the version's status back to `canary`, the same publish goes through.
#[test]
fn e2e_a_manifest_edited_to_allow_drafts_is_still_refused_by_the_worker() {
    let worker = start_worker_with(Some(r#"{"staging": {"allow_drafts": false}}"#));
    let (dir, repo) = scratch_repo();
    let metadata = repo.join("prompts/support_reply/metadata.yaml");
    let text = std::fs::read_to_string(&metadata).unwrap();
    let drafted = text.replacen(
        "risk: high\n    status: canary",
        "risk: high\n    status: draft",
        1,
    );
    assert_ne!(drafted, text);
    std::fs::write(&metadata, &drafted).unwrap();
    let build = dir.path().join("edited-build");
    let built = cli(&repo, &worker, &["build", "--out", build.to_str().unwrap()]);
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    let manifest_path = build.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["environments"]["staging"]["allow_drafts"] = serde_json::Value::Bool(true);
    manifest["environments"]["staging"]["require_approvals"] = serde_json::Value::Bool(false);
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();

    let refused = cli(
        &repo,
        &worker,
        &[
            "publish",
            "--env",
            "staging",
            "--build",
            build.to_str().unwrap(),
        ],
    );
    assert_eq!(refused.status.code(), Some(4), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("draft_not_allowed")
            && stderr(&refused).contains("support_reply@2.0.0 is a draft"),
        "{}",
        stderr(&refused)
    );
    let state = cli(&repo, &worker, &["--json", "history", "--env", "staging"]);
    let value: serde_json::Value = serde_json::from_slice(&state.stdout).unwrap();
    assert_eq!(value["history"]["state"]["live"], serde_json::Value::Null);

    std::fs::write(&metadata, &text).unwrap();
    let rebuilt = dir.path().join("build");
    let built = cli(
        &repo,
        &worker,
        &["build", "--out", rebuilt.to_str().unwrap()],
    );
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    let published = cli(
        &repo,
        &worker,
        &[
            "publish",
            "--env",
            "staging",
            "--build",
            rebuilt.to_str().unwrap(),
        ],
    );
    assert_eq!(published.status.code(), Some(0), "{}", stderr(&published));
}

/// `audit verify` against the Worker keeps a local mirror of the served log: the first run
/// copies it, the next ones find it unchanged and add what is new, and where the mirror and
/// the served log disagree it names the first entry that differs and exits 1.
#[test]
fn e2e_audit_verify_keeps_a_mirror_of_the_served_log_and_names_the_first_divergence() {
    let worker = start_worker();
    let (_dir, repo) = scratch_repo();
    let published = cli(&repo, &worker, &["publish", "--env", "dev"]);
    assert_eq!(published.status.code(), Some(0), "{}", stderr(&published));
    let first = cli(&repo, &worker, &["audit", "verify"]);
    assert_eq!(first.status.code(), Some(0), "{}", stdout(&first));
    assert!(
        stdout(&first).contains("0 entries matched, 1 new mirrored"),
        "{}",
        stdout(&first)
    );
    let killed = cli(
        &repo,
        &worker,
        &[
            "kill",
            "support_prompt",
            "--env",
            "dev",
            "--reason",
            "mirror",
        ],
    );
    assert_eq!(killed.status.code(), Some(0), "{}", stderr(&killed));
    let second = cli(&repo, &worker, &["--json", "audit", "verify"]);
    assert_eq!(second.status.code(), Some(0), "{}", stdout(&second));
    let value: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(value["served"]["mirror"]["matched"], 1, "{value}");
    assert_eq!(value["served"]["mirror"]["appended"], 1, "{value}");

    // The mirror says entry 2 was something else than what the Worker serves (as it would had
    // the Worker's log been rewritten after this machine saw it).
    let db = repo.join(".promptflag/audit.sqlite3");
    let connection = rusqlite::Connection::open(&db).unwrap();
    connection
        .execute_batch(
            "DROP TRIGGER served_no_update;
             UPDATE served SET hash = 'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff' WHERE seq = 2;",
        )
        .unwrap();
    drop(connection);
    let diverged = cli(&repo, &worker, &["audit", "verify"]);
    let text = stdout(&diverged);
    assert_eq!(diverged.status.code(), Some(1), "{text}");
    assert!(
        text.contains("DIVERGED from the local mirror at entry 2: mirrored ffff"),
        "{text}"
    );
}
