//! The prompt repository (`docs/companion.md`), loaded from disk into typed, located sources.
//!
//! ```text
//! promptflag.yaml                     repo config: environments, lint limits
//! prompts/<family>/<version>.md       a prompt body (the full template)
//! prompts/<family>/metadata.yaml      per-family and per-version metadata
//! flags/<flag>.yaml                   variants, rules, splits, kill switch, per-environment overrides
//! rollouts/<flag>.yaml                rollout policy (see `rollout`)
//! segments/<segment>.yaml             named cohorts
//! ```
//!
//! Loading records structural problems (syntax, wrong types, unknown fields, missing files) as
//! diagnostics and keeps going, so one run reports everything. Whether the metadata is complete
//! and consistent is `lint`'s business; turning sources into rulesets is `build`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use promptflag_core::FlagKind;
use promptflag_core::model::{
    RawCondition, RawLayer, RawLayerRange, RawRule, RawSegment, RawServe, RawSplit, RawTreatment,
};
use serde_json::Value;

use crate::diagnostic::Diagnostics;
use crate::error::{Error, Result};
use crate::policy::{self, RolloutPolicy};
use crate::yaml::{self, Located, Node, Reader, get};
use promptflag_contracts::digest::sha256_hex;
use promptflag_contracts::prompt::PromptIdentity;

/// The repo config file at the repository root.
pub const CONFIG_FILE: &str = "promptflag.yaml";

/// A loaded repository.
#[derive(Debug, Clone)]
pub struct Repo {
    /// The repository folder.
    pub root: PathBuf,
    /// `promptflag.yaml`.
    pub config: RepoConfig,
    /// Prompt families by folder name.
    pub families: BTreeMap<String, Family>,
    /// Flags by key (the file stem).
    pub flags: BTreeMap<String, FlagSource>,
    /// Segments by key (the file stem).
    pub segments: BTreeMap<String, SegmentSource>,
    /// Rollout policies by flag key (the file stem).
    pub rollouts: BTreeMap<String, RolloutSource>,
}

/// `promptflag.yaml`.
#[derive(Debug, Clone, Default)]
pub struct RepoConfig {
    /// The environments, in promotion order.
    pub environments: Vec<EnvironmentConfig>,
    /// Phrases no prompt body may contain (compared without regard to case).
    pub forbidden_phrases: Vec<Located<String>>,
    /// The longest body allowed, in characters.
    pub max_length: Option<Located<usize>>,
    /// Layers (mutually exclusive experiments) by name, with the line each is declared at.
    pub layers: BTreeMap<String, (RawLayer, u32)>,
}

impl RepoConfig {
    /// The environment named `name`.
    pub fn environment(&self, name: &str) -> Option<&EnvironmentConfig> {
        self.environments.iter().find(|env| env.name == name)
    }
}

/// One environment of `promptflag.yaml`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EnvironmentConfig {
    /// `dev`, `staging`, `prod`, …
    #[serde(skip)]
    pub name: String,
    /// The line it is declared at.
    #[serde(skip)]
    pub line: u32,
    /// A publish here needs the same ruleset content published to this environment first.
    pub promote_from: Option<String>,
    /// High-risk prompts need an approval from a reviewer who is not the author.
    pub require_approvals: bool,
    /// Prompts with status `draft` may be served.
    pub allow_drafts: bool,
    /// Every prompt served needs a passing eval result for its content id (`docs/evals.md`).
    #[serde(default)]
    pub require_evals: bool,
}

/// A prompt family: `prompts/<family>/`.
#[derive(Debug, Clone)]
pub struct Family {
    /// The folder name.
    pub dir: String,
    /// `prompts/<family>/metadata.yaml`, relative to the root.
    pub metadata_file: String,
    /// The prompt id.
    pub id: Option<Located<String>>,
    /// The flag that serves this family.
    pub flag: Option<Located<String>>,
    /// Who owns the family (a person or a team address).
    pub owner: Option<Located<String>>,
    /// The staleness SLA: the date (`YYYY-MM-DD`) by which the family must be reviewed again.
    pub review_by: Option<Located<String>>,
    /// The date (`YYYY-MM-DD`) after which the family should be deleted.
    pub delete_after: Option<Located<String>>,
    /// The versions, sorted by semantic version.
    pub versions: Vec<PromptVersion>,
    /// False when `metadata.yaml` is missing or does not parse.
    pub loaded: bool,
}

/// One prompt version: a body and its metadata (family defaults merged in).
#[derive(Debug, Clone)]
pub struct PromptVersion {
    /// The family folder.
    pub family: String,
    /// The version text (the key under `versions:`).
    pub version: String,
    /// The metadata line of the version key.
    pub line: u32,
    /// The body file, relative to the root.
    pub body_file: String,
    /// The body, when the file exists and is UTF-8.
    pub body: Option<String>,
    /// SHA-256 of the body bytes.
    pub sha256: Option<String>,
    /// Who wrote this version.
    pub author: Option<Located<String>>,
    /// Who reviews it.
    pub reviewers: Option<Located<Vec<Located<String>>>>,
    /// `low` | `medium` | `high`, unchecked.
    pub risk: Option<Located<String>>,
    /// `draft` | `canary` | `production` | `archived`, unchecked.
    pub status: Option<Located<String>>,
    /// The line of an `approvals:` list written in the metadata: the typed `{by, sha256}`
    /// approvals of earlier releases, which count for nothing now (approvals are signatures
    /// under `approvals/`, see `signatures`).
    pub typed_approvals: Option<u32>,
    /// The model name (version value over family value).
    pub model: Option<Located<String>>,
    /// Model parameters (family parameters with the version's merged over them).
    pub parameters: Option<Located<serde_json::Map<String, Value>>>,
    /// Declared template variables (version list over family list).
    pub variables: Option<Located<Vec<Located<String>>>>,
    /// The output JSON schema, if any.
    pub output_schema: Option<OutputSchema>,
}

impl PromptVersion {
    /// `family@version`, the way flags refer to it.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.family, self.version)
    }

    /// The output schema as JSON: inline, or read from its file under the family folder.
    /// `None` when there is none or it cannot be read or parsed (lint reports those).
    pub fn output_schema_value(&self, root: &Path) -> Option<Value> {
        match self.output_schema.as_ref()? {
            OutputSchema::Inline { schema, .. } => Some(schema.clone()),
            OutputSchema::File { path, .. } => {
                let text =
                    std::fs::read_to_string(root.join("prompts").join(&self.family).join(path))
                        .ok()?;
                if path.ends_with(".json") {
                    serde_json::from_str(&text).ok()
                } else {
                    yaml::parse(&text)
                        .ok()
                        .map(|node| yaml::to_json(&node.value))
                }
            }
        }
    }

    /// The model name, empty when none is set.
    pub fn model_name(&self) -> &str {
        self.model.as_ref().map_or("", |model| model.value.as_str())
    }

    /// The model parameters, empty when none are set.
    pub fn parameter_map(&self) -> serde_json::Map<String, Value> {
        self.parameters
            .as_ref()
            .map(|parameters| parameters.value.clone())
            .unwrap_or_default()
    }

    /// The version's content id (the contracts' body hash + model configuration), when its
    /// body was read.
    pub fn content_id(&self, root: &Path) -> Option<String> {
        let body_sha256 = self.sha256.as_deref()?;
        let parameters = self.parameter_map();
        let schema = self.output_schema_value(root);
        Some(
            PromptIdentity {
                body_sha256,
                model: self.model_name(),
                parameters: &parameters,
                output_schema: schema.as_ref(),
            }
            .content_id(),
        )
    }
}

/// Where an output schema comes from.
#[derive(Debug, Clone)]
pub enum OutputSchema {
    /// Written inline in the metadata.
    Inline {
        /// The schema.
        schema: Value,
        /// Where.
        line: u32,
    },
    /// A JSON or YAML file next to the metadata.
    File {
        /// The path as written (relative to the family folder).
        path: String,
        /// Where the path is written.
        line: u32,
        /// Where it was declared.
        declared_in: String,
    },
}

/// A flag file's content, before environments are applied.
#[derive(Debug, Clone)]
pub struct FlagSource {
    /// The key (file stem).
    pub key: String,
    /// `flags/<key>.yaml`.
    pub file: String,
    /// The flag's kind.
    pub kind: Option<Located<FlagKind>>,
    /// Free text.
    pub description: String,
    /// Who owns the flag (for prompt flags, the family's owner when unset).
    pub owner: Option<Located<String>>,
    /// The staleness SLA: the date (`YYYY-MM-DD`) by which the flag must be reviewed again.
    pub review_by: Option<Located<String>>,
    /// The date (`YYYY-MM-DD`) after which the flag should be removed.
    pub delete_after: Option<Located<String>>,
    /// The baseline variant.
    pub baseline: Option<Located<String>>,
    /// The variants, in file order.
    pub variants: Vec<VariantSource>,
    /// `enabled`, `rules` and `default` as written at the top level.
    pub targeting: Targeting,
    /// Per-environment overrides of `enabled`, `rules` and `default`.
    pub environments: BTreeMap<String, (u32, Targeting)>,
    /// False when the file does not parse (the flag exists, but nothing more is known).
    pub loaded: bool,
}

/// A variant as written.
#[derive(Debug, Clone)]
pub struct VariantSource {
    /// Its name.
    pub name: Located<String>,
    /// `family@version`, for prompt flags.
    pub prompt: Option<Located<String>>,
    /// The value, for other flags.
    pub value: Option<Value>,
}

/// The parts of a flag an environment can override.
#[derive(Debug, Clone, Default)]
pub struct Targeting {
    /// The kill switch.
    pub enabled: Option<Located<bool>>,
    /// The rules, with the line of `rules:`.
    pub rules: Option<Located<Vec<RawRule>>>,
    /// The default serve.
    pub default: Option<Located<RawServe>>,
    /// Lines of the parts, keyed by ruleset path relative to the flag (`rules[0].when[1]`).
    pub locations: Vec<(String, u32)>,
}

/// A segment file.
#[derive(Debug, Clone)]
pub struct SegmentSource {
    /// The key (file stem).
    pub key: String,
    /// `segments/<key>.yaml`.
    pub file: String,
    /// The segment as the ruleset carries it.
    pub raw: RawSegment,
    /// Lines, keyed by ruleset path relative to the segment.
    pub locations: Vec<(String, u32)>,
}

/// A rollout policy file.
#[derive(Debug, Clone)]
pub struct RolloutSource {
    /// The flag key (file stem).
    pub flag: String,
    /// `rollouts/<flag>.yaml`.
    pub file: String,
    /// The policy, when it decoded.
    pub policy: Option<RolloutPolicy>,
    /// The line of `treatment:`, for cross-checks.
    pub treatment_line: u32,
}

/// Loads a repository; the diagnostics list every structural problem found.
pub fn load(root: &Path) -> Result<(Repo, Diagnostics)> {
    if !root.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is not a directory (pass the prompt repository with --repo)",
            root.display()
        )));
    }
    let mut diagnostics = Diagnostics::new();
    let config = load_config(root, &mut diagnostics)?;
    let mut repo = Repo {
        root: root.to_path_buf(),
        config,
        families: BTreeMap::new(),
        flags: BTreeMap::new(),
        segments: BTreeMap::new(),
        rollouts: BTreeMap::new(),
    };
    for dir in list_dirs(&root.join("prompts"))? {
        let family = load_family(root, &dir, &mut diagnostics)?;
        repo.families.insert(dir, family);
    }
    for (key, file) in list_yaml(root, "flags", &mut diagnostics)? {
        let flag = match read_yaml(root, &file, &mut diagnostics)? {
            Some(node) => decode_flag(&key, &file, &node, &repo.config, &mut diagnostics),
            None => FlagSource {
                key: key.clone(),
                file: file.clone(),
                kind: None,
                description: String::new(),
                owner: None,
                review_by: None,
                delete_after: None,
                baseline: None,
                variants: Vec::new(),
                targeting: Targeting::default(),
                environments: BTreeMap::new(),
                loaded: false,
            },
        };
        repo.flags.insert(key, flag);
    }
    for (key, file) in list_yaml(root, "segments", &mut diagnostics)? {
        if let Some(node) = read_yaml(root, &file, &mut diagnostics)? {
            let segment = decode_segment(&key, &file, &node, &mut diagnostics);
            repo.segments.insert(key, segment);
        }
    }
    for (key, file) in list_yaml(root, "rollouts", &mut diagnostics)? {
        if let Some(node) = read_yaml(root, &file, &mut diagnostics)? {
            let rollout = decode_rollout(&key, file, &node, &mut diagnostics);
            repo.rollouts.insert(key, rollout);
        }
    }
    Ok((repo, diagnostics))
}

/// The YAML files of a repository, by what they declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YamlKind {
    /// `promptflag.yaml`.
    Config,
    /// `flags/<key>.yaml`.
    Flag,
    /// `segments/<key>.yaml`.
    Segment,
    /// `rollouts/<key>.yaml`.
    Rollout,
}

/// Reads one YAML file's text into `repo` in memory, as [`load`] reads that file from disk:
/// parsed, decoded by the same functions, its problems added to `diagnostics`, and what it
/// declares put in place of `repo`'s (`key` is the file's stem). Nothing is read or written on
/// disk, so the loader can be driven with any text (the prompt-repository fuzz target does).
pub fn read_yaml_text(
    repo: &mut Repo,
    kind: YamlKind,
    key: &str,
    text: &str,
    diagnostics: &mut Diagnostics,
) {
    let file = match kind {
        YamlKind::Config => String::from(CONFIG_FILE),
        YamlKind::Flag => format!("flags/{key}.yaml"),
        YamlKind::Segment => format!("segments/{key}.yaml"),
        YamlKind::Rollout => format!("rollouts/{key}.yaml"),
    };
    let node = match yaml::parse(text) {
        Ok(node) => node,
        Err(error) => {
            diagnostics.error(&file, error.line, "yaml_syntax", error.message);
            return;
        }
    };
    match kind {
        YamlKind::Config => repo.config = decode_config(&node, diagnostics),
        YamlKind::Flag => {
            let flag = decode_flag(key, &file, &node, &repo.config, diagnostics);
            repo.flags.insert(String::from(key), flag);
        }
        YamlKind::Segment => {
            let segment = decode_segment(key, &file, &node, diagnostics);
            repo.segments.insert(String::from(key), segment);
        }
        YamlKind::Rollout => {
            let rollout = decode_rollout(key, file, &node, diagnostics);
            repo.rollouts.insert(String::from(key), rollout);
        }
    }
}

/// A rollout file, parsed, as the policy of the flag `key`.
fn decode_rollout(
    key: &str,
    file: String,
    node: &Located<Node>,
    diagnostics: &mut Diagnostics,
) -> RolloutSource {
    let mut reader = Reader::new(file.clone(), diagnostics);
    let (policy, treatment_line) = policy::decode(key, node, &mut reader);
    RolloutSource {
        flag: String::from(key),
        file,
        policy,
        treatment_line,
    }
}

fn list_dirs(path: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if !path.is_dir() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
        let entry = entry.map_err(|e| Error::io(path, e))?;
        if entry.path().is_dir()
            && let Some(name) = entry.file_name().to_str()
            && !name.starts_with('.')
        {
            out.push(name.to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// The `*.yaml` / `*.yml` files of a folder, as (stem, relative path), sorted.
fn list_yaml(
    root: &Path,
    folder: &str,
    diagnostics: &mut Diagnostics,
) -> Result<Vec<(String, String)>> {
    let path = root.join(folder);
    let mut out: Vec<(String, String)> = Vec::new();
    if !path.is_dir() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(&path).map_err(|e| Error::io(&path, e))? {
        let entry = entry.map_err(|e| Error::io(&path, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Some(stem) = name
            .strip_suffix(".yaml")
            .or_else(|| name.strip_suffix(".yml"))
        else {
            continue;
        };
        let file = format!("{folder}/{name}");
        if out.iter().any(|(existing, _)| existing == stem) {
            diagnostics.error(
                &file,
                1,
                "duplicate_key",
                format!("{stem:?} is defined by two files in {folder}/"),
            );
            continue;
        }
        out.push((stem.to_string(), file));
    }
    out.sort();
    Ok(out)
}

/// Reads and parses a YAML file; a syntax error becomes a diagnostic and `None`.
fn read_yaml(
    root: &Path,
    file: &str,
    diagnostics: &mut Diagnostics,
) -> Result<Option<Located<Node>>> {
    let path = root.join(file);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let Ok(text) = String::from_utf8(bytes) else {
        diagnostics.error(file, 1, "not_utf8", "the file is not UTF-8 text");
        return Ok(None);
    };
    match yaml::parse(&text) {
        Ok(node) => Ok(Some(node)),
        Err(error) => {
            diagnostics.error(file, error.line, "yaml_syntax", error.message);
            Ok(None)
        }
    }
}

fn load_config(root: &Path, diagnostics: &mut Diagnostics) -> Result<RepoConfig> {
    let config = RepoConfig::default();
    if !root.join(CONFIG_FILE).is_file() {
        diagnostics.error(
            CONFIG_FILE,
            1,
            "missing_file",
            format!(
                "{} has no promptflag.yaml (it declares the environments and lint limits): run \
                 from the prompt repository or pass --repo DIR",
                root.display()
            ),
        );
        return Ok(config);
    }
    let Some(node) = read_yaml(root, CONFIG_FILE, diagnostics)? else {
        return Ok(config);
    };
    Ok(decode_config(&node, diagnostics))
}

/// `promptflag.yaml`, parsed, as the repository's configuration.
fn decode_config(node: &Located<Node>, diagnostics: &mut Diagnostics) -> RepoConfig {
    let mut config = RepoConfig::default();
    let mut reader = Reader::new(CONFIG_FILE, diagnostics);
    let Some(entries) = reader.map(node, "promptflag.yaml") else {
        return config;
    };
    reader.unknown_keys(
        entries,
        &["schema", "environments", "lint", "layers"],
        "promptflag.yaml",
    );
    if let Some(layers) = get(entries, "layers")
        && let Some(layers) = reader.map(layers, "layers")
    {
        for (name, body) in layers {
            let what = format!("layers.{}", name.value);
            let mut layer = RawLayer {
                bucket_by: None,
                description: String::new(),
            };
            if !matches!(body.value, Node::Null)
                && let Some(fields) = reader.map(body, &what)
            {
                reader.unknown_keys(fields, &["bucket_by", "description"], &what);
                layer.bucket_by = reader
                    .optional_str(fields, "bucket_by", &what)
                    .map(|b| b.value);
                if let Some(description) = reader.optional_str(fields, "description", &what) {
                    layer.description = description.value;
                }
            }
            config.layers.insert(name.value.clone(), (layer, name.line));
        }
    }
    if let Some(schema) = get(entries, "schema")
        && schema.value != Node::Int(1)
    {
        reader.error(
            schema.line,
            "unsupported_schema",
            "this companion reads repo config schema 1",
        );
    }
    match get(entries, "environments") {
        None => reader.error(
            node.line,
            "missing_field",
            "promptflag.yaml is missing `environments`",
        ),
        Some(envs_node) => {
            if let Some(envs) = reader.map(envs_node, "environments") {
                for (name, body) in envs {
                    let mut env = EnvironmentConfig {
                        name: name.value.clone(),
                        line: name.line,
                        promote_from: None,
                        require_approvals: false,
                        allow_drafts: true,
                        require_evals: false,
                    };
                    let what = format!("environments.{}", name.value);
                    if !matches!(body.value, Node::Null)
                        && let Some(fields) = reader.map(body, &what)
                    {
                        reader.unknown_keys(
                            fields,
                            &[
                                "promote_from",
                                "require_approvals",
                                "allow_drafts",
                                "require_evals",
                            ],
                            &what,
                        );
                        env.promote_from = reader
                            .optional_str(fields, "promote_from", &what)
                            .map(|l| l.value);
                        if let Some(flag) = reader.optional_bool(fields, "require_approvals", &what)
                        {
                            env.require_approvals = flag.value;
                        }
                        if let Some(flag) = reader.optional_bool(fields, "allow_drafts", &what) {
                            env.allow_drafts = flag.value;
                        }
                        if let Some(flag) = reader.optional_bool(fields, "require_evals", &what) {
                            env.require_evals = flag.value;
                        }
                    }
                    config.environments.push(env);
                }
                let names: Vec<String> =
                    config.environments.iter().map(|e| e.name.clone()).collect();
                for env in &config.environments {
                    if let Some(from) = &env.promote_from
                        && (!names.contains(from) || from == &env.name)
                    {
                        reader.error(
                            env.line,
                            "unknown_environment",
                            format!("environment {:?} is promoted from {from:?}, which is not another declared environment", env.name),
                        );
                    }
                }
                if config.environments.is_empty() {
                    reader.error(
                        envs_node.line,
                        "missing_field",
                        "declare at least one environment",
                    );
                }
            }
        }
    }
    if let Some(lint) = get(entries, "lint")
        && let Some(fields) = reader.map(lint, "lint")
    {
        reader.unknown_keys(fields, &["forbidden_phrases", "max_length"], "lint");
        if let Some(phrases) = get(fields, "forbidden_phrases") {
            config.forbidden_phrases = reader.string_list(phrases, "lint.forbidden_phrases");
        }
        if let Some(max) = get(fields, "max_length") {
            match max.value {
                Node::Int(number) if number > 0 => {
                    config.max_length = Some(Located {
                        value: usize::try_from(number).unwrap_or(usize::MAX),
                        line: max.line,
                        column: max.column,
                    });
                }
                _ => reader.error(
                    max.line,
                    "wrong_type",
                    "lint.max_length must be a positive integer (characters)",
                ),
            }
        }
    }
    config
}

/// Semantic-version sort key, so `1.10.0` comes after `1.9.0`; unparsable versions sort last.
fn version_key(version: &str) -> (u8, Vec<u64>, String) {
    let core_part = version.split(['-', '+']).next().unwrap_or(version);
    let numbers: Option<Vec<u64>> = core_part.split('.').map(|part| part.parse().ok()).collect();
    match numbers {
        Some(numbers) => (0, numbers, version.to_string()),
        None => (1, Vec::new(), version.to_string()),
    }
}

fn load_family(root: &Path, dir: &str, diagnostics: &mut Diagnostics) -> Result<Family> {
    let metadata_file = format!("prompts/{dir}/metadata.yaml");
    let mut family = Family {
        dir: dir.to_string(),
        metadata_file: metadata_file.clone(),
        id: None,
        flag: None,
        owner: None,
        review_by: None,
        delete_after: None,
        versions: Vec::new(),
        loaded: false,
    };
    let folder = root.join("prompts").join(dir);
    let mut bodies: BTreeSet<String> = BTreeSet::new();
    for entry in std::fs::read_dir(&folder).map_err(|e| Error::io(&folder, e))? {
        let entry = entry.map_err(|e| Error::io(&folder, e))?;
        if let Some(name) = entry.file_name().to_str()
            && let Some(stem) = name.strip_suffix(".md")
            && !stem.eq_ignore_ascii_case("readme")
        {
            bodies.insert(stem.to_string());
        }
    }
    if !root.join(&metadata_file).is_file() {
        diagnostics.error(
            &metadata_file,
            1,
            "missing_file",
            format!("prompt family {dir:?} has no metadata.yaml"),
        );
        return Ok(family);
    }
    let Some(node) = read_yaml(root, &metadata_file, diagnostics)? else {
        return Ok(family);
    };
    let mut reader = Reader::new(metadata_file.clone(), diagnostics);
    let Some(entries) = reader.map(&node, "metadata") else {
        return Ok(family);
    };
    family.loaded = true;
    reader.unknown_keys(
        entries,
        &[
            "id",
            "flag",
            "owner",
            "review_by",
            "delete_after",
            "description",
            "model",
            "variables",
            "output_schema",
            "versions",
        ],
        "the family metadata",
    );
    family.id = reader.optional_str(entries, "id", "metadata");
    family.flag = reader.optional_str(entries, "flag", "metadata");
    family.owner = reader.optional_str(entries, "owner", "metadata");
    family.review_by = reader.optional_str(entries, "review_by", "metadata");
    family.delete_after = reader.optional_str(entries, "delete_after", "metadata");
    let (family_model, family_parameters) =
        decode_model(&mut reader, get(entries, "model"), "model");
    let family_variables = get(entries, "variables").map(|node| Located {
        value: reader.string_list(node, "variables"),
        line: node.line,
        column: node.column,
    });
    let family_schema = get(entries, "output_schema")
        .and_then(|node| decode_schema(&mut reader, node, &metadata_file));

    let mut listed: BTreeSet<String> = BTreeSet::new();
    match get(entries, "versions") {
        None => reader.error(
            node.line,
            "missing_field",
            "metadata is missing `versions` (one entry per <version>.md)",
        ),
        Some(versions_node) => {
            if let Some(versions) = reader.map(versions_node, "versions") {
                for (key, body) in versions {
                    let version = key.value.clone();
                    listed.insert(version.clone());
                    let what = format!("versions.{version}");
                    let fields: &[(Located<String>, Located<Node>)] = match &body.value {
                        Node::Map(fields) => fields,
                        Node::Null => &[],
                        other => {
                            reader.error(
                                body.line,
                                "wrong_type",
                                format!("{what} must be a mapping, not {}", other.kind()),
                            );
                            &[]
                        }
                    };
                    reader.unknown_keys(
                        fields,
                        &[
                            "file",
                            "author",
                            "reviewers",
                            "risk",
                            "status",
                            "approvals",
                            "model",
                            "variables",
                            "output_schema",
                            "notes",
                        ],
                        &what,
                    );
                    let body_name = reader
                        .optional_str(fields, "file", &what)
                        .map(|file| file.value)
                        .unwrap_or_else(|| format!("{version}.md"));
                    let body_file = format!("prompts/{dir}/{body_name}");
                    let (body_text, sha) = read_body(
                        root,
                        &body_file,
                        key.line,
                        &metadata_file,
                        reader.diagnostics,
                    )?;
                    let (model, parameters) =
                        decode_model(&mut reader, get(fields, "model"), &format!("{what}.model"));
                    let reviewers = get(fields, "reviewers").map(|node| Located {
                        value: reader.string_list(node, &format!("{what}.reviewers")),
                        line: node.line,
                        column: node.column,
                    });
                    // Typed approvals are no longer read: lint reports them with the way to
                    // sign them instead.
                    let typed_approvals = get(fields, "approvals").map(|node| node.line);
                    let variables = match get(fields, "variables") {
                        Some(node) => Some(Located {
                            value: reader.string_list(node, &format!("{what}.variables")),
                            line: node.line,
                            column: node.column,
                        }),
                        None => family_variables.clone(),
                    };
                    let output_schema = match get(fields, "output_schema") {
                        Some(node) => decode_schema(&mut reader, node, &metadata_file),
                        None => family_schema.clone(),
                    };
                    let parameters = merge_parameters(family_parameters.as_ref(), parameters);
                    family.versions.push(PromptVersion {
                        family: dir.to_string(),
                        version: version.clone(),
                        line: key.line,
                        body_file,
                        body: body_text,
                        sha256: sha,
                        author: reader.optional_str(fields, "author", &what),
                        reviewers,
                        risk: reader.optional_str(fields, "risk", &what),
                        status: reader.optional_str(fields, "status", &what),
                        typed_approvals,
                        model: model.or_else(|| family_model.clone()),
                        parameters,
                        variables,
                        output_schema,
                    });
                }
            }
        }
    }
    for stem in bodies.difference(&listed) {
        reader.diagnostics.error(
            &format!("prompts/{dir}/{stem}.md"),
            1,
            "unlisted_version",
            format!("{stem}.md has no entry under `versions:` in {metadata_file}"),
        );
    }
    family.versions.sort_by_key(|v| version_key(&v.version));
    Ok(family)
}

fn read_body(
    root: &Path,
    body_file: &str,
    line: u32,
    metadata_file: &str,
    diagnostics: &mut Diagnostics,
) -> Result<(Option<String>, Option<String>)> {
    let path = root.join(body_file);
    if !path.is_file() {
        diagnostics.error(
            metadata_file,
            line,
            "missing_file",
            format!("the body {body_file} does not exist"),
        );
        return Ok((None, None));
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let sha = sha256_hex(&bytes);
    match String::from_utf8(bytes) {
        Ok(text) => Ok((Some(text), Some(sha))),
        Err(_) => {
            diagnostics.error(body_file, 1, "not_utf8", "a prompt body must be UTF-8 text");
            Ok((None, Some(sha)))
        }
    }
}

/// A model name and its parameters, as written.
type ModelFields = (
    Option<Located<String>>,
    Option<Located<serde_json::Map<String, Value>>>,
);

/// `model:` is a mapping `{name, parameters}`; a plain string is the name alone.
fn decode_model(reader: &mut Reader<'_>, node: Option<&Located<Node>>, what: &str) -> ModelFields {
    let Some(node) = node else {
        return (None, None);
    };
    if let Node::Str(_) = node.value {
        return (reader.string(node, what), None);
    }
    let Some(fields) = reader.map(node, what) else {
        return (None, None);
    };
    reader.unknown_keys(fields, &["name", "parameters"], what);
    let name = reader.optional_str(fields, "name", what);
    let parameters =
        get(fields, "parameters").and_then(|params| match yaml::to_json(&params.value) {
            Value::Object(map) => Some(Located {
                value: map,
                line: params.line,
                column: params.column,
            }),
            _ => {
                reader.error(
                    params.line,
                    "wrong_type",
                    format!("{what}.parameters must be a mapping"),
                );
                None
            }
        });
    (name, parameters)
}

fn merge_parameters(
    family: Option<&Located<serde_json::Map<String, Value>>>,
    version: Option<Located<serde_json::Map<String, Value>>>,
) -> Option<Located<serde_json::Map<String, Value>>> {
    match (family, version) {
        (None, version) => version,
        (Some(family), None) => Some(family.clone()),
        (Some(family), Some(version)) => {
            let mut merged = family.value.clone();
            for (key, value) in version.value {
                merged.insert(key, value);
            }
            Some(Located {
                value: merged,
                line: version.line,
                column: version.column,
            })
        }
    }
}

fn decode_schema(
    reader: &mut Reader<'_>,
    node: &Located<Node>,
    metadata_file: &str,
) -> Option<OutputSchema> {
    match &node.value {
        Node::Str(path) => Some(OutputSchema::File {
            path: path.clone(),
            line: node.line,
            declared_in: metadata_file.to_string(),
        }),
        Node::Map(_) => Some(OutputSchema::Inline {
            schema: yaml::to_json(&node.value),
            line: node.line,
        }),
        other => {
            reader.error(
                node.line,
                "wrong_type",
                format!(
                    "output_schema must be a file name or an inline schema, not {}",
                    other.kind()
                ),
            );
            None
        }
    }
}

fn decode_flag(
    key: &str,
    file: &str,
    node: &Located<Node>,
    config: &RepoConfig,
    diagnostics: &mut Diagnostics,
) -> FlagSource {
    let mut flag = FlagSource {
        key: key.to_string(),
        file: file.to_string(),
        kind: None,
        description: String::new(),
        owner: None,
        review_by: None,
        delete_after: None,
        baseline: None,
        variants: Vec::new(),
        targeting: Targeting::default(),
        environments: BTreeMap::new(),
        loaded: true,
    };
    let mut reader = Reader::new(file, diagnostics);
    let Some(entries) = reader.map(node, "a flag file") else {
        return flag;
    };
    reader.unknown_keys(
        entries,
        &[
            "key",
            "kind",
            "description",
            "owner",
            "review_by",
            "delete_after",
            "baseline",
            "variants",
            "enabled",
            "rules",
            "default",
            "environments",
        ],
        "a flag",
    );
    reader.name_matches_file(entries, ("flag", "key", "flag key"), key);
    if let Some(kind) = reader.required_str(entries, "kind", node.line, "the flag") {
        let parsed = match kind.value.as_str() {
            "prompt" => Some(FlagKind::Prompt),
            "boolean" => Some(FlagKind::Boolean),
            "string" => Some(FlagKind::String),
            "number" => Some(FlagKind::Number),
            "object" => Some(FlagKind::Object),
            other => {
                reader.error(
                    kind.line,
                    "invalid_value",
                    format!("kind {other:?} is not one of prompt, boolean, string, number, object"),
                );
                None
            }
        };
        flag.kind = parsed.map(|value| Located {
            value,
            line: kind.line,
            column: kind.column,
        });
    }
    flag.description = reader
        .optional_str(entries, "description", "flag")
        .map(|d| d.value)
        .unwrap_or_default();
    flag.owner = reader.optional_str(entries, "owner", "flag");
    flag.review_by = reader.optional_str(entries, "review_by", "flag");
    flag.delete_after = reader.optional_str(entries, "delete_after", "flag");
    flag.baseline = reader.required_str(entries, "baseline", node.line, "the flag");
    match get(entries, "variants") {
        None => reader.error(
            node.line,
            "missing_field",
            "the flag is missing the required field `variants`",
        ),
        Some(variants) => {
            if let Some(variants) = reader.map(variants, "variants") {
                for (name, body) in variants {
                    let what = format!("variants.{}", name.value);
                    let mut variant = VariantSource {
                        name: name.clone(),
                        prompt: None,
                        value: None,
                    };
                    match &body.value {
                        // `stable: support_reply@1.1.0` is short for `{prompt: support_reply@1.1.0}`.
                        Node::Str(_)
                            if flag
                                .kind
                                .as_ref()
                                .is_some_and(|k| k.value == FlagKind::Prompt) =>
                        {
                            variant.prompt = reader.string(body, &what);
                        }
                        Node::Map(fields) => {
                            reader.unknown_keys(fields, &["prompt", "value", "description"], &what);
                            variant.prompt = reader.optional_str(fields, "prompt", &what);
                            variant.value = get(fields, "value").map(|v| yaml::to_json(&v.value));
                        }
                        other => reader.error(
                            body.line,
                            "wrong_type",
                            format!(
                                "{what} must be a mapping with `prompt` or `value`, not {}",
                                other.kind()
                            ),
                        ),
                    }
                    flag.variants.push(variant);
                }
            }
        }
    }
    flag.targeting = decode_targeting(&mut reader, entries, "");
    if let Some(envs) = get(entries, "environments")
        && let Some(envs) = reader.map(envs, "environments")
    {
        for (env, body) in envs {
            if config.environment(&env.value).is_none() && !config.environments.is_empty() {
                reader.error(
                    env.line,
                    "unknown_environment",
                    format!(
                        "{:?} is not an environment declared in promptflag.yaml",
                        env.value
                    ),
                );
            }
            let what = format!("environments.{}", env.value);
            let targeting = match &body.value {
                Node::Null => Targeting::default(),
                _ => match reader.map(body, &what) {
                    Some(fields) => {
                        reader.unknown_keys(fields, &["enabled", "rules", "default"], &what);
                        decode_targeting(&mut reader, fields, &what)
                    }
                    None => Targeting::default(),
                },
            };
            flag.environments
                .insert(env.value.clone(), (env.line, targeting));
        }
    }
    flag
}

fn decode_targeting(
    reader: &mut Reader<'_>,
    entries: &[(Located<String>, Located<Node>)],
    what: &str,
) -> Targeting {
    let prefix = if what.is_empty() {
        String::new()
    } else {
        format!("{what}.")
    };
    let mut targeting = Targeting {
        enabled: reader.optional_bool(entries, "enabled", what),
        ..Targeting::default()
    };
    if let Some(enabled) = &targeting.enabled {
        targeting
            .locations
            .push((String::from("enabled"), enabled.line));
    }
    if let Some(rules_node) = get(entries, "rules") {
        targeting
            .locations
            .push((String::from("rules"), rules_node.line));
        let mut rules = Vec::new();
        match &rules_node.value {
            Node::Seq(items) => {
                for (index, item) in items.iter().enumerate() {
                    let path = format!("rules[{index}]");
                    if let Some(rule) = decode_rule(
                        reader,
                        item,
                        &path,
                        &format!("{prefix}{path}"),
                        &mut targeting.locations,
                    ) {
                        rules.push(rule);
                    }
                }
            }
            Node::Null => {}
            other => reader.error(
                rules_node.line,
                "wrong_type",
                format!("{prefix}rules must be a list, not {}", other.kind()),
            ),
        }
        targeting.rules = Some(Located {
            value: rules,
            line: rules_node.line,
            column: rules_node.column,
        });
    }
    if let Some(default_node) = get(entries, "default")
        && let Some(serve) = decode_serve(
            reader,
            default_node,
            "default",
            &format!("{prefix}default"),
            &mut targeting.locations,
        )
    {
        targeting.default = Some(Located {
            value: serve,
            line: default_node.line,
            column: default_node.column,
        });
    }
    targeting
}

fn decode_rule(
    reader: &mut Reader<'_>,
    node: &Located<Node>,
    path: &str,
    what: &str,
    locations: &mut Vec<(String, u32)>,
) -> Option<RawRule> {
    locations.push((path.to_string(), node.line));
    let fields = reader.map(node, what)?;
    reader.unknown_keys(fields, &["id", "description", "when", "serve"], what);
    let id = reader.optional_str(fields, "id", what).map(|id| id.value);
    let mut when = Vec::new();
    if let Some(conditions) = get(fields, "when") {
        locations.push((format!("{path}.when"), conditions.line));
        when = decode_conditions(
            reader,
            conditions,
            &format!("{path}.when"),
            &format!("{what}.when"),
            locations,
        );
    }
    let serve = match get(fields, "serve") {
        Some(serve) => decode_serve(
            reader,
            serve,
            &format!("{path}.serve"),
            &format!("{what}.serve"),
            locations,
        )?,
        None => {
            reader.error(
                node.line,
                "missing_field",
                format!("{what} is missing the required field `serve`"),
            );
            return None;
        }
    };
    Some(RawRule { id, when, serve })
}

fn decode_conditions(
    reader: &mut Reader<'_>,
    node: &Located<Node>,
    path: &str,
    what: &str,
    locations: &mut Vec<(String, u32)>,
) -> Vec<RawCondition> {
    let Node::Seq(items) = &node.value else {
        reader.error(
            node.line,
            "wrong_type",
            format!("{what} must be a list of conditions"),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let cpath = format!("{path}[{index}]");
        let cwhat = format!("{what}[{index}]");
        locations.push((cpath.clone(), item.line));
        let Some(fields) = reader.map(item, &cwhat) else {
            continue;
        };
        reader.unknown_keys(
            fields,
            &["attribute", "op", "values", "negate", "case_insensitive"],
            &cwhat,
        );
        let Some(op) = reader.required_str(fields, "op", item.line, &cwhat) else {
            continue;
        };
        locations.push((format!("{cpath}.op"), op.line));
        let attribute = reader
            .optional_str(fields, "attribute", &cwhat)
            .map(|a| a.value)
            .unwrap_or_default();
        let mut values = Vec::new();
        match get(fields, "values") {
            Some(values_node) => {
                locations.push((format!("{cpath}.values"), values_node.line));
                let items: Vec<&Located<Node>> = match &values_node.value {
                    Node::Seq(items) => items.iter().collect(),
                    _ => vec![values_node],
                };
                for value in items {
                    match &value.value {
                        Node::Str(text) => values.push(text.clone()),
                        Node::Int(number) => values.push(number.to_string()),
                        Node::Float(number) => values.push(number.to_string()),
                        Node::Bool(flag) => values.push(flag.to_string()),
                        other => reader.error(
                            value.line,
                            "wrong_type",
                            format!(
                                "{cwhat}.values holds {}, not text or a number",
                                other.kind()
                            ),
                        ),
                    }
                }
            }
            None => reader.error(
                item.line,
                "missing_field",
                format!("{cwhat} is missing the required field `values`"),
            ),
        }
        out.push(RawCondition {
            attribute,
            op: op.value,
            values,
            negate: reader
                .optional_bool(fields, "negate", &cwhat)
                .is_some_and(|b| b.value),
            case_insensitive: reader
                .optional_bool(fields, "case_insensitive", &cwhat)
                .is_some_and(|b| b.value),
        });
    }
    out
}

fn decode_serve(
    reader: &mut Reader<'_>,
    node: &Located<Node>,
    path: &str,
    what: &str,
    locations: &mut Vec<(String, u32)>,
) -> Option<RawServe> {
    locations.push((path.to_string(), node.line));
    // `serve: concise` is short for `serve: {variant: concise}`.
    if let Node::Str(_) = node.value {
        let variant = reader.string(node, what)?;
        locations.push((format!("{path}.variant"), variant.line));
        return Some(RawServe {
            variant: Some(variant.value),
            split: None,
        });
    }
    let fields = reader.map(node, what)?;
    reader.unknown_keys(fields, &["variant", "split"], what);
    let variant = reader.optional_str(fields, "variant", what);
    if let Some(variant) = &variant {
        locations.push((format!("{path}.variant"), variant.line));
    }
    let split = match get(fields, "split") {
        Some(split_node) => decode_split(
            reader,
            split_node,
            &format!("{path}.split"),
            &format!("{what}.split"),
            locations,
        ),
        None => None,
    };
    Some(RawServe {
        variant: variant.map(|v| v.value),
        split,
    })
}

fn decode_split(
    reader: &mut Reader<'_>,
    node: &Located<Node>,
    path: &str,
    what: &str,
    locations: &mut Vec<(String, u32)>,
) -> Option<RawSplit> {
    locations.push((path.to_string(), node.line));
    let fields = reader.map(node, what)?;
    reader.unknown_keys(fields, &["bucket_by", "seed", "treatments", "layer"], what);
    let layer = get(fields, "layer").and_then(|layer| {
        locations.push((format!("{path}.layer"), layer.line));
        decode_layer_range(reader, layer, &format!("{what}.layer"))
    });
    let mut treatments = Vec::new();
    match get(fields, "treatments") {
        Some(Located {
            value: Node::Seq(items),
            ..
        }) => {
            for (index, item) in items.iter().enumerate() {
                let tpath = format!("{path}.treatments[{index}]");
                let twhat = format!("{what}.treatments[{index}]");
                locations.push((tpath.clone(), item.line));
                let Some(tfields) = reader.map(item, &twhat) else {
                    continue;
                };
                reader.unknown_keys(tfields, &["variant", "percent", "weight"], &twhat);
                let Some(variant) = reader.required_str(tfields, "variant", item.line, &twhat)
                else {
                    continue;
                };
                locations.push((format!("{tpath}.variant"), variant.line));
                let weight = match (get(tfields, "percent"), get(tfields, "weight")) {
                    (Some(percent), None) => {
                        locations.push((format!("{tpath}.weight"), percent.line));
                        percent_to_slots(reader, percent, &twhat)
                    }
                    (None, Some(weight)) => {
                        locations.push((format!("{tpath}.weight"), weight.line));
                        match weight.value {
                            Node::Int(slots) if (0..=100_000).contains(&slots) => {
                                u32::try_from(slots).ok()
                            }
                            _ => {
                                reader.error(weight.line, "invalid_value", format!("{twhat}.weight must be an integer number of slots, 0 to 100000"));
                                None
                            }
                        }
                    }
                    _ => {
                        reader.error(
                            item.line,
                            "missing_field",
                            format!("{twhat} needs exactly one of `percent` or `weight`"),
                        );
                        None
                    }
                };
                // A bad weight is already reported; keep the lane (at 0) so validation does not
                // also complain about a split without treatments.
                treatments.push(RawTreatment {
                    variant: variant.value,
                    weight: weight.unwrap_or(0),
                });
            }
        }
        Some(other) => reader.error(
            other.line,
            "wrong_type",
            format!("{what}.treatments must be a list"),
        ),
        None => reader.error(
            node.line,
            "missing_field",
            format!("{what} is missing the required field `treatments`"),
        ),
    }
    Some(RawSplit {
        bucket_by: reader
            .optional_str(fields, "bucket_by", what)
            .map(|b| b.value),
        seed: reader.optional_str(fields, "seed", what).map(|s| s.value),
        treatments,
        layer,
    })
}

/// `layer: {name: checkout, range: [0, 50]}`: the split runs in that part of the layer, given in
/// percent of the layer's units (so `[0, 50]` is layer slots 0 to 49 999).
fn decode_layer_range(
    reader: &mut Reader<'_>,
    node: &Located<Node>,
    what: &str,
) -> Option<RawLayerRange> {
    let fields = reader.map(node, what)?;
    reader.unknown_keys(fields, &["name", "range"], what);
    let name = reader.required_str(fields, "name", node.line, what)?;
    let range = match get(fields, "range") {
        Some(Located {
            value: Node::Seq(bounds),
            ..
        }) if bounds.len() == 2 => {
            let start = percent_to_slots(reader, &bounds[0], &format!("{what}.range[0]"));
            let end = percent_to_slots(reader, &bounds[1], &format!("{what}.range[1]"));
            match (start, end) {
                (Some(start), Some(end)) if start < end => Some((start, end)),
                (Some(_), Some(_)) => {
                    reader.error(
                        node.line,
                        "invalid_value",
                        format!("{what}.range must go from a lower percent to a higher one"),
                    );
                    None
                }
                _ => None,
            }
        }
        Some(other) => {
            reader.error(
                other.line,
                "wrong_type",
                format!("{what}.range must be two percents, such as [0, 50]"),
            );
            None
        }
        None => {
            reader.error(
                node.line,
                "missing_field",
                format!("{what} is missing the required field `range`"),
            );
            None
        }
    }?;
    Some(RawLayerRange {
        name: name.value,
        start: range.0,
        end: range.1,
    })
}

/// `percent: 12.5` → 12 500 slots. Allocations are in 1/1000 of a percent (`docs/ruleset.md`).
fn percent_to_slots(reader: &mut Reader<'_>, node: &Located<Node>, what: &str) -> Option<u32> {
    let percent = match node.value {
        Node::Int(number) => number as f64,
        Node::Float(number) => number,
        _ => f64::NAN,
    };
    if !(0.0..=100.0).contains(&percent) {
        reader.error(
            node.line,
            "invalid_value",
            format!("{what}.percent must be a number from 0 to 100"),
        );
        return None;
    }
    let slots = (percent * 1000.0).round();
    if (percent * 1000.0 - slots).abs() > 1e-6 {
        reader.error(
            node.line,
            "invalid_value",
            format!("{what}.percent has more than 3 decimals (the resolution is 0.001 %)"),
        );
        return None;
    }
    Some(slots as u32)
}

fn decode_segment(
    key: &str,
    file: &str,
    node: &Located<Node>,
    diagnostics: &mut Diagnostics,
) -> SegmentSource {
    let mut segment = SegmentSource {
        key: key.to_string(),
        file: file.to_string(),
        raw: RawSegment::default(),
        locations: Vec::new(),
    };
    let mut reader = Reader::new(file, diagnostics);
    let Some(fields) = reader.map(node, "a segment file") else {
        return segment;
    };
    reader.unknown_keys(
        fields,
        &[
            "key",
            "description",
            "match_by",
            "included",
            "excluded",
            "conditions",
        ],
        "a segment",
    );
    reader.name_matches_file(fields, ("segment", "key", "segment key"), key);
    segment.raw.description = reader
        .optional_str(fields, "description", "segment")
        .map(|d| d.value)
        .unwrap_or_default();
    segment.raw.match_by = reader
        .optional_str(fields, "match_by", "segment")
        .map(|m| m.value);
    for (field, target) in [
        ("included", &mut segment.raw.included),
        ("excluded", &mut segment.raw.excluded),
    ] {
        if let Some(list) = get(fields, field) {
            segment.locations.push((field.to_string(), list.line));
            *target = reader
                .string_list(list, field)
                .into_iter()
                .map(|l| l.value)
                .collect();
        }
    }
    if let Some(conditions) = get(fields, "conditions") {
        segment
            .locations
            .push((String::from("conditions"), conditions.line));
        segment.raw.conditions = decode_conditions(
            &mut reader,
            conditions,
            "conditions",
            "conditions",
            &mut segment.locations,
        );
    }
    segment
}

/// Template variables a body uses: every `{{ name }}`. Returns (name, 1-based line).
pub fn template_variables(body: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for (index, line) in body.lines().enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                break;
            };
            let name = after[..end].trim();
            out.push((name.to_string(), index as u32 + 1));
            rest = &after[end + 2..];
        }
    }
    out
}

/// True for a usable template variable name: a letter or `_`, then letters, digits, `_` or `.`.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

impl Repo {
    /// The prompt version a flag variant names (`family@version`).
    pub fn resolve(&self, reference: &str) -> Option<&PromptVersion> {
        let (family, version) = reference.split_once('@')?;
        self.families
            .get(family)?
            .versions
            .iter()
            .find(|v| v.version == version)
    }

    /// Every prompt version, family by family.
    pub fn versions(&self) -> impl Iterator<Item = &PromptVersion> {
        self.families
            .values()
            .flat_map(|family| family.versions.iter())
    }
}
