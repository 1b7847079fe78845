//! The approve-and-publish walk-through `cargo xtask dev` prints, run as printed: the same
//! governed setup (a working copy of the example with throwaway keys, a Worker on workerd whose
//! `OWNER_KEYS` is the generated owner key and whose policy gates staging and prod), the same
//! rendered commands, each executed with `sh` in order, each with its exit status and output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use promptflag_harness::walkthrough::{self, Setup, Step};
use promptflag_harness::{Locations, TEST_SERVER_KEY, WorkerOptions, WorkerProcess};

fn run(step: &Step) -> String {
    let output = Command::new("sh")
        .arg("-c")
        .arg(&step.command)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        output.status.code(),
        Some(step.exit_status),
        "`{}` exited {:?}:\n{text}",
        step.command,
        output.status
    );
    assert!(
        text.contains(&step.expect),
        "`{}` printed no {:?}:\n{text}",
        step.command,
        step.expect
    );
    text
}

#[test]
fn the_printed_walk_through_works_as_printed() {
    let promptflag = Path::new(env!("CARGO_BIN_EXE_promptflag"));
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/prompts-repo");
    let scratch = tempfile::tempdir().unwrap();
    let repository = scratch.path().join("prompts-repo");
    walkthrough::prepare_repository(&example, &repository, promptflag).unwrap();

    let tokens: Vec<(String, String)> = walkthrough::DEV_CREDENTIALS
        .iter()
        .map(|(environment, _)| {
            (
                environment.to_string(),
                format!("walkthrough-{environment}-token-0123456789abcdef"),
            )
        })
        .collect();
    let owner_keys = std::fs::read_to_string(walkthrough::owner_keys_file(&repository)).unwrap();
    let options = WorkerOptions {
        admin_credentials: Some(walkthrough::credentials_json(&tokens)),
        environment_policy: Some(walkthrough::DEV_ENVIRONMENT_POLICY.to_string()),
        owner_keys: Some(owner_keys),
        quiet: true,
        ..WorkerOptions::default()
    };
    let worker = WorkerProcess::start(&Locations::from_env().unwrap(), &options).unwrap();
    let setup = Setup {
        promptflag: promptflag.to_path_buf(),
        repository: repository.clone(),
        worker_url: worker.url().to_string(),
        tokens,
        read_key: TEST_SERVER_KEY.to_string(),
        audit_db: Some(scratch.path().join("audit.sqlite3")),
    };
    run(&walkthrough::seed(&setup));

    let steps = walkthrough::walkthrough(&setup);
    let printed = walkthrough::render(&steps);
    for step in &steps {
        assert!(printed.contains(&step.command), "{printed}");
        run(step);
    }
    // The refused self-approval wrote nothing; the reviewer's two approvals are there.
    let approvals = repository.join("approvals/support_reply/2.0.0");
    for environment in ["staging", "prod"] {
        let signers: Vec<String> = std::fs::read_dir(approvals.join(environment))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(signers, ["dev-reviewer.sig"], "{environment}");
    }
}
