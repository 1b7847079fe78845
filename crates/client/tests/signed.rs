//! Signed rulesets in the native client, over the real Worker's bytes: the edge in front of it
//! (the test proxy) adds the `X-Promptflag-Signature` a signing system would, made with a key
//! the test holds. A replayed old revision is refused and the last good one keeps serving, a
//! rollback signed with the advanced epoch is accepted, and a tampered ruleset, a signature for
//! another environment and a missing signature are refused.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey};
use promptflag_client::{Client, ClientConfig, ClientError, RefreshOutcome};
use promptflag_contracts::signing::{Signature, format_signature, signed_message};
use serde_json::Value;
use support::{Proxy, TEST_SERVER_KEY, Worker};

const SEED: [u8; 32] = [7; 32];

/// What the signer signs: the environment named in the signature, and whether the bytes are
/// changed before signing (so the served bytes are not the signed ones).
#[derive(Clone, Copy)]
enum Signing {
    Honest,
    ForProd,
    OtherBytes,
}

fn signer(epoch: Arc<AtomicU64>, how: Signing) -> support::Signer {
    let key = SigningKey::from_bytes(&SEED);
    Arc::new(move |bytes: &[u8]| {
        let ruleset: Value = serde_json::from_slice(bytes).unwrap();
        let revision = ruleset["revision"].as_u64().unwrap();
        let epoch = epoch.load(Ordering::SeqCst);
        let mut signed_bytes = bytes.to_vec();
        let environment = match how {
            Signing::ForProd => "prod",
            Signing::Honest | Signing::OtherBytes => "dev",
        };
        if let Signing::OtherBytes = how {
            signed_bytes.push(b' ');
        }
        let message = signed_message(environment, revision, epoch, &signed_bytes);
        format_signature(&Signature {
            epoch,
            bytes: key.sign(&message).to_bytes(),
        })
    })
}

fn client(url: &str) -> Client {
    let mut config = ClientConfig::new(url)
        .with_read_key(TEST_SERVER_KEY)
        .with_ruleset_public_key(SigningKey::from_bytes(&SEED).verifying_key().to_bytes());
    config.refresh_interval = Duration::from_secs(3600);
    config.warm_bodies = false;
    Client::start(config)
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
fn replays_are_refused_and_a_rollback_with_the_next_epoch_is_accepted() {
    let (worker, fixture) = Worker::with_fixture(1);
    let proxy = Proxy::start(&worker.url);
    let epoch = Arc::new(AtomicU64::new(0));
    proxy.sign_with(signer(Arc::clone(&epoch), Signing::Honest));
    let client = client(&proxy.url);
    assert_eq!(client.revision(), Some(1));

    worker.put_ruleset(&fixture.ruleset(2, false));
    worker.wait_serving(2);
    assert_eq!(
        client.refresh_now().unwrap(),
        RefreshOutcome::Updated { revision: 2 }
    );

    // The pointer goes back to revision 1 with its old signature (epoch 0): a replay.
    worker.rollback(1);
    worker.wait_serving(1);
    refused(client.refresh_now(), "without a higher epoch");
    assert_eq!(
        client.revision(),
        Some(2),
        "the last good ruleset keeps serving"
    );
    let status = client.status();
    assert!(status.last_error.unwrap().contains("signature is refused"));

    // The same rollback signed with the advanced epoch is what a deliberate rollback looks like.
    epoch.store(1, Ordering::SeqCst);
    assert_eq!(
        client.refresh_now().unwrap(),
        RefreshOutcome::Updated { revision: 1 }
    );
    assert_eq!(client.status().last_error, None);

    // Revision 2 with its pre-rollback signature is now the replay.
    epoch.store(0, Ordering::SeqCst);
    worker.put_ruleset(&fixture.ruleset(3, false));
    worker.wait_serving(3);
    refused(client.refresh_now(), "below the accepted epoch 1");
    assert_eq!(client.revision(), Some(1));
}

#[test]
fn tampered_rulesets_other_environments_and_missing_signatures_are_refused() {
    let (worker, _fixture) = Worker::with_fixture(1);
    let proxy = Proxy::start(&worker.url);
    let epoch = Arc::new(AtomicU64::new(0));
    // Nothing serves until a ruleset with a good signature arrives: unsigned is refused.
    let client = client(&proxy.url);
    assert_eq!(client.revision(), None);
    refused(client.refresh_now(), "without a signature");

    for (how, reason) in [
        (Signing::OtherBytes, "does not verify"),
        (Signing::ForProd, "does not verify"),
    ] {
        proxy.sign_with(signer(Arc::clone(&epoch), how));
        refused(client.refresh_now(), reason);
        assert_eq!(client.revision(), None);
    }
    proxy.sign_with(signer(Arc::clone(&epoch), Signing::Honest));
    assert_eq!(
        client.refresh_now().unwrap(),
        RefreshOutcome::Updated { revision: 1 }
    );
}
