//! The Worker's admin authority through the companion's `WorkerAdmin` store, on workerd
//! (Miniflare) with real KV and Durable Object storage: the served audit log verifies, and a
//! fabricated, edited, reordered or truncated copy of it fails with its own reason; a credential
//! of another environment is refused and leaves the live revision where it was; a write's reason
//! and action reach the log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "store_contract/cases.rs"]
#[allow(dead_code)]
mod store_contract;

use std::time::Duration;

use promptflag_contracts::authority::{Entry, Head};
use promptflag_harness::{Locations, WorkerOptions, WorkerProcess};
use promptflag_release::Error;
use promptflag_release::store::{Http, RetryPolicy, ServedAudit, Store, WorkerAdmin, WriteIntent};
use store_contract::ruleset;

const DEV_TOKEN: &str = "authority-dev-token-0123456789abcdef";
const PROD_TOKEN: &str = "authority-prod-token-0123456789abcdef";

fn start() -> WorkerProcess {
    let credentials = format!(
        r#"[{{"name":"ci-dev","token":"{DEV_TOKEN}","environment":"dev","role":"publisher"}},
            {{"name":"ci-prod","token":"{PROD_TOKEN}","environment":"prod","role":"publisher"}}]"#
    );
    let options = WorkerOptions {
        admin_credentials: Some(credentials),
        quiet: true,
        ..WorkerOptions::default()
    };
    WorkerProcess::start(&Locations::from_env().unwrap(), &options).unwrap()
}

fn admin(worker: &WorkerProcess, token: &str) -> WorkerAdmin {
    let retry = RetryPolicy {
        attempts: 1,
        ..RetryPolicy::default()
    };
    WorkerAdmin::new(
        worker.url(),
        token,
        Http::new(Duration::from_secs(30), retry),
    )
}

fn kinds(audit: &ServedAudit) -> Vec<&'static str> {
    audit.verify().iter().map(|problem| problem.kind).collect()
}

/// Rehashes a chain from its first entry, as someone rebuilding the log with the formula would.
fn rechain(entries: &mut [Entry]) -> Head {
    let mut head = Head::default();
    for entry in entries {
        entry.seq = head.seq + 1;
        entry.prev_hash = head.hash.clone();
        entry.hash = promptflag_contracts::digest::sha256_hex(entry.hash_input().as_bytes());
        head = Head {
            seq: entry.seq,
            hash: entry.hash.clone(),
        };
    }
    head
}

#[test]
fn the_served_log_verifies_and_every_kind_of_tampering_is_caught() {
    let worker = start();
    let dev = admin(&worker, DEV_TOKEN);
    let prod = admin(&worker, PROD_TOKEN);
    dev.put_ruleset("dev", 1, &ruleset("dev", 1), None).unwrap();
    let killed = WriteIntent {
        action: "kill",
        reason: String::from("bad answers in dev"),
        override_gates: false,
        approvals: None,
    };
    dev.put_ruleset_with("dev", 2, &ruleset("dev", 2), Some(1), &killed)
        .unwrap();
    prod.put_ruleset("prod", 1, &ruleset("prod", 1), None)
        .unwrap();
    dev.rollback("dev", None).unwrap();

    let served = dev.served_audit().unwrap();
    assert!(served.verify().is_empty(), "{:?}", served.verify());
    let summary: Vec<(&str, &str, &str, Option<u64>)> = served
        .entries
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.action.as_str(),
                e.environment.as_str(),
                e.revision,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("ci-dev", "publish", "dev", Some(1)),
            ("ci-dev", "kill", "dev", Some(2)),
            ("ci-prod", "publish", "prod", Some(1)),
            ("ci-dev", "rollback", "dev", Some(1)),
        ]
    );
    assert_eq!(served.entries[1].reason, "bad answers in dev");
    // Every kept revision is anchored: dev 1 and 2, prod 1.
    assert_eq!(served.anchors.len(), 3, "{:?}", served.anchors);

    let mut edited = served.clone();
    edited.entries[1].reason = String::from("routine change");
    assert_eq!(kinds(&edited), ["edited"]);

    let mut reordered = served.clone();
    reordered.entries.swap(1, 2);
    assert!(kinds(&reordered).contains(&"removed_or_reordered"));

    let mut truncated = served.clone();
    truncated.entries.pop();
    assert_eq!(kinds(&truncated), ["truncated"]);

    // A log rebuilt from scratch with the formula (the kill's reason rewritten) is internally
    // consistent, but KV's revisions still name the entries they were published under.
    let mut fabricated = served.clone();
    fabricated.entries[1].reason = String::from("routine change");
    fabricated.head = rechain(&mut fabricated.entries);
    assert!(!kinds(&fabricated).is_empty());
    assert!(
        kinds(&fabricated)
            .iter()
            .all(|kind| *kind == "anchor_mismatch"),
        "{:?}",
        fabricated.verify()
    );
}

#[test]
fn a_credential_of_another_environment_is_refused_and_nothing_changes() {
    let worker = start();
    let dev = admin(&worker, DEV_TOKEN);
    let prod = admin(&worker, PROD_TOKEN);
    prod.put_ruleset("prod", 1, &ruleset("prod", 1), None)
        .unwrap();
    let before = prod.state("prod").unwrap();
    let head = dev.served_audit().unwrap().head;

    let refused = dev
        .put_ruleset("prod", 2, &ruleset("prod", 2), Some(1))
        .unwrap_err();
    let Error::Refused(message) = refused else {
        panic!("expected a refusal, got {refused:?}");
    };
    assert!(message.contains("forbidden"), "{message}");
    assert!(message.contains("ci-dev"), "{message}");
    assert!(matches!(
        dev.rollback("prod", Some(1)).unwrap_err(),
        Error::Refused(_)
    ));

    assert_eq!(prod.state("prod").unwrap(), before);
    assert_eq!(dev.served_audit().unwrap().head, head);
}

/// A publish through `WorkerAdmin` carries the signature gate's material with its ruleset: in
/// an environment whose server-side policy requires approvals, a registry change that is not
/// the root owner's signed bytes is refused with the gate's reason and the live revision stays;
/// the root-signed registry publishes.
#[test]
fn a_publish_carries_its_approvals_to_the_signature_gate() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let read = |path: &str| std::fs::read_to_string(examples.join(path)).unwrap();
    let credentials = format!(
        r#"[{{"name":"ci-prod","token":"{PROD_TOKEN}","environment":"prod","role":"publisher"}}]"#
    );
    let options = WorkerOptions {
        admin_credentials: Some(credentials),
        environment_policy: Some(String::from(r#"{"prod": {"require_approvals": true}}"#)),
        owner_keys: Some(read("keys/owner_keys")),
        quiet: true,
        ..WorkerOptions::default()
    };
    let worker = WorkerProcess::start(&Locations::from_env().unwrap(), &options).unwrap();
    let store = admin(&worker, PROD_TOKEN);
    let registry = read("prompts-repo/governance/registry/1.json");
    let signature = read("prompts-repo/governance/registry/1.json.sig");
    let material = |text: &str| {
        serde_json::json!({"registry_changes": [{"text": text, "signature": signature}]})
            .to_string()
    };
    let intent = |approvals: String| WriteIntent {
        action: "publish",
        reason: String::new(),
        override_gates: false,
        approvals: Some(approvals),
    };

    // The registry edited after the owner signed it (a role taken away) is no accepted change.
    let edited = registry.replacen("\"override\"", "\"author\"", 1);
    assert_ne!(edited, registry);
    let refused = store
        .put_ruleset_with(
            "prod",
            1,
            &ruleset("prod", 1),
            None,
            &intent(material(&edited)),
        )
        .unwrap_err();
    assert!(
        refused.to_string().contains("registry_change_unsigned"),
        "{refused}"
    );
    assert_eq!(store.state("prod").unwrap().live, None);

    // With the registry as the root owner signed it, the same publish goes through.
    let moved = store
        .put_ruleset_with(
            "prod",
            1,
            &ruleset("prod", 1),
            None,
            &intent(material(&registry)),
        )
        .unwrap();
    assert_eq!(moved.revision, 1);
    assert_eq!(store.state("prod").unwrap().live, Some(1));
}
