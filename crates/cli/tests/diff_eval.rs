//! `promptflag diff` between two builds and between git revisions, and `promptflag eval`'s
//! explanations (golden outputs, re-blessed with `UPDATE_EXPECT=1`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use support::*;

const SOURCE: &str = "1111111111111111111111111111111111111111";

fn build(repo: &std::path::Path, out: &std::path::Path) {
    build_repo(repo, out, SOURCE);
}

fn change_the_repo(repo: &std::path::Path) {
    edit(
        repo,
        "flags/support_prompt.yaml",
        "        percent: 5\n",
        "        percent: 12.5\n",
    );
    edit(
        repo,
        "flags/summary_prompt.yaml",
        "        seed: summary_prompt-beta\n",
        "        seed: summary_prompt-beta-2\n",
    );
    edit(
        repo,
        "flags/summary_prompt.yaml",
        "  priority_rules: ticket_summary@1.1.0\n",
        "  priority_rules: ticket_summary@1.1.0\n  v1_again: ticket_summary@1.0.0\n",
    );
    edit(
        repo,
        "prompts/ticket_summary/1.1.0.md",
        "Quote the customer's own words in `evidence` (at most two short quotes).",
        "Quote the customer's own words in `evidence` (at most two short quotes, each under\n20 words).",
    );
}

#[test]
fn diff_between_two_builds_shows_weights_rules_bodies_and_tokens() {
    let (dir, repo) = scratch_repo();
    let old = dir.path().join("old");
    let new = dir.path().join("new");
    build(&repo, &old);
    change_the_repo(&repo);
    build(&repo, &new);
    let output = promptflag(&[
        "--repo",
        repo.to_str().unwrap(),
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--env",
        "prod",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(
            "default: split(concise 5%) by=targetingKey → split(concise 12.5%) by=targetingKey"
        ),
        "{text}"
    );
    assert!(text.contains("+20 words)."), "{text}");
    expect_golden("diff-builds.txt", &text);

    let json = promptflag(&[
        "--repo",
        repo.to_str().unwrap(),
        "--json",
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
    ]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let envs = value["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 3);
    let prod = envs.iter().find(|e| e["environment"] == "prod").unwrap();
    assert!(
        prod["token_delta"].as_i64().unwrap() > 0,
        "the body grew: {prod}"
    );

    let same = promptflag(&[
        "--repo",
        repo.to_str().unwrap(),
        "diff",
        new.to_str().unwrap(),
        new.to_str().unwrap(),
    ]);
    assert!(stdout(&same).contains("no changes"));
}

fn git(repo: &std::path::Path, args: &[&str]) {
    let status = Command::new("git")
        .args([
            "-c",
            "user.email=t@example.com",
            "-c",
            "user.name=t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(repo)
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

#[test]
fn diff_between_git_revisions_and_the_working_tree() {
    let (_dir, repo) = scratch_repo();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    change_the_repo(&repo);
    let output = promptflag(&[
        "--repo",
        repo.to_str().unwrap(),
        "diff",
        "HEAD",
        "--env",
        "dev",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("flag summary_prompt (changed)"), "{text}");
    assert!(text.contains("variant v1_again added"), "{text}");
    git(&repo, &["commit", "-q", "-am", "second"]);
    let between = promptflag(&[
        "--repo",
        repo.to_str().unwrap(),
        "diff",
        "HEAD~1",
        "HEAD",
        "--env",
        "dev",
    ]);
    assert_eq!(between.status.code(), Some(0), "{}", stderr(&between));
    assert_eq!(stdout(&between), text, "HEAD~1..HEAD is the same change");
    let bad = promptflag(&["--repo", repo.to_str().unwrap(), "diff", "no-such-revision"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn eval_explains_rules_slots_and_lanes() {
    let repo = example_repo();
    let repo = repo.to_str().unwrap();
    let mut text = String::new();
    for (flag, env, context) in [
        (
            "support_prompt",
            "prod",
            r#"{"targetingKey": "user-7", "plan": "pro"}"#,
        ),
        (
            "support_prompt",
            "prod",
            r#"{"targetingKey": "user-7", "email": "Zed@ACME.example"}"#,
        ),
        (
            "support_prompt",
            "prod",
            r#"{"targetingKey": "user-7", "plan": "enterprise", "region": "eu-west"}"#,
        ),
        (
            "summary_prompt",
            "prod",
            r#"{"targetingKey": "user-1001", "beta_opt_in": true, "plan": "pro", "app_version": "3.4.1"}"#,
        ),
        ("summary_prompt", "dev", r#"{"plan": "pro"}"#),
    ] {
        let output = promptflag(&[
            "--repo",
            repo,
            "eval",
            flag,
            "--env",
            env,
            "--context",
            context,
            "--now",
            "2026-01-01T00:00:00Z",
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        text.push_str(&format!(
            "$ eval {flag} --env {env} --context {context}\n{}\n",
            stdout(&output)
        ));
    }
    expect_golden("eval.txt", &text);
    let json = promptflag(&[
        "--repo",
        repo,
        "--json",
        "eval",
        "support_prompt",
        "--env",
        "prod",
        "--context",
        r#"{"targetingKey": "user-7"}"#,
    ]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["eval"]["evaluation"]["reason"], "SPLIT");
    assert!(
        value["eval"]["evaluation"]["bucket"]["slot"]
            .as_u64()
            .unwrap()
            < 100_000
    );
    let bad = promptflag(&[
        "--repo",
        repo,
        "eval",
        "support_prompt",
        "--env",
        "prod",
        "--context",
        "[1]",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn eval_of_a_flag_that_does_not_exist_is_an_error_not_the_baseline() {
    let repo = support::example_repo();
    let repo = repo.to_str().unwrap();
    let output = promptflag(&[
        "--repo",
        repo,
        "eval",
        "no_such_flag",
        "--env",
        "prod",
        "--context",
        r#"{"targetingKey": "u"}"#,
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let message = stderr(&output);
    assert!(
        message.contains(r#"no flag "no_such_flag" in the prod ruleset"#),
        "{message}"
    );
    assert!(message.contains("support_prompt"), "{message}");
    assert!(stdout(&output).is_empty());
}
