//! Shared by the governance tests: keys made on the spot, registries and approvals built from
//! them, and the gate run with real Ed25519 checks.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use promptflag_governance::gate::{self, GateInput, SignedRegistry, SubmittedApproval};
use promptflag_governance::native::{PrivateKey, verify_all};
use promptflag_governance::{ApprovalSubject, Decision};

/// A key from a fixed seed, so a failure is reproducible.
pub fn key(seed: u8, name: &str) -> PrivateKey {
    PrivateKey::from_seed([seed; 32], name)
}

/// A registry file: (name, key, roles).
pub fn registry_text(serial: u64, members: &[(&str, &PrivateKey, &[&str])]) -> String {
    let members: Vec<serde_json::Value> = members
        .iter()
        .map(|(name, key, roles)| {
            serde_json::json!({"name": name, "key": key.public_line(), "roles": roles})
        })
        .collect();
    serde_json::to_string_pretty(
        &serde_json::json!({"schema": 1, "serial": serial, "members": members}),
    )
    .unwrap()
}

/// A registry change signed by `signer`.
pub fn signed(text: &str, signer: &PrivateKey) -> SignedRegistry {
    SignedRegistry {
        text: text.to_string(),
        signature: signer.sign(text.as_bytes()).to_armored(),
    }
}

/// The high-risk prompt of the examples.
pub fn subject() -> ApprovalSubject {
    ApprovalSubject {
        prompt: "support_reply@2.0.0".into(),
        author: "carol@acme.example".into(),
        body_sha256: "b0eadff2fcfe8b2a87ab9c7df42f3e39919a8fe217d66f57462d8f401721264f".into(),
        model: "gpt-4o-mini".into(),
        parameters: serde_json::json!({"temperature": 0.2, "max_tokens": 300, "top_p": 1.0}),
        output_schema_sha256: None,
    }
}

/// `signer`'s approval of `subject` for `environment`.
pub fn approval(
    subject: &ApprovalSubject,
    environment: &str,
    signer: &PrivateKey,
) -> SubmittedApproval {
    let message = subject.message(environment).unwrap();
    SubmittedApproval {
        prompt: subject.prompt.clone(),
        signature: signer.sign(message.as_bytes()).to_armored(),
    }
}

/// The gate with every check made natively.
pub fn run_gate(input: &GateInput) -> Decision {
    let results = verify_all(&gate::plan(input).checks);
    gate::decide(input, &results).unwrap()
}

/// `ssh-keygen`, which the interoperability tests need: it is in Debian's openssh-client.
pub fn ssh_keygen() -> Command {
    let found = Command::new("ssh-keygen").arg("-?").output();
    assert!(
        found.is_ok(),
        "ssh-keygen is not installed; these tests check interoperability with it (apt-get install openssh-client)"
    );
    Command::new("ssh-keygen")
}

/// A fresh unencrypted ed25519 key made by `ssh-keygen -t ed25519 -N ''` in `dir`.
pub fn ssh_keygen_key(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let status = ssh_keygen()
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen -t ed25519 failed");
    path
}
