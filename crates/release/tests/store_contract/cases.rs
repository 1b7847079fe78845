//! The behaviour every [`Store`] must have, written once: revisions, stale writes, moved live
//! revisions, the kept list, rollback targets and errors, as `promptflag_contracts` defines them
//! and the Worker implements them. `tests/store_contract.rs` runs each case against every store
//! (the in-memory store, the test fake of the Worker through `WorkerAdmin`, and the real Worker
//! on workerd).
//!
//! A case takes the store and an environment name of its own, so stores that are expensive to
//! start (the real Worker) can serve every case at once. The module depends only on the
//! `Store` trait, `promptflag_contracts` and `serde_json`, so it moves with the trait.

use promptflag_contracts::meta::KEPT_REVISIONS;
use promptflag_contracts::revision::{self, MAX_REVISION};
use promptflag_release::Error;
use promptflag_release::store::{EnvState, Store};

/// A valid ruleset of `environment` at `revision` (no prompts, so no bodies are needed).
pub fn ruleset(environment: &str, revision: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schema": 1, "environment": environment, "revision": revision,
        "flags": {"f": {
            "kind": "string", "baseline": "a",
            "variants": {"a": {"value": "A"}, "b": {"value": "B"}},
            "default": {"split": {"treatments": [{"variant": "b", "weight": 100000}]}}}}
    }))
    .unwrap()
}

fn publish(store: &dyn Store, environment: &str, revision: u64, expected: Option<u64>) {
    let moved = store
        .put_ruleset(
            environment,
            revision,
            &ruleset(environment, revision),
            expected,
        )
        .unwrap_or_else(|e| panic!("{}: publishing {revision}: {e}", store.describe()));
    assert_eq!(moved.revision, revision, "{}", store.describe());
}

fn publish_many(store: &dyn Store, environment: &str, revisions: std::ops::RangeInclusive<u64>) {
    for revision in revisions {
        let live = store.state(environment).unwrap().live;
        publish(store, environment, revision, live);
    }
}

fn state(store: &dyn Store, environment: &str) -> EnvState {
    store
        .state(environment)
        .unwrap_or_else(|e| panic!("{}: state of {environment}: {e}", store.describe()))
}

#[track_caller]
fn assert_conflict(
    store: &dyn Store,
    result: promptflag_release::Result<impl std::fmt::Debug>,
    code: &str,
) {
    match result {
        Err(Error::Conflict { message }) => {
            assert!(message.contains(code), "{}: {message}", store.describe())
        }
        other => panic!(
            "{}: expected a {code} conflict, got {other:?}",
            store.describe()
        ),
    }
}

#[track_caller]
fn assert_not_kept(store: &dyn Store, result: promptflag_release::Result<impl std::fmt::Debug>) {
    match result {
        Err(Error::Invalid(message)) => assert!(
            message.contains("revision_not_kept"),
            "{}: {message}",
            store.describe()
        ),
        other => panic!(
            "{}: expected revision_not_kept, got {other:?}",
            store.describe()
        ),
    }
}

/// Nothing published: no live, no latest, nothing kept.
pub fn a_fresh_environment_has_no_revisions(store: &dyn Store, environment: &str) {
    assert_eq!(
        state(store, environment),
        EnvState::default(),
        "{}",
        store.describe()
    );
}

/// Each publish moves the pointer, raises `latest` and joins the kept list; the answer names
/// the revision live before.
pub fn publishes_move_the_pointer_and_are_kept(store: &dyn Store, environment: &str) {
    let first = store
        .put_ruleset(environment, 1, &ruleset(environment, 1), None)
        .unwrap();
    assert_eq!((first.revision, first.previous), (1, None));
    let second = store
        .put_ruleset(environment, 2, &ruleset(environment, 2), Some(1))
        .unwrap();
    assert_eq!((second.revision, second.previous), (2, Some(1)));
    assert_eq!(
        state(store, environment),
        EnvState {
            live: Some(2),
            latest: Some(2),
            kept: vec![1, 2]
        },
        "{}",
        store.describe()
    );
    assert_eq!(
        revision::next(Some(2), Some(2)),
        Ok(3),
        "the next publish goes one above"
    );
}

/// A revision at or below the latest is `stale_revision`, and changes nothing.
pub fn a_revision_not_above_the_latest_is_stale(store: &dyn Store, environment: &str) {
    publish_many(store, environment, 1..=2);
    let before = state(store, environment);
    for stale in [1, 2] {
        assert_conflict(
            store,
            store.put_ruleset(environment, stale, &ruleset(environment, stale), None),
            "stale_revision",
        );
    }
    assert_eq!(state(store, environment), before, "{}", store.describe());
}

/// A publish planned against a live revision that has moved is a `conflict`, and changes
/// nothing; planned against the live one, it goes through.
pub fn a_moved_live_revision_is_a_conflict(store: &dyn Store, environment: &str) {
    publish(store, environment, 1, None);
    assert_conflict(
        store,
        store.put_ruleset(environment, 2, &ruleset(environment, 2), Some(5)),
        "conflict",
    );
    assert_eq!(
        state(store, environment).latest,
        Some(1),
        "{}",
        store.describe()
    );
    publish(store, environment, 2, Some(1));
}

/// The last [`KEPT_REVISIONS`] revisions are kept; `latest` is the highest ever published.
pub fn only_the_last_ten_revisions_are_kept(store: &dyn Store, environment: &str) {
    let last = KEPT_REVISIONS as u64 + 2;
    publish_many(store, environment, 1..=last);
    assert_eq!(
        state(store, environment),
        EnvState {
            live: Some(last),
            latest: Some(last),
            kept: (3..=last).collect()
        },
        "{}",
        store.describe()
    );
}

/// A rollback to a revision that fell out of the kept list is refused (the Worker refuses it;
/// the in-memory store used to allow it), and the pointer stays.
pub fn a_rollback_to_a_revision_no_longer_kept_is_refused(store: &dyn Store, environment: &str) {
    let last = KEPT_REVISIONS as u64 + 2;
    publish_many(store, environment, 1..=last);
    for gone in [1, 2] {
        assert_not_kept(store, store.rollback(environment, Some(gone)));
    }
    assert_not_kept(store, store.rollback(environment, Some(last + 1)));
    assert_eq!(
        state(store, environment).live,
        Some(last),
        "{}",
        store.describe()
    );
}

/// Without a target, a rollback goes to the highest kept revision below the live one, until
/// none is left; rollbacks never change `latest` or the kept list.
pub fn a_rollback_without_a_target_steps_back_through_the_kept_revisions(
    store: &dyn Store,
    environment: &str,
) {
    publish_many(store, environment, 1..=3);
    let back = store.rollback(environment, None).unwrap();
    assert_eq!(
        (back.revision, back.previous),
        (2, Some(3)),
        "{}",
        store.describe()
    );
    let back = store.rollback(environment, None).unwrap();
    assert_eq!(
        (back.revision, back.previous),
        (1, Some(2)),
        "{}",
        store.describe()
    );
    assert_not_kept(store, store.rollback(environment, None));
    assert_eq!(
        state(store, environment),
        EnvState {
            live: Some(1),
            latest: Some(3),
            kept: vec![1, 2, 3]
        },
        "{}",
        store.describe()
    );
}

/// A rollback to a named kept revision goes there, forwards as well as back.
/// After a kill (r4), a rollback (to r3) and a publish (r5), a plain rollback returns to r3,
/// the revision live before r5, and never to the kill it undid.
pub fn a_plain_rollback_never_returns_to_a_kill_it_undid(store: &dyn Store, environment: &str) {
    publish_many(store, environment, 1..=4);
    let back = store.rollback(environment, None).unwrap();
    assert_eq!(back.revision, 3, "{}", store.describe());
    publish(store, environment, 5, Some(3));
    let back = store.rollback(environment, None).unwrap();
    assert_eq!(
        (back.revision, back.previous),
        (3, Some(5)),
        "{}",
        store.describe()
    );
    let back = store.rollback(environment, None).unwrap();
    assert_eq!(back.revision, 2, "{}", store.describe());
}

pub fn a_rollback_goes_to_any_named_kept_revision(store: &dyn Store, environment: &str) {
    publish_many(store, environment, 1..=3);
    let moved = store.rollback(environment, Some(1)).unwrap();
    assert_eq!(
        (moved.revision, moved.previous),
        (1, Some(3)),
        "{}",
        store.describe()
    );
    let moved = store.rollback(environment, Some(3)).unwrap();
    assert_eq!(
        (moved.revision, moved.previous),
        (3, Some(1)),
        "{}",
        store.describe()
    );
}

/// After a rollback, the next publish still goes above `latest` (not above the live revision):
/// the revisions between are taken.
pub fn a_publish_after_a_rollback_goes_above_the_latest(store: &dyn Store, environment: &str) {
    publish_many(store, environment, 1..=3);
    store.rollback(environment, Some(1)).unwrap();
    let now = state(store, environment);
    assert_conflict(
        store,
        store.put_ruleset(environment, 2, &ruleset(environment, 2), now.live),
        "stale_revision",
    );
    let next = revision::next(now.latest, now.live).unwrap();
    assert_eq!(next, 4);
    let moved = store
        .put_ruleset(environment, next, &ruleset(environment, next), now.live)
        .unwrap();
    assert_eq!(
        (moved.revision, moved.previous),
        (4, Some(1)),
        "{}",
        store.describe()
    );
}

/// Rolling back an environment with nothing published is refused.
pub fn a_rollback_with_nothing_published_is_refused(store: &dyn Store, environment: &str) {
    assert_not_kept(store, store.rollback(environment, None));
    assert_not_kept(store, store.rollback(environment, Some(1)));
    assert_eq!(
        state(store, environment),
        EnvState::default(),
        "{}",
        store.describe()
    );
}

/// A name outside `[A-Za-z0-9_.-]{1,64}` is refused before anything is read or written.
pub fn an_invalid_environment_name_is_refused(store: &dyn Store, environment: &str) {
    let long = "e".repeat(65);
    for bad in ["a:b", "", long.as_str(), "a b"] {
        assert!(
            matches!(store.state(bad), Err(Error::Invalid(_))),
            "{}: state of {bad:?}",
            store.describe()
        );
        assert!(
            store.put_ruleset(bad, 1, &ruleset(bad, 1), None).is_err(),
            "{}: publish to {bad:?}",
            store.describe()
        );
        assert!(
            store.rollback(bad, None).is_err(),
            "{}: rollback of {bad:?}",
            store.describe()
        );
    }
    assert_eq!(
        state(store, environment),
        EnvState::default(),
        "{}",
        store.describe()
    );
}

/// A revision above 2^53 − 1 is refused and changes nothing; the bound itself is publishable.
pub fn revisions_past_the_bound_are_refused(store: &dyn Store, environment: &str) {
    publish(store, environment, 1, None);
    let result = store.put_ruleset(
        environment,
        MAX_REVISION + 1,
        &ruleset(environment, MAX_REVISION + 1),
        Some(1),
    );
    assert!(
        matches!(&result, Err(Error::Invalid(message)) if message.contains("revision_out_of_range")),
        "{}: {result:?}",
        store.describe()
    );
    assert_eq!(
        state(store, environment).latest,
        Some(1),
        "{}",
        store.describe()
    );
    publish(store, environment, MAX_REVISION, Some(1));
    assert_eq!(
        revision::next(Some(MAX_REVISION), Some(MAX_REVISION))
            .unwrap_err()
            .code(),
        "revisions_exhausted"
    );
}
