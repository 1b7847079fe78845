//! The CI/CD recipe (`docs/ci.md`) run as written: the steps of the example repository's
//! workflow (`examples/prompts-repo/.github/workflows/promptflag.yml`) are read from the file and
//! run in order with `sh`, in a git checkout of the example repository, with this build's
//! `promptflag` on `PATH`. The pull-request job runs as is; the merge job publishes to a fake of
//! the Worker's admin API. The step that installs the companion is the only one skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use promptflag_harness::{Locations, WorkerOptions, WorkerProcess};
use serde_json::Value;
use support::*;

const WORKFLOW: &str = ".github/workflows/promptflag.yml";

/// The `run` steps of a job, with their names, as the workflow file lists them.
fn steps(repo: &Path, job: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo.join(WORKFLOW)).unwrap();
    let node = promptflag_authoring::yaml::parse(&text).unwrap();
    let workflow = promptflag_authoring::yaml::to_json(&node.value);
    workflow["jobs"][job]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|step| {
            let run = step["run"].as_str()?;
            Some((
                step["name"].as_str().unwrap_or(run).to_string(),
                run.to_string(),
            ))
        })
        .filter(|(_, run)| !run.starts_with("cargo install"))
        .collect()
}

fn git(repo: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_AUTHOR_NAME", "ci")
        .env("GIT_AUTHOR_EMAIL", "ci@acme.example")
        .env("GIT_COMMITTER_NAME", "ci")
        .env("GIT_COMMITTER_EMAIL", "ci@acme.example")
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {}", stderr(&output));
    stdout(&output).trim().to_string()
}

/// A git checkout of the example repository, as `actions/checkout` gives one.
fn checkout() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let (dir, repo) = scratch_repo();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "prompts"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    (dir, repo, head)
}

/// Runs one step with `sh -c` in the checkout; `env` adds the job's variables.
fn run_step(repo: &Path, run: &str, env: &[(&str, String)]) -> std::process::Output {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_promptflag"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("sh");
    command
        .args(["-c", run])
        .current_dir(repo)
        .env("PATH", path)
        .env("PROMPTFLAG_ACTOR", "ci@acme.example");
    for (name, _) in std::env::vars() {
        if name.starts_with("PROMPTFLAG_") && name != "PROMPTFLAG_ACTOR" {
            command.env_remove(name);
        }
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

#[test]
fn the_pull_request_steps_pass_on_the_example_repository_and_block_a_broken_output() {
    let (_dir, repo, head) = checkout();
    let env = [("BASE_SHA", head)];
    let steps = steps(&repo, "check");
    let names: Vec<&str> = steps.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Lint",
            "Evals, replayed from the recorded outputs",
            "The committed eval results are current",
            "What changes against the base branch",
            "Stale prompts and flags (reported, not blocking)"
        ]
    );
    for (name, run) in &steps {
        let output = run_step(&repo, run, &env);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name}: {run}\n{}{}",
            stdout(&output),
            stderr(&output)
        );
    }

    // A recorded output that breaks the triage schema fails the evals step, and a result
    // committed by hand without running them fails the freshness step.
    let recordings = repo.join("evals/recordings");
    let recording = std::fs::read_dir(&recordings)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            std::fs::read_to_string(path)
                .unwrap()
                .contains("\"outage\"")
        })
        .unwrap();
    let text = std::fs::read_to_string(&recording).unwrap();
    std::fs::write(
        &recording,
        text.replacen(
            "\\\"priority\\\": \\\"urgent\\\"",
            "\\\"priority\\\": \\\"critical\\\"",
            1,
        ),
    )
    .unwrap();
    assert_ne!(std::fs::read_to_string(&recording).unwrap(), text);
    let evals = &steps[1].1;
    let output = run_step(&repo, evals, &env);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("FAIL ticket_summary@"),
        "{}",
        stdout(&output)
    );
    let freshness = run_step(&repo, &steps[2].1, &env);
    assert_eq!(
        freshness.status.code(),
        Some(1),
        "the results changed: {}",
        stdout(&freshness)
    );
}

#[test]
fn the_merge_steps_build_publish_staging_and_prod_and_queue_the_canary() {
    let (dir, repo, head) = checkout();
    // The real Worker on workerd: the audit step reads its admin authority's log.
    let token = "ci-recipe-admin-token-0123456789abcdef";
    let locations = Locations::from_env().unwrap_or_else(|e| panic!("{e}"));
    let options = WorkerOptions {
        admin_token: Some(token.to_string()),
        environment: String::from("prod"),
        ..WorkerOptions::default()
    };
    let worker = WorkerProcess::start(&locations, &options).unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().join("state");
    let env = [
        ("GITHUB_SHA", head.clone()),
        ("PROMPTFLAG_WORKER_URL", worker.url().to_string()),
        ("PROMPTFLAG_ADMIN_TOKEN", token.to_string()),
        (
            "PROMPTFLAG_AUDIT_DB",
            state.join("audit.sqlite3").display().to_string(),
        ),
        (
            "PROMPTFLAG_STATE_DB",
            state.join("rollouts.sqlite3").display().to_string(),
        ),
    ];
    let steps = steps(&repo, "release");
    assert_eq!(steps.len(), 5, "{steps:?}");
    let mut outputs = Vec::new();
    for (name, run) in &steps {
        let output = run_step(&repo, run, &env);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name}: {run}\n{}{}",
            stdout(&output),
            stderr(&output)
        );
        outputs.push(stdout(&output));
    }
    assert!(
        outputs[1].starts_with("published staging revision 1"),
        "{}",
        outputs[1]
    );
    assert!(
        outputs[2].starts_with("published prod revision 1"),
        "{}",
        outputs[2]
    );
    assert!(
        outputs[4].contains("support_prompt: command 1 queued"),
        "{}",
        outputs[4]
    );
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("build/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["source"], head);
}
