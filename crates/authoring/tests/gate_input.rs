//! The gate input the companion assembles from the example repository decides like the Worker
//! will: allowed for prod with the committed approvals under the example root key, refused with
//! `approval_invalid` once the high-risk body is edited, and `registry_change_unsigned` under
//! another root key.

use std::path::{Path, PathBuf};

use promptflag_authoring::build::{self, BuildOptions};
use promptflag_authoring::{lint, signatures};
use promptflag_governance::gate;
use promptflag_governance::native::verify_all;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "build" || entry.file_name() == ".promptflag" {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn decide(repo: &Path, owner_keys: &str) -> gate::Decision {
    // Lint refuses the broken cases already (its signature errors stop a build); the build is
    // made without them here so the gate is shown deciding the same cases on its own.
    let (loaded, _) = lint::check_with(repo, Some(owner_keys)).unwrap();
    let built = build::build(&loaded, &[], &BuildOptions::default()).unwrap();
    let mut input = signatures::gate_input(&loaded, &built, "prod", Some(owner_keys)).unwrap();
    // Every version prod serves goes with its subject (the server asks for an approval of each
    // body new to it, whatever its risk); the example's approvals are of its high-risk version,
    // so the gate decides that one here, as a server that already serves the others would.
    assert_eq!(input.prompts.len(), 4, "{:?}", input.prompts);
    input
        .prompts
        .retain(|subject| subject.prompt == "support_reply@2.0.0");
    let results = verify_all(&gate::plan(&input).checks);
    gate::decide(&input, &results).unwrap()
}

#[test]
fn the_example_repository_passes_the_gate_and_an_edited_body_does_not() {
    let root_keys = std::fs::read_to_string(workspace().join("examples/keys/owner_keys")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_dir(&workspace().join("examples/prompts-repo"), &repo);
    let decision = decide(&repo, &root_keys);
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(
        decision.approved[0].by,
        vec!["dana@acme.example".to_string()]
    );

    let other_root = std::fs::read_to_string(workspace().join("examples/keys/dana.pub")).unwrap();
    let decision = decide(&repo, &other_root);
    assert_eq!(
        decision.reason.map(|r| r.code()),
        Some("registry_change_unsigned")
    );

    let body = repo.join("prompts/support_reply/2.0.0.md");
    let text = std::fs::read_to_string(&body).unwrap();
    std::fs::write(&body, text.replacen("be brief", "be very brief", 1)).unwrap();
    let decision = decide(&repo, &root_keys);
    assert_eq!(decision.reason.map(|r| r.code()), Some("approval_invalid"));
}
