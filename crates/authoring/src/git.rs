//! What the companion reads from git: the commit a build comes from, whether the tree is dirty,
//! the default actor for the audit log, and files at another revision (for `diff`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// The commit a build is stamped with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `git rev-parse HEAD`, or `"unknown"` outside a git checkout.
    pub commit: String,
    /// True when the repository folder has uncommitted changes (tracked or untracked files).
    pub dirty: bool,
}

impl Source {
    /// The text stamped into rulesets: the commit, with `-dirty` appended for a dirty tree.
    pub fn stamp(&self) -> String {
        if self.dirty && self.commit != "unknown" {
            format!("{}-dirty", self.commit)
        } else {
            self.commit.clone()
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Reads the commit of the checkout holding `repo`, and whether files under `repo` changed.
pub fn source_of(repo: &Path) -> Source {
    let Some(head) = git(repo, &["rev-parse", "HEAD"]) else {
        return Source {
            commit: String::from("unknown"),
            dirty: false,
        };
    };
    let commit = head.trim().to_string();
    // Only the prompt repository's own folder counts: an unrelated change elsewhere in a monorepo
    // must not mark every build dirty. Ignored files (build output, the audit DB) do not count.
    let dirty = git(repo, &["status", "--porcelain", "--", "."])
        .map(|status| !status.trim().is_empty())
        .unwrap_or(false);
    Source { commit, dirty }
}

/// The actor recorded in the audit log when `--actor` is not given: `$PROMPTFLAG_ACTOR`, then
/// `git config user.email`, then `$USER`, then `"unknown"`.
pub fn default_actor(repo: &Path) -> String {
    if let Ok(actor) = std::env::var("PROMPTFLAG_ACTOR")
        && !actor.trim().is_empty()
    {
        return actor.trim().to_string();
    }
    if let Some(email) = git(repo, &["config", "user.email"])
        && !email.trim().is_empty()
    {
        return email.trim().to_string();
    }
    if let Ok(user) = std::env::var("USER")
        && !user.trim().is_empty()
    {
        return user.trim().to_string();
    }
    String::from("unknown")
}

/// Copies the repository folder `repo` as it was at `revision` into `dest`, so it can be loaded
/// and built like a checkout. Returns the commit the revision names.
pub fn export_revision(repo: &Path, revision: &str, dest: &Path) -> Result<String> {
    let commit = git(
        repo,
        &["rev-parse", "--verify", &format!("{revision}^{{commit}}")],
    )
    .ok_or_else(|| {
        Error::Git(format!(
            "{revision:?} is not a commit in the repository at {}",
            repo.display()
        ))
    })?
    .trim()
    .to_string();
    let prefix = git(repo, &["rev-parse", "--show-prefix"])
        .ok_or_else(|| Error::Git(format!("{} is not inside a git checkout", repo.display())))?
        .trim()
        .to_string();
    let listing = git(repo, &["ls-tree", "-r", "--name-only", &commit, "--", "."])
        .ok_or_else(|| Error::Git(format!("cannot list the files of {commit}")))?;
    for name in listing.lines().filter(|line| !line.is_empty()) {
        // `ls-tree` run in a subfolder prints names relative to it.
        let output = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["show", &format!("{commit}:{prefix}{name}")])
            .output()
            .map_err(|error| Error::Git(error.to_string()))?;
        if !output.status.success() {
            return Err(Error::Git(format!("cannot read {name} at {commit}")));
        }
        let target: PathBuf = dest.join(name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|error| Error::io(parent, error))?;
        }
        std::fs::write(&target, &output.stdout).map_err(|error| Error::io(&target, error))?;
    }
    Ok(commit)
}
