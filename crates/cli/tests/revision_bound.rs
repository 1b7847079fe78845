//! Revisions end at 2^53 − 1 (`promptflag_contracts::revision::MAX_REVISION`): a store whose
//! latest revision is at (or past) the bound makes the companion refuse the next publish. It
//! used to compute `latest + 1`, which sent revision 0 for a latest of 2^64 − 1 and then had every
//! later publish refused as stale.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use promptflag_authoring::build::BuildOptions;
use promptflag_contracts::revision::MAX_REVISION;
use promptflag_release::audit::AuditLog;
use promptflag_release::memstore::MemoryStore;
use promptflag_release::publish::{self, PublishOptions};
use promptflag_release::store::{EnvState, PointerMove, Progress, Store};
use promptflag_release::{Error, Result};
use support::*;

/// A store that reports `latest` as given and otherwise is a [`MemoryStore`].
struct ReportsLatest {
    inner: MemoryStore,
    latest: u64,
}

impl Store for ReportsLatest {
    fn describe(&self) -> String {
        format!("memory reporting latest = {}", self.latest)
    }
    fn state(&self, environment: &str) -> Result<EnvState> {
        Ok(EnvState {
            latest: Some(self.latest),
            ..self.inner.state(environment)?
        })
    }
    fn put_prompts(&self, bodies: &[(String, Vec<u8>)], progress: &dyn Progress) -> Result<usize> {
        self.inner.put_prompts(bodies, progress)
    }
    fn put_ruleset(
        &self,
        environment: &str,
        revision: u64,
        bytes: &[u8],
        expected_live: Option<u64>,
    ) -> Result<PointerMove> {
        self.inner
            .put_ruleset(environment, revision, bytes, expected_live)
    }
    fn rollback(&self, environment: &str, to: Option<u64>) -> Result<PointerMove> {
        self.inner.rollback(environment, to)
    }
    fn fetch_ruleset(&self, environment: &str, revision: u64) -> Result<Option<Vec<u8>>> {
        self.inner.fetch_ruleset(environment, revision)
    }
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
    };
    for latest in [u64::MAX, MAX_REVISION + 1, MAX_REVISION] {
        let store = ReportsLatest {
            inner: MemoryStore::new(),
            latest,
        };
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
        assert!(store.inner.writes().is_empty());
    }
    let below = ReportsLatest {
        inner: MemoryStore::new(),
        latest: MAX_REVISION - 1,
    };
    let plan = publish::plan(&below, &audit, &build, &options).unwrap();
    assert_eq!(plan.revision, MAX_REVISION);
}
