//! The gate's shared vectors: gate inputs (with real Ed25519 signatures) and this crate's answer
//! to each, written to `tests/vectors.json`. The Worker decides in JavaScript
//! (`worker/js/signatures.js`), and `worker/tests/governance-vectors.test.mjs` runs the same
//! file through it on workerd, so the edge and the companion cannot disagree on any of them.
//! The file is compared here with what this crate answers now; `UPDATE_EXPECT=1` rewrites it.

mod support;

use promptflag_governance::gate::{self, GateInput, SignedRegistry, SubmittedApproval};
use promptflag_governance::native::{PrivateKey, verify_all};
use serde_json::{Value, json};
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
        root: key(11, "olivia"),
        carol: key(12, "carol"),
        dana: key(13, "dana"),
        erin: key(14, "erin"),
        mallory: key(15, "mallory"),
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

fn base(p: &People, approvals: Vec<SubmittedApproval>) -> GateInput {
    GateInput {
        owner_keys: format!("# root owners\n{}\n", p.root.public_line()),
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

/// This crate's answer to an input's text: the decision's JSON, or `{"error": code}`.
fn answer(text: &str) -> Value {
    let decided = GateInput::parse(text).and_then(|input| {
        let results = verify_all(&gate::plan(&input).checks);
        gate::decide(&input, &results)
    });
    match decided {
        Ok(decision) => decision.to_json(),
        Err(error) => json!({"error": error.code()}),
    }
}

fn text(input: &GateInput) -> String {
    serde_json::to_string(input).unwrap()
}

/// The named input texts.
fn cases() -> Vec<(&'static str, String)> {
    let p = people();
    let dana = || approval(&subject(), "prod", &p.dana);
    let mut cases = Vec::new();
    let mut add = |name: &'static str, input: &GateInput| cases.push((name, text(input)));

    add("a reviewer's approval allows", &base(&p, vec![dana()]));
    add("no approval", &base(&p, vec![]));
    add(
        "a staging approval is not prod's",
        &base(&p, vec![approval(&subject(), "staging", &p.dana)]),
    );
    let mut retyped = base(&p, vec![dana()]);
    retyped.prompts[0].body_sha256 = "0".repeat(64);
    add("a retyped body hash", &retyped);
    let mut retuned = base(&p, vec![dana()]);
    retuned.prompts[0].parameters = json!({"temperature": 0.9, "max_tokens": 300, "top_p": 1});
    add("changed parameters", &retuned);
    add(
        "an author's self-approval",
        &base(&p, vec![approval(&subject(), "prod", &p.carol)]),
    );
    add(
        "an approver outside the registry",
        &base(&p, vec![approval(&subject(), "prod", &p.mallory)]),
    );
    add(
        "an approver without the reviewer role",
        &base(&p, vec![approval(&subject(), "prod", &p.erin)]),
    );
    add(
        "one good approval among bad ones",
        &base(
            &p,
            vec![
                approval(&subject(), "prod", &p.erin),
                dana(),
                dana(),
                approval(&subject(), "prod", &p.carol),
            ],
        ),
    );
    let garbage = |signature: String| SubmittedApproval {
        prompt: subject().prompt,
        signature,
    };
    add(
        "an approval that is not armored",
        &base(&p, vec![garbage("looks approved to me".into())]),
    );
    add(
        "an approval of bad base64",
        &base(
            &p,
            vec![garbage(
                "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH!\n-----END SSH SIGNATURE-----".into(),
            )],
        ),
    );
    let armored = dana().signature;
    let body: String = armored
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    add(
        "a truncated signature blob",
        &base(
            &p,
            vec![garbage(format!(
                "-----BEGIN SSH SIGNATURE-----\n{}\n-----END SSH SIGNATURE-----",
                &body[..64]
            ))],
        ),
    );
    let mut unknown_prompt = base(&p, vec![dana()]);
    unknown_prompt.approvals[0].prompt = "other@1.0.0".into();
    add("an approval of another prompt", &unknown_prompt);
    let mut nested = base(&p, vec![]);
    nested.prompts[0].parameters =
        json!({"b": [1.5, 2.0, -0.0, 1e300, 0.1], "a": {"z": null, "y": "x\ny\u{e9}"}, "Z": true});
    nested.prompts[0].output_schema_sha256 = Some("ab".repeat(32));
    nested.approvals = vec![approval(&nested.prompts[0], "prod", &p.dana)];
    add("nested parameters and an output schema", &nested);
    let mut bad_subject = base(&p, vec![dana()]);
    bad_subject.prompts[0].author = "carol acme".into();
    add("an author with a space", &bad_subject);
    let mut two = base(&p, vec![dana()]);
    let mut second = subject();
    second.prompt = "summarizer@1.0.0".into();
    two.prompts.push(second);
    add("two prompts, one approved", &two);
    let mut not_required = base(&p, vec![]);
    not_required.require_approvals = false;
    not_required.environment = "dev".into();
    add("approvals not required", &not_required);

    // The registry chain.
    let second_registry = registry_text(
        2,
        &[
            ("olivia@acme.example", &p.root, &["owner"]),
            ("mallory@acme.example", &p.mallory, &["reviewer"]),
        ],
    );
    let mut by_reviewer = base(&p, vec![approval(&subject(), "prod", &p.mallory)]);
    by_reviewer
        .registry_changes
        .push(signed(&second_registry, &p.dana));
    add("a registry change signed by a non-owner", &by_reviewer);
    let mut by_owner = by_reviewer.clone();
    by_owner.registry_changes[1] = signed(&second_registry, &p.root);
    add("a registry change signed by an owner", &by_owner);
    let mut self_rooted = base(&p, vec![]);
    self_rooted.owner_keys = p.dana.public_line();
    add("registry 1 not signed by a root key", &self_rooted);
    let mut forged = base(&p, vec![dana()]);
    forged.registry_changes[0].text = forged.registry_changes[0]
        .text
        .replace("\"author\"\n", "\"author\",\n        \"reviewer\"\n");
    add("a registry edited after signing", &forged);
    let mut accepted = base(&p, vec![approval(&subject(), "prod", &p.mallory)]);
    accepted.registry_changes.clear();
    accepted.accepted = Some(first_registry(&p));
    add("against the accepted registry", &accepted);
    let mut replayed = accepted.clone();
    replayed
        .registry_changes
        .push(signed(&first_registry(&p), &p.root));
    add("a replayed registry", &replayed);
    let mut skipping = base(&p, vec![]);
    skipping.registry_changes = vec![signed(&second_registry, &p.root)];
    add("a registry that skips a serial", &skipping);
    let invalid_registry = |text: &str| SignedRegistry {
        text: text.into(),
        signature: p.root.sign(text.as_bytes()).to_armored(),
    };
    for (name, registry) in [
        (
            "a registry with an unknown field",
            r#"{"schema": 1, "serial": 1, "members": [], "extra": 1}"#,
        ),
        (
            "a registry with a bad role",
            r#"{"schema": 1, "serial": 1, "members": [{"name": "a", "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAeMGFcjXraNOyfvt+wsgxogcjoRk2gCossFIucbfrqQ", "roles": ["boss"]}]}"#,
        ),
        (
            "a registry with an RSA key",
            r#"{"schema": 1, "serial": 1, "members": [{"name": "a", "key": "ssh-rsa AAAAB3NzaC1yc2E=", "roles": []}]}"#,
        ),
        (
            "a registry of schema 2",
            r#"{"schema": 2, "serial": 1, "members": []}"#,
        ),
    ] {
        let mut input = base(&p, vec![]);
        input.registry_changes = vec![invalid_registry(registry)];
        add(name, &input);
    }

    // Publishers and overrides.
    let mut publisher = base(&p, vec![dana()]);
    publisher.publisher = Some(p.dana.public_line());
    add("a publisher with the role", &publisher);
    publisher.publisher = Some(p.erin.public_line());
    add("a publisher without the role", &publisher);
    publisher.publisher = Some("ssh-ed25519 nope".into());
    add("a publisher that is not a key", &publisher);
    let mut overriding = base(&p, vec![]);
    overriding.override_reason = Some("  incident 42: revert wording ".into());
    add("an override without a publisher", &overriding);
    overriding.publisher = Some(p.dana.public_line());
    add("an override without the role", &overriding);
    overriding.registry_changes[0] = signed(
        &registry_text(
            1,
            &[("olivia@acme.example", &p.root, &["owner", "override"])],
        ),
        &p.root,
    );
    overriding.publisher = Some(p.root.public_line());
    add("an override with the role", &overriding);

    // Inputs that cannot be decided at all.
    let mut bad_owner_keys = base(&p, vec![]);
    bad_owner_keys.owner_keys = "ssh-rsa AAAA".into();
    add("owner keys that are not ed25519", &bad_owner_keys);
    let mut bad_accepted = base(&p, vec![]);
    bad_accepted.accepted = Some("{\"schema\": 1}".into());
    add("an accepted registry that is not one", &bad_accepted);
    let mut cases: Vec<(&'static str, String)> = cases;
    cases.push(("not JSON", "nope".into()));
    cases.push((
        "an unknown field",
        r#"{"environment": "prod", "x": 1}"#.into(),
    ));
    cases.push(("no environment", r#"{"prompts": []}"#.into()));
    cases.push((
        "a prompt that is not an object",
        r#"{"environment": "prod", "prompts": [1]}"#.into(),
    ));
    cases.push((
        "a subject with a numeric author",
        r#"{"environment": "prod", "prompts": [{"prompt": "a@1", "author": 7, "body_sha256": "x"}]}"#.into(),
    ));
    cases.push((
        "an approval without a signature",
        r#"{"environment": "prod", "approvals": [{"prompt": "a@1"}]}"#.into(),
    ));
    cases
}

#[test]
fn the_shared_gate_vectors_are_this_crates_answers() {
    let vectors: Vec<Value> = cases()
        .into_iter()
        .map(|(name, input)| json!({"name": name, "input": input, "answer": answer(&input)}))
        .collect();
    let mut written = serde_json::to_string_pretty(&vectors).unwrap();
    written.push('\n');
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors.json");
    if std::env::var("UPDATE_EXPECT").as_deref() == Ok("1") {
        std::fs::write(&path, &written).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == written,
        "tests/vectors.json is not what this crate answers now; rerun with UPDATE_EXPECT=1 and commit it"
    );
    // Every reason of the gate is among the vectors, and so is every kind of unusable input.
    for reason in [
        "approval_missing",
        "approval_invalid",
        "approver_not_reviewer",
        "self_approval",
        "registry_change_unsigned",
        "registry_invalid",
        "publisher_not_authorized",
    ] {
        assert!(
            vectors.iter().any(|v| v["answer"]["reason"] == reason),
            "{reason}"
        );
    }
    assert!(vectors.iter().any(|v| v["answer"]["allowed"] == true));
    assert!(vectors.iter().any(|v| v["answer"]["overridden"] == true));
}
