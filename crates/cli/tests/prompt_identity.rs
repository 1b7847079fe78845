//! Prompt identity: a version is its body plus its model configuration. The same body on two
//! models builds into two versions with two content ids, a flag serves them as two variants,
//! each with its own model; two versions with the same body and configuration are a lint error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use promptflag_authoring::diagnostic::Diagnostic;
use promptflag_authoring::lint;
use promptflag_core::{Context, Ruleset};
use support::*;

/// Adds `support_reply@1.1.1` with 1.1.0's body and the given `model:` block, and serves it as
/// the `claude` variant to internal staff.
fn add_version_on_another_model(repo: &Path, model_block: &str) {
    let body = std::fs::read(repo.join("prompts/support_reply/1.1.0.md")).unwrap();
    std::fs::write(repo.join("prompts/support_reply/1.1.1.md"), body).unwrap();
    let metadata = repo.join("prompts/support_reply/metadata.yaml");
    // The new version goes first under `versions:`, whatever follows the list in the file.
    let text = std::fs::read_to_string(&metadata).unwrap().replacen(
        "versions:\n",
        &format!(
            "versions:\n  \"1.1.1\":\n    author: alice@acme.example\n    reviewers: [bob@acme.example]\n    risk: low\n    status: canary\n{model_block}"
        ),
        1,
    );
    std::fs::write(&metadata, text).unwrap();
    edit(
        repo,
        "flags/support_prompt.yaml",
        "  concise:\n    prompt: support_reply@2.0.0\n",
        "  concise:\n    prompt: support_reply@2.0.0\n  claude:\n    prompt: support_reply@1.1.1\n",
    );
    edit(
        repo,
        "flags/support_prompt.yaml",
        "    serve:\n      variant: concise\n",
        "    serve:\n      variant: claude\n",
    );
}

fn errors(repo: &Path) -> Vec<Diagnostic> {
    lint::check(repo)
        .unwrap()
        .1
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect()
}

#[test]
fn the_same_body_on_two_models_is_two_variants_each_served_with_its_own_model() {
    let (dir, repo) = scratch_repo();
    add_version_on_another_model(&repo, "    model:\n      name: claude-sonnet-4\n");
    assert_eq!(errors(&repo), Vec::<Diagnostic>::new());
    let out = dir.path().join("out");
    build_repo(&repo, &out, "0123456789abcdef0123456789abcdef01234567");
    let text = std::fs::read_to_string(out.join("rulesets/prod.json")).unwrap();
    let ruleset = Ruleset::from_json_str(&text).unwrap();

    // Everyone outside internal staff on the holdout rule keeps the baseline on its own model.
    let outside = Context::from_json_str(
        r#"{"targetingKey": "u-1", "plan": "enterprise", "region": "eu-west"}"#,
    )
    .unwrap();
    let stable = ruleset.resolve_prompt("support_prompt", &outside);
    assert_eq!(stable.variant, Some("stable"));
    let stable = stable.prompt.unwrap();
    let staff =
        Context::from_json_str(r#"{"targetingKey": "u-2", "email": "dana@acme.example"}"#).unwrap();
    let claude = ruleset.resolve_prompt("support_prompt", &staff);
    assert_eq!(claude.variant, Some("claude"), "{claude:?}");
    let claude = claude.prompt.unwrap();

    assert_eq!(stable.hash, claude.hash, "one body, stored once");
    assert_ne!(stable.content_id, claude.content_id);
    assert_eq!(
        (stable.version.as_str(), stable.model.as_str()),
        ("1.1.0", "gpt-4o-mini")
    );
    assert_eq!(
        (claude.version.as_str(), claude.model.as_str()),
        ("1.1.1", "claude-sonnet-4")
    );
    // The body is written once, under its hash, and the manifest lists both versions.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["prompts"][&claude.content_id]["version"], "1.1.1");
    assert_eq!(manifest["prompts"][&stable.content_id]["version"], "1.1.0");
    assert!(out.join("prompts").join(&claude.hash).is_file());
}

#[test]
fn two_versions_with_the_same_body_and_configuration_are_a_lint_error() {
    let (_dir, repo) = scratch_repo();
    add_version_on_another_model(&repo, "");
    let found = errors(&repo);
    assert!(
        found.iter().any(|d| d.code == "duplicate_content"
            && d.file == "prompts/support_reply/metadata.yaml"
            && d.message.contains("support_reply@1.1.1")
            && d.message.contains("support_reply@1.1.0")),
        "{found:#?}"
    );
}

#[test]
fn a_parameter_alone_makes_a_new_version() {
    let (_dir, repo) = scratch_repo();
    add_version_on_another_model(
        &repo,
        "    model:\n      parameters:\n        temperature: 0.9\n",
    );
    assert_eq!(errors(&repo), Vec::<Diagnostic>::new());
}
