//! Signed rulesets end to end, against the real Worker (the built `worker/build/` in Miniflare):
//! `promptflag keys ruleset-signing` makes the key pair, the admin authority signs with
//! `RULESET_SIGNING_KEY` what `promptflag publish`, `kill` and `rollback` make live, and the
//! Worker (`RULESET_PUBLIC_KEY`) and the native client verify it. An older revision's pointer
//! and signature written back into KV directly, as someone with write access to the namespace
//! could, are refused by the Worker (which keeps serving the last good revision and says why on
//! `/healthz`) and, behind a Worker that does not verify, by the native client.
//!
//! These tests need Node 22 and the built Worker; `cargo xtask test` provides both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use promptflag_client::{Client, ClientConfig, ClientError, RefreshOutcome};
use promptflag_contracts::signing::parse_signature;
use promptflag_core::Context;
use promptflag_harness::{Locations, TEST_SERVER_KEY, WorkerOptions, WorkerProcess};
use serde_json::Value;
use support::*;

const TOKEN: &str = "signing-e2e-admin-token-0123456789abcdef";

/// The key pair `promptflag keys ruleset-signing` prints: (signing seed, public key), hex.
fn key_pair() -> (String, String) {
    let output = promptflag(&["--json", "keys", "ruleset-signing"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let keys: Value = serde_json::from_slice(&output.stdout).unwrap();
    let text = promptflag(&["keys", "ruleset-signing"]);
    let lines: Vec<String> = stdout(&text).lines().map(str::to_string).collect();
    assert!(
        lines[0].starts_with("RULESET_SIGNING_KEY=") && lines[1].starts_with("RULESET_PUBLIC_KEY="),
        "{lines:?}"
    );
    (
        keys["ruleset_signing_key"].as_str().unwrap().to_string(),
        keys["ruleset_public_key"].as_str().unwrap().to_string(),
    )
}

/// A Worker whose authority signs with `signing_key`, verifying with `public_key` when given.
fn start(signing_key: &str, public_key: Option<&str>) -> WorkerProcess {
    let locations = Locations::from_env().unwrap_or_else(|e| panic!("{e}"));
    let options = WorkerOptions {
        admin_token: Some(TOKEN.to_string()),
        ruleset_signing_key: Some(signing_key.to_string()),
        ruleset_public_key: public_key.map(str::to_string),
        ..WorkerOptions::default()
    };
    WorkerProcess::start(&locations, &options).unwrap_or_else(|e| panic!("{e}"))
}

fn cli(repo: &std::path::Path, worker: &WorkerProcess, args: &[&str]) {
    let mut all = vec!["--repo", repo.to_str().unwrap()];
    all.extend_from_slice(args);
    let output = promptflag_with_env(
        &all,
        &[
            ("PROMPTFLAG_WORKER_URL", worker.url()),
            ("PROMPTFLAG_ADMIN_TOKEN", TOKEN),
            ("PROMPTFLAG_READ_KEY", TEST_SERVER_KEY),
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}: {}{}",
        stdout(&output),
        stderr(&output)
    );
}

fn get(url: &str) -> (u16, Option<String>, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(url)
        .header("Authorization", &format!("Bearer {TEST_SERVER_KEY}"))
        .call()
        .unwrap();
    let signature = response
        .headers()
        .get("x-promptflag-signature")
        .map(|value| value.to_str().unwrap().to_string());
    let text = response.body_mut().read_to_string().unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    (response.status().as_u16(), signature, body)
}

/// Polls `path` until `check` holds for its answer (at most 30 s: a bound against a hang, not a
/// timing check), and returns the answer's body.
fn until(
    worker: &WorkerProcess,
    path: &str,
    check: impl Fn(u16, Option<&str>, &Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, signature, body) = get(&format!("{}{path}", worker.url()));
        if check(status, signature.as_deref(), &body) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting; {path} answers {status} {signature:?} {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `/healthz` until `check` holds, and returns it.
fn health_until(worker: &WorkerProcess, check: impl Fn(&Value) -> bool) -> Value {
    until(worker, "/healthz", |_, _, body| check(body))
}

/// Waits until the Worker serves `revision` from KV with the authority's signature for it at
/// `epoch` on `/v1/ruleset`. A rollback to the revision already live changes only the
/// signature, which an isolate picks up when its cached ruleset is next checked, so the
/// signature is polled too.
fn serves_signed(worker: &WorkerProcess, revision: u64, epoch: u64) {
    health_until(worker, |body| {
        body["revision"] == revision && body["ruleset_source"] == "kv"
    });
    until(worker, "/v1/ruleset", |status, signature, body| {
        assert_eq!((status, body["revision"].as_u64()), (200, Some(revision)));
        let signature = parse_signature(signature.expect("the signature header")).unwrap();
        signature.epoch == epoch
    });
}

/// Waits until the Worker serves `revision` signed at `epoch`, then checks the native client
/// takes it on a refresh and serves `expected` from it.
fn client_takes(
    worker: &WorkerProcess,
    client: &Client,
    revision: u64,
    epoch: u64,
    expected: &str,
) {
    serves_signed(worker, revision, epoch);
    assert_eq!(
        client.refresh_now().unwrap(),
        RefreshOutcome::Updated { revision }
    );
    assert_eq!(variant(client).as_deref(), Some(expected));
}

fn client(worker: &WorkerProcess, public_key: &str) -> Client {
    let mut key = [0u8; 32];
    for (index, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&public_key[2 * index..2 * index + 2], 16).unwrap();
    }
    let mut config = ClientConfig::new(worker.url())
        .with_read_key(TEST_SERVER_KEY)
        .with_ruleset_public_key(key);
    config.refresh_interval = Duration::from_secs(3600);
    config.warm_bodies = false;
    Client::start(config)
}

fn staff() -> Context {
    Context::new()
        .with_targeting_key("user-9")
        .with("email", "kim@acme.example")
}

fn variant(client: &Client) -> Option<String> {
    client.resolve_prompt("support_prompt", &staff()).variant
}

fn refused(outcome: Result<RefreshOutcome, ClientError>, reason: &str) {
    match outcome {
        Err(ClientError::Signature(message)) => {
            assert!(
                message.contains(reason),
                "{message:?} does not say {reason:?}"
            )
        }
        other => panic!("expected a refused signature ({reason}), got {other:?}"),
    }
}

#[test]
fn the_authority_signs_publish_kill_and_rollback_and_the_worker_refuses_a_replay() {
    let (signing_key, public_key) = key_pair();
    let mut worker = start(&signing_key, Some(&public_key));
    let (_dir, repo) = scratch_repo();

    cli(&repo, &worker, &["publish", "--env", "dev"]);
    serves_signed(&worker, 1, 0);
    let client = client(&worker, &public_key);
    assert_eq!(client.revision(), Some(1));
    assert_eq!(variant(&client).as_deref(), Some("concise"));

    cli(
        &repo,
        &worker,
        &[
            "kill",
            "support_prompt",
            "--env",
            "dev",
            "--reason",
            "signing e2e",
        ],
    );
    client_takes(&worker, &client, 2, 0, "stable");

    cli(
        &repo,
        &worker,
        &["rollback", "--env", "dev", "--reason", "signing e2e"],
    );
    client_takes(&worker, &client, 1, 1, "concise");

    // Revision 2's pointer back in KV, with the signature it still has there (epoch 0).
    worker.kv_put("ruleset:dev", "2").unwrap();
    let refused = health_until(&worker, |body| body["ruleset_source"] == "last-known-good");
    assert_eq!(refused["revision"], 1);
    let reason = refused["last_refresh_error"].as_str().unwrap();
    assert!(
        reason.contains("revision 2 is signed for epoch 0, below the accepted epoch 1"),
        "{reason}"
    );
    let (status, _, body) = get(&format!("{}/v1/ruleset", worker.url()));
    assert_eq!((status, body["revision"].as_u64()), (200, Some(1)));
    client.refresh_now().unwrap();
    assert_eq!(client.revision(), Some(1));
    assert_eq!(variant(&client).as_deref(), Some("concise"));
}

#[test]
fn behind_a_worker_that_does_not_verify_the_native_client_refuses_a_replay() {
    let (signing_key, public_key) = key_pair();
    // The authority signs; this Worker passes the signatures on unchecked.
    let mut worker = start(&signing_key, None);
    let (_dir, repo) = scratch_repo();
    cli(&repo, &worker, &["publish", "--env", "dev"]);
    cli(
        &repo,
        &worker,
        &[
            "kill",
            "support_prompt",
            "--env",
            "dev",
            "--reason",
            "signing e2e",
        ],
    );
    let client = client(&worker, &public_key);
    assert_eq!(client.revision(), Some(2));

    // Revision 1's pointer and its own signature (epoch 0) written back: the Worker serves them.
    let first = worker
        .kv_get("signature:dev:1")
        .unwrap()
        .expect("revision 1 is signed");
    assert_eq!(parse_signature(&first).unwrap().epoch, 0);
    worker.kv_put("ruleset:dev", "1").unwrap();
    health_until(&worker, |body| body["revision"] == 1);
    refused(
        client.refresh_now(),
        "goes back from revision 2 without a higher epoch",
    );
    assert_eq!(
        client.revision(),
        Some(2),
        "the last good ruleset keeps serving"
    );
    assert_eq!(variant(&client).as_deref(), Some("stable"));

    // The deliberate rollback signs revision 1 again with the next epoch: accepted.
    cli(
        &repo,
        &worker,
        &[
            "rollback",
            "--env",
            "dev",
            "--to",
            "1",
            "--reason",
            "signing e2e",
        ],
    );
    // Revision 1 was already live (the replay), so the rollback changes only its signature.
    client_takes(&worker, &client, 1, 1, "concise");
}
