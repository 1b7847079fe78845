//! The governed development setup `cargo xtask dev` runs, and the approve-and-publish
//! walk-through it prints, written once so that a test can build the same setup and run the
//! printed commands exactly as a person would copy them.
//!
//! The setup: a working copy of the example prompt repository (so the example itself is never
//! edited) with throwaway signing keys made by `promptflag keys init --dev`, the high-risk prompt
//! version's author set to the generated `dev-author` and the example's approvals (by keys the
//! dev registry does not hold) removed; a Worker whose `OWNER_KEYS` is the generated owner key,
//! whose [`DEV_ENVIRONMENT_POLICY`] makes staging and prod require approvals (and serve no
//! drafts) and prod take only what staging accepted, with one admin credential per environment
//! ([`DEV_CREDENTIALS`]). The walk-through ([`walkthrough`]) is a list of [`Step`]s, each one
//! self-contained shell command (absolute paths, this run's URL and tokens) with the exit
//! status and the piece of output it must produce; [`render`] prints them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environments the dev Worker gives a throwaway admin credential each, with its role.
pub const DEV_CREDENTIALS: [(&str, &str); 3] = [
    ("dev", "publisher"),
    ("staging", "publisher"),
    ("prod", "override"),
];

/// The dev Worker's `ENVIRONMENT_POLICY`: staging and prod require a registered reviewer's
/// signed approval of every new prompt body and serve no drafts, and prod serves only bodies
/// staging accepted first (the example repository's own gates, enforced by the server).
pub const DEV_ENVIRONMENT_POLICY: &str = r#"{"staging": {"require_approvals": true, "allow_drafts": false}, "prod": {"promote_from": "staging", "require_approvals": true, "allow_drafts": false}}"#;

/// The high-risk prompt version of the example repository, written by `dev-author`.
pub const APPROVED_PROMPT: &str = "support_reply@2.0.0";

/// Every prompt version the example's staging and prod rulesets serve: the Worker asks for a
/// reviewer's approval of each body new to a gated environment, whatever its risk (the ruleset
/// carries no risk level), so the reviewer approves them all.
pub const SERVED_VERSIONS: [&str; 4] = [
    "support_reply@1.1.0",
    APPROVED_PROMPT,
    "ticket_summary@1.0.0",
    "ticket_summary@1.1.0",
];

/// Where the example names the high-risk version's author, and who the working copy names.
const EXAMPLE_AUTHOR: &str = "author: carol@acme.example";
const DEV_AUTHOR: &str = "author: dev-author";

/// Where `promptflag keys init --dev` leaves the keys, inside the repository.
const DEV_KEYS: &str = ".promptflag/dev-keys";

/// Why the working copy could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// Copying or editing a file failed.
    #[error("{what} {path}: {message}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The system's reason.
        message: String,
    },
    /// The example no longer looks as the setup expects.
    #[error("{0}")]
    Example(String),
    /// `promptflag keys init --dev` failed.
    #[error("promptflag keys init --dev failed: {0}")]
    KeysInit(String),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SetupError + 'a {
    move |error| SetupError::Io {
        what,
        path: path.to_path_buf(),
        message: error.to_string(),
    }
}

/// Makes the governed working copy at `copy` from the example repository at `example`: copies
/// it (without its `.promptflag` state), names `dev-author` as the author of
/// [`APPROVED_PROMPT`], removes the example's approvals, and runs `promptflag keys init --dev
/// --force` with the companion at `promptflag`. `copy` must not exist yet.
pub fn prepare_repository(
    example: &Path,
    copy: &Path,
    promptflag: &Path,
) -> Result<(), SetupError> {
    copy_tree(example, copy)?;
    let metadata = copy.join("prompts/support_reply/metadata.yaml");
    let text = std::fs::read_to_string(&metadata).map_err(io("reading", &metadata))?;
    if !text.contains(EXAMPLE_AUTHOR) {
        return Err(SetupError::Example(format!(
            "{} no longer names `{EXAMPLE_AUTHOR}`; update the dev walk-through",
            metadata.display()
        )));
    }
    std::fs::write(&metadata, text.replacen(EXAMPLE_AUTHOR, DEV_AUTHOR, 1))
        .map_err(io("writing", &metadata))?;
    let approvals = copy.join("approvals");
    if approvals.exists() {
        std::fs::remove_dir_all(&approvals).map_err(io("removing", &approvals))?;
    }
    let output = Command::new(promptflag)
        .arg("--repo")
        .arg(copy)
        .args(["keys", "init", "--dev", "--force"])
        .output()
        .map_err(|e| SetupError::KeysInit(e.to_string()))?;
    if !output.status.success() {
        return Err(SetupError::KeysInit(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(())
}

/// Copies a folder recursively, leaving out the companion's local state (`.promptflag`).
fn copy_tree(from: &Path, to: &Path) -> Result<(), SetupError> {
    std::fs::create_dir_all(to).map_err(io("creating", to))?;
    for entry in std::fs::read_dir(from).map_err(io("reading", from))? {
        let entry = entry.map_err(io("reading", from))?;
        let source = entry.path();
        if entry.file_name() == ".promptflag" {
            continue;
        }
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(io("reading", &source))?;
        if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else {
            std::fs::copy(&source, &target).map_err(io("copying", &source))?;
        }
    }
    Ok(())
}

/// The generated root owner key's file in a prepared working copy: the Worker's `OWNER_KEYS`.
pub fn owner_keys_file(copy: &Path) -> PathBuf {
    copy.join(DEV_KEYS).join("owner_keys")
}

/// `ADMIN_CREDENTIALS` for the dev Worker: one credential per `(environment, token)`, named
/// `dev-<env>`, with the role [`DEV_CREDENTIALS`] gives the environment.
pub fn credentials_json(tokens: &[(String, String)]) -> String {
    let entries: Vec<serde_json::Value> = tokens
        .iter()
        .map(|(environment, token)| {
            let role = DEV_CREDENTIALS
                .iter()
                .find(|(name, _)| name == environment)
                .map_or("publisher", |(_, role)| role);
            serde_json::json!({"name": format!("dev-{environment}"), "token": token,
                               "environment": environment, "role": role})
        })
        .collect();
    serde_json::Value::from(entries).to_string()
}

/// What the walk-through's commands need to know about this run.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The companion binary.
    pub promptflag: PathBuf,
    /// The prepared working copy ([`prepare_repository`]).
    pub repository: PathBuf,
    /// The Worker's base URL.
    pub worker_url: String,
    /// The admin token of each environment, `(environment, token)`.
    pub tokens: Vec<(String, String)>,
    /// A server read key of the Worker.
    pub read_key: String,
    /// The companion's local audit log, when not the working copy's own
    /// (`.promptflag/audit.sqlite3`).
    pub audit_db: Option<PathBuf>,
}

impl Setup {
    fn token(&self, environment: &str) -> &str {
        self.tokens
            .iter()
            .find(|(name, _)| name == environment)
            .map_or("", |(_, token)| token.as_str())
    }

    /// `promptflag --repo <copy> [--audit-db <log>] --owner-keys <owner key>`, quoted for `sh`.
    fn companion(&self) -> String {
        let audit_db = self.audit_db.as_ref().map_or_else(String::new, |path| {
            format!(" --audit-db {}", quote(&path.to_string_lossy()))
        });
        format!(
            "{} --repo {}{audit_db} --owner-keys {}",
            quote(&self.promptflag.to_string_lossy()),
            quote(&self.repository.to_string_lossy()),
            quote(&owner_keys_file(&self.repository).to_string_lossy()),
        )
    }

    fn key(&self, member: &str) -> String {
        quote(
            &self
                .repository
                .join(DEV_KEYS)
                .join(member)
                .to_string_lossy(),
        )
    }

    fn worker(&self, environment: &str) -> String {
        format!(
            "--worker {} --admin-token {} --read-key {}",
            self.worker_url,
            quote(self.token(environment)),
            quote(&self.read_key)
        )
    }
}

/// Publishes the working copy to dev, as `cargo xtask dev` does before it prints the
/// walk-through (dev has no gates).
pub fn seed(setup: &Setup) -> Step {
    Step {
        comment: String::from("publish the working copy to dev"),
        command: format!(
            "{} publish --env dev {} --reason 'cargo xtask dev'",
            setup.companion(),
            setup.worker("dev")
        ),
        exit_status: 0,
        expect: String::from("published dev revision"),
    }
}

/// One command of the walk-through and what it must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Why the step is there, printed as a comment above it.
    pub comment: String,
    /// The command, one line for `sh`.
    pub command: String,
    /// Its exit status.
    pub exit_status: i32,
    /// Text its standard output or error contains.
    pub expect: String,
}

/// The approve-and-publish walk-through: the reviewer approves [`SERVED_VERSIONS`] for staging
/// and prod, staging then prod publish (through the Worker's gates), the author's own approval
/// is refused (exit 4, `self_approval`), and the Worker's audit log verifies.
pub fn walkthrough(setup: &Setup) -> Vec<Step> {
    let companion = setup.companion();
    let step = |comment: &str, command: String, exit_status: i32, expect: &str| Step {
        comment: comment.to_string(),
        command,
        exit_status,
        expect: expect.to_string(),
    };
    let approve = |environment: &str, member: &str| {
        format!(
            "{companion} approve {APPROVED_PROMPT} --env {environment} --key {}",
            setup.key(member)
        )
    };
    let approve_served = |environment: &str| {
        format!(
            "for version in {}; do {companion} approve \"$version\" --env {environment} --key {} || exit 1; done",
            SERVED_VERSIONS.join(" "),
            setup.key("dev-reviewer")
        )
    };
    let publish = |environment: &str| {
        format!(
            "{companion} publish --env {environment} {} --reason 'walk-through'",
            setup.worker(environment)
        )
    };
    vec![
        step(
            "dev-reviewer approves what staging and prod will serve (dev-author's high-risk \
             support_reply@2.0.0 among them): the Worker asks for a signed approval of every \
             prompt body new to a gated environment",
            approve_served("staging"),
            0,
            "approved support_reply@2.0.0 for staging as dev-reviewer",
        ),
        step(
            "",
            approve_served("prod"),
            0,
            "approved support_reply@2.0.0 for prod as dev-reviewer",
        ),
        step(
            "staging first: the Worker checks the approval's signature against the registry it holds",
            publish("staging"),
            0,
            "published staging revision",
        ),
        step(
            "then prod, which serves only what staging accepted",
            publish("prod"),
            0,
            "published prod revision",
        ),
        step(
            "the author cannot approve her own prompt: exit 4, self_approval",
            approve("prod", "dev-author"),
            4,
            "self_approval",
        ),
        step(
            "the Worker's audit log: every hash, link and revision anchor",
            format!(
                "{companion} audit verify --worker {} --admin-token {}",
                setup.worker_url,
                quote(setup.token("prod"))
            ),
            0,
            &format!("served audit log of {} intact", setup.worker_url),
        ),
    ]
}

/// The walk-through as printed: each step's comment as `# …`, then its command.
pub fn render(steps: &[Step]) -> String {
    let mut text = String::new();
    for step in steps {
        if !step.comment.is_empty() {
            text.push_str(&format!("  # {}\n", step.comment));
        }
        text.push_str(&format!("  {}\n", step.command));
    }
    text
}

/// `text` quoted for `sh` when it holds anything but plain path characters.
fn quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:@+=,".contains(&b));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_only_when_the_shell_would_split_them() {
        assert_eq!(quote("/tmp/a-b_c.d"), "/tmp/a-b_c.d");
        assert_eq!(quote("/tmp/my repo"), "'/tmp/my repo'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn every_environment_gets_its_credential_with_its_role() {
        let tokens: Vec<(String, String)> = DEV_CREDENTIALS
            .iter()
            .map(|(env, _)| (env.to_string(), format!("token-{env}")))
            .collect();
        let credentials: serde_json::Value =
            serde_json::from_str(&credentials_json(&tokens)).unwrap();
        assert_eq!(credentials[2]["name"], "dev-prod");
        assert_eq!(credentials[2]["role"], "override");
        assert_eq!(credentials[1]["token"], "token-staging");
    }
}
