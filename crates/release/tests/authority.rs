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

/// A ruleset serving one prompt version (body `body`, stated `status`) through a prompt flag.
fn prompt_ruleset(environment: &str, revision: u64, body: &[u8], status: Option<&str>) -> Vec<u8> {
    let hash = promptflag_contracts::digest::sha256_hex(body);
    let content_id = promptflag_contracts::digest::sha256_hex(format!("{hash}/gpt-4o").as_bytes());
    let mut prompt = serde_json::json!({"body": hash, "id": "support", "version": "2.0.0",
                                        "model": "gpt-4o"});
    if let Some(status) = status {
        prompt["status"] = serde_json::Value::from(status);
    }
    serde_json::to_vec(&serde_json::json!({
        "schema": 1, "environment": environment, "revision": revision,
        "prompts": {content_id.as_str(): prompt},
        "flags": {"support_prompt": {
            "kind": "prompt", "baseline": "v2",
            "variants": {"v2": {"prompt": content_id}}}}
    }))
    .unwrap()
}

/// Where the server-side policy serves no drafts, a ruleset naming a version stated as a draft,
/// or a new body whose status it does not state, is `403 draft_not_allowed` naming the version,
/// and neither the live revision nor the audit log moves; a body the environment already serves
/// passes without a status (a kill over an older ruleset), and an environment without the rule
/// serves drafts.
#[test]
fn a_draft_where_drafts_are_not_allowed_is_refused_and_nothing_changes() {
    let credentials = format!(
        r#"[{{"name":"ci-dev","token":"{DEV_TOKEN}","environment":"dev","role":"publisher"}},
            {{"name":"ci-prod","token":"{PROD_TOKEN}","environment":"prod","role":"override"}}]"#
    );
    let options = WorkerOptions {
        admin_credentials: Some(credentials),
        environment_policy: Some(String::from(r#"{"prod": {"allow_drafts": false}}"#)),
        quiet: true,
        ..WorkerOptions::default()
    };
    let worker = WorkerProcess::start(&Locations::from_env().unwrap(), &options).unwrap();
    let dev = admin(&worker, DEV_TOKEN);
    let prod = admin(&worker, PROD_TOKEN);
    let served = b"Answer in two sentences.".to_vec();
    let drafted = b"Answer in one sentence.".to_vec();
    let bodies = [
        (
            promptflag_contracts::digest::sha256_hex(&served),
            served.clone(),
        ),
        (
            promptflag_contracts::digest::sha256_hex(&drafted),
            drafted.clone(),
        ),
    ];
    prod.put_prompts(&bodies, &promptflag_release::store::NoProgress)
        .unwrap();
    prod.put_ruleset(
        "prod",
        1,
        &prompt_ruleset("prod", 1, &served, Some("canary")),
        None,
    )
    .unwrap();
    let before = prod.state("prod").unwrap();
    let head = prod.served_audit().unwrap().head;

    let refusals = [
        (Some("draft"), &drafted, "support@2.0.0 is a draft"),
        (None, &drafted, "support@2.0.0 states no status"),
        (Some("draft"), &served, "support@2.0.0 is a draft"),
    ];
    for (status, body, why) in refusals {
        let refused = prod
            .put_ruleset("prod", 2, &prompt_ruleset("prod", 2, body, status), Some(1))
            .unwrap_err();
        let Error::Refused(message) = refused else {
            panic!("expected a refusal, got {refused:?}");
        };
        assert!(message.contains("draft_not_allowed"), "{message}");
        assert!(message.contains(why), "{message}");
        // Not even an override credential's override passes it.
        let overriding = WriteIntent {
            action: "publish",
            reason: String::from("ship it anyway"),
            override_gates: true,
            approvals: None,
        };
        let refused = prod
            .put_ruleset_with(
                "prod",
                2,
                &prompt_ruleset("prod", 2, body, status),
                Some(1),
                &overriding,
            )
            .unwrap_err();
        assert!(
            refused.to_string().contains("draft_not_allowed"),
            "{refused}"
        );
        assert_eq!(prod.state("prod").unwrap(), before);
        assert_eq!(prod.served_audit().unwrap().head, head);
    }

    // The body prod already serves, written without a status, and the new one stated as a
    // canary, both publish.
    prod.put_ruleset(
        "prod",
        2,
        &prompt_ruleset("prod", 2, &served, None),
        Some(1),
    )
    .unwrap();
    prod.put_ruleset(
        "prod",
        3,
        &prompt_ruleset("prod", 3, &drafted, Some("canary")),
        Some(2),
    )
    .unwrap();
    assert_eq!(prod.state("prod").unwrap().live, Some(3));
    // dev has no such rule.
    dev.put_ruleset(
        "dev",
        1,
        &prompt_ruleset("dev", 1, &drafted, Some("draft")),
        None,
    )
    .unwrap();
    assert_eq!(dev.state("dev").unwrap().live, Some(1));
}
