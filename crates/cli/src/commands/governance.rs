//! The signature commands: `approve` (a reviewer signs a prompt version's content for one
//! environment) and `keys` (the signed key registry), over `promptflag-authoring`'s
//! `signatures` and `promptflag-governance`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use promptflag_authoring::diagnostic::Diagnostics;
use promptflag_authoring::repo::{self, PromptVersion, Repo};
use promptflag_authoring::signatures::{self, LocalRegistry};
use promptflag_governance::native::PrivateKey;
use promptflag_governance::{Registry, SshSignature};
use serde_json::json;

use crate::Output;
use crate::args::{HiArgs, KeysCommand, Signing, signing_key};
use crate::exit::ExitCode;

fn read_private_key(path: &Path) -> Result<PrivateKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the private key {}", path.display()))?;
    PrivateKey::from_openssh(&text).with_context(|| format!("{}", path.display()))
}

fn find_version<'a>(repo: &'a Repo, reference: &str) -> Result<&'a PromptVersion> {
    let Some((family, version)) = reference.split_once('@') else {
        bail!("{reference:?} is not <family>@<version>");
    };
    repo.versions()
        .find(|v| {
            let id = repo.families[&v.family]
                .id
                .as_ref()
                .map(|id| id.value.as_str());
            (v.family == family || id == Some(family)) && v.version == version
        })
        .with_context(|| format!("{reference} names no prompt version of the repository"))
}

fn refused(message: String) -> anyhow::Error {
    promptflag_release::Error::Refused(message).into()
}

/// `promptflag approve <family>@<version> --env <env>`.
pub(crate) fn run_approve(
    args: &HiArgs,
    reference: &str,
    environment: &str,
    signing: &Signing,
) -> Result<Output> {
    let (repo, _) = repo::load(&args.repo)?;
    if repo.config.environment(environment).is_none() {
        bail!("{environment:?} is not an environment declared in promptflag.yaml");
    }
    let version = find_version(&repo, reference)?;
    let subject = signatures::approval_subject(&repo, version).map_err(anyhow::Error::msg)?;
    let message = subject.message(environment)?;
    let armored = match signing {
        Signing::MessageOnly => {
            return Ok(Output {
                text: message.clone(),
                json: json!({ "ok": true, "message": message, "subject": subject }),
                code: ExitCode::Ok,
            });
        }
        Signing::Key(path) => read_private_key(path)?
            .sign(message.as_bytes())
            .to_armored(),
        Signing::Signature(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the signature {}", path.display()))?;
            SshSignature::parse_armored(&text).with_context(|| format!("{}", path.display()))?;
            text
        }
    };
    let registry = signatures::accepted_registry(
        &args.repo,
        args.owner_keys.as_deref(),
        &mut Diagnostics::new(),
    );
    let decision =
        signatures::judge_approval(&subject, environment, registry.text.as_deref(), &armored);
    let Some(signer) = decision
        .approved
        .first()
        .and_then(|approved| approved.by.first())
        .filter(|_| decision.allowed)
    else {
        return Err(refused(format!(
            "the approval would not count ({}): {}",
            decision.reason.map_or("approval_invalid", |r| r.code()),
            decision.message
        )));
    };
    let file = format!(
        "{}/{signer}.sig",
        signatures::approval_dir(version, environment)
    );
    let path = args.repo.join(&file);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, &armored).with_context(|| format!("writing {}", path.display()))?;
    Ok(Output {
        text: format!(
            "approved {} for {environment} as {signer}\n  wrote {file}\n  body {}, model {}\n",
            subject.prompt, subject.body_sha256, subject.model
        ),
        json: json!({ "ok": true, "prompt": subject.prompt, "environment": environment, "signer": signer, "file": file, "subject": subject }),
        code: ExitCode::Ok,
    })
}

fn member_rows(registry: &Registry) -> (String, Vec<serde_json::Value>) {
    let mut text = String::new();
    let mut rows = Vec::new();
    for member in &registry.members {
        let roles: Vec<String> = member.roles.iter().map(|r| r.name()).collect();
        text.push_str(&format!(
            "  {}  {}  {}\n",
            member.name,
            member.key.fingerprint(),
            roles.join(",")
        ));
        rows.push(json!({ "name": member.name, "key": member.key.to_openssh(), "fingerprint": member.key.fingerprint(), "roles": roles }));
    }
    (text, rows)
}

fn registry_summary(local: &LocalRegistry) -> String {
    let serial = local.registry.as_ref().map_or(0, |r| r.serial);
    let root = if local.root_pinned {
        "checked against --owner-keys"
    } else {
        "not pinned: registry 1 is trusted as signed by its own owners; pass --owner-keys to check it as the Worker does"
    };
    format!(
        "registry {serial} accepted of {} file(s) (root {root})\n",
        local.files.len()
    )
}

/// `promptflag keys …`.
pub(crate) fn run_keys(args: &HiArgs, command: &KeysCommand) -> Result<Output> {
    match command {
        KeysCommand::List | KeysCommand::Verify => {
            let mut diagnostics = Diagnostics::new();
            let local = signatures::accepted_registry(
                &args.repo,
                args.owner_keys.as_deref(),
                &mut diagnostics,
            );
            let problems = diagnostics.into_sorted();
            let mut text = registry_summary(&local);
            let (rows_text, rows) = local.registry.as_ref().map(member_rows).unwrap_or_default();
            if matches!(command, KeysCommand::List) {
                text.push_str(&rows_text);
            }
            for problem in &problems {
                text.push_str(&format!("{problem}\n"));
            }
            let failed = matches!(command, KeysCommand::Verify)
                && (!problems.is_empty() || local.registry.is_none());
            if matches!(command, KeysCommand::Verify)
                && local.registry.is_none()
                && problems.is_empty()
            {
                text.push_str("no registry: governance/registry/1.json is missing\n");
            }
            Ok(Output {
                text,
                json: json!({
                    "ok": !failed,
                    "serial": local.registry.as_ref().map_or(0, |r| r.serial),
                    "root_pinned": local.root_pinned,
                    "members": rows,
                    "problems": problems,
                }),
                code: if failed {
                    ExitCode::Problems
                } else {
                    ExitCode::Ok
                },
            })
        }
        KeysCommand::Sign { file, key } => sign_registry(args, file, &signing_key(key.clone())?),
        KeysCommand::RulesetSigning => ruleset_signing_keys(),
        KeysCommand::Init { dir, force, .. } => {
            let (repo, _) = repo::load(&args.repo)?;
            let environments: Vec<String> = repo
                .config
                .environments
                .iter()
                .map(|e| e.name.clone())
                .collect();
            let dir = dir
                .clone()
                .unwrap_or_else(|| args.repo.join(".promptflag").join("dev-keys"));
            let made = signatures::init_dev_keys(&args.repo, &dir, &environments, *force)?;
            let mut text = format!(
                "throwaway dev keys (never use them outside development) in {}\n",
                dir.display()
            );
            for (name, path) in &made.keys {
                text.push_str(&format!("  {name}  {}\n", path.display()));
            }
            text.push_str(&format!(
                "registered in {} (signed by dev-owner)\nroot owner key for the Worker's OWNER_KEYS and --owner-keys: {}\n  {}\n",
                made.registry_file,
                made.owner_keys_file.display(),
                made.owner_key_line
            ));
            Ok(Output {
                text,
                json: json!({
                    "ok": true,
                    "dir": dir,
                    "keys": made.keys.iter().map(|(name, path)| json!({"name": name, "path": path})).collect::<Vec<_>>(),
                    "registry_file": made.registry_file,
                    "owner_keys_file": made.owner_keys_file,
                    "owner_key": made.owner_key_line,
                }),
                code: ExitCode::Ok,
            })
        }
    }
}

/// `promptflag keys ruleset-signing`: a fresh Ed25519 key pair for signed rulesets, as the two
/// settings that take it (docs/interfaces.md, "Signed rulesets"): the seed for the admin
/// authority's secret and the public key for the Worker and the clients, both as 64 hex digits.
fn ruleset_signing_keys() -> Result<Output> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| anyhow::anyhow!("no system randomness for a key: {e}"))?;
    let public = PrivateKey::from_seed(seed, "").public_key();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let (signing, public) = (hex(&seed), hex(&public.0));
    Ok(Output {
        text: format!("RULESET_SIGNING_KEY={signing}\nRULESET_PUBLIC_KEY={public}\n"),
        json: json!({
            "ok": true,
            "ruleset_signing_key": signing,
            "ruleset_public_key": public,
        }),
        code: ExitCode::Ok,
    })
}

/// `promptflag keys sign FILE --key KEY`: an owner signs a registry change.
fn sign_registry(args: &HiArgs, file: &PathBuf, key_path: &Path) -> Result<Output> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the registry file {}", file.display()))?;
    let proposed = Registry::parse(&text).with_context(|| format!("{}", file.display()))?;
    let key = read_private_key(key_path)?;
    // Signing is refused when the result could not be accepted: the signer must be an owner of
    // the registry this one follows (or, for registry 1, a root key when those are given).
    let mut diagnostics = Diagnostics::new();
    let local =
        signatures::accepted_registry(&args.repo, args.owner_keys.as_deref(), &mut diagnostics);
    let previous = local
        .files
        .iter()
        .find(|f| f.serial + 1 == proposed.serial)
        .and_then(|f| Registry::parse(&f.change.text).ok());
    let signer = key.public_key();
    let may_sign = match (&previous, &args.owner_keys) {
        (Some(previous), _) => previous.has_role(&signer, &promptflag_governance::Role::Owner),
        (None, Some(roots)) => {
            promptflag_governance::keys::parse_key_list(roots)?.contains(&signer)
        }
        (None, None) => proposed.has_role(&signer, &promptflag_governance::Role::Owner),
    };
    if !may_sign {
        return Err(refused(format!(
            "{} is not an owner of registry {}; only an owner of the registry a change replaces can sign it",
            signer.fingerprint(),
            proposed.serial.saturating_sub(1)
        )));
    }
    let signature_path = PathBuf::from(format!("{}.sig", file.display()));
    std::fs::write(&signature_path, key.sign(text.as_bytes()).to_armored())
        .with_context(|| format!("writing {}", signature_path.display()))?;
    Ok(Output {
        text: format!(
            "signed registry {} as {}\n  wrote {}\n",
            proposed.serial,
            signer.fingerprint(),
            signature_path.display()
        ),
        json: json!({ "ok": true, "serial": proposed.serial, "signer": signer.fingerprint(), "file": signature_path }),
        code: ExitCode::Ok,
    })
}

/// The signature gate's material a publish of `environment` carries to the Worker: the
/// repository's registry files, the approval subjects of its prompt versions and their
/// approval files (`signatures::gate_input`), as the JSON text of
/// `{"registry_changes", "prompts", "approvals"}` (docs/interfaces.md, "Environment policy");
/// `None` when the repository has none of them, so the publish stays a plain one.
pub(crate) fn gate_material(
    repo_root: &Path,
    build: &promptflag_authoring::build::Build,
    environment: &str,
) -> Result<Option<String>> {
    let (loaded, _) = repo::load(repo_root)?;
    let input = signatures::gate_input(&loaded, build, environment, None)?;
    if input.registry_changes.is_empty() && input.prompts.is_empty() && input.approvals.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        json!({
            "registry_changes": input.registry_changes,
            "prompts": input.prompts,
            "approvals": input.approvals,
        })
        .to_string(),
    ))
}
