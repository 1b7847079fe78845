//! The gate's refusals, each with its own reason, decided with real Ed25519 signatures: a
//! retyped approval, a self-approval, an approver outside the registry or without the reviewer
//! role, registry changes not signed by an owner, and a reviewer added only by editing the
//! repository's registry.

mod support;

use promptflag_governance::gate::{self, GateInput};
use promptflag_governance::native::PrivateKey;
use support::*;

struct People {
    root: PrivateKey,
    carol: PrivateKey,
    dana: PrivateKey,
    erin: PrivateKey,
    mallory: PrivateKey,
}

fn people() -> People {
    People {
        root: key(1, "olivia"),
        carol: key(2, "carol"),
        dana: key(3, "dana"),
        erin: key(4, "erin"),
        mallory: key(5, "mallory"),
    }
}

fn first_registry(p: &People) -> String {
    registry_text(
        1,
        &[
            ("olivia@acme.example", &p.root, &["owner"]),
            ("carol@acme.example", &p.carol, &["author", "reviewer"]),
            (
                "dana@acme.example",
                &p.dana,
                &["reviewer", "publisher:prod"],
            ),
            ("erin@acme.example", &p.erin, &["author"]),
        ],
    )
}

fn input(p: &People, approvals: Vec<gate::SubmittedApproval>) -> GateInput {
    GateInput {
        owner_keys: p.root.public_line(),
        accepted: None,
        registry_changes: vec![signed(&first_registry(p), &p.root)],
        environment: "prod".into(),
        require_approvals: true,
        prompts: vec![subject()],
        approvals,
        publisher: None,
        override_reason: None,
    }
}

fn reason(input: &GateInput) -> Option<&'static str> {
    run_gate(input).reason.map(|r| r.code())
}

#[test]
fn a_reviewers_approval_of_this_content_allows() {
    let p = people();
    let decision = run_gate(&input(&p, vec![approval(&subject(), "prod", &p.dana)]));
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(decision.registry_serial, 1);
    assert_eq!(
        decision.registry.as_deref(),
        Some(first_registry(&p).as_str())
    );
}

#[test]
fn no_approval_is_approval_missing() {
    let p = people();
    assert_eq!(reason(&input(&p, vec![])), Some("approval_missing"));
    // An approval for staging does not approve prod.
    let staging_only = input(&p, vec![approval(&subject(), "staging", &p.dana)]);
    assert_eq!(reason(&staging_only), Some("approval_invalid"));
    // Without require_approvals nothing is needed.
    let mut dev = input(&p, vec![]);
    dev.require_approvals = false;
    assert!(run_gate(&dev).allowed);
}

#[test]
fn a_retyped_approval_is_approval_invalid() {
    let p = people();
    let approved = approval(&subject(), "prod", &p.dana);
    // The body is edited after review and its new hash retyped; the signature is kept.
    let mut edited = input(&p, vec![approved.clone()]);
    edited.prompts[0].body_sha256 =
        "c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2".into();
    let decision = run_gate(&edited);
    assert!(!decision.allowed);
    assert_eq!(decision.reason.map(|r| r.code()), Some("approval_invalid"));
    assert_eq!(
        decision.problems[0].signer.as_deref(),
        Some("dana@acme.example")
    );
    // So is an edited model configuration.
    let mut retuned = input(&p, vec![approved]);
    retuned.prompts[0].parameters = serde_json::json!({"temperature": 1.5});
    assert_eq!(reason(&retuned), Some("approval_invalid"));
    // And a signature that is not an SSH signature at all.
    let mut garbage = input(&p, vec![approval(&subject(), "prod", &p.dana)]);
    garbage.approvals[0].signature = "dana@acme.example approved this".into();
    assert_eq!(reason(&garbage), Some("approval_invalid"));
}

#[test]
fn an_author_approving_their_own_prompt_is_self_approval() {
    let p = people();
    // carol wrote support_reply@2.0.0; she is a reviewer too, of other people's prompts.
    let decision = run_gate(&input(&p, vec![approval(&subject(), "prod", &p.carol)]));
    assert_eq!(decision.reason.map(|r| r.code()), Some("self_approval"));
    assert_eq!(
        decision.message,
        "support_reply@2.0.0: carol@acme.example: the author cannot approve their own prompt"
    );
}

#[test]
fn only_registered_reviewers_approve() {
    let p = people();
    // A key the registry does not hold.
    assert_eq!(
        reason(&input(&p, vec![approval(&subject(), "prod", &p.mallory)])),
        Some("approver_not_reviewer")
    );
    // A member without the reviewer role.
    assert_eq!(
        reason(&input(&p, vec![approval(&subject(), "prod", &p.erin)])),
        Some("approver_not_reviewer")
    );
}

#[test]
fn a_registry_change_signed_by_a_non_owner_is_refused() {
    let p = people();
    let second = registry_text(
        2,
        &[
            ("olivia@acme.example", &p.root, &["owner"]),
            ("mallory@acme.example", &p.mallory, &["reviewer"]),
        ],
    );
    // dana is a reviewer, not an owner, of registry 1.
    let mut change = input(&p, vec![approval(&subject(), "prod", &p.mallory)]);
    change.registry_changes.push(signed(&second, &p.dana));
    let decision = run_gate(&change);
    assert_eq!(
        decision.reason.map(|r| r.code()),
        Some("registry_change_unsigned")
    );
    assert_eq!(decision.registry_serial, 1);
    // The first registry must be signed by a root key, not by an owner it lists itself.
    let mut self_signed = input(&p, vec![]);
    self_signed.owner_keys = p.dana.public_line();
    assert_eq!(reason(&self_signed), Some("registry_change_unsigned"));
    // Signed by the owner, the change is accepted and mallory approves.
    let mut owned = input(&p, vec![approval(&subject(), "prod", &p.mallory)]);
    owned.registry_changes.push(signed(&second, &p.root));
    let decision = run_gate(&owned);
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(decision.registry_serial, 2);
}

#[test]
fn a_reviewer_added_only_in_the_repository_is_not_a_reviewer() {
    let p = people();
    // mallory edits registry 1 in the repository to add herself, keeping olivia's signature.
    let original = signed(&first_registry(&p), &p.root);
    let forged_text = registry_text(
        1,
        &[
            ("olivia@acme.example", &p.root, &["owner"]),
            ("carol@acme.example", &p.carol, &["author", "reviewer"]),
            (
                "dana@acme.example",
                &p.dana,
                &["reviewer", "publisher:prod"],
            ),
            ("erin@acme.example", &p.erin, &["author"]),
            ("mallory@acme.example", &p.mallory, &["reviewer"]),
        ],
    );
    let mut forged = input(&p, vec![approval(&subject(), "prod", &p.mallory)]);
    forged.registry_changes = vec![gate::SignedRegistry {
        text: forged_text.clone(),
        signature: original.signature.clone(),
    }];
    assert_eq!(reason(&forged), Some("registry_change_unsigned"));
    // Against the registry the server already accepted, her approval is no reviewer's.
    let mut accepted = input(&p, vec![approval(&subject(), "prod", &p.mallory)]);
    accepted.registry_changes.clear();
    accepted.accepted = Some(first_registry(&p));
    assert_eq!(reason(&accepted), Some("approver_not_reviewer"));
    // Replaying a signed registry under its own serial is no change either.
    let mut replayed = accepted.clone();
    replayed.registry_changes = vec![original];
    assert_eq!(reason(&replayed), Some("registry_change_unsigned"));
}

#[test]
fn publishers_and_overrides_need_their_roles() {
    let p = people();
    let mut publish = input(&p, vec![approval(&subject(), "prod", &p.dana)]);
    publish.publisher = Some(p.dana.public_line());
    assert!(run_gate(&publish).allowed);
    publish.publisher = Some(p.erin.public_line());
    assert_eq!(reason(&publish), Some("publisher_not_authorized"));
    // An override without the override role is refused; with it, the publish goes through
    // and says what it overrode.
    let mut overriding = input(&p, vec![]);
    overriding.override_reason = Some("incident 42: revert wording".into());
    overriding.publisher = Some(p.dana.public_line());
    assert_eq!(reason(&overriding), Some("publisher_not_authorized"));
    let mut with_role = overriding.clone();
    with_role.registry_changes[0] = signed(
        &registry_text(
            1,
            &[("olivia@acme.example", &p.root, &["owner", "override"])],
        ),
        &p.root,
    );
    with_role.publisher = Some(p.root.public_line());
    let decision = run_gate(&with_role);
    assert!(decision.allowed && decision.overridden, "{decision:?}");
    assert_eq!(decision.problems[0].reason.code(), "approval_missing");
}

#[test]
fn the_json_steps_match_the_typed_ones_and_refuse_mismatched_results() {
    let p = people();
    let typed = input(&p, vec![approval(&subject(), "prod", &p.dana)]);
    let text = serde_json::to_string(&typed).unwrap();
    let checks: Vec<serde_json::Value> =
        serde_json::from_str(&gate::checks_json(&text).unwrap()).unwrap();
    assert_eq!(checks.len(), 2);
    let results: Vec<bool> = checks
        .iter()
        .map(|c| promptflag_governance::native::verify(&gate::check_from_json(c).unwrap()))
        .collect();
    assert_eq!(results, vec![true, true]);
    let decision: serde_json::Value =
        serde_json::from_str(&gate::decide_json(&text, "[true,true]").unwrap()).unwrap();
    assert_eq!(decision["allowed"], true);
    let refused: serde_json::Value =
        serde_json::from_str(&gate::decide_json(&text, "[true,false]").unwrap()).unwrap();
    assert_eq!(refused["reason"], "approval_invalid");
    assert!(gate::decide_json(&text, "[true]").is_err());
    assert!(gate::checks_json("{\"environment\": 5}").is_err());
}
