//! The audit log's hash chain: intact logs verify; an edited, removed, reordered or truncated
//! entry is found, also after the append-only triggers are dropped by raw SQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use promptflag_release::audit::{Action, AuditLog, NewEntry};
use rusqlite::Connection;
use serde_json::json;
use support::*;

fn entry(n: u64) -> NewEntry {
    NewEntry {
        actor: format!("user{n}@acme.example"),
        action: if n.is_multiple_of(3) {
            Action::Rollback
        } else {
            Action::Publish
        },
        environment: String::from("prod"),
        revision: Some(n),
        previous_revision: n.checked_sub(1),
        reason: format!("change {n}"),
        content_hash: Some(format!("{n:064}")),
        ruleset_hash: None,
        summary: json!({ "flags": [{"flag": "support_prompt", "n": n}] }),
    }
}

fn log_with(path: &Path, entries: u64) -> String {
    let mut log = AuditLog::open(path).unwrap();
    for n in 1..=entries {
        log.append(entry(n)).unwrap();
    }
    let verification = log.verify(None).unwrap();
    assert!(verification.is_intact(), "{:?}", verification.breaks);
    assert_eq!(verification.entries, entries);
    verification.head
}

/// Raw SQL as an attacker would run it: drop the append-only triggers first.
fn tamper(path: &Path, sql: &str) {
    let connection = Connection::open(path).unwrap();
    connection
        .execute_batch("DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;")
        .unwrap();
    connection.execute_batch(sql).unwrap();
}

fn kinds(path: &Path, expect_head: Option<&str>) -> Vec<&'static str> {
    AuditLog::open(path)
        .unwrap()
        .verify(expect_head)
        .unwrap()
        .breaks
        .iter()
        .map(|b| b.kind)
        .collect()
}

#[test]
fn entries_chain_to_their_predecessors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    log_with(&path, 3);
    let entries = AuditLog::open(&path).unwrap().list(None).unwrap();
    assert_eq!(entries[0].prev_hash, promptflag_release::audit::GENESIS);
    assert_eq!(entries[1].prev_hash, entries[0].hash);
    assert_eq!(entries[2].prev_hash, entries[1].hash);
    for entry in &entries {
        assert_eq!(entry.compute_hash(), entry.hash);
    }
}

#[test]
fn the_triggers_refuse_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    log_with(&path, 2);
    let connection = Connection::open(&path).unwrap();
    assert!(
        connection
            .execute("UPDATE entries SET actor = 'mallory' WHERE seq = 1", [])
            .is_err()
    );
    assert!(
        connection
            .execute("DELETE FROM entries WHERE seq = 2", [])
            .is_err()
    );
}

#[test]
fn an_edited_entry_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    log_with(&path, 4);
    tamper(
        &path,
        "UPDATE entries SET reason = 'nothing to see' WHERE seq = 2;",
    );
    assert!(kinds(&path, None).contains(&"edited"));
}

#[test]
fn an_edited_summary_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    log_with(&path, 3);
    tamper(
        &path,
        r#"UPDATE entries SET summary = '{"flags":[]}' WHERE seq = 3;"#,
    );
    assert_eq!(kinds(&path, None), vec!["edited"]);
}

#[test]
fn a_removed_entry_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    log_with(&path, 5);
    tamper(&path, "DELETE FROM entries WHERE seq = 3;");
    assert!(kinds(&path, None).contains(&"removed_or_reordered"));
}

#[test]
fn a_removed_newest_entry_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    let head = log_with(&path, 5);
    tamper(&path, "DELETE FROM entries WHERE seq = 5;");
    assert_eq!(kinds(&path, None), vec!["truncated"]);
    // Even if the head row is rewritten too, a head kept elsewhere catches it.
    tamper(
        &path,
        "UPDATE head SET seq = 4, hash = (SELECT hash FROM entries WHERE seq = 4);",
    );
    assert!(kinds(&path, None).is_empty());
    assert_eq!(kinds(&path, Some(&head)), vec!["head_mismatch"]);
}

#[test]
fn reordered_entries_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    log_with(&path, 4);
    // Swap entries 2 and 3 wholesale (their seq numbers trade places).
    tamper(
        &path,
        "UPDATE entries SET seq = -2 WHERE seq = 2; UPDATE entries SET seq = 2 WHERE seq = 3; UPDATE entries SET seq = 3 WHERE seq = -2;",
    );
    let found = kinds(&path, None);
    assert!(
        found.contains(&"removed_or_reordered") || found.contains(&"edited"),
        "{found:?}"
    );
    assert!(!found.is_empty());
}

#[test]
fn a_rehashed_edit_still_breaks_the_chain() {
    // An attacker who edits an entry and recomputes its hash still breaks the next entry's link.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    log_with(&path, 3);
    let log = AuditLog::open(&path).unwrap();
    let mut second = log.list(None).unwrap()[1].clone();
    second.actor = String::from("mallory@acme.example");
    let rehashed = second.compute_hash();
    drop(log);
    tamper(
        &path,
        &format!(
            "UPDATE entries SET actor = 'mallory@acme.example', hash = '{rehashed}' WHERE seq = 2;"
        ),
    );
    assert_eq!(kinds(&path, None), vec!["removed_or_reordered"]);
}

#[test]
fn the_cli_verifies_and_exits_one_on_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    log_with(&path, 3);
    let db = path.to_str().unwrap();
    let ok = promptflag(&["--audit-db", db, "audit", "verify"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("intact: 3 entries"));
    let list = promptflag(&["--audit-db", db, "--json", "audit", "list", "--env", "prod"]);
    let value: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(value["entries"].as_array().unwrap().len(), 3);
    tamper(&path, "UPDATE entries SET actor = 'mallory' WHERE seq = 1;");
    let bad = promptflag(&["--audit-db", db, "--json", "audit", "verify"]);
    assert_eq!(bad.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(value["ok"], false);
    assert_eq!(value["verification"]["breaks"][0]["kind"], "edited");
}
