//! Interoperability with OpenSSH: keys made by `ssh-keygen -t ed25519 -N ''` are read, a
//! signature made by `ssh-keygen -Y sign -n promptflag` verifies here and passes the gate, and
//! one made here verifies with `ssh-keygen -Y verify`. ssh-keygen must be installed: without it
//! these tests fail and say so.

mod support;

use std::process::{Command, Stdio};

use promptflag_governance::gate::{GateInput, SubmittedApproval};
use promptflag_governance::native::PrivateKey;
use promptflag_governance::{PublicKey, SshSignature};
use support::*;

fn verify_with_ssh_keygen(
    dir: &std::path::Path,
    public_line: &str,
    message: &[u8],
    signature: &str,
) -> bool {
    let allowed = dir.join("allowed_signers");
    std::fs::write(
        &allowed,
        format!("reviewer namespaces=\"promptflag\" {public_line}\n"),
    )
    .unwrap();
    let sig = dir.join("message.sig");
    std::fs::write(&sig, signature).unwrap();
    let mut child = ssh_keygen()
        .args(["-Y", "verify", "-n", "promptflag", "-I", "reviewer", "-f"])
        .arg(&allowed)
        .arg("-s")
        .arg(&sig)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), message).unwrap();
    drop(child.stdin.take());
    child.wait().unwrap().success()
}

#[test]
fn a_key_made_by_ssh_keygen_is_read_with_its_public_half() {
    let dir = tempfile::tempdir().unwrap();
    let path = ssh_keygen_key(dir.path(), "dana");
    let key = PrivateKey::from_openssh(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    assert_eq!(key.public_key(), PublicKey::parse(public.trim()).unwrap());
    assert_eq!(key.public_line(), public.trim());
    assert_eq!(key.comment, "dana");
}

#[test]
fn a_key_written_here_is_read_by_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(21, "dev-reviewer");
    let path = dir.path().join("id_ed25519");
    std::fs::write(&path, key.to_openssh(0x1234_5678)).unwrap();
    // ssh-keygen refuses to read a private key others can read.
    #[cfg(unix)]
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let output = ssh_keygen()
        .arg("-y")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        key.public_line()
    );
    let again = PrivateKey::from_openssh(&key.to_openssh(7)).unwrap();
    assert_eq!(again.public_key(), key.public_key());
}

#[test]
fn a_passphrase_protected_key_is_refused_with_the_way_around_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked");
    let status = ssh_keygen()
        .args(["-q", "-t", "ed25519", "-N", "correct horse", "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let error = PrivateKey::from_openssh(&std::fs::read_to_string(&path).unwrap())
        .err()
        .unwrap();
    assert_eq!(error.code(), "encrypted_private_key");
    assert!(
        error
            .to_string()
            .contains("ssh-keygen -Y sign -n promptflag")
    );
}

#[test]
fn a_signature_made_by_ssh_keygen_verifies_here_and_passes_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let path = ssh_keygen_key(dir.path(), "dana");
    let dana = PrivateKey::from_openssh(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let root = key(1, "root");
    let registry = registry_text(
        1,
        &[
            ("olivia@acme.example", &root, &["owner"]),
            ("dana@acme.example", &dana, &["reviewer"]),
        ],
    );
    let message = subject().message("prod").unwrap();
    let message_path = dir.path().join("approval.txt");
    std::fs::write(&message_path, &message).unwrap();
    let output = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "promptflag", "-f"])
        .arg(&path)
        .arg(&message_path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let armored = std::fs::read_to_string(dir.path().join("approval.txt.sig")).unwrap();
    let parsed = SshSignature::parse_armored(&armored).unwrap();
    assert_eq!(parsed.public_key, dana.public_key());
    assert_eq!(parsed.namespace, "promptflag");

    let input = GateInput {
        owner_keys: root.public_line(),
        accepted: None,
        registry_changes: vec![signed(&registry, &root)],
        environment: "prod".into(),
        require_approvals: true,
        prompts: vec![subject()],
        approvals: vec![SubmittedApproval {
            prompt: subject().prompt,
            signature: armored.clone(),
        }],
        publisher: None,
        override_reason: None,
    };
    let decision = run_gate(&input);
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(
        decision.approved[0].by,
        vec!["dana@acme.example".to_string()]
    );

    // The same signature over the staging message is over other content.
    let mut staging = input.clone();
    staging.environment = "staging".into();
    let decision = run_gate(&staging);
    assert_eq!(decision.reason.map(|r| r.code()), Some("approval_invalid"));
}

#[test]
fn a_signature_made_here_verifies_with_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let path = ssh_keygen_key(dir.path(), "dana");
    let dana = PrivateKey::from_openssh(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let message = subject().message("staging").unwrap();
    let armored = dana.sign(message.as_bytes()).to_armored();
    assert!(verify_with_ssh_keygen(
        dir.path(),
        &dana.public_line(),
        message.as_bytes(),
        &armored
    ));
    // ssh-keygen refuses it over an edited message: the check above can fail.
    let edited = message.replace("gpt-4o-mini", "gpt-4o");
    assert!(!verify_with_ssh_keygen(
        dir.path(),
        &dana.public_line(),
        edited.as_bytes(),
        &armored
    ));
}
