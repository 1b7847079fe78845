//! Shared test support: a scratch copy of the example repository, golden files and the binary;
//! the fakes of the Worker admin API and the Cloudflare KV REST API come from
//! `promptflag-testkit`.

#![allow(dead_code)]

// Not every test binary uses the fakes.
#[allow(unused_imports)]
pub use promptflag_testkit::{fake_kv, fake_worker, http};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The crate folder.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    crate_dir().join("../..").canonicalize().unwrap()
}

/// The example repository in the source tree.
pub fn example_repo() -> PathBuf {
    workspace_root().join("examples/prompts-repo")
}

/// Copies a folder recursively (skipping build output and audit DBs).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "build" || name == ".promptflag" {
            continue;
        }
        let target = to.join(&name);
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A scratch copy of the example repository (outside git, so its source is "unknown").
pub fn scratch_repo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_dir(&example_repo(), &repo);
    (dir, repo)
}

/// Replaces `from` with `to` in a file of a repository (the text must be there).
pub fn edit(repo: &Path, file: &str, from: &str, to: &str) {
    let path = repo.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} does not contain {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// `promptflag build` of a repository into `out`, recording `source` as the commit; it must
/// succeed.
pub fn build_repo(repo: &Path, out: &Path, source: &str) {
    let output = promptflag(&[
        "--repo",
        repo.to_str().unwrap(),
        "build",
        "--out",
        out.to_str().unwrap(),
        "--source",
        source,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// Runs the `promptflag` binary.
pub fn promptflag(args: &[&str]) -> Output {
    promptflag_with_env(args, &[])
}

/// Runs the `promptflag` binary with extra environment variables.
pub fn promptflag_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_promptflag"));
    command
        .args(args)
        .env("PROMPTFLAG_ACTOR", "test@acme.example");
    for name in [
        "PROMPTFLAG_WORKER_URL",
        "PROMPTFLAG_ADMIN_TOKEN",
        "PROMPTFLAG_AUDIT_DB",
        "PROMPTFLAG_REPO",
        "PROMPTFLAG_SERVE_URL",
        "PROMPTFLAG_DB",
        "PROMPTFLAG_EVAL_BASE_URL",
        "PROMPTFLAG_EVAL_API_KEY",
        "PROMPTFLAG_EVAL_RESULTS",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// Stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Compares `actual` with a golden file under `tests/golden/`; `UPDATE_EXPECT=1` re-blesses it.
pub fn expect_golden(name: &str, actual: &str) {
    let path = crate_dir().join("tests/golden").join(name);
    if std::env::var("UPDATE_EXPECT").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("golden file {} is missing; run `UPDATE_EXPECT=1 cargo test -p promptflag-cli` to create it", path.display())
    });
    if expected != actual {
        panic!(
            "output differs from the golden file {}\n(re-bless with `UPDATE_EXPECT=1 cargo test -p promptflag-cli` if the change is intended)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}

/// Replaces a temporary path in output with a stable placeholder.
pub fn scrub(text: &str, path: &Path, placeholder: &str) -> String {
    text.replace(&path.display().to_string(), placeholder)
}
