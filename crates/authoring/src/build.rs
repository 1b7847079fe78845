//! `promptflag build`: a repository becomes content-addressed prompt bodies and one ruleset per
//! environment, validated by `promptflag-core` before anything is written.
//!
//! Output (`<out>/`):
//!
//! ```text
//! manifest.json            source commit, per-environment content hashes, prompt metadata by
//!                          content id
//! rulesets/<env>.json      the ruleset of each environment (revision 0: publish assigns it)
//! prompts/<sha256>         each body, byte for byte, named by its SHA-256
//! fallback/<env>.json      each environment's fallback bundle: its ruleset text, that text's
//!                          SHA-256 and every body it names (the contracts' `bundle`)
//! ```
//!
//! Builds are reproducible: maps are sorted, JSON is written the same way every time, and
//! nothing time- or machine-dependent goes in. The only input besides the files is the source
//! commit (`git rev-parse HEAD`, `-dirty` appended for uncommitted changes, `unknown` outside
//! git), which `--source` can pin.

use std::collections::BTreeMap;
use std::path::Path;

use promptflag_core::model::{Entries, RawFlag, RawPrompt, RawRuleset, RawVariant};
use promptflag_core::{FlagKind, SCHEMA_VERSION};
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::error::{Error, Result};
use crate::evals::LoadedSuite;
use crate::repo::{CONFIG_FILE, EnvironmentConfig, PromptVersion, Repo, Targeting};
use crate::signatures;
use promptflag_contracts::admin::Problem;
use promptflag_contracts::bundle::Bundle;
use promptflag_contracts::digest::{content_hash_input, is_sha256_hex, sha256_hex};
use promptflag_core::RulesetError;

/// What went into a build besides the repository files.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Pins the source stamp instead of asking git.
    pub source: Option<String>,
    /// Builds only these environments (all declared ones when empty).
    pub environments: Vec<String>,
    /// The root owner keys the registry's first change is checked against (`ssh-ed25519`
    /// lines); without them, registry 1's own owners (see `signatures`).
    pub owner_keys: Option<String>,
}

/// A prompt body and the metadata publish gates need.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PromptArtifact {
    /// The prompt id.
    pub id: String,
    /// The semantic version.
    pub version: String,
    /// The SHA-256 of the body, which names it under `prompts/` and in KV.
    pub body_sha256: String,
    /// The body file it came from.
    pub file: String,
    /// `low` | `medium` | `high`.
    pub risk: String,
    /// `draft` | `canary` | `production` | `archived`.
    pub status: String,
    /// Who wrote it.
    pub author: String,
    /// Per environment, the registered reviewers (not the author) whose signed approval of this
    /// exact content holds (`approvals/`, checked against the signed registry).
    pub approved_by: BTreeMap<String, Vec<String>>,
    /// The content id (body and model configuration) eval results are keyed by.
    #[serde(default)]
    pub content_id: String,
    /// The hash of the family's eval suite (`evals/<family>/eval.yaml`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_suite: Option<String>,
    /// The body bytes.
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// One environment's ruleset.
#[derive(Debug, Clone)]
pub struct EnvBuild {
    /// The environment's settings from `promptflag.yaml` (gates).
    pub config: EnvironmentConfig,
    /// The ruleset (revision 0).
    pub ruleset: RawRuleset,
    /// Its content hash (see [`content_hash`]).
    pub content_hash: String,
}

/// A whole build.
#[derive(Debug, Clone)]
pub struct Build {
    /// The source stamp.
    pub source: String,
    /// Rulesets by environment.
    pub environments: BTreeMap<String, EnvBuild>,
    /// Prompt versions by content id (those any ruleset of the build names), each with its body.
    pub prompts: BTreeMap<String, PromptArtifact>,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// The manifest format version.
    pub schema: u32,
    /// The source stamp.
    pub source: String,
    /// Per environment: the content hash, the number of flags and prompts.
    pub environments: BTreeMap<String, ManifestEnvironment>,
    /// Prompt version metadata by content id.
    pub prompts: BTreeMap<String, PromptArtifact>,
}

/// One environment in the manifest.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ManifestEnvironment {
    /// The environment's gates, as `promptflag.yaml` set them.
    #[serde(flatten)]
    pub config: EnvironmentConfig,
    /// The ruleset's content hash.
    pub content_hash: String,
    /// Flags in the ruleset.
    pub flags: usize,
    /// Prompt versions the ruleset names.
    pub prompts: usize,
}

/// The content hash of a ruleset: SHA-256 of its canonical JSON with `environment`, `revision`,
/// `source` and the runtime decisions' records (`runtime`) removed. Two environments serve the
/// same thing exactly when their content hashes are equal, which is what the staging-before-prod
/// gate compares, and a build reproduces what is live exactly when its content hash is the live
/// one's.
pub fn content_hash(ruleset: &RawRuleset) -> Result<String> {
    let value = serde_json::to_value(ruleset)
        .map_err(|e| Error::Invalid(format!("cannot serialize a ruleset: {e}")))?;
    Ok(sha256_hex(content_hash_input(&value).as_bytes()))
}

/// The ruleset as written to `rulesets/<env>.json`: pretty JSON and a final newline.
pub fn ruleset_file_text(ruleset: &RawRuleset) -> Result<String> {
    let mut text = serde_json::to_string_pretty(ruleset)
        .map_err(|e| Error::Invalid(format!("cannot serialize a ruleset: {e}")))?;
    text.push('\n');
    Ok(text)
}

/// The ruleset as published: compact JSON.
pub fn ruleset_publish_bytes(ruleset: &RawRuleset) -> Result<Vec<u8>> {
    serde_json::to_vec(ruleset)
        .map_err(|e| Error::Invalid(format!("cannot serialize a ruleset: {e}")))
}

/// Maps ruleset paths (`flags.x.rules[0].when[1]`) to the file and line they were written at.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    entries: Vec<(String, String, u32)>,
}

impl SourceMap {
    fn add(&mut self, path: String, file: &str, line: u32) {
        self.entries.push((path, file.to_string(), line));
    }

    /// The file and line of the longest recorded path that is a prefix of `path` on a
    /// component boundary.
    pub fn locate(&self, path: &str) -> Option<(&str, u32)> {
        self.entries
            .iter()
            .filter(|(prefix, _, _)| {
                path.starts_with(prefix.as_str())
                    && matches!(
                        path.as_bytes().get(prefix.len()),
                        None | Some(b'.') | Some(b'[')
                    )
            })
            .max_by_key(|(prefix, _, _)| prefix.len())
            .map(|(_, file, line)| (file.as_str(), *line))
    }
}

fn add_targeting(
    map: &mut SourceMap,
    flag_path: &str,
    file: &str,
    targeting: &Targeting,
    part: &str,
) {
    for (path, line) in &targeting.locations {
        if path == part
            || path.starts_with(&format!("{part}["))
            || path.starts_with(&format!("{part}."))
        {
            map.add(format!("{flag_path}.{path}"), file, *line);
        }
    }
}

/// Assembles the ruleset of one environment (revision 0). Problems the repository alone can
/// show (an unknown prompt reference) are diagnostics; core validation is [`validate`]'s.
pub fn assemble(
    repo: &Repo,
    environment: &str,
    source: &str,
) -> (RawRuleset, SourceMap, Diagnostics) {
    let mut diagnostics = Diagnostics::new();
    let mut map = SourceMap::default();
    map.add(String::from("$"), CONFIG_FILE, 1);
    let mut prompts: BTreeMap<String, RawPrompt> = BTreeMap::new();
    let mut flags = Entries::default();
    for (key, flag) in &repo.flags {
        let flag_path = format!("flags.{key}");
        map.add(flag_path.clone(), &flag.file, 1);
        let Some(kind) = &flag.kind else {
            continue;
        };
        if let Some(baseline) = &flag.baseline {
            map.add(format!("{flag_path}.baseline"), &flag.file, baseline.line);
        }
        let mut variants = Entries::default();
        for variant in &flag.variants {
            let vpath = format!("{flag_path}.variants.{}", variant.name.value);
            map.add(vpath.clone(), &flag.file, variant.name.line);
            let mut raw = RawVariant {
                value: variant.value.clone(),
                prompt: None,
            };
            if kind.value == FlagKind::Prompt {
                match &variant.prompt {
                    Some(reference) => {
                        map.add(format!("{vpath}.prompt"), &flag.file, reference.line);
                        match repo.resolve(&reference.value) {
                            Some(version) => {
                                if let Some(content_id) = version.content_id(&repo.root) {
                                    raw.prompt = Some(content_id.clone());
                                    prompts.insert(content_id, raw_prompt(repo, version));
                                }
                            }
                            None => diagnostics.error(
                                &flag.file,
                                reference.line,
                                "unknown_prompt",
                                format!(
                                    "{:?} names no prompt version; write <family>@<version> with a family folder under prompts/ and a version listed in its metadata.yaml",
                                    reference.value
                                ),
                            ),
                        }
                    }
                    None => diagnostics.error(
                        &flag.file,
                        variant.name.line,
                        "missing_field",
                        format!(
                            "variant {:?} of a prompt flag needs `prompt: <family>@<version>`",
                            variant.name.value
                        ),
                    ),
                }
            }
            variants.insert(variant.name.value.clone(), raw);
        }
        // An environment override replaces each part it names; the rest comes from the top level.
        let overrides = flag
            .environments
            .get(environment)
            .map(|(_, targeting)| targeting);
        let pick = |part: &str| -> &Targeting {
            match overrides {
                Some(o)
                    if match part {
                        "enabled" => o.enabled.is_some(),
                        "rules" => o.rules.is_some(),
                        _ => o.default.is_some(),
                    } =>
                {
                    o
                }
                _ => &flag.targeting,
            }
        };
        for part in ["enabled", "rules", "default"] {
            add_targeting(&mut map, &flag_path, &flag.file, pick(part), part);
        }
        flags.insert(
            key.clone(),
            RawFlag {
                kind: kind.value,
                description: flag.description.clone(),
                variants,
                baseline: flag
                    .baseline
                    .as_ref()
                    .map(|b| b.value.clone())
                    .unwrap_or_default(),
                enabled: pick("enabled").enabled.as_ref().is_none_or(|e| e.value),
                rules: pick("rules")
                    .rules
                    .as_ref()
                    .map(|r| r.value.clone())
                    .unwrap_or_default(),
                default: pick("default").default.as_ref().map(|d| d.value.clone()),
            },
        );
    }
    let mut segments = Entries::default();
    for (key, segment) in &repo.segments {
        let path = format!("segments.{key}");
        map.add(path.clone(), &segment.file, 1);
        for (sub, line) in &segment.locations {
            map.add(format!("{path}.{sub}"), &segment.file, *line);
        }
        segments.insert(key.clone(), segment.raw.clone());
    }
    for version in repo.versions() {
        if let Some(content_id) = version.content_id(&repo.root) {
            map.add(
                format!("prompts.{content_id}"),
                &repo.families[&version.family].metadata_file,
                version.line,
            );
        }
    }
    let mut layers = Entries::default();
    for (name, (layer, line)) in &repo.config.layers {
        map.add(format!("layers.{name}"), CONFIG_FILE, *line);
        layers.0.push((name.clone(), layer.clone()));
    }
    let ruleset = RawRuleset {
        schema: SCHEMA_VERSION,
        environment: environment.to_string(),
        revision: 0,
        source: source.to_string(),
        prompts: Entries(prompts.into_iter().collect()),
        layers,
        segments,
        flags,
        runtime: Entries::default(),
    };
    (ruleset, map, diagnostics)
}

/// A version as the ruleset lists it: its body's hash, its model configuration and its status
/// (which an environment that serves no drafts checks on the server).
fn raw_prompt(repo: &Repo, version: &PromptVersion) -> RawPrompt {
    RawPrompt {
        body: version.sha256.clone(),
        id: family_id(repo, version),
        version: version.version.clone(),
        model: version.model_name().to_string(),
        parameters: Value::Object(version.parameter_map()),
        output_schema: version.output_schema_value(&repo.root),
        status: version.status.as_ref().map(|status| status.value.clone()),
    }
}

/// The prompt id of a version's family (its folder name when the metadata names none).
fn family_id(repo: &Repo, version: &PromptVersion) -> String {
    repo.families[&version.family]
        .id
        .as_ref()
        .map_or_else(|| version.family.clone(), |id| id.value.clone())
}

/// Validates an assembled ruleset with core, each problem located through the source map.
pub fn validate(ruleset: &RawRuleset, map: &SourceMap) -> Diagnostics {
    let mut diagnostics = Diagnostics::new();
    for problem in promptflag_core::validate(ruleset) {
        let (file, line) = map.locate(&problem.path).unwrap_or((CONFIG_FILE, 1));
        diagnostics.error(
            file,
            line,
            problem.code,
            format!("{} (at {})", problem.message, problem.path),
        );
    }
    diagnostics
}

/// Builds every environment (or those asked for). Fails with every problem when the repository
/// has lint errors or a ruleset does not validate.
pub fn build(
    repo: &Repo,
    lint_diagnostics: &[Diagnostic],
    options: &BuildOptions,
) -> Result<Build> {
    if lint_diagnostics.iter().any(Diagnostic::is_error) {
        return Err(Error::Problems {
            diagnostics: lint_diagnostics.to_vec(),
        });
    }
    let source = match &options.source {
        Some(source) => source.clone(),
        None => crate::git::source_of(&repo.root).stamp(),
    };
    let mut wanted: Vec<String> = repo
        .config
        .environments
        .iter()
        .map(|e| e.name.clone())
        .collect();
    if !options.environments.is_empty() {
        for env in &options.environments {
            if !wanted.contains(env) {
                return Err(Error::Invalid(format!(
                    "{env:?} is not an environment declared in promptflag.yaml ({})",
                    wanted.join(", ")
                )));
            }
        }
        wanted.retain(|env| options.environments.contains(env));
    }
    let mut suites = BTreeMap::new();
    for family in repo.families.keys() {
        if let Some(suite) = crate::evals::load_suite(&repo.root, family)? {
            suites.insert(family.clone(), suite);
        }
    }
    let mut diagnostics = Diagnostics::new();
    // The registry's problems are lint's to report; the build only counts the approvals that hold.
    let registry = signatures::accepted_registry(
        &repo.root,
        options.owner_keys.as_deref(),
        &mut Diagnostics::new(),
    );
    let mut build = Build {
        source: source.clone(),
        environments: BTreeMap::new(),
        prompts: BTreeMap::new(),
    };
    for env in wanted {
        let (ruleset, map, assembly) = assemble(repo, &env, &source);
        diagnostics.extend(assembly);
        diagnostics.extend(validate(&ruleset, &map));
        for (content_id, _) in ruleset.prompts.iter() {
            if let Some(version) = repo
                .versions()
                .find(|v| v.content_id(&repo.root).as_deref() == Some(content_id.as_str()))
            {
                build.prompts.insert(
                    content_id.clone(),
                    artifact(repo, &suites, version, &registry),
                );
            }
        }
        let content_hash = content_hash(&ruleset)?;
        let config = repo
            .config
            .environment(&env)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("{env:?} is not a declared environment")))?;
        build.environments.insert(
            env,
            EnvBuild {
                config,
                ruleset,
                content_hash,
            },
        );
    }
    if diagnostics.has_errors() {
        return Err(Error::Problems {
            diagnostics: diagnostics.into_sorted(),
        });
    }
    Ok(build)
}

fn artifact(
    repo: &Repo,
    suites: &BTreeMap<String, LoadedSuite>,
    version: &PromptVersion,
    registry: &signatures::LocalRegistry,
) -> PromptArtifact {
    let author = version
        .author
        .as_ref()
        .map(|a| a.value.clone())
        .unwrap_or_default();
    PromptArtifact {
        id: family_id(repo, version),
        version: version.version.clone(),
        body_sha256: version.sha256.clone().unwrap_or_default(),
        file: version.body_file.clone(),
        risk: version
            .risk
            .as_ref()
            .map(|r| r.value.clone())
            .unwrap_or_default(),
        status: version
            .status
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_default(),
        author,
        approved_by: signatures::approved_by(repo, version, registry),
        content_id: version.content_id(&repo.root).unwrap_or_default(),
        eval_suite: suites
            .get(&version.family)
            .map(|suite| suite.hash_for(repo, version)),
        body: version.body.clone().unwrap_or_default().into_bytes(),
    }
}

impl Build {
    /// The manifest describing this build.
    pub fn manifest(&self) -> Manifest {
        Manifest {
            schema: 1,
            source: self.source.clone(),
            environments: self
                .environments
                .iter()
                .map(|(env, build)| {
                    (
                        env.clone(),
                        ManifestEnvironment {
                            config: build.config.clone(),
                            content_hash: build.content_hash.clone(),
                            flags: build.ruleset.flags.len(),
                            prompts: build.ruleset.prompts.len(),
                        },
                    )
                })
                .collect(),
            prompts: self.prompts.clone(),
        }
    }

    /// The fallback bundle of an environment: its ruleset exactly as `rulesets/<env>.json`
    /// holds it, and every body it names.
    pub fn bundle(&self, environment: &str) -> Result<Bundle> {
        let env = self.environments.get(environment).ok_or_else(|| {
            Error::Invalid(format!("the build has no ruleset for {environment:?}"))
        })?;
        let mut bodies = BTreeMap::new();
        for (content_id, _) in env.ruleset.prompts.iter() {
            if let Some(prompt) = self.prompts.get(content_id) {
                bodies.insert(
                    prompt.body_sha256.clone(),
                    String::from_utf8_lossy(&prompt.body).into_owned(),
                );
            }
        }
        let bundle = Bundle::new(
            environment,
            &self.source,
            ruleset_file_text(&env.ruleset)?,
            bodies,
        );
        bundle.verify().map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(bundle)
    }

    /// Writes the build to `out`, replacing an earlier build there.
    pub fn write(&self, out: &Path) -> Result<()> {
        for sub in ["rulesets", "prompts", "fallback"] {
            let dir = out.join(sub);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            }
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        for (env, build) in &self.environments {
            let path = out.join("rulesets").join(format!("{env}.json"));
            std::fs::write(&path, ruleset_file_text(&build.ruleset)?)
                .map_err(|e| Error::io(&path, e))?;
        }
        for prompt in self.prompts.values() {
            let path = out.join("prompts").join(&prompt.body_sha256);
            std::fs::write(&path, &prompt.body).map_err(|e| Error::io(&path, e))?;
        }
        for env in self.environments.keys() {
            let path = out.join("fallback").join(format!("{env}.json"));
            let mut text = serde_json::to_string_pretty(&self.bundle(env)?)
                .map_err(|e| Error::Invalid(e.to_string()))?;
            text.push('\n');
            std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        }
        let path = out.join("manifest.json");
        let mut text = serde_json::to_string_pretty(&self.manifest())
            .map_err(|e| Error::Invalid(e.to_string()))?;
        text.push('\n');
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        Ok(())
    }

    /// Reads a build written by [`Build::write`], checking every body against its hash and
    /// every ruleset with core.
    pub fn read(dir: &Path) -> Result<Build> {
        let manifest_path = dir.join("manifest.json");
        let text =
            std::fs::read_to_string(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!(
                "{}: not a promptflag build manifest: {e}",
                manifest_path.display()
            ))
        })?;
        let mut build = Build {
            source: manifest.source.clone(),
            environments: BTreeMap::new(),
            prompts: BTreeMap::new(),
        };
        for (content_id, mut prompt) in manifest.prompts {
            if !is_sha256_hex(&prompt.body_sha256) {
                return Err(Error::Invalid(format!(
                    "{}: prompt {content_id} names no body hash",
                    manifest_path.display()
                )));
            }
            let path = dir.join("prompts").join(&prompt.body_sha256);
            prompt.body = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            if sha256_hex(&prompt.body) != prompt.body_sha256 {
                return Err(Error::Invalid(format!(
                    "{}: the body does not hash to its name",
                    path.display()
                )));
            }
            build.prompts.insert(content_id, prompt);
        }
        for (env, described) in manifest.environments {
            let path = dir.join("rulesets").join(format!("{env}.json"));
            let ruleset = read_ruleset_file(&path)?;
            let content_hash = content_hash(&ruleset)?;
            if content_hash != described.content_hash {
                return Err(Error::Invalid(format!(
                    "{}: the ruleset does not match the manifest's content hash",
                    path.display()
                )));
            }
            let mut config = described.config;
            config.name = env.clone();
            build.environments.insert(
                env,
                EnvBuild {
                    config,
                    ruleset,
                    content_hash,
                },
            );
        }
        Ok(build)
    }
}

/// Reads a ruleset JSON file and validates it with core.
pub fn read_ruleset_file(path: &Path) -> Result<RawRuleset> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_ruleset(&bytes).map_err(|error| Error::Ruleset {
        source_name: path.display().to_string(),
        summary: error.to_string(),
        problems: error.problems().iter().map(Problem::from).collect(),
    })
}

/// Parses and validates ruleset JSON; the error lists every one of core's problems.
pub fn parse_ruleset(bytes: &[u8]) -> std::result::Result<RawRuleset, RulesetError> {
    let raw: RawRuleset = serde_json::from_slice(bytes).map_err(|e| RulesetError::Syntax {
        message: format!("not a ruleset: {e}"),
    })?;
    promptflag_core::compile(&raw)?;
    Ok(raw)
}
