//! Revisions end at 2^53 − 1 (`promptflag_contracts::revision::MAX_REVISION`): a store whose
//! latest revision is at (or past) the bound makes the companion refuse the next publish. It
//! used to compute `latest + 1`, which sent revision 0 for a latest of 2^64 − 1 and then had every
//! later publish refused as stale.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use promptflag_authoring::build::BuildOptions;
use promptflag_contracts::revision::MAX_REVISION;
use promptflag_release::audit::AuditLog;
use std::time::Duration;

use promptflag_release::Error;
use promptflag_release::publish::{self, PublishOptions};
use promptflag_release::store::{Http, RetryPolicy, WorkerAdmin};
use support::fake_worker::FakeWorker;
use support::*;

/// The Worker's fake with `meta:dev` saying `latest` is as given: the state a store can report
/// after a hand edit or a foreign writer.
fn worker_reporting_latest(latest: u64) -> (FakeWorker, WorkerAdmin) {
    let worker = FakeWorker::start("t", "dev");
    worker
        .state
        .lock()
        .unwrap()
        .envs
        .entry(String::from("dev"))
        .or_default()
        .meta
        .latest = Some(latest);
    let store = WorkerAdmin::new(
        worker.url(),
        "t",
        Http::new(Duration::from_secs(10), RetryPolicy::default()),
    );
    (worker, store)
}

#[test]
fn a_latest_revision_at_the_bound_refuses_the_next_publish_instead_of_wrapping() {
    let (dir, repo) = scratch_repo();
    let (loaded, diagnostics) = promptflag_authoring::lint::check(&repo).unwrap();
    let build = promptflag_authoring::build::build(&loaded, &diagnostics, &BuildOptions::default())
        .unwrap();
    let audit = AuditLog::open(&dir.path().join("audit.sqlite3")).unwrap();
    let options = PublishOptions {
        environment: String::from("dev"),
        actor: String::from("ci@acme.example"),
        reason: String::new(),
        force: false,
        revert_runtime: false,
        eval_results: None,
        approvals: None,
    };
    for latest in [u64::MAX, MAX_REVISION + 1, MAX_REVISION] {
        let (worker, store) = worker_reporting_latest(latest);
        match publish::plan(&store, &audit, &build, &options) {
            Err(Error::Invalid(message)) => {
                assert!(
                    message.contains("revisions_exhausted"),
                    "{latest}: {message}"
                )
            }
            Err(other) => panic!("{latest}: {other}"),
            Ok(plan) => panic!("{latest}: planned revision {}", plan.revision),
        }
        assert!(worker.state.lock().unwrap().pointer_writes.is_empty());
    }
    let (_worker, below) = worker_reporting_latest(MAX_REVISION - 1);
    let plan = publish::plan(&below, &audit, &build, &options).unwrap();
    assert_eq!(plan.revision, MAX_REVISION);
}
