//! The Store contract: the same behaviour tests (`store_contract/cases.rs`) against every
//! `Store` implementation — the in-memory store, the test fake of the Worker through
//! `WorkerAdmin`, the real Worker on workerd through `WorkerAdmin`, and `KvRest` over the fake
//! of the Cloudflare KV REST API — so the stores the control-loop tests run against behave as
//! the Worker does.
//!
//! The real-Worker cases need Node 22 and the built Worker; `cargo xtask test` provides both, and
//! run alone the harness finds them in the workspace after `cargo xtask setup` and
//! `cargo xtask build-worker`. Without them they fail naming the command (never silently). One Worker serves every case, each in an environment of its own,
//! one case at a time: admin writes that overlap in one isolate can hang there (a waiter on the
//! Worker's write lock woken from another request is cancelled by workerd as hung, with a 500),
//! which is the Worker's own problem and not the contract's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "store_contract/cases.rs"]
mod store_contract;

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use promptflag_harness::{Locations, TEST_SERVER_KEY, WorkerOptions, WorkerProcess};
use promptflag_release::memstore::MemoryStore;
use promptflag_release::store::{Http, KvRest, RetryPolicy, Store, WorkerAdmin};
use promptflag_testkit::fake_kv::{ACCOUNT, FakeKv, NAMESPACE};
use promptflag_testkit::fake_worker::FakeWorker;

const TOKEN: &str = "contract-token-0123456789abcdef0123456789";

fn http() -> Http {
    Http::new(
        Duration::from_secs(30),
        RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(5),
            max: Duration::from_millis(50),
        },
    )
}

/// A store under test, with whatever keeps it running.
struct Subject {
    store: Box<dyn Store>,
    _running: Option<Box<dyn std::any::Any>>,
    _one_at_a_time: Option<MutexGuard<'static, ()>>,
}

fn memory() -> Subject {
    Subject {
        store: Box::new(MemoryStore::new()),
        _running: None,
        _one_at_a_time: None,
    }
}

fn fake() -> Subject {
    let fake = FakeWorker::start(TOKEN, "dev");
    Subject {
        store: Box::new(WorkerAdmin::new(fake.url(), TOKEN, http())),
        _running: Some(Box::new(fake)),
        _one_at_a_time: None,
    }
}

fn kv_rest_over(kv: &FakeKv) -> KvRest {
    KvRest::new(&kv.server.url, ACCOUNT, NAMESPACE, "cf-token", http())
}

fn kv_rest() -> Subject {
    let kv = FakeKv::start();
    Subject {
        store: Box::new(kv_rest_over(&kv)),
        _running: Some(Box::new(kv)),
        _one_at_a_time: None,
    }
}

/// Every environment the suite's cases write (each case its own).
const WORKER_ENVIRONMENTS: &[&str] = &[
    "dev",
    "fresh",
    "publishes",
    "stale",
    "moved",
    "kept",
    "not-kept",
    "step-back",
    "undo",
    "named",
    "after-rollback",
    "empty",
    "bound",
    "raw-bound",
    "refused",
    "missing",
    "default",
];

/// The real Worker, started once for every case of this binary (it exits when the test process
/// does: the harness stops it when its standard input closes).
fn real_worker() -> &'static (Mutex<WorkerProcess>, String) {
    static WORKER: OnceLock<(Mutex<WorkerProcess>, String)> = OnceLock::new();
    WORKER.get_or_init(|| {
        let locations = Locations::from_env().unwrap_or_else(|e| panic!("{e}"));
        // A credential is scoped to one environment, and each case writes its own: the token
        // gets one credential per environment the suite writes.
        let credentials: Vec<String> = WORKER_ENVIRONMENTS
            .iter()
            .map(|environment| {
                format!(
                    r#"{{"name":"contract-{environment}","token":"{TOKEN}","environment":"{environment}","role":"publisher"}}"#
                )
            })
            .collect();
        let options = WorkerOptions {
            admin_credentials: Some(format!("[{}]", credentials.join(","))),
            quiet: true,
            ..WorkerOptions::default()
        };
        let process = WorkerProcess::start(&locations, &options).unwrap_or_else(|e| panic!("{e}"));
        let url = process.url().to_string();
        (Mutex::new(process), url)
    })
}

/// Held by each real-Worker case while it runs.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn worker() -> Subject {
    let serial = one_at_a_time();
    Subject {
        store: Box::new(
            WorkerAdmin::new(&real_worker().1, TOKEN, http()).with_read_key(Some(TEST_SERVER_KEY)),
        ),
        _running: None,
        _one_at_a_time: Some(serial),
    }
}

/// One test per case for one store: `$subject()` makes the store, and each case gets an
/// environment named after it.
macro_rules! store_contract_suite {
    ($module:ident, $subject:path) => {
        mod $module {
            use super::*;

            fn run(case: fn(&dyn Store, &str), environment: &str) {
                let subject = $subject();
                case(subject.store.as_ref(), environment);
            }

            #[test]
            fn a_fresh_environment_has_no_revisions() {
                run(store_contract::a_fresh_environment_has_no_revisions, "fresh");
            }

            #[test]
            fn publishes_move_the_pointer_and_are_kept() {
                run(store_contract::publishes_move_the_pointer_and_are_kept, "publishes");
            }

            #[test]
            fn a_revision_not_above_the_latest_is_stale() {
                run(store_contract::a_revision_not_above_the_latest_is_stale, "stale");
            }

            #[test]
            fn a_moved_live_revision_is_a_conflict() {
                run(store_contract::a_moved_live_revision_is_a_conflict, "moved");
            }

            #[test]
            fn only_the_last_ten_revisions_are_kept() {
                run(store_contract::only_the_last_ten_revisions_are_kept, "kept");
            }

            #[test]
            fn a_rollback_to_a_revision_no_longer_kept_is_refused() {
                run(
                    store_contract::a_rollback_to_a_revision_no_longer_kept_is_refused,
                    "not-kept",
                );
            }

            #[test]
            fn a_rollback_without_a_target_steps_back_through_the_kept_revisions() {
                run(
                    store_contract::a_rollback_without_a_target_steps_back_through_the_kept_revisions,
                    "step-back",
                );
            }

            #[test]
            fn a_plain_rollback_never_returns_to_a_kill_it_undid() {
                run(
                    store_contract::a_plain_rollback_never_returns_to_a_kill_it_undid,
                    "undo",
                );
            }

            #[test]
            fn a_rollback_goes_to_any_named_kept_revision() {
                run(store_contract::a_rollback_goes_to_any_named_kept_revision, "named");
            }

            #[test]
            fn a_publish_after_a_rollback_goes_above_the_latest() {
                run(
                    store_contract::a_publish_after_a_rollback_goes_above_the_latest,
                    "after-rollback",
                );
            }

            #[test]
            fn a_rollback_with_nothing_published_is_refused() {
                run(store_contract::a_rollback_with_nothing_published_is_refused, "empty");
            }

            #[test]
            fn an_invalid_environment_name_is_refused() {
                run(store_contract::an_invalid_environment_name_is_refused, "names");
            }

            #[test]
            fn revisions_past_the_bound_are_refused() {
                run(store_contract::revisions_past_the_bound_are_refused, "bound");
            }
        }
    };
}

store_contract_suite!(memory_store, memory);
store_contract_suite!(fake_worker, fake);
store_contract_suite!(real_worker, worker);
store_contract_suite!(kv_rest, kv_rest);

/// The regression the suite was written for: the in-memory store kept every revision and let a
/// rollback reach one the Worker had dropped from its kept list.
#[test]
fn memory_store_refuses_a_rollback_the_worker_refuses() {
    store_contract::a_rollback_to_a_revision_no_longer_kept_is_refused(&MemoryStore::new(), "dev");
}

/// The admin API itself (not only `WorkerAdmin`, which checks first) refuses a revision past
/// 2^53 − 1 as an invalid ruleset, in the Worker and in its fake alike.
fn admin_api_refuses_a_revision_past_the_bound(base: &str) {
    let environment = "raw-bound";
    let revision = promptflag_contracts::revision::MAX_REVISION + 1;
    let reply = http()
        .send(
            "PUT",
            &format!("{base}/admin/v1/rulesets/{environment}"),
            &[
                ("Authorization", format!("Bearer {TOKEN}")),
                ("Content-Type", String::from("application/json")),
            ],
            Some(&store_contract::ruleset(environment, revision)),
            false,
        )
        .unwrap();
    assert_eq!(reply.status, 422, "{}", reply.error_text());
    assert_eq!(reply.error_code().as_deref(), Some("invalid_ruleset"));
    assert_eq!(reply.json()["problems"][0]["path"], "revision");
}

#[test]
fn the_fake_admin_api_refuses_a_revision_past_the_bound() {
    let fake = FakeWorker::start(TOKEN, "dev");
    admin_api_refuses_a_revision_past_the_bound(fake.url());
}

#[test]
fn the_workers_admin_api_refuses_a_revision_past_the_bound() {
    let _serial = one_at_a_time();
    admin_api_refuses_a_revision_past_the_bound(&real_worker().1);
}

/// Writes a value into the fake KV namespace by hand (as an operator with the dashboard could).
fn write_by_hand(kv: &FakeKv, key: &str, value: &str) {
    kv.state
        .lock()
        .unwrap()
        .values
        .insert(key.to_string(), value.as_bytes().to_vec());
}

/// The KV REST store checked a publish against `latest` only, while the Worker also counts a
/// live pointer above it (written by hand): such a publish would have gone live below the
/// revision serving.
#[test]
fn kv_rest_store_counts_a_live_pointer_above_latest_as_stale() {
    let kv = FakeKv::start();
    let store = kv_rest_over(&kv);
    store
        .put_ruleset("dev", 1, &store_contract::ruleset("dev", 1), None)
        .unwrap();
    write_by_hand(
        &kv,
        "ruleset:dev:5",
        &String::from_utf8(store_contract::ruleset("dev", 5)).unwrap(),
    );
    write_by_hand(&kv, "ruleset:dev", "5");
    match store.put_ruleset("dev", 2, &store_contract::ruleset("dev", 2), Some(5)) {
        Err(promptflag_release::Error::Conflict { message }) => {
            assert!(message.contains("stale_revision"), "{message}")
        }
        other => panic!("expected stale_revision, got {other:?}"),
    }
    store
        .put_ruleset("dev", 6, &store_contract::ruleset("dev", 6), Some(5))
        .unwrap();
}

/// The KV REST store (and the Worker fake) took the default rollback target from the live
/// revision's position in `kept`, so a live pointer that is not kept (written by hand) had no
/// rollback; the Worker goes to the highest kept revision below it.
#[test]
fn kv_rest_store_rolls_back_from_a_pointer_that_is_not_kept_as_the_worker_does() {
    let kv = FakeKv::start();
    let store = kv_rest_over(&kv);
    for revision in 1..=3 {
        store
            .put_ruleset(
                "dev",
                revision,
                &store_contract::ruleset("dev", revision),
                None,
            )
            .unwrap();
    }
    write_by_hand(&kv, "ruleset:dev", "7");
    let moved = store.rollback("dev", None).unwrap();
    assert_eq!((moved.revision, moved.previous), (3, Some(7)));
}

/// A ruleset the Worker refuses comes back as `Rejected` with every problem's path and code,
/// not one string: `promptflag --json` prints them as a list.
fn a_refused_ruleset_is_rejected_with_every_problem(subject: Subject) {
    let environment = "refused";
    let mut ruleset: serde_json::Value =
        serde_json::from_slice(&store_contract::ruleset(environment, 1)).unwrap();
    ruleset["flags"]["f"]["baseline"] = serde_json::json!("nope");
    ruleset["flags"]["f"]["default"]["split"]["treatments"][0]["variant"] =
        serde_json::json!("missing");
    let bytes = serde_json::to_vec(&ruleset).unwrap();
    match subject.store.put_ruleset(environment, 1, &bytes, None) {
        Err(promptflag_release::Error::Rejected(rejection)) => {
            let problems = &rejection.problems;
            assert_eq!(rejection.code, "invalid_ruleset");
            assert!(problems.len() >= 2, "{problems:?}");
            assert!(
                problems
                    .iter()
                    .all(|p| !p.path.is_empty() && !p.code.is_empty()),
                "{problems:?}"
            );
            assert!(
                problems.iter().any(|p| p.path.starts_with("flags.f.")),
                "{problems:?}"
            );
        }
        other => panic!("{}: {other:?}", subject.store.describe()),
    }
    assert_eq!(subject.store.state(environment).unwrap().live, None);
}

#[test]
fn the_fake_rejects_a_refused_ruleset_with_every_problem() {
    a_refused_ruleset_is_rejected_with_every_problem(fake());
}

#[test]
fn the_worker_rejects_a_refused_ruleset_with_every_problem() {
    a_refused_ruleset_is_rejected_with_every_problem(worker());
}
