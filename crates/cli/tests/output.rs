//! What the binary prints for people and for machines: `--json` failures are JSON on stdout
//! with a stable code, argument errors included; help lists a command's own options before the
//! global ones; text output never shows Rust debug values.

mod support;

use serde_json::Value;
use support::*;

#[test]
fn an_argument_error_with_json_is_a_json_object_on_stdout() {
    let output = promptflag(&["--json", "kill"]);
    assert_eq!(output.status.code(), Some(2));
    let value: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {:?}", stdout(&output)));
    assert_eq!(value["ok"], false);
    assert_eq!(value["code"], "usage");
    assert_eq!(value["exit_code"], 2);
    assert!(
        value["error"]
            .as_str()
            .unwrap()
            .contains("--env <ENVIRONMENT>"),
        "{value}"
    );
}

#[test]
fn a_command_failure_with_json_carries_the_stable_code() {
    let dir = tempfile::tempdir().unwrap();
    let output = promptflag(&["--json", "--repo", dir.path().to_str().unwrap(), "lint"]);
    assert_ne!(output.status.code(), Some(0));
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["ok"], false);
    let code = value["exit_code"].as_i64().unwrap();
    let name = value["code"].as_str().unwrap();
    assert_eq!(
        (code, name),
        match code {
            1 => (1, "problems"),
            _ => (2, "usage"),
        }
    );
}

#[test]
fn help_lists_the_commands_own_options_before_the_global_ones() {
    let output = promptflag(&["kill", "--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = stdout(&output);
    let own = help.find("--env <ENVIRONMENT>").unwrap();
    let global_heading = help.find("Global options:").unwrap();
    let global = help.find("--audit-db").unwrap();
    assert!(own < global_heading && global_heading < global, "{help}");
}

#[test]
fn audit_list_prints_revisions_as_numbers_not_debug_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite3");
    let mut audit = promptflag_release::audit::AuditLog::open(&db).unwrap();
    audit
        .append(promptflag_release::audit::NewEntry {
            action: promptflag_release::audit::Action::Rollback,
            environment: String::from("dev"),
            actor: String::from("dana"),
            reason: String::from("bad canary"),
            revision: Some(2),
            previous_revision: Some(3),
            content_hash: None,
            ruleset_hash: None,
            summary: Value::Null,
        })
        .unwrap();
    let output = promptflag(&["--audit-db", db.to_str().unwrap(), "audit", "list"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("r2 (from 3)"), "{text}");
    assert!(!text.contains("Some("), "{text}");
}

#[test]
fn rollout_start_with_no_loop_running_exits_non_zero_with_the_reason() {
    let (_dir, repo) = scratch_repo();
    let output = promptflag(&[
        "--json",
        "--repo",
        repo.to_str().unwrap(),
        "rollout",
        "start",
        "support_prompt",
        "--wait",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["ok"], false);
    assert_eq!(value["code"], "remote");
    assert_eq!(value["queued"], true);
    assert!(
        value["state_db"]
            .as_str()
            .unwrap()
            .ends_with(".promptflag/rollouts.sqlite3"),
        "{value}"
    );
}

#[test]
fn a_rejected_ruleset_with_json_lists_each_problem_with_path_and_code() {
    let root = workspace_root();
    let output = promptflag(&[
        "--json",
        "eval",
        "support",
        "--ruleset",
        root.join("examples/rejected-ruleset.json")
            .to_str()
            .unwrap(),
        "--context",
        "{}",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["code"], "usage");
    let problems = value["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{value}");
    assert_eq!(
        problems[0]["path"],
        "flags.support.rules[0].serve.split.treatments[0].weight"
    );
    assert!(
        problems
            .iter()
            .all(|p| p["code"].as_str().is_some_and(|c| !c.is_empty()))
    );
    assert!(problems.iter().all(|p| p["message"].is_string()));
}
