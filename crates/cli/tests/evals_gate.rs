//! The eval gate end to end: `promptflag evals run` against a local OpenAI-compatible server
//! (started here on 127.0.0.1) and in replay mode, the recorded result per content id, the
//! prod gate (`require_evals`) refusing what has no passing result, and `promptflag hygiene`
//! over a real telemetry store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use support::fake_worker::FakeWorker;
use support::http::{Response, Server};
use support::*;

const TOKEN: &str = "t0ken";

fn cli(repo: &std::path::Path, worker: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--repo", repo.to_str().unwrap()];
    all.extend_from_slice(args);
    promptflag_with_env(
        &all,
        &[
            ("PROMPTFLAG_WORKER_URL", worker),
            ("PROMPTFLAG_ADMIN_TOKEN", TOKEN),
        ],
    )
}

/// A chat-completions server answering the example repository's ticket triage cases, with a
/// priority of the caller's choosing, and recording each request body.
fn triage_server(priority: &'static str) -> (Server, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let record = seen.clone();
    let server = Server::start(move |request| {
        assert_eq!(request.path, "/v1/chat/completions");
        assert_eq!(
            request.headers.get("authorization").map(String::as_str),
            Some("Bearer sk-test")
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let text: String = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap_or_default().to_string())
            .collect();
        record.lock().unwrap().push(body);
        let content = if text.contains("locked out") {
            json!({"summary": "Team locked out", "category": "bug", "priority": priority, "needs_human": true})
        } else if text.contains("export my invoices") {
            json!({"summary": "Invoice export", "category": "how_to", "priority": "low", "needs_human": false})
        } else {
            json!({"summary": "Chargeback threat", "category": "billing", "priority": "high", "needs_human": true})
        };
        Response::json(
            200,
            json!({"model": "gpt-4o-mini", "choices": [{"message": {"role": "assistant", "content": content.to_string()}}],
                   "usage": {"prompt_tokens": 90, "completion_tokens": 30}}),
        )
    });
    (server, seen)
}

fn json_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(output), stderr(output)))
}

#[test]
fn evals_run_calls_the_endpoint_records_outputs_and_a_replay_reproduces_the_result() {
    let (_dir, repo) = scratch_repo();
    std::fs::remove_dir_all(repo.join("evals/results")).unwrap();
    let recordings = repo.join("recorded");
    let (server, seen) = triage_server("urgent");
    let base = format!("{}/v1", server.url);
    let live = promptflag_with_env(
        &[
            "--repo",
            repo.to_str().unwrap(),
            "--json",
            "evals",
            "run",
            "--family",
            "ticket_summary",
            "--version",
            "1.1.0",
            "--record",
            recordings.to_str().unwrap(),
        ],
        &[
            ("PROMPTFLAG_EVAL_BASE_URL", base.as_str()),
            ("PROMPTFLAG_EVAL_API_KEY", "sk-test"),
        ],
    );
    assert_eq!(live.status.code(), Some(0), "{}", stderr(&live));
    let value = json_of(&live);
    let result = &value["results"][0]["result"];
    assert_eq!(result["prompt"], "ticket_summary@1.1.0");
    assert_eq!(result["mode"], "live");
    assert_eq!(result["passed_cases"], 3);
    // The request carried the version's model configuration and the rendered body.
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0]["model"], "gpt-4o-mini");
    assert_eq!(requests[0]["temperature"], 0.0);
    assert_eq!(
        requests[0]["response_format"],
        json!({"type": "json_object"})
    );
    assert_eq!(requests[0]["messages"][0]["role"], "system");
    assert!(
        requests[0]["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("Our whole team is locked out")
    );
    let content_id = result["content_id"].as_str().unwrap().to_string();
    let path = repo.join(format!("evals/results/{content_id}.json"));
    assert_eq!(
        value["results"][0]["path"].as_str().unwrap(),
        path.to_str().unwrap()
    );
    assert!(recordings.join(format!("{content_id}.json")).is_file());
    drop(server);

    // Replaying the recording needs no endpoint and gives the same cases.
    let replay = cli(
        &repo,
        "http://127.0.0.1:9",
        &[
            "--json",
            "evals",
            "run",
            "--family",
            "ticket_summary",
            "--version",
            "1.1.0",
            "--replay",
            recordings.to_str().unwrap(),
        ],
    );
    assert_eq!(replay.status.code(), Some(0), "{}", stderr(&replay));
    let replayed = json_of(&replay);
    assert_eq!(replayed["results"][0]["result"]["mode"], "replay");
    assert_eq!(replayed["results"][0]["result"]["cases"], result["cases"]);

    // A version without a recording is a clear usage error, not a pass.
    let missing = cli(
        &repo,
        "http://127.0.0.1:9",
        &[
            "evals",
            "run",
            "--family",
            "ticket_summary",
            "--version",
            "1.0.0",
            "--replay",
            recordings.to_str().unwrap(),
        ],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("no recording for ticket_summary@1.0.0"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn an_unreachable_endpoint_is_a_remote_failure() {
    let (_dir, repo) = scratch_repo();
    let output = promptflag_with_env(
        &[
            "--repo",
            repo.to_str().unwrap(),
            "--json",
            "evals",
            "run",
            "--family",
            "ticket_summary",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--timeout",
            "5",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(5), "{}", stdout(&output));
    assert_eq!(json_of(&output)["code"], "remote");
}

#[test]
fn the_prod_gate_refuses_a_version_whose_output_breaks_its_schema() {
    let (_dir, repo) = scratch_repo();
    let worker = FakeWorker::start(TOKEN, "prod");
    // The committed results let the example repository into prod.
    for env in ["staging", "prod"] {
        let published = cli(&repo, worker.url(), &["publish", "--env", env]);
        assert_eq!(
            published.status.code(),
            Some(0),
            "{env}: {}",
            stderr(&published)
        );
    }
    // The model now answers the outage case with a priority the schema does not allow.
    let (server, _) = triage_server("critical");
    let base = format!("{}/v1", server.url);
    let run = promptflag_with_env(
        &[
            "--repo",
            repo.to_str().unwrap(),
            "evals",
            "run",
            "--family",
            "ticket_summary",
            "--version",
            "1.1.0",
            "--base-url",
            &base,
        ],
        &[("PROMPTFLAG_EVAL_API_KEY", "sk-test")],
    );
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let text = stdout(&run);
    assert!(
        text.contains("FAIL ticket_summary@1.1.0: 2/3 case(s) passed"),
        "{text}"
    );
    assert!(
        text.contains(
            "outage: schema: the output breaks its schema: /priority: \"critical\" is not one of"
        ),
        "{text}"
    );
    let refused = cli(
        &repo,
        worker.url(),
        &[
            "--json", "publish", "--env", "prod", "--force", "--reason", "try",
        ],
    );
    assert_eq!(refused.status.code(), Some(4), "{}", stdout(&refused));
    let error = json_of(&refused);
    assert_eq!(error["code"], "refused");
    let message = error["error"].as_str().unwrap();
    assert!(
        message.contains("ticket_summary@1.1.0 (content id "),
        "{message}"
    );
    assert!(
        message
            .contains("failed its evals (2 of 3 case(s) passed), and prod requires passing evals"),
        "{message}"
    );
    let problems = error["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["code"], "eval_failed");
    assert!(
        problems[0]["path"]
            .as_str()
            .unwrap()
            .starts_with("prompts.")
    );
    assert!(
        problems[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("ticket_summary@1.1.0 (content id ")
    );

    // The committed recordings pass again, and prod takes the content.
    let recordings = repo.join("evals/recordings");
    let replay = cli(
        &repo,
        worker.url(),
        &["evals", "run", "--replay", recordings.to_str().unwrap()],
    );
    assert_eq!(replay.status.code(), Some(0), "{}", stderr(&replay));
    let again = cli(
        &repo,
        worker.url(),
        &["publish", "--env", "prod", "--dry-run"],
    );
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
}

#[test]
fn an_edited_result_or_an_edited_body_has_no_passing_result() {
    let (_dir, repo) = scratch_repo();
    let worker = FakeWorker::start(TOKEN, "prod");
    let staging = cli(&repo, worker.url(), &["publish", "--env", "staging"]);
    assert_eq!(staging.status.code(), Some(0), "{}", stderr(&staging));
    // Hand-editing a failing number into a result breaks its seal.
    let results = repo.join("evals/results");
    let first = std::fs::read_dir(&results)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&first).unwrap();
    std::fs::write(
        &first,
        text.replacen("\"output_tokens\": ", "\"output_tokens\": 1", 1),
    )
    .unwrap();
    let refused = cli(
        &repo,
        worker.url(),
        &["publish", "--env", "prod", "--dry-run"],
    );
    assert_eq!(refused.status.code(), Some(4));
    assert!(
        stderr(&refused).contains("result_hash does not match"),
        "{}",
        stderr(&refused)
    );
    std::fs::write(&first, text).unwrap();

    // A changed body is a new content id, with no result yet.
    edit(
        &repo,
        "prompts/support_reply/1.1.0.md",
        "would be proud",
        "would gladly",
    );
    let staging = cli(&repo, worker.url(), &["publish", "--env", "staging"]);
    assert_eq!(staging.status.code(), Some(0), "{}", stderr(&staging));
    let refused = cli(&repo, worker.url(), &["publish", "--env", "prod"]);
    assert_eq!(refused.status.code(), Some(4));
    assert!(
        stderr(&refused).contains("support_reply@1.1.0 (content id ")
            && stderr(&refused).contains("has no eval result (run `promptflag evals run`)"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn hygiene_lists_overdue_reviews_passed_deletion_dates_and_unexposed_flags() {
    use promptflag_telemetry::collector::db::{self, Synchronous};
    use promptflag_telemetry::collector::event::{ExposureRecord, Record};

    let (_dir, repo) = scratch_repo();
    // Without telemetry the exposure check is skipped and says so.
    let output = promptflag(&[
        "--repo",
        repo.to_str().unwrap(),
        "hygiene",
        "--today",
        "2030-05-01",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("exposures not checked"), "{text}");
    assert!(text.contains("prompt ticket_summary (prompts/ticket_summary/metadata.yaml): review_overdue\n  owner support-platform@acme.example; review_by 2030-03-31\n"), "{text}");
    assert!(text.ends_with("1 stale prompt(s) and flag(s)\n"), "{text}");

    // support_prompt was served ten days ago; summary_prompt and ticket_summary never were.
    let telemetry = repo.join(".promptflag/telemetry.sqlite3");
    let mut connection = db::open(&telemetry, Synchronous::Normal).unwrap();
    let day_ms = 86_400_000_i64;
    let today = promptflag_authoring::hygiene::parse_day("2030-10-01").unwrap();
    let exposure = Record::Exposure(ExposureRecord {
        key: String::from("e1"),
        timestamp_ms: (today - 10) * day_ms,
        environment: Some(String::from("prod")),
        flag_key: String::from("support_prompt"),
        variant: String::from("stable"),
        prompt_hash: Some(String::from(
            "f8d0b847b313607dffbbfb2b26331b7852d04c94852014559a374ecef79b642f",
        )),
        revision: Some(1),
        unit: Some(String::from("user-1")),
        reason: Some(String::from("SPLIT")),
        prompt_id: Some(String::from("support_reply")),
        prompt_version: Some(String::from("1.0.0")),
    });
    let old = Record::Exposure(ExposureRecord {
        key: String::from("e2"),
        timestamp_ms: (today - 90) * day_ms,
        flag_key: String::from("summary_prompt"),
        variant: String::from("v1"),
        ..match &exposure {
            Record::Exposure(e) => e.clone(),
            Record::Call(_) => unreachable!(),
        }
    });
    db::insert_batches(&mut connection, &[&[exposure, old]]).unwrap();
    drop(connection);
    let output = promptflag(&[
        "--repo",
        repo.to_str().unwrap(),
        "--json",
        "audit",
        "stale",
        "--days",
        "60",
        "--today",
        "2030-10-01",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let value = json_of(&output);
    assert_eq!(value["exposures_checked"], true);
    let stale: Vec<(String, Vec<String>)> = value["stale"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                format!(
                    "{} {}",
                    f["kind"].as_str().unwrap(),
                    f["name"].as_str().unwrap()
                ),
                f["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        stale,
        vec![
            (
                String::from("prompt support_reply"),
                vec![String::from("review_overdue")]
            ),
            (
                String::from("prompt ticket_summary"),
                vec![String::from("review_overdue"), String::from("no_exposure")]
            ),
            (
                String::from("flag summary_prompt"),
                vec![
                    String::from("past_delete_after"),
                    String::from("no_exposure")
                ]
            ),
        ]
    );
    assert_eq!(value["stale"][2]["owner"], "triage-team@acme.example");
    // A window that reaches back 90 days sees the summary_prompt exposure.
    let output = promptflag(&[
        "--repo",
        repo.to_str().unwrap(),
        "--json",
        "hygiene",
        "--since",
        "100d",
        "--today",
        "2030-10-01",
    ]);
    let value = json_of(&output);
    assert_eq!(value["stale"][2]["reasons"], json!(["past_delete_after"]));
    assert_eq!(value["stale"][2]["exposures"], 1);
}

#[test]
fn lint_checks_eval_suites_and_hygiene_dates() {
    let (_dir, repo) = scratch_repo();
    std::fs::create_dir_all(repo.join("evals/ghost")).unwrap();
    std::fs::write(repo.join("evals/ghost/eval.yaml"), "cases: [{id: a}]\n").unwrap();
    edit(
        &repo,
        "evals/ticket_summary/eval.yaml",
        "max_output_tokens: 200",
        "max_output_token: 200",
    );
    edit(
        &repo,
        "evals/support_reply/eval.yaml",
        "customer_name: Ana",
        "customer_name: Ana\n      locale: pt",
    );
    edit(
        &repo,
        "prompts/support_reply/metadata.yaml",
        "review_by: \"2030-06-30\"",
        "review_by: \"2020-01-31\"",
    );
    edit(
        &repo,
        "flags/summary_prompt.yaml",
        "delete_after: \"2030-09-30\"",
        "delete_after: next quarter",
    );
    let output = promptflag(&["--repo", repo.to_str().unwrap(), "lint"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    for expected in [
        "evals/ghost/eval.yaml:1: error[unknown_family]: evals/ghost/ names no prompt family",
        "evals/ticket_summary/eval.yaml:1: error[bad_eval_suite]: evals/ticket_summary/eval.yaml: unknown field `max_output_token`",
        "evals/support_reply/eval.yaml:1: warning[unknown_variable]: case \"password-reset\" sets \"locale\"",
        "prompts/support_reply/metadata.yaml:41: warning[review_overdue]: `review_by: 2020-01-31` has passed",
        "flags/summary_prompt.yaml:31: error[invalid_value]: `delete_after` must be a date YYYY-MM-DD, not \"next quarter\"",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
