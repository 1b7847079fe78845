//! Golden tests for `promptflag lint` and `promptflag build`, reproducibility, and bad repository
//! input: every problem comes with its file and line, and nothing panics.
//! Golden files live in `tests/golden/`; re-bless them with `UPDATE_EXPECT=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use promptflag_authoring::diagnostic::Diagnostic;
use promptflag_authoring::lint;
use promptflag_contracts::digest::sha256_hex;
use support::*;

/// The commit builds record.
const SOURCE: &str = "0123456789abcdef0123456789abcdef01234567";

fn lint_of(repo: &Path) -> Vec<Diagnostic> {
    lint::check(repo).unwrap().1
}

fn errors_of(repo: &Path) -> Vec<Diagnostic> {
    lint_of(repo)
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect()
}

#[test]
fn lint_of_the_example_repo_is_clean() {
    let output = promptflag(&["--repo", example_repo().to_str().unwrap(), "lint"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    expect_golden("lint-example.txt", &stdout(&output));
}

#[test]
fn lint_of_the_broken_fixture_matches_the_golden_output() {
    let fixture = crate_dir().join("tests/fixtures/broken-repo");
    let output = promptflag(&["--repo", fixture.to_str().unwrap(), "lint"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "lint must fail with exit 1 on errors"
    );
    expect_golden("lint-broken.txt", &stdout(&output));
    let json = promptflag(&["--repo", fixture.to_str().unwrap(), "--json", "lint"]);
    assert_eq!(json.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["ok"], false);
    for diagnostic in value["diagnostics"].as_array().unwrap() {
        assert!(diagnostic["file"].as_str().unwrap().len() > 3);
        assert!(diagnostic["line"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn build_output_matches_the_golden_files_and_is_reproducible() {
    let (dir, repo) = scratch_repo();
    let out_a = dir.path().join("a");
    let out_b = dir.path().join("b");
    for out in [&out_a, &out_b] {
        build_repo(&repo, out, SOURCE);
    }
    let mut files = vec![String::from("manifest.json")];
    for env in ["dev", "staging", "prod"] {
        files.push(format!("rulesets/{env}.json"));
    }
    for file in &files {
        let a = std::fs::read_to_string(out_a.join(file)).unwrap();
        let b = std::fs::read_to_string(out_b.join(file)).unwrap();
        assert_eq!(a, b, "{file} differs between two builds of the same repo");
        expect_golden(&format!("build/{file}"), &a);
    }
    for entry in std::fs::read_dir(out_a.join("prompts")).unwrap() {
        let entry = entry.unwrap();
        let bytes = std::fs::read(entry.path()).unwrap();
        assert_eq!(
            sha256_hex(&bytes),
            entry.file_name().to_str().unwrap(),
            "bodies are named by their SHA-256"
        );
        assert_eq!(
            bytes,
            std::fs::read(out_b.join("prompts").join(entry.file_name())).unwrap()
        );
    }
    // Staging and prod carry no overrides in the example, so their content is the same.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_a.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["environments"]["staging"]["content_hash"],
        manifest["environments"]["prod"]["content_hash"]
    );
    assert_ne!(
        manifest["environments"]["dev"]["content_hash"],
        manifest["environments"]["prod"]["content_hash"]
    );
}

#[test]
fn a_body_edit_changes_only_that_prompt_hash() {
    let (_dir, repo) = scratch_repo();
    let (loaded, diagnostics) = lint::check(&repo).unwrap();
    let before =
        promptflag_authoring::build::build(&loaded, &diagnostics, &Default::default()).unwrap();
    edit(
        &repo,
        "prompts/ticket_summary/1.0.0.md",
        "Return JSON only",
        "Return only JSON",
    );
    let (loaded, diagnostics) = lint::check(&repo).unwrap();
    let after =
        promptflag_authoring::build::build(&loaded, &diagnostics, &Default::default()).unwrap();
    let old: Vec<&String> = before.prompts.keys().collect();
    let new: Vec<&String> = after.prompts.keys().collect();
    assert_eq!(old.iter().filter(|h| !new.contains(h)).count(), 1);
    assert_ne!(
        before.environments["prod"].content_hash,
        after.environments["prod"].content_hash
    );
}

fn assert_error_at(diagnostics: &[Diagnostic], file: &str, line: u32, code: &str) {
    assert!(
        diagnostics
            .iter()
            .any(|d| d.file == file && d.line == line && d.code == code),
        "expected {code} at {file}:{line}, got:\n{}",
        diagnostics
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn broken_yaml_is_reported_with_file_and_line() {
    let (_dir, repo) = scratch_repo();
    edit(
        &repo,
        "flags/support_prompt.yaml",
        "    prompt: support_reply@2.0.0\n",
        "    prompt: [support_reply@2.0.0\n",
    );
    let errors = errors_of(&repo);
    assert_error_at(&errors, "flags/support_prompt.yaml", 11, "yaml_syntax");
    // The flag still exists: no cascade of "unknown flag" errors elsewhere.
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[test]
fn a_missing_metadata_field_is_reported_at_its_version() {
    let (_dir, repo) = scratch_repo();
    edit(
        &repo,
        "prompts/support_reply/metadata.yaml",
        "    author: alice@acme.example\n    reviewers: [bob@acme.example, dana@acme.example]\n",
        "    reviewers: [bob@acme.example, dana@acme.example]\n",
    );
    assert_error_at(
        &errors_of(&repo),
        "prompts/support_reply/metadata.yaml",
        22,
        "missing_field",
    );
}

#[test]
fn an_unknown_variant_is_reported_at_the_serve_that_names_it() {
    let (_dir, repo) = scratch_repo();
    edit(
        &repo,
        "flags/support_prompt.yaml",
        "    serve:\n      variant: concise\n",
        "    serve:\n      variant: verbose\n",
    );
    let errors = errors_of(&repo);
    assert_error_at(&errors, "flags/support_prompt.yaml", 17, "unknown_variant");
    // And build refuses, through the binary, with the same location.
    let output = promptflag(&[
        "--repo",
        repo.to_str().unwrap(),
        "build",
        "--out",
        repo.join("build").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("flags/support_prompt.yaml:17: error[unknown_variant]"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unknown_variant_in_an_environment_override_points_at_the_override() {
    let (_dir, repo) = scratch_repo();
    edit(
        &repo,
        "flags/support_prompt.yaml",
        "    default:\n      variant: concise\n",
        "    default:\n      variant: tersest\n",
    );
    assert_error_at(
        &errors_of(&repo),
        "flags/support_prompt.yaml",
        40,
        "unknown_variant",
    );
}

#[test]
fn an_unknown_prompt_version_is_reported_at_the_reference() {
    let (_dir, repo) = scratch_repo();
    edit(
        &repo,
        "flags/summary_prompt.yaml",
        "ticket_summary@1.1.0",
        "ticket_summary@7.0.0",
    );
    assert_error_at(
        &errors_of(&repo),
        "flags/summary_prompt.yaml",
        6,
        "unknown_prompt",
    );
}

#[test]
fn a_changed_body_invalidates_its_signed_approvals() {
    let (_dir, repo) = scratch_repo();
    edit(
        &repo,
        "prompts/support_reply/2.0.0.md",
        "be brief",
        "be very brief",
    );
    let diagnostics = lint_of(&repo);
    for env in ["staging", "prod"] {
        assert_error_at(
            &diagnostics,
            &format!("approvals/support_reply/2.0.0/{env}/dana@acme.example.sig"),
            1,
            "approval_invalid",
        );
    }
    // A changed model configuration invalidates them too.
    let (_dir, repo) = scratch_repo();
    edit(
        &repo,
        "prompts/support_reply/metadata.yaml",
        "max_tokens: 300",
        "max_tokens: 3000",
    );
    assert_error_at(
        &lint_of(&repo),
        "approvals/support_reply/2.0.0/prod/dana@acme.example.sig",
        1,
        "approval_invalid",
    );
}

#[test]
fn typed_approvals_in_metadata_are_refused_with_the_way_to_sign() {
    let (_dir, repo) = scratch_repo();
    edit(
        &repo,
        "prompts/support_reply/metadata.yaml",
        "    risk: high\n",
        "    risk: high\n    approvals:\n      - {by: dana@acme.example, sha256: b0eadff2fcfe8b2a87ab9c7df42f3e39919a8fe217d66f57462d8f401721264f}\n",
    );
    let diagnostics = lint_of(&repo);
    let typed = diagnostics
        .iter()
        .find(|d| d.code == "typed_approval")
        .expect("a typed_approval error");
    assert!(typed.is_error());
    assert!(
        typed
            .message
            .contains("promptflag approve support_reply@2.0.0 --env <env>"),
        "{}",
        typed.message
    );
}

#[test]
fn a_reviewer_added_to_the_registry_without_an_owner_signature_is_not_a_reviewer() {
    let (_dir, repo) = scratch_repo();
    // mallory, whom the registry does not hold, writes registry 2 adding herself as a reviewer,
    // signs it with her own key, and signs an approval.
    let mallory = promptflag_governance::native::PrivateKey::from_seed([9; 32], "mallory");
    let first = std::fs::read_to_string(repo.join("governance/registry/1.json")).unwrap();
    let mut registry: serde_json::Value = serde_json::from_str(&first).unwrap();
    registry["serial"] = 2.into();
    registry["members"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "mallory@acme.example", "key": mallory.public_line(), "roles": ["reviewer"]}));
    let second = serde_json::to_string_pretty(&registry).unwrap();
    std::fs::write(repo.join("governance/registry/2.json"), &second).unwrap();
    std::fs::write(
        repo.join("governance/registry/2.json.sig"),
        mallory.sign(second.as_bytes()).to_armored(),
    )
    .unwrap();
    let message = promptflag(&[
        "--repo",
        repo.to_str().unwrap(),
        "approve",
        "support_reply@2.0.0",
        "--env",
        "prod",
        "--message-only",
    ]);
    std::fs::write(
        repo.join("approvals/support_reply/2.0.0/prod/mallory@acme.example.sig"),
        mallory.sign(stdout(&message).as_bytes()).to_armored(),
    )
    .unwrap();
    let owner_keys = workspace_root().join("examples/keys/owner_keys");
    let lint = promptflag(&[
        "--repo",
        repo.to_str().unwrap(),
        "--owner-keys",
        owner_keys.to_str().unwrap(),
        "lint",
    ]);
    let text = stdout(&lint);
    assert_eq!(lint.status.code(), Some(1), "{text}");
    assert!(
        text.contains("governance/registry/2.json:1: error[registry_change_unsigned]"),
        "{text}"
    );
    assert!(
        text.contains(
            "approvals/support_reply/2.0.0/prod/mallory@acme.example.sig:1: error[approver_not_reviewer]"
        ),
        "{text}"
    );
    let verify = promptflag(&[
        "--repo",
        repo.to_str().unwrap(),
        "--owner-keys",
        owner_keys.to_str().unwrap(),
        "keys",
        "verify",
    ]);
    assert_eq!(verify.status.code(), Some(1), "{}", stdout(&verify));
    assert!(stdout(&verify).starts_with("registry 1 accepted of 2 file(s)"));
}

#[test]
fn variants_of_one_flag_must_use_the_same_variables() {
    let (_dir, repo) = scratch_repo();
    edit(
        &repo,
        "prompts/support_reply/2.0.0.md",
        "Greet {{customer_name}} by first name.",
        "Greet the customer.",
    );
    assert_error_at(
        &errors_of(&repo),
        "flags/support_prompt.yaml",
        10,
        "variable_mismatch",
    );
}

#[test]
fn malformed_files_never_panic() {
    let cases: &[(&str, &[u8])] = &[
        ("flags/support_prompt.yaml", b""),
        ("flags/support_prompt.yaml", b"- just\n- a list\n"),
        ("flags/support_prompt.yaml", b"kind: prompt\nvariants: 7\nrules: {a: 1}\ndefault: [1]\n"),
        ("flags/support_prompt.yaml", b"kind: [prompt]\nbaseline: {x: 1}\nvariants: {a: [1], b: 2}\nenvironments: [dev]\n"),
        ("flags/support_prompt.yaml", b"rules:\n  - when: 1\n    serve: {split: {treatments: [{variant: x, weight: -5}, 3]}}\n"),
        ("flags/support_prompt.yaml", b"\xff\xfe\x00garbage"),
        ("flags/support_prompt.yaml", b"a: &x [*x]\n"),
        ("flags/support_prompt.yaml", b"a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"),
        ("prompts/support_reply/metadata.yaml", b"versions:\n  1.0.0: [oops]\n  2.0.0: 5\n"),
        ("prompts/support_reply/metadata.yaml", b"model: 3\nvariables: {a: b}\nversions: {}\n"),
        ("prompts/support_reply/1.1.0.md", b"\xc3\x28 not utf-8"),
        ("promptflag.yaml", b"environments: nope\nlint: {max_length: -4, forbidden_phrases: 9}\n"),
        ("promptflag.yaml", b"environments: {prod: {promote_from: prod, require_approvals: maybe}}\n"),
        ("segments/internal_staff.yaml", b"conditions: [{op: in, values: [{nested: true}]}]\n"),
        ("rollouts/support_prompt.yaml", b"stages: [{percent: x}]\nguardrails: [{metric: error_rate, max_regression: 5}]\npromotion: {confidence: 7}\n"),
    ];
    for (file, bytes) in cases {
        let (_dir, repo) = scratch_repo();
        std::fs::write(repo.join(file), bytes).unwrap();
        let output = promptflag(&["--repo", repo.to_str().unwrap(), "lint"]);
        let text = format!("{}{}", stdout(&output), stderr(&output));
        assert!(!text.contains("panicked"), "{file}: {text}");
        assert_eq!(
            output.status.code(),
            Some(1),
            "{file} with {:?} must fail lint:\n{text}",
            String::from_utf8_lossy(bytes)
        );
        for line in stdout(&output).lines().filter(|l| l.contains(": error[")) {
            let location = line.split(": error[").next().unwrap();
            let (path, number) = location.rsplit_once(':').unwrap();
            assert!(
                !path.is_empty() && number.parse::<u32>().unwrap() >= 1,
                "{line}"
            );
        }
    }
}

#[test]
fn a_missing_repository_is_a_usage_error() {
    let output = promptflag(&["--repo", "/nonexistent/prompts", "lint"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("not a directory"));
}

/// Adds a `prompts` layer to the example repo and puts two splits in it, over the given percent
/// ranges: `support_prompt`'s default and `summary_prompt`'s `beta-split` rule (both outside dev,
/// which overrides them).
fn repo_with_layer(support: &str, summary: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, repo) = scratch_repo();
    let config = repo.join("promptflag.yaml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\nlayers:\n  prompts:\n    bucket_by: targetingKey\n    description: prompt experiments that must not share a user\n");
    std::fs::write(&config, text).unwrap();
    edit(
        &repo,
        "flags/support_prompt.yaml",
        "    bucket_by: targetingKey\n    treatments:",
        &format!("    bucket_by: targetingKey\n    layer: {support}\n    treatments:"),
    );
    edit(
        &repo,
        "flags/summary_prompt.yaml",
        "        seed: summary_prompt-beta\n",
        &format!("        seed: summary_prompt-beta\n        layer: {summary}\n"),
    );
    (dir, repo)
}

#[test]
fn splits_in_a_layer_build_into_the_ruleset() {
    let (dir, repo) = repo_with_layer(
        "{name: prompts, range: [0, 50]}",
        "{name: prompts, range: [50, 100]}",
    );
    assert_eq!(errors_of(&repo), Vec::new());
    let out = dir.path().join("out");
    build_repo(&repo, &out, SOURCE);
    let staging: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("rulesets/staging.json")).unwrap())
            .unwrap();
    assert_eq!(staging["layers"]["prompts"]["bucket_by"], "targetingKey");
    assert_eq!(
        staging["flags"]["support_prompt"]["default"]["split"]["layer"],
        serde_json::json!({"name": "prompts", "start": 0, "end": 50000})
    );
    assert_eq!(
        staging["flags"]["summary_prompt"]["rules"][0]["serve"]["split"]["layer"],
        serde_json::json!({"name": "prompts", "start": 50000, "end": 100000})
    );
    // The built ruleset serves through core: a unit is in support_prompt's experiment exactly
    // when its layer slot falls in the first half of the layer.
    let ruleset = promptflag_core::Ruleset::from_json_str(&staging.to_string()).unwrap();
    let mut inside = 0;
    for user in 0..2_000 {
        let context = promptflag_core::Context::new().with_targeting_key(&format!("user-{user}"));
        let bucket = ruleset
            .evaluate("support_prompt", &context)
            .bucket
            .expect("the default split decides");
        let layer_slot = bucket.layer_slot.expect("the split is in a layer");
        assert_eq!(bucket.in_experiment, layer_slot < 50_000, "user-{user}");
        inside += usize::from(bucket.in_experiment);
    }
    assert!(
        (800..1_200).contains(&inside),
        "{inside} of 2000 in the experiment"
    );
}

/// Asserts that lint reported an error with this code in this file (past its first line, so
/// located at the offending field).
fn assert_located_error(repo: &Path, code: &str, file_prefix: &str) {
    let errors = errors_of(repo);
    assert!(
        errors
            .iter()
            .any(|e| e.code == code && e.file.starts_with(file_prefix) && e.line > 1),
        "no {code} in {file_prefix}: {errors:?}"
    );
}

#[test]
fn overlapping_or_unknown_layers_are_located_errors() {
    let (_dir, repo) = repo_with_layer(
        "{name: prompts, range: [0, 50]}",
        "{name: prompts, range: [40, 100]}",
    );
    assert_located_error(&repo, "layer_overlap", "flags/");

    let (_dir, repo) = repo_with_layer(
        "{name: checkout, range: [0, 50]}",
        "{name: prompts, range: [50, 100]}",
    );
    assert_located_error(&repo, "unknown_layer", "flags/support_prompt.yaml");

    let (_dir, repo) = repo_with_layer(
        "{name: prompts, range: [50, 10]}",
        "{name: prompts, range: [50]}",
    );
    assert_located_error(&repo, "invalid_value", "flags/support_prompt.yaml");
    assert_located_error(&repo, "wrong_type", "flags/summary_prompt.yaml");
}
