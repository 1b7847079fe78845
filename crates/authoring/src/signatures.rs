//! Signed governance in the prompt repository, checked with real Ed25519 through
//! `promptflag-governance`:
//!
//! ```text
//! governance/registry/<serial>.json       the key registry, one file per accepted change
//! governance/registry/<serial>.json.sig   its signature by an owner of <serial - 1> (1: a root key)
//! approvals/<family>/<version>/<env>/<signer>.sig
//!                                         a reviewer's signature of the approval message
//! ```
//!
//! The repository cannot vouch for itself: registry 1 must be signed by a root owner key held
//! outside it (the Worker's `OWNER_KEYS` secret; locally `--owner-keys`). Without one, the local
//! view trusts registry 1's own owners, which is only as good as the checkout; the Worker, which
//! has the secret, is the authority.

use std::collections::BTreeMap;
use std::path::Path;

use promptflag_contracts::digest::{canonical_json, sha256_hex};
use promptflag_governance::gate::{self, GateInput, SignedRegistry, SubmittedApproval};
use promptflag_governance::native::verify_all;
use promptflag_governance::{ApprovalSubject, Decision, Registry, Role};

use crate::diagnostic::Diagnostics;
use crate::lint::load_output_schema;
use crate::repo::{PromptVersion, Repo};

/// Where the registry files live.
pub const REGISTRY_DIR: &str = "governance/registry";
/// Where approvals live.
pub const APPROVALS_DIR: &str = "approvals";
/// The most approval files read for one version and environment.
pub const MAX_APPROVAL_FILES: usize = 64;

/// One registry file with its signature.
#[derive(Debug, Clone)]
pub struct RegistryFile {
    /// Its serial (the file name).
    pub serial: u64,
    /// `governance/registry/<serial>.json`.
    pub file: String,
    /// The text and the signature (empty when the `.sig` is missing).
    pub change: SignedRegistry,
}

/// The registry as the repository's signatures establish it.
#[derive(Debug, Clone, Default)]
pub struct LocalRegistry {
    /// The files, by serial.
    pub files: Vec<RegistryFile>,
    /// The last registry whose chain of signatures holds.
    pub registry: Option<Registry>,
    /// Its text.
    pub text: Option<String>,
    /// Whether registry 1 was checked against root owner keys given from outside the repository.
    pub root_pinned: bool,
}

fn relative(path: &str) -> String {
    path.replace('\\', "/")
}

/// Reads `governance/registry/*.json` and their signatures, in serial order.
pub fn read_registry_files(root: &Path, out: &mut Diagnostics) -> Vec<RegistryFile> {
    let Ok(entries) = std::fs::read_dir(root.join(REGISTRY_DIR)) else {
        return Vec::new();
    };
    let mut serials: Vec<u64> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            name.strip_suffix(".json")?.parse::<u64>().ok()
        })
        .collect();
    serials.sort_unstable();
    let mut files = Vec::new();
    for (index, serial) in serials.into_iter().enumerate() {
        let file = relative(&format!("{REGISTRY_DIR}/{serial}.json"));
        if serial != index as u64 + 1 || index == gate::MAX_REGISTRY_CHANGES {
            out.error(
                &file,
                1,
                "registry_invalid",
                format!("registry files are numbered 1, 2, 3, … (at most {}) with no gap; {file} is out of sequence", gate::MAX_REGISTRY_CHANGES),
            );
            break;
        }
        let Ok(text) = std::fs::read_to_string(root.join(&file)) else {
            out.error(
                &file,
                1,
                "registry_invalid",
                format!("{file} cannot be read as UTF-8"),
            );
            break;
        };
        let signature =
            std::fs::read_to_string(root.join(format!("{file}.sig"))).unwrap_or_default();
        files.push(RegistryFile {
            serial,
            file,
            change: SignedRegistry { text, signature },
        });
    }
    files
}

/// The registry the repository's signature chain establishes, from `owner_keys` (the root
/// owner keys, `ssh-ed25519` lines) or, without them, from registry 1's own owners. Every
/// change that does not hold is an error in `out`; the registry stays the one before it.
pub fn accepted_registry(
    root: &Path,
    owner_keys: Option<&str>,
    out: &mut Diagnostics,
) -> LocalRegistry {
    let files = read_registry_files(root, out);
    let root_keys = match owner_keys {
        Some(keys) => keys.to_string(),
        None => files
            .first()
            .and_then(|first| Registry::parse(&first.change.text).ok())
            .map(|first| {
                first
                    .members
                    .iter()
                    .filter(|m| m.roles.contains(&Role::Owner))
                    .map(|m| m.key.to_openssh() + "\n")
                    .collect()
            })
            .unwrap_or_default(),
    };
    let input = GateInput {
        owner_keys: root_keys,
        accepted: None,
        registry_changes: files.iter().map(|f| f.change.clone()).collect(),
        environment: String::from("registry"),
        require_approvals: false,
        prompts: Vec::new(),
        approvals: Vec::new(),
        publisher: None,
        override_reason: None,
    };
    let plan = gate::plan(&input);
    let results = verify_all(&plan.checks);
    let mut local = LocalRegistry {
        files,
        root_pinned: owner_keys.is_some(),
        ..LocalRegistry::default()
    };
    match gate::walk_registry(&input, plan, &results) {
        Err(error) => out.error(
            "",
            1,
            "registry_invalid",
            format!("the root owner keys: {error}"),
        ),
        Ok(walked) => {
            if let Some(problem) = walked.refusal {
                let serial = walked.registry.as_ref().map_or(0, |r| r.serial) as usize;
                let file = local
                    .files
                    .get(serial)
                    .map_or(String::new(), |f| f.file.clone());
                let message = format!(
                    "{}; members it adds have no role until an owner signs it (`promptflag keys sign {file} --key <owner key>`)",
                    problem.message()
                );
                out.error(&file, 1, problem.reason.code(), message);
            }
            local.registry = walked.registry;
            local.text = walked.text;
        }
    }
    local
}

/// The content a reviewer approves for `version`: its body hash, model configuration, output
/// schema and author.
pub fn approval_subject(repo: &Repo, version: &PromptVersion) -> Result<ApprovalSubject, String> {
    let family = &repo.families[&version.family];
    let id = family
        .id
        .as_ref()
        .map_or_else(|| version.family.clone(), |id| id.value.clone());
    let body_sha256 = version
        .sha256
        .clone()
        .ok_or_else(|| format!("{} has no readable body", version.reference()))?;
    let output_schema_sha256 = match &version.output_schema {
        None => None,
        Some(schema) => {
            let (value, _, _) =
                load_output_schema(repo, version, schema).map_err(|(_, _, _, message)| message)?;
            Some(sha256_hex(canonical_json(&value).as_bytes()))
        }
    };
    Ok(ApprovalSubject {
        prompt: format!("{id}@{}", version.version),
        author: version
            .author
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default(),
        body_sha256,
        model: version
            .model
            .as_ref()
            .map(|m| m.value.clone())
            .unwrap_or_default(),
        parameters: serde_json::Value::Object(
            version
                .parameters
                .as_ref()
                .map(|p| p.value.clone())
                .unwrap_or_default(),
        ),
        output_schema_sha256,
    })
}

/// Whether a version needs approvals where an environment requires them.
fn is_high_risk(version: &PromptVersion) -> bool {
    version.risk.as_ref().is_some_and(|r| r.value == "high")
}

/// `approvals/<family>/<version>/<env>`.
pub fn approval_dir(version: &PromptVersion, environment: &str) -> String {
    format!(
        "{APPROVALS_DIR}/{}/{}/{environment}",
        version.family, version.version
    )
}

/// One approval file.
#[derive(Debug, Clone)]
pub struct ApprovalFile {
    /// Relative to the repository root.
    pub file: String,
    /// The armored signature.
    pub signature: String,
}

/// The approval files of `version` for `environment`, by file name.
pub fn read_approvals(
    root: &Path,
    version: &PromptVersion,
    environment: &str,
) -> Vec<ApprovalFile> {
    let dir = approval_dir(version, environment);
    let Ok(entries) = std::fs::read_dir(root.join(&dir)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.ends_with(".sig"))
        .collect();
    names.sort();
    names.truncate(MAX_APPROVAL_FILES);
    names
        .into_iter()
        .map(|name| {
            let file = format!("{dir}/{name}");
            let signature = std::fs::read_to_string(root.join(&file)).unwrap_or_default();
            ApprovalFile { file, signature }
        })
        .collect()
}

/// The gate's verdict on one approval of `subject` for `environment`, under the registry
/// `registry_text`, with the signature checked natively.
pub fn judge_approval(
    subject: &ApprovalSubject,
    environment: &str,
    registry_text: Option<&str>,
    signature: &str,
) -> Decision {
    let input = GateInput {
        owner_keys: String::new(),
        accepted: registry_text.map(String::from),
        registry_changes: Vec::new(),
        environment: environment.to_string(),
        require_approvals: true,
        prompts: vec![subject.clone()],
        approvals: vec![SubmittedApproval {
            prompt: subject.prompt.clone(),
            signature: signature.to_string(),
        }],
        publisher: None,
        override_reason: None,
    };
    let results = verify_all(&gate::plan(&input).checks);
    // The accepted registry text was parsed already and the results match the plan, so the
    // decision cannot fail; a failure would read as a refusal all the same.
    gate::decide(&input, &results).unwrap_or_else(|error| Decision {
        allowed: false,
        reason: Some(gate::Reason::ApprovalInvalid),
        message: error.to_string(),
        registry_serial: 0,
        registry: None,
        problems: Vec::new(),
        approved: Vec::new(),
        overridden: false,
    })
}

/// Per environment, the reviewers whose signed approval of `version` holds under `registry`.
pub fn approved_by(
    repo: &Repo,
    version: &PromptVersion,
    registry: &LocalRegistry,
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let Ok(subject) = approval_subject(repo, version) else {
        return out;
    };
    for env in &repo.config.environments {
        let mut names: Vec<String> = read_approvals(&repo.root, version, &env.name)
            .iter()
            .map(|file| {
                judge_approval(
                    &subject,
                    &env.name,
                    registry.text.as_deref(),
                    &file.signature,
                )
            })
            .filter(|decision| decision.allowed)
            .flat_map(|decision| decision.approved.into_iter().flat_map(|a| a.by))
            .collect();
        names.sort();
        names.dedup();
        if !names.is_empty() {
            out.insert(env.name.clone(), names);
        }
    }
    out
}

/// Lint's signature checks: the registry chain, every approval file (an error when it does not
/// hold, with its reason), typed approvals left in metadata, and high-risk versions without an
/// approval where an environment requires one (a warning: publishing there refuses them).
pub fn lint(repo: &Repo, owner_keys: Option<&str>) -> Diagnostics {
    let mut out = Diagnostics::new();
    let registry = accepted_registry(&repo.root, owner_keys, &mut out);
    for version in repo.versions() {
        let metadata = &repo.families[&version.family].metadata_file;
        let name = version.reference();
        if let Some(line) = version.typed_approvals {
            out.error(
                metadata,
                line,
                "typed_approval",
                format!(
                    "{name}: `approvals` in metadata.yaml are typed names, which anyone can write, and no longer count; \
                     each reviewer signs instead with `promptflag approve {name} --env <env> --key <their ssh key>` \
                     (written to {}/<signer>.sig); commit those files and delete this list",
                    approval_dir(version, "<env>")
                ),
            );
        }
        let subject = match approval_subject(repo, version) {
            Ok(subject) => subject,
            // The missing body or schema is reported by the other checks.
            Err(_) => continue,
        };
        let high_risk = is_high_risk(version);
        for env in &repo.config.environments {
            let mut holding = 0;
            for file in read_approvals(&repo.root, version, &env.name) {
                let decision = judge_approval(
                    &subject,
                    &env.name,
                    registry.text.as_deref(),
                    &file.signature,
                );
                match decision.problems.first() {
                    None if decision.allowed => holding += 1,
                    None => out.error(&file.file, 1, "approval_invalid", decision.message),
                    Some(problem) => {
                        out.error(&file.file, 1, problem.reason.code(), problem.message())
                    }
                }
            }
            if high_risk && env.require_approvals && holding == 0 {
                out.warning(
                    metadata,
                    version.line,
                    "approval_missing",
                    format!(
                        "{name} is high risk and has no signed approval for {env} from a registered reviewer other than its author; \
                         publishing to {env} refuses it until one runs `promptflag approve {name} --env {env}`",
                        env = env.name
                    ),
                );
            }
        }
    }
    out
}

/// The throwaway development identities [`init_dev_keys`] makes.
pub const DEV_IDENTITIES: [&str; 3] = ["dev-owner", "dev-author", "dev-reviewer"];

/// What [`init_dev_keys`] wrote.
#[derive(Debug, Clone)]
pub struct DevKeys {
    /// Each identity's name and private key file.
    pub keys: Vec<(String, std::path::PathBuf)>,
    /// The root owner key file (one `ssh-ed25519` line: what the Worker's OWNER_KEYS holds).
    pub owner_keys_file: std::path::PathBuf,
    /// The root owner key line.
    pub owner_key_line: String,
    /// The registry file written (`governance/registry/1.json`).
    pub registry_file: String,
}

/// Generates throwaway keys for development (an owner that may also override and publish
/// everywhere, an author, and a reviewer that may publish everywhere) into `dir` as OpenSSH
/// files, and writes them as registry 1 of the repository at `root`, signed by the new owner,
/// whose public key is also written to `dir/owner_keys` for the Worker's OWNER_KEYS. Refuses to
/// replace an existing registry unless `force`.
pub fn init_dev_keys(
    root: &Path,
    dir: &Path,
    environments: &[String],
    force: bool,
) -> crate::Result<DevKeys> {
    use promptflag_governance::native::PrivateKey;
    use promptflag_governance::registry::Member;
    let io = |path: &Path, e: std::io::Error| crate::Error::io(path, e);
    let registry_dir = root.join(REGISTRY_DIR);
    let existing = read_registry_files(root, &mut Diagnostics::new());
    if !existing.is_empty() && !force {
        return Err(crate::Error::Invalid(format!(
            "{REGISTRY_DIR} already holds a registry; pass --force to replace it with throwaway dev keys"
        )));
    }
    for file in &existing {
        for path in [
            root.join(&file.file),
            root.join(format!("{}.sig", file.file)),
        ] {
            if path.exists() {
                std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    std::fs::create_dir_all(&registry_dir).map_err(|e| io(&registry_dir, e))?;
    let mut keys = Vec::new();
    let mut members = Vec::new();
    for name in DEV_IDENTITIES {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| crate::Error::Invalid(format!("no system randomness for a key: {e}")))?;
        let key = PrivateKey::from_seed(seed, name);
        let path = dir.join(name);
        write_private(
            &path,
            &key.to_openssh(u32::from_le_bytes([seed[0], seed[1], seed[2], seed[3]])),
        )?;
        let public = path.with_extension("pub");
        std::fs::write(&public, key.public_line() + "\n").map_err(|e| io(&public, e))?;
        let publishers = environments.iter().map(|env| Role::Publisher(env.clone()));
        let roles = match name {
            "dev-owner" => [Role::Owner, Role::Override]
                .into_iter()
                .chain(publishers)
                .collect(),
            "dev-author" => [Role::Author].into_iter().collect(),
            _ => [Role::Reviewer].into_iter().chain(publishers).collect(),
        };
        members.push(Member {
            name: name.to_string(),
            key: key.public_key(),
            roles,
        });
        keys.push((name.to_string(), path, key));
    }
    let registry = Registry { serial: 1, members };
    let text = registry.to_text();
    let registry_file = format!("{REGISTRY_DIR}/1.json");
    let registry_path = root.join(&registry_file);
    std::fs::write(&registry_path, &text).map_err(|e| io(&registry_path, e))?;
    let owner = &keys[0].2;
    let signature_path = root.join(format!("{registry_file}.sig"));
    std::fs::write(&signature_path, owner.sign(text.as_bytes()).to_armored())
        .map_err(|e| io(&signature_path, e))?;
    let owner_key_line = owner.public_line();
    let owner_keys_file = dir.join("owner_keys");
    std::fs::write(&owner_keys_file, format!("{owner_key_line}\n"))
        .map_err(|e| io(&owner_keys_file, e))?;
    Ok(DevKeys {
        keys: keys
            .into_iter()
            .map(|(name, path, _)| (name, path))
            .collect(),
        owner_keys_file,
        owner_key_line,
        registry_file,
    })
}

/// Writes a private key readable by its owner only (ssh-keygen refuses others).
fn write_private(path: &Path, text: &str) -> crate::Result<()> {
    let io = |e: std::io::Error| crate::Error::io(path, e);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io)
}

/// The gate input for publishing `environment` of `build`: the repository's registry files as
/// changes from none (the server passes its own `accepted` registry and root keys instead), the
/// approval subject of every prompt version the environment's ruleset names, and their approval
/// files. This is what the companion sends with a publish so that the server
/// decides with `gate::decide` on the same facts, and what it checks locally beforehand.
pub fn gate_input(
    repo: &Repo,
    build: &crate::build::Build,
    environment: &str,
    owner_keys: Option<&str>,
) -> crate::Result<GateInput> {
    let env = build.environments.get(environment).ok_or_else(|| {
        crate::Error::Invalid(format!("the build has no environment {environment:?}"))
    })?;
    let mut prompts = Vec::new();
    let mut approvals = Vec::new();
    for (content_id, _) in env.ruleset.prompts.iter() {
        let Some(version) = repo
            .versions()
            .find(|v| v.content_id(&repo.root).as_deref() == Some(content_id.as_str()))
        else {
            continue;
        };
        // The server asks for an approval of every body new to a gated environment, whatever
        // its risk (the ruleset carries none), so every version goes with its subject; only a
        // high-risk one must have one.
        let subject = match approval_subject(repo, version) {
            Ok(subject) => subject,
            Err(reason) if is_high_risk(version) => return Err(crate::Error::Invalid(reason)),
            Err(_) => continue,
        };
        for file in read_approvals(&repo.root, version, environment) {
            approvals.push(SubmittedApproval {
                prompt: subject.prompt.clone(),
                signature: file.signature,
            });
        }
        prompts.push(subject);
    }
    Ok(GateInput {
        owner_keys: owner_keys.unwrap_or_default().to_string(),
        accepted: None,
        registry_changes: read_registry_files(&repo.root, &mut Diagnostics::new())
            .into_iter()
            .map(|file| file.change)
            .collect(),
        environment: environment.to_string(),
        require_approvals: env.config.require_approvals,
        prompts,
        approvals,
        publisher: None,
        override_reason: None,
    })
}
