//! Publishing, environments, kill and rollback against in-process fakes of the Worker admin API
//! and the Cloudflare KV REST API (both on 127.0.0.1). The real Worker is exercised by
//! `e2e_worker.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use promptflag_authoring::build::{Build, BuildOptions};
use promptflag_release::Error;
use promptflag_release::audit::{Action, AuditLog};
use promptflag_release::ops;
use promptflag_release::publish::{self, PublishOptions};
use promptflag_release::store::{Http, KvRest, NoProgress, RetryPolicy, Store, WorkerAdmin};
use support::fake_kv::{ACCOUNT, FakeKv, NAMESPACE};
use support::fake_worker::FakeWorker;
use support::http::{Response, Server};
use support::*;

const TOKEN: &str = "t0ken";

fn http() -> Http {
    Http::new(
        Duration::from_secs(10),
        RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
        },
    )
}

fn build_of(repo: &std::path::Path) -> Build {
    let (loaded, diagnostics) = promptflag_authoring::lint::check(repo).unwrap();
    promptflag_authoring::build::build(&loaded, &diagnostics, &BuildOptions::default()).unwrap()
}

fn options(env: &str) -> PublishOptions {
    PublishOptions {
        environment: env.into(),
        actor: "ci@acme.example".into(),
        reason: String::new(),
        force: false,
        revert_runtime: false,
        eval_results: None,
        approvals: None,
    }
}

fn cli(repo: &std::path::Path, worker: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--repo", repo.to_str().unwrap()];
    all.extend_from_slice(args);
    promptflag_with_env(
        &all,
        &[
            ("PROMPTFLAG_WORKER_URL", worker),
            ("PROMPTFLAG_ADMIN_TOKEN", TOKEN),
        ],
    )
}

#[test]
fn publish_writes_bodies_then_the_revision_and_increments_it() {
    let (_dir, repo) = scratch_repo();
    let worker = FakeWorker::start(TOKEN, "dev");
    let first = cli(&repo, worker.url(), &["--json", "publish", "--env", "dev"]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}{}",
        stdout(&first),
        stderr(&first)
    );
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(report["publish"]["revision"], 1);
    assert_eq!(report["publish"]["bodies"], 4);
    assert_eq!(report["publish"]["bodies_created"], 4);
    assert_eq!(report["publish"]["summary"]["initial"], true);
    let second = cli(
        &repo,
        worker.url(),
        &["--json", "publish", "--env", "dev", "--reason", "again"],
    );
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let report: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(report["publish"]["revision"], 2);
    assert_eq!(report["publish"]["previous"], 1);
    assert_eq!(
        report["publish"]["bodies_created"], 0,
        "bodies are content-addressed and already there"
    );
    let state = worker.state.lock().unwrap();
    assert_eq!(state.envs["dev"].live, Some(2));
    assert_eq!(state.prompts.len(), 4);
    drop(state);
    let history = cli(&repo, worker.url(), &["--json", "history", "--env", "dev"]);
    let value: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(value["history"]["state"]["live"], 2);
    assert_eq!(value["history"]["entries"].as_array().unwrap().len(), 2);
    assert_eq!(value["history"]["entries"][1]["reason"], "again");
    assert_eq!(value["history"]["entries"][1]["actor"], "test@acme.example");
}

#[test]
fn two_concurrent_publishers_one_wins_the_other_gets_a_conflict() {
    let (dir, repo) = scratch_repo();
    let worker = FakeWorker::start(TOKEN, "dev");
    let build = Arc::new(build_of(&repo));
    let barrier = Arc::new(Barrier::new(2));
    let url = worker.url().to_string();
    let threads: Vec<_> = (0..2)
        .map(|n| {
            let build = build.clone();
            let barrier = barrier.clone();
            let url = url.clone();
            let db = dir.path().join(format!("audit-{n}.sqlite3"));
            std::thread::spawn(move || {
                let store = WorkerAdmin::new(&url, TOKEN, http());
                let mut audit = AuditLog::open(&db).unwrap();
                let plan = publish::plan(&store, &audit, &build, &options("dev")).unwrap();
                // Both have read the same state and aim at the same revision.
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
    let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert!(loser.to_string().contains("conflict"), "{loser}");
    assert_eq!(
        worker.state.lock().unwrap().envs["dev"].meta.latest,
        Some(1)
    );
}

#[test]
fn a_conflict_from_the_store_exits_three() {
    let (_dir, repo) = scratch_repo();
    let server = Server::start(
        |request| match (request.method.as_str(), request.path.as_str()) {
            ("GET", _) => Response::json(
                200,
                serde_json::json!({"environment": "dev", "live": 4, "latest": 4, "kept": [4]}),
            ),
            ("PUT", path) if path.starts_with("/admin/v1/prompts/") => {
                Response::json(200, serde_json::json!({"created": false}))
            }
            _ => Response::json(
                409,
                serde_json::json!({"error": {"code": "stale_revision", "message": "revision 5 is not above the latest 5"}}),
            ),
        },
    );
    let output = cli(&repo, &server.url, &["publish", "--env", "dev"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("stale_revision"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn prod_needs_the_same_content_published_to_staging_first() {
    let (_dir, repo) = scratch_repo();
    let worker = FakeWorker::start(TOKEN, "prod");
    let refused = cli(&repo, worker.url(), &["publish", "--env", "prod"]);
    assert_eq!(refused.status.code(), Some(4), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("published to staging first"),
        "{}",
        stderr(&refused)
    );
    assert!(
        !worker.state.lock().unwrap().envs.contains_key("prod"),
        "nothing was written"
    );

    assert_eq!(
        cli(&repo, worker.url(), &["publish", "--env", "staging"])
            .status
            .code(),
        Some(0)
    );
    let allowed = cli(&repo, worker.url(), &["publish", "--env", "prod"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", stderr(&allowed));

    // New content must go through staging again.
    edit(
        &repo,
        "flags/support_prompt.yaml",
        "        percent: 5\n",
        "        percent: 10\n",
    );
    assert_eq!(
        cli(&repo, worker.url(), &["publish", "--env", "prod"])
            .status
            .code(),
        Some(4)
    );
    // --force needs a reason, and is audited.
    let no_reason = cli(
        &repo,
        worker.url(),
        &["publish", "--env", "prod", "--force"],
    );
    assert_eq!(no_reason.status.code(), Some(2));
    let forced = cli(
        &repo,
        worker.url(),
        &[
            "publish",
            "--env",
            "prod",
            "--force",
            "--reason",
            "incident 4711 hotfix",
        ],
    );
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    assert!(stdout(&forced).contains("OVERRIDDEN"));
    let audit = AuditLog::open(&repo.join(".promptflag/audit.sqlite3")).unwrap();
    let entries = audit.list(Some("prod")).unwrap();
    let actions: Vec<Action> = entries.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        vec![Action::Publish, Action::Override, Action::Publish]
    );
    assert_eq!(entries[1].reason, "incident 4711 hotfix");
    assert!(audit.verify(None).unwrap().is_intact());
}

#[test]
fn a_high_risk_prompt_needs_a_signed_approval_from_someone_else() {
    let (_dir, repo) = scratch_repo();
    let worker = FakeWorker::start(TOKEN, "dev");
    let keys = workspace_root().join("examples/keys");
    // The author approving her own prompt is refused, and nothing is written.
    let own = cli(
        &repo,
        worker.url(),
        &[
            "approve",
            "support_reply@2.0.0",
            "--env",
            "prod",
            "--key",
            keys.join("carol").to_str().unwrap(),
        ],
    );
    assert_eq!(own.status.code(), Some(4), "{}", stderr(&own));
    assert!(stderr(&own).contains("self_approval"), "{}", stderr(&own));
    assert!(
        !repo
            .join("approvals/support_reply/2.0.0/prod/carol@acme.example.sig")
            .exists()
    );
    // Her signature put there by hand does not count either (and lint says so).
    let message = cli(
        &repo,
        worker.url(),
        &[
            "approve",
            "support_reply@2.0.0",
            "--env",
            "prod",
            "--message-only",
        ],
    );
    let carol = promptflag_governance::native::PrivateKey::from_openssh(
        &std::fs::read_to_string(keys.join("carol")).unwrap(),
    )
    .unwrap();
    std::fs::write(
        repo.join("approvals/support_reply/2.0.0/prod/carol@acme.example.sig"),
        carol.sign(stdout(&message).as_bytes()).to_armored(),
    )
    .unwrap();
    let lint = cli(&repo, worker.url(), &["lint"]);
    assert_eq!(lint.status.code(), Some(1));
    assert!(
        stdout(&lint).contains("error[self_approval]"),
        "{}",
        stdout(&lint)
    );
    // Without any approval lint only warns, dev (no require_approvals) publishes, staging refuses.
    std::fs::remove_dir_all(repo.join("approvals")).unwrap();
    let lint = cli(&repo, worker.url(), &["lint"]);
    assert_eq!(lint.status.code(), Some(0), "{}", stdout(&lint));
    assert!(stdout(&lint).contains("warning[approval_missing]"));
    assert_eq!(
        cli(&repo, worker.url(), &["publish", "--env", "dev"])
            .status
            .code(),
        Some(0)
    );
    let staging = cli(
        &repo,
        worker.url(),
        &["publish", "--env", "staging", "--force", "--reason", "try"],
    );
    assert_eq!(
        staging.status.code(),
        Some(4),
        "--force does not override approvals: {}",
        stderr(&staging)
    );
    assert!(
        stderr(&staging).contains("high risk"),
        "{}",
        stderr(&staging)
    );
    // dana, a registered reviewer, approves for staging; then staging publishes.
    let approved = cli(
        &repo,
        worker.url(),
        &[
            "approve",
            "support_reply@2.0.0",
            "--env",
            "staging",
            "--key",
            keys.join("dana").to_str().unwrap(),
        ],
    );
    assert_eq!(approved.status.code(), Some(0), "{}", stderr(&approved));
    let staging = cli(&repo, worker.url(), &["publish", "--env", "staging"]);
    assert_eq!(staging.status.code(), Some(0), "{}", stderr(&staging));
}

#[test]
fn kill_publishes_a_disabled_revision_and_rollback_moves_the_pointer_back() {
    let (_dir, repo) = scratch_repo();
    let worker = FakeWorker::start(TOKEN, "dev");
    assert_eq!(
        cli(&repo, worker.url(), &["publish", "--env", "dev"])
            .status
            .code(),
        Some(0)
    );
    let kill = cli(
        &repo,
        worker.url(),
        &[
            "--json",
            "kill",
            "support_prompt",
            "--env",
            "dev",
            "--reason",
            "bad answers",
        ],
    );
    assert_eq!(kill.status.code(), Some(0), "{}", stderr(&kill));
    let value: serde_json::Value = serde_json::from_slice(&kill.stdout).unwrap();
    assert_eq!(value["revert"]["revision"], 2);
    assert_eq!(value["revert"]["previous"], 1);
    assert!(
        value["revert"]["served_ms"].is_u64(),
        "the command waited for the Worker: {value}"
    );
    {
        let state = worker.state.lock().unwrap();
        let live: promptflag_core::RawRuleset =
            serde_json::from_slice(&state.envs["dev"].revisions[&2]).unwrap();
        assert!(!live.flags.get("support_prompt").unwrap().enabled);
        assert!(live.flags.get("summary_prompt").unwrap().enabled);
        assert_eq!(state.pointer_writes.last(), Some(&("dev".to_string(), 2)));
    }
    // Killing again changes nothing.
    let again = cli(
        &repo,
        worker.url(),
        &["kill", "support_prompt", "--env", "dev"],
    );
    assert_eq!(again.status.code(), Some(0));
    assert!(stdout(&again).contains("already disabled"));
    let unknown = cli(
        &repo,
        worker.url(),
        &["kill", "no_such_flag", "--env", "dev"],
    );
    assert_eq!(unknown.status.code(), Some(2));

    let rollback = cli(
        &repo,
        worker.url(),
        &["rollback", "--env", "dev", "--reason", "restore"],
    );
    assert_eq!(rollback.status.code(), Some(0), "{}", stderr(&rollback));
    assert!(
        stdout(&rollback).contains("revert cycle time"),
        "{}",
        stdout(&rollback)
    );
    assert_eq!(worker.state.lock().unwrap().envs["dev"].live, Some(1));
    let missing = cli(
        &repo,
        worker.url(),
        &["rollback", "--env", "dev", "--to", "9"],
    );
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    let forward = cli(
        &repo,
        worker.url(),
        &["rollback", "--env", "dev", "--to", "2", "--no-wait"],
    );
    assert_eq!(forward.status.code(), Some(0));

    let audit = AuditLog::open(&repo.join(".promptflag/audit.sqlite3")).unwrap();
    let actions: Vec<Action> = audit
        .list(Some("dev"))
        .unwrap()
        .iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        vec![
            Action::Publish,
            Action::Kill,
            Action::Rollback,
            Action::Rollback
        ]
    );
    assert!(audit.verify(None).unwrap().is_intact());
}

#[test]
fn a_kill_that_loses_a_race_is_a_conflict() {
    let (dir, repo) = scratch_repo();
    let worker = FakeWorker::start(TOKEN, "dev");
    let store = WorkerAdmin::new(worker.url(), TOKEN, http());
    let mut audit = AuditLog::open(&dir.path().join("a.sqlite3")).unwrap();
    let build = build_of(&repo);
    let plan = publish::plan(&store, &audit, &build, &options("dev")).unwrap();
    publish::execute(&store, &mut audit, plan, &NoProgress).unwrap();
    // Another publisher plans revision 2; the kill lands first; the publisher must not overwrite it.
    let other = publish::plan(&store, &audit, &build, &options("dev")).unwrap();
    let who = ops::Actor {
        actor: "oncall@acme.example".into(),
        reason: "incident".into(),
    };
    ops::kill(
        &store,
        &mut audit,
        "dev",
        "support_prompt",
        &who,
        Instant::now(),
    )
    .unwrap();
    let result = publish::execute(&store, &mut audit, other, &NoProgress);
    assert!(matches!(result, Err(Error::Conflict { .. })), "{result:?}");
    let state = worker.state.lock().unwrap();
    let live: promptflag_core::RawRuleset =
        serde_json::from_slice(&state.envs["dev"].revisions[&state.envs["dev"].live.unwrap()])
            .unwrap();
    assert!(
        !live.flags.get("support_prompt").unwrap().enabled,
        "the kill is still live"
    );
}

fn kv_store(kv: &FakeKv) -> KvRest {
    KvRest::new(&kv.server.url, ACCOUNT, NAMESPACE, "cf-token", http())
}

#[test]
fn kv_rest_publish_keeps_the_order_and_retries_429() {
    let (dir, repo) = scratch_repo();
    let kv = FakeKv::start();
    kv.state.lock().unwrap().throttle_next = 2;
    let store = kv_store(&kv);
    let mut audit = AuditLog::open(&dir.path().join("a.sqlite3")).unwrap();
    let build = build_of(&repo);
    let report =
        publish::publish(&store, &mut audit, &build, &options("dev"), &NoProgress).unwrap();
    assert_eq!(report.revision, 1);
    let state = kv.state.lock().unwrap();
    assert_eq!(state.throttled, 2, "two 429s were retried");
    assert!(state.auth_seen.iter().all(|a| a == "Bearer cf-token"));
    let writes = &state.bulk_writes;
    assert_eq!(writes.len(), 4, "{writes:?}");
    assert!(writes[0].iter().all(|k| k.starts_with("prompt:")) && writes[0].len() == 4);
    assert_eq!(writes[1], vec!["ruleset:dev:1".to_string()]);
    assert_eq!(writes[2], vec!["meta:dev".to_string()]);
    assert_eq!(
        writes[3],
        vec!["ruleset:dev".to_string()],
        "the pointer is the last, single write"
    );
    assert_eq!(state.values["ruleset:dev"], b"1");
    let meta: serde_json::Value = serde_json::from_slice(&state.values["meta:dev"]).unwrap();
    assert_eq!(
        meta,
        serde_json::json!({"latest": 1, "kept": [1], "undo": []})
    );
    drop(state);

    // A second publish, a kill and rollbacks through the same REST store.
    let report =
        publish::publish(&store, &mut audit, &build, &options("dev"), &NoProgress).unwrap();
    assert_eq!((report.revision, report.previous), (2, Some(1)));
    let who = ops::Actor {
        actor: "oncall".into(),
        reason: String::new(),
    };
    let killed = ops::kill(
        &store,
        &mut audit,
        "dev",
        "summary_prompt",
        &who,
        Instant::now(),
    )
    .unwrap();
    assert_eq!(killed.revision, 3);
    let back = ops::rollback(&store, &mut audit, "dev", None, &who, Instant::now()).unwrap();
    assert_eq!((back.revision, back.previous), (2, Some(3)));
    assert!(matches!(
        ops::rollback(&store, &mut audit, "dev", Some(42), &who, Instant::now()),
        Err(Error::Invalid(_))
    ));
    assert_eq!(store.state("dev").unwrap().live, Some(2));
}

#[test]
fn kv_rest_refuses_a_second_publisher_for_the_same_revision() {
    let (dir, repo) = scratch_repo();
    let kv = FakeKv::start();
    let store = kv_store(&kv);
    let mut audit = AuditLog::open(&dir.path().join("a.sqlite3")).unwrap();
    let build = build_of(&repo);
    let first = publish::plan(&store, &audit, &build, &options("dev")).unwrap();
    let second = publish::plan(&store, &audit, &build, &options("dev")).unwrap();
    publish::execute(&store, &mut audit, first, &NoProgress).unwrap();
    let result = publish::execute(&store, &mut audit, second, &NoProgress);
    assert!(matches!(result, Err(Error::Conflict { .. })), "{result:?}");
    assert_eq!(kv.state.lock().unwrap().values["ruleset:dev"], b"1");
}

#[test]
fn kv_rest_refuses_an_environment_the_worker_authority_governs_and_writes_no_revision() {
    // Once the admin authority has written an environment it marks it (`authority:<env>`); a
    // KV REST write there would skip its revision check, gates and audit log, so the KV REST
    // publisher refuses to write its revision, pointer or metadata (prompt bodies, uploaded
    // first, are content-addressed and serve nothing until a ruleset names them), and other
    // environments stay open to it.
    let (dir, repo) = scratch_repo();
    let kv = FakeKv::start();
    kv.state
        .lock()
        .unwrap()
        .values
        .insert("authority:dev".into(), b"1".to_vec());
    let store = kv_store(&kv);
    let mut audit = AuditLog::open(&dir.path().join("a.sqlite3")).unwrap();
    let build = build_of(&repo);
    let refused = publish::plan(&store, &audit, &build, &options("dev"))
        .and_then(|plan| publish::execute(&store, &mut audit, plan, &NoProgress));
    let Err(Error::Refused(message)) = refused else {
        panic!("a KV REST publish to a governed environment must be refused: {refused:?}");
    };
    assert!(message.contains("admin authority"), "{message}");
    let keys: Vec<String> = (kv.state.lock().unwrap().values.keys())
        .filter(|key| !key.starts_with("prompt:"))
        .cloned()
        .collect();
    assert_eq!(
        keys,
        ["authority:dev"],
        "no revision, pointer or meta was written"
    );
    let staging = publish::plan(&store, &audit, &build, &options("staging")).unwrap();
    publish::execute(&store, &mut audit, staging, &NoProgress).unwrap();
    assert_eq!(kv.state.lock().unwrap().values["ruleset:staging"], b"1");
}

#[test]
fn kv_rest_gives_up_after_the_retry_budget_with_exit_five() {
    let (_dir, repo) = scratch_repo();
    let kv = FakeKv::start();
    kv.state.lock().unwrap().throttle_next = 1000;
    let output = promptflag_with_env(
        &[
            "--repo",
            repo.to_str().unwrap(),
            "publish",
            "--env",
            "dev",
            "--kv",
        ],
        &[
            ("PROMPTFLAG_KV_API_URL", &kv.server.url),
            ("CLOUDFLARE_ACCOUNT_ID", ACCOUNT),
            ("PROMPTFLAG_KV_NAMESPACE_ID", NAMESPACE),
            ("CLOUDFLARE_API_TOKEN", "cf-token"),
            ("PROMPTFLAG_RETRY_BASE_MS", "1"),
            ("PROMPTFLAG_RETRY_ATTEMPTS", "3"),
        ],
    );
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert_eq!(kv.state.lock().unwrap().throttled, 3);
}

#[test]
fn the_cli_publishes_through_kv_rest_from_env_vars() {
    let (_dir, repo) = scratch_repo();
    let kv = FakeKv::start();
    kv.state.lock().unwrap().throttle_next = 1;
    let env = [
        ("PROMPTFLAG_KV_API_URL", kv.server.url.as_str()),
        ("CLOUDFLARE_ACCOUNT_ID", ACCOUNT),
        ("PROMPTFLAG_KV_NAMESPACE_ID", NAMESPACE),
        ("CLOUDFLARE_API_TOKEN", "cf-token"),
        ("PROMPTFLAG_RETRY_BASE_MS", "1"),
    ];
    let output = promptflag_with_env(
        &[
            "--repo",
            repo.to_str().unwrap(),
            "publish",
            "--env",
            "dev",
            "--kv",
        ],
        &env,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let missing = promptflag_with_env(
        &[
            "--repo",
            repo.to_str().unwrap(),
            "publish",
            "--env",
            "dev",
            "--kv",
        ],
        &env[..2],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("PROMPTFLAG_KV_NAMESPACE_ID"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn publish_needs_a_target_and_a_token() {
    let (_dir, repo) = scratch_repo();
    let none = promptflag(&["--repo", repo.to_str().unwrap(), "publish", "--env", "dev"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(stderr(&none).contains("--worker"));
    let worker = FakeWorker::start(TOKEN, "dev");
    let wrong = promptflag_with_env(
        &["--repo", repo.to_str().unwrap(), "publish", "--env", "dev"],
        &[
            ("PROMPTFLAG_WORKER_URL", worker.url()),
            ("PROMPTFLAG_ADMIN_TOKEN", "wrong"),
        ],
    );
    assert_eq!(wrong.status.code(), Some(5));
    assert!(
        stderr(&wrong).contains("unauthorized"),
        "{}",
        stderr(&wrong)
    );
}

#[test]
fn publish_from_a_build_folder_and_dry_run() {
    let (dir, repo) = scratch_repo();
    let worker = FakeWorker::start(TOKEN, "dev");
    let out = dir.path().join("out");
    let built = promptflag(&[
        "--repo",
        repo.to_str().unwrap(),
        "build",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    let dry = cli(
        &repo,
        worker.url(),
        &[
            "--json",
            "publish",
            "--env",
            "dev",
            "--build",
            out.to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let value: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(value["dry_run"], true);
    assert_eq!(value["revision"], 1);
    assert!(
        worker.state.lock().unwrap().envs.is_empty(),
        "a dry run writes nothing"
    );
    let real = cli(
        &repo,
        worker.url(),
        &["publish", "--env", "dev", "--build", out.to_str().unwrap()],
    );
    assert_eq!(real.status.code(), Some(0), "{}", stderr(&real));
    assert_eq!(worker.state.lock().unwrap().envs["dev"].live, Some(1));
    // A tampered build folder is refused before anything is sent.
    let body = std::fs::read_dir(out.join("prompts"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&body, "tampered").unwrap();
    let refused = cli(
        &repo,
        worker.url(),
        &["publish", "--env", "dev", "--build", out.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("does not hash to its name"));
}

#[test]
fn each_retry_is_told_to_the_observer_with_its_reason() {
    let kv = FakeKv::start();
    kv.state.lock().unwrap().throttle_next = 2;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u32, String)>::new()));
    let observed = seen.clone();
    let http = http().with_retry_observer(std::sync::Arc::new(
        move |request: &str, attempt: u32, _attempts: u32, _wait: Duration, why: &str| {
            assert!(request.starts_with("GET "), "{request}");
            observed.lock().unwrap().push((attempt, why.to_string()));
        },
    ));
    let store = KvRest::new(&kv.server.url, ACCOUNT, NAMESPACE, "cf-token", http);
    assert_eq!(store.state("dev").unwrap().live, None);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(2, String::from("HTTP 429")), (3, String::from("HTTP 429"))]
    );
}

#[test]
fn a_kill_is_kept_by_publish_explained_by_status_and_written_back_by_sync() {
    let (_dir, repo) = scratch_repo();
    let worker = FakeWorker::start(TOKEN, "dev");
    let run = |args: &[&str]| {
        let output = cli(&repo, worker.url(), args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        stdout(&output)
    };
    run(&["publish", "--env", "dev"]);
    run(&[
        "kill",
        "support_prompt",
        "--env",
        "dev",
        "--reason",
        "bad answers",
    ]);
    let published = run(&["publish", "--env", "dev"]);
    assert!(
        published.contains("  runtime KEPT (git does not hold it; `promptflag sync` writes it back): support_prompt: killed at "),
        "{published}"
    );
    let status = run(&["status", "--env", "dev"]);
    assert!(
        status.contains("  support_prompt: DIFFERS\n    git:  on, baseline stable, default concise\n    live: killed, baseline stable, default concise\n    why:  killed at "),
        "{status}"
    );
    assert!(status.contains("because bad answers\n"), "{status}");
    assert!(status.contains("  summary_prompt: in sync: "), "{status}");

    let synced = run(&["sync", "--env", "dev"]);
    assert!(synced.starts_with("wrote back into the repository (review with `git diff`, then commit):\n  support_prompt in dev: killed at "), "{synced}");
    assert!(
        synced.ends_with("  M flags/support_prompt.yaml\n"),
        "{synced}"
    );
    let status = run(&["status", "--env", "dev"]);
    assert!(
        status.contains("  support_prompt: in sync: killed, "),
        "{status}"
    );
    assert_eq!(
        run(&["sync", "--env", "dev"]),
        "git already holds every live decision; nothing to write\n"
    );
    // A publish refuses nothing now: git holds the kill, and its record ends.
    let published = run(&["publish", "--env", "dev"]);
    assert!(
        published.contains("  runtime now held by git: support_prompt: killed at "),
        "{published}"
    );
}

#[test]
fn revert_runtime_needs_a_reason() {
    let (_dir, repo) = scratch_repo();
    let worker = FakeWorker::start(TOKEN, "dev");
    let output = cli(
        &repo,
        worker.url(),
        &["publish", "--env", "dev", "--revert-runtime"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--revert-runtime needs --reason"),
        "{}",
        stderr(&output)
    );
}
