//! A publish or kill that dies between the store's write and the audit append: the intent it
//! recorded first is found by the next command, which appends the entries when the write landed
//! and drops them when it did not (a real SQLite log; the in-memory store keeps the KV rules).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "store_contract/cases.rs"]
#[allow(dead_code)]
mod store_contract;

use promptflag_release::audit::{Action, AuditLog, NewEntry};
use promptflag_release::memstore::MemoryStore;
use promptflag_release::reconcile;
use promptflag_release::store::Store;
use store_contract::ruleset;

fn kill_entry(revision: u64) -> NewEntry {
    NewEntry {
        actor: String::from("oncall@example.com"),
        action: Action::Kill,
        environment: String::from("prod"),
        revision: Some(revision),
        previous_revision: Some(revision - 1),
        reason: String::from("bad answers"),
        content_hash: None,
        ruleset_hash: None,
        summary: serde_json::json!({"flag": "f"}),
    }
}

/// A scratch folder for the audit DB, its path, and a store with revision 1 of prod live.
fn prod_at_one() -> (tempfile::TempDir, std::path::PathBuf, MemoryStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    let store = MemoryStore::new();
    store
        .put_ruleset("prod", 1, &ruleset("prod", 1), None)
        .unwrap();
    (dir, path, store)
}

#[test]
fn a_write_that_landed_without_its_entry_is_recorded_by_the_next_command() {
    let (_dir, path, store) = prod_at_one();
    {
        // The command records its intent, the store moves, and the process dies.
        let audit = AuditLog::open(&path).unwrap();
        audit.record_intent("prod", 2, &[kill_entry(2)]).unwrap();
        store
            .put_ruleset("prod", 2, &ruleset("prod", 2), Some(1))
            .unwrap();
    }
    let mut audit = AuditLog::open(&path).unwrap();
    assert!(audit.list(None).unwrap().is_empty());
    assert_eq!(reconcile(&store, &mut audit).unwrap(), 1);
    let entries = audit.list(None).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].action, entries[0].revision),
        (Action::Kill, Some(2))
    );
    assert_eq!(entries[0].summary["reconciled"], true);
    assert!(audit.verify(None).unwrap().is_intact());
    // Done once: the next command finds nothing to finish.
    assert_eq!(reconcile(&store, &mut audit).unwrap(), 0);
    assert_eq!(audit.list(None).unwrap().len(), 1);
}

#[test]
fn a_write_that_never_landed_leaves_no_entry() {
    let (_dir, path, store) = prod_at_one();
    let mut audit = AuditLog::open(&path).unwrap();
    audit.record_intent("prod", 2, &[kill_entry(2)]).unwrap();
    // The process died before the store's write.
    assert_eq!(reconcile(&store, &mut audit).unwrap(), 0);
    assert!(audit.list(None).unwrap().is_empty());
    assert!(audit.pending_intent().unwrap().is_none());
}
