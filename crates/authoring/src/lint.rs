//! `promptflag lint`: is the repository complete, consistent and within its limits?
//!
//! Checks, each reported with file and line: metadata completeness (every field `docs/companion.md` lists),
//! valid risk and status, an owner and an author, semantic versions, model parameters, declared
//! versus used template variables, the same variables across the variants of one flag, forbidden
//! phrases and maximum length from `promptflag.yaml`, output schemas that parse, signed approvals
//! and the key registry (`signatures`), rollout policies that name real variants, no two versions
//! with the same content (body and model configuration), and finally every
//! environment's ruleset through core validation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use promptflag_core::FlagKind;
use promptflag_core::literal::Semver;
use serde_json::Value;

use crate::build;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::error::Result;
use crate::repo::{self, OutputSchema, PromptVersion, Repo};
use crate::signatures;
use crate::yaml;

/// Valid risk levels.
pub const RISKS: [&str; 3] = ["low", "medium", "high"];
/// Valid statuses.
pub const STATUSES: [&str; 4] = promptflag_core::model::PROMPT_STATUSES;
/// Model parameters every prompt must set.
pub const REQUIRED_PARAMETERS: [&str; 3] = ["temperature", "max_tokens", "top_p"];

/// Loads and lints a repository. Returns it with every diagnostic, sorted. Signatures are
/// checked without root owner keys (see [`check_with`]).
pub fn check(root: &Path) -> Result<(Repo, Vec<Diagnostic>)> {
    check_with(root, None)
}

/// [`check`], with the registry's first change checked against `owner_keys` (the root owner
/// keys, `ssh-ed25519` lines, as the Worker's `OWNER_KEYS` secret holds them).
pub fn check_with(root: &Path, owner_keys: Option<&str>) -> Result<(Repo, Vec<Diagnostic>)> {
    let (repo, mut diagnostics) = repo::load(root)?;
    diagnostics.extend(lint(&repo));
    diagnostics.extend(signatures::lint(&repo, owner_keys));
    let rulesets = validate_environments(&repo, diagnostics.as_slice());
    diagnostics.extend(rulesets);
    Ok((repo, diagnostics.into_sorted()))
}

/// Every environment's ruleset through core validation, located back to the files. A problem
/// at a line that already has an error is left out: it is the same fault seen again (an
/// unresolved prompt reference is also a variant without a body hash).
pub fn validate_environments(repo: &Repo, known: &[Diagnostic]) -> Diagnostics {
    let mut out = Diagnostics::new();
    let mut already: BTreeSet<(String, u32)> = known
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.file.clone(), d.line))
        .collect();
    for env in &repo.config.environments {
        let (ruleset, map, assembly) = build::assemble(repo, &env.name, "lint");
        for diagnostic in assembly.as_slice() {
            out.error(
                &diagnostic.file,
                diagnostic.line,
                diagnostic.code,
                diagnostic.message.clone(),
            );
            already.insert((diagnostic.file.clone(), diagnostic.line));
        }
        for diagnostic in build::validate(&ruleset, &map).as_slice() {
            if !already.contains(&(diagnostic.file.clone(), diagnostic.line)) {
                out.error(
                    &diagnostic.file,
                    diagnostic.line,
                    diagnostic.code,
                    diagnostic.message.clone(),
                );
            }
        }
    }
    out
}

/// Where `promptflag sync` writes the outcome of a flag's rollout, beside its policy.
pub fn results_file(flag: &str) -> String {
    format!("rollouts/{flag}.results.json")
}

/// The semantic checks on a loaded repository.
pub fn lint(repo: &Repo) -> Diagnostics {
    let mut out = Diagnostics::new();
    for family in repo.families.values() {
        if !family.loaded {
            // Its metadata did not parse; that error is already reported.
            continue;
        }
        let file = family.metadata_file.as_str();
        match &family.id {
            None => out.error(
                file,
                1,
                "missing_field",
                "the family metadata is missing `id` (the prompt id)",
            ),
            Some(id) if id.value != family.dir => out.error(
                file,
                id.line,
                "id_mismatch",
                format!(
                    "the prompt id {:?} differs from its folder name {:?}",
                    id.value, family.dir
                ),
            ),
            Some(_) => {}
        }
        if family.owner.is_none() {
            out.error(
                file,
                1,
                "missing_field",
                "the family metadata is missing `owner` (who answers for these prompts)",
            );
        }
        match &family.flag {
            None => out.error(
                file,
                1,
                "missing_field",
                "the family metadata is missing `flag` (the flag key that serves it)",
            ),
            Some(flag) if !repo.flags.contains_key(&flag.value) => out.error(
                file,
                flag.line,
                "unknown_flag",
                format!(
                    "no flags/{}.yaml defines the flag {:?}",
                    flag.value, flag.value
                ),
            ),
            Some(_) => {}
        }
        for version in &family.versions {
            lint_version(repo, version, file, &mut out);
        }
    }
    for flag in repo.flags.values() {
        lint_flag(repo, flag, &mut out);
    }
    lint_evals(repo, &mut out);
    lint_dates(repo, crate::hygiene::today(), &mut out);
    for rollout in repo.rollouts.values() {
        let Some(policy) = &rollout.policy else {
            continue;
        };
        let Some(flag) = repo.flags.get(&rollout.flag) else {
            out.error(
                &rollout.file,
                1,
                "unknown_flag",
                format!(
                    "no flags/{}.yaml defines the flag this policy rolls out",
                    rollout.flag
                ),
            );
            continue;
        };
        if !flag.loaded {
            continue;
        }
        if !flag
            .variants
            .iter()
            .any(|v| v.name.value == policy.treatment)
        {
            out.error(
                &rollout.file,
                rollout.treatment_line,
                "unknown_variant",
                format!(
                    "{:?} is not a variant of {}",
                    policy.treatment, rollout.flag
                ),
            );
        } else if flag
            .baseline
            .as_ref()
            .is_some_and(|b| b.value == policy.treatment)
            // A promoted rollout's results file closes it: the treatment is the baseline now.
            && !repo.root.join(results_file(&rollout.flag)).is_file()
        {
            out.error(
                &rollout.file,
                rollout.treatment_line,
                "baseline_in_split",
                "the treatment cannot be the flag's baseline",
            );
        }
        if repo.config.environment(&policy.environment).is_none() {
            out.error(
                &rollout.file,
                1,
                "unknown_environment",
                format!(
                    "{:?} is not an environment declared in promptflag.yaml",
                    policy.environment
                ),
            );
        }
    }
    lint_duplicate_content(repo, &mut out);
    out
}

/// Two versions with the same body and the same model configuration are one version under two
/// names: their content ids collide, and the ruleset could only keep one of them.
fn lint_duplicate_content(repo: &Repo, out: &mut Diagnostics) {
    let mut first_with: BTreeMap<String, &PromptVersion> = BTreeMap::new();
    for version in repo.versions() {
        let Some(content_id) = version.content_id(&repo.root) else {
            continue;
        };
        match first_with.get(&content_id) {
            Some(first) => out.error(
                &repo.families[&version.family].metadata_file,
                version.line,
                "duplicate_content",
                format!(
                    "{} has the same body and model configuration as {} (content id {}); change the body, the model, its parameters or the output schema, or reuse {}",
                    version.reference(),
                    first.reference(),
                    &content_id[..12],
                    first.reference()
                ),
            ),
            None => {
                first_with.insert(content_id, version);
            }
        }
    }
}

fn lint_version(repo: &Repo, version: &PromptVersion, file: &str, out: &mut Diagnostics) {
    let line = version.line;
    let name = version.reference();
    if Semver::parse(&version.version).is_none() {
        out.error(
            file,
            line,
            "bad_semver",
            format!(
                "{:?} is not a semantic version (MAJOR.MINOR.PATCH)",
                version.version
            ),
        );
    }
    if version.author.is_none() {
        out.error(
            file,
            line,
            "missing_field",
            format!("{name} is missing `author`"),
        );
    }
    match &version.reviewers {
        Some(reviewers) if !reviewers.value.is_empty() => {
            if let Some(author) = &version.author
                && reviewers.value.iter().all(|r| r.value == author.value)
            {
                out.error(
                    file,
                    reviewers.line,
                    "self_review",
                    format!("{name} has no reviewer besides its author"),
                );
            }
        }
        Some(reviewers) => out.error(
            file,
            reviewers.line,
            "missing_field",
            format!("{name} lists no reviewers"),
        ),
        None => out.error(
            file,
            line,
            "missing_field",
            format!("{name} is missing `reviewers`"),
        ),
    }
    match &version.risk {
        None => out.error(
            file,
            line,
            "missing_field",
            format!("{name} is missing `risk` (low | medium | high)"),
        ),
        Some(risk) if !RISKS.contains(&risk.value.as_str()) => {
            out.error(
                file,
                risk.line,
                "invalid_value",
                format!("risk {:?} is not one of low, medium, high", risk.value),
            );
        }
        Some(_) => {}
    }
    match &version.status {
        None => out.error(
            file,
            line,
            "missing_field",
            format!("{name} is missing `status` (draft | canary | production | archived)"),
        ),
        Some(status) if !STATUSES.contains(&status.value.as_str()) => out.error(
            file,
            status.line,
            "invalid_value",
            format!(
                "status {:?} is not one of draft, canary, production, archived",
                status.value
            ),
        ),
        Some(_) => {}
    }
    if version.model.is_none() {
        out.error(
            file,
            line,
            "missing_field",
            format!("{name} has no model name (`model.name` in the family or the version)"),
        );
    }
    match &version.parameters {
        None => out.error(
            file,
            line,
            "missing_field",
            format!("{name} has no model parameters (`model.parameters`)"),
        ),
        Some(parameters) => lint_parameters(&parameters.value, parameters.line, file, &name, out),
    }

    // Template variables.
    let declared: BTreeSet<String> = version
        .variables
        .as_ref()
        .map(|v| v.value.iter().map(|l| l.value.clone()).collect())
        .unwrap_or_default();
    match &version.variables {
        None => out.error(
            file,
            line,
            "missing_field",
            format!("{name} declares no `variables` (write `variables: []` for none)"),
        ),
        Some(variables) => {
            for variable in &variables.value {
                if !repo::is_variable_name(&variable.value) {
                    out.error(
                        file,
                        variable.line,
                        "invalid_value",
                        format!("{:?} is not a template variable name", variable.value),
                    );
                }
            }
        }
    }
    if let Some(body) = &version.body {
        let used = repo::template_variables(body);
        let mut used_names = BTreeSet::new();
        for (variable, body_line) in &used {
            if !repo::is_variable_name(variable) {
                out.error(
                    &version.body_file,
                    *body_line,
                    "bad_template",
                    format!("{{{{{variable}}}}} is not a template variable"),
                );
            } else if version.variables.is_some() && !declared.contains(variable) {
                out.error(
                    &version.body_file,
                    *body_line,
                    "undeclared_variable",
                    format!("{{{{{variable}}}}} is used but not declared in `variables`"),
                );
            }
            used_names.insert(variable.clone());
        }
        if let Some(variables) = &version.variables {
            for variable in &variables.value {
                if !used_names.contains(&variable.value) {
                    out.warning(
                        file,
                        variable.line,
                        "unused_variable",
                        format!(
                            "{name} declares {:?} but its body never uses it",
                            variable.value
                        ),
                    );
                }
            }
        }
        if body.trim().is_empty() {
            out.error(
                &version.body_file,
                1,
                "empty_body",
                "the prompt body is empty",
            );
        }
        for phrase in &repo.config.forbidden_phrases {
            let needle = phrase.value.to_lowercase();
            for (index, text) in body.lines().enumerate() {
                if text.to_lowercase().contains(&needle) {
                    out.error(
                        &version.body_file,
                        index as u32 + 1,
                        "forbidden_phrase",
                        format!(
                            "contains the forbidden phrase {:?} (promptflag.yaml line {})",
                            phrase.value, phrase.line
                        ),
                    );
                }
            }
        }
        if let Some(max) = &repo.config.max_length {
            let length = body.chars().count();
            if length > max.value {
                out.error(
                    &version.body_file,
                    1,
                    "too_long",
                    format!(
                        "the body is {length} characters; promptflag.yaml allows {}",
                        max.value
                    ),
                );
            }
        }
    }
    if let Some(schema) = &version.output_schema {
        lint_schema(repo, version, schema, out);
    }
}

fn lint_parameters(
    parameters: &serde_json::Map<String, Value>,
    line: u32,
    file: &str,
    name: &str,
    out: &mut Diagnostics,
) {
    for required in REQUIRED_PARAMETERS {
        match parameters.get(required) {
            None => out.error(
                file,
                line,
                "missing_field",
                format!("{name} has no model parameter `{required}`"),
            ),
            Some(value) => {
                let ok = match required {
                    "temperature" => value.as_f64().is_some_and(|t| (0.0..=2.0).contains(&t)),
                    "top_p" => value.as_f64().is_some_and(|p| p > 0.0 && p <= 1.0),
                    _ => value.as_u64().is_some_and(|m| m > 0),
                };
                if !ok {
                    let range = match required {
                        "temperature" => "a number from 0 to 2",
                        "top_p" => "a number above 0 and at most 1",
                        _ => "a positive integer",
                    };
                    out.error(
                        file,
                        line,
                        "invalid_value",
                        format!("{name}: `{required}` must be {range}, not {value}"),
                    );
                }
            }
        }
    }
}

/// Review and deletion dates of families and flags: each a `YYYY-MM-DD` date; a passed one is
/// a warning (`promptflag hygiene` lists them with their owners).
fn lint_dates(repo: &Repo, today: i64, out: &mut Diagnostics) {
    let families = repo
        .families
        .values()
        .map(|f| (f.metadata_file.as_str(), &f.review_by, &f.delete_after));
    let flags = repo
        .flags
        .values()
        .map(|f| (f.file.as_str(), &f.review_by, &f.delete_after));
    for (file, review_by, delete_after) in families.chain(flags) {
        for (field, date) in [("review_by", review_by), ("delete_after", delete_after)] {
            let Some(date) = date else { continue };
            match crate::hygiene::parse_day(&date.value) {
                None => out.error(
                    file,
                    date.line,
                    "invalid_value",
                    format!("`{field}` must be a date YYYY-MM-DD, not {:?}", date.value),
                ),
                Some(day) if day < today => out.warning(
                    file,
                    date.line,
                    if field == "review_by" {
                        "review_overdue"
                    } else {
                        "past_delete_after"
                    },
                    format!(
                        "`{field}: {}` has passed (promptflag hygiene lists what is stale)",
                        date.value
                    ),
                ),
                Some(_) => {}
            }
        }
    }
}

/// Eval suites (`evals/<family>/eval.yaml`): each names a family, decodes, sets only the
/// family's template variables, and checks output schemas with keywords the checker knows.
fn lint_evals(repo: &Repo, out: &mut Diagnostics) {
    let folders = match crate::evals::suite_folders(&repo.root) {
        Ok(folders) => folders,
        Err(error) => {
            out.error(crate::evals::EVALS_DIR, 1, "unreadable", error.to_string());
            return;
        }
    };
    for folder in folders {
        let file = format!(
            "{}/{folder}/{}",
            crate::evals::EVALS_DIR,
            crate::evals::SUITE_FILE
        );
        let Some(family) = repo.families.get(&folder) else {
            out.error(
                &file,
                1,
                "unknown_family",
                format!("evals/{folder}/ names no prompt family (no prompts/{folder}/)"),
            );
            continue;
        };
        let suite = match crate::evals::load_suite(&repo.root, &folder) {
            Ok(Some(suite)) => suite,
            Ok(None) => {
                out.error(
                    &file,
                    1,
                    "missing_file",
                    format!("evals/{folder}/ has no {}", crate::evals::SUITE_FILE),
                );
                continue;
            }
            Err(error) => {
                out.error(&file, 1, "bad_eval_suite", error.to_string());
                continue;
            }
        };
        let declared: BTreeSet<&str> = family
            .versions
            .iter()
            .filter_map(|v| v.variables.as_ref())
            .flat_map(|vars| vars.value.iter().map(|v| v.value.as_str()))
            .collect();
        for case in &suite.suite.cases {
            for name in case.variables.keys() {
                if !declared.contains(name.as_str()) {
                    out.warning(
                        &file,
                        1,
                        "unknown_variable",
                        format!(
                            "case {:?} sets {name:?}, which no version of {folder} declares",
                            case.id
                        ),
                    );
                }
            }
        }
        if suite.suite.output_schema {
            let mut reported = BTreeSet::new();
            for version in &family.versions {
                if let Some(schema) = crate::evals::output_schema(repo, version) {
                    for keyword in promptflag_evals::schema::unsupported_keywords(&schema) {
                        if reported.insert(keyword.clone()) {
                            out.warning(
                                &file,
                                1,
                                "unchecked_schema_keyword",
                                format!("the output schema of {} uses {keyword}, which evals do not check", version.reference()),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// An output schema file's value: JSON for `*.json`, YAML otherwise; an error has its line.
pub(crate) fn parse_schema_text(path: &str, text: &str) -> Result<Value, (u32, String)> {
    if path.ends_with(".json") {
        serde_json::from_str::<Value>(text).map_err(|e| (e.line() as u32, e.to_string()))
    } else {
        yaml::parse(text)
            .map(|n| yaml::to_json(&n.value))
            .map_err(|e| (e.line, e.message))
    }
}

/// Why an output schema could not be read: where, the code and the message.
pub(crate) type SchemaProblem = (String, u32, &'static str, String);

/// Reads a version's output schema (inline, or the JSON or YAML file it names), with the file
/// and line it was written at.
pub(crate) fn load_output_schema(
    repo: &Repo,
    version: &PromptVersion,
    schema: &OutputSchema,
) -> std::result::Result<(Value, String, u32), SchemaProblem> {
    match schema {
        OutputSchema::Inline { schema, line } => Ok((
            schema.clone(),
            repo.families[&version.family].metadata_file.clone(),
            *line,
        )),
        OutputSchema::File {
            path,
            line,
            declared_in,
        } => {
            let relative = format!("prompts/{}/{path}", version.family);
            let full = repo.root.join(&relative);
            let Ok(text) = std::fs::read_to_string(&full) else {
                let message = format!("the output schema {relative} cannot be read");
                return Err((declared_in.clone(), *line, "missing_file", message));
            };
            let parsed = parse_schema_text(path, &text);
            match parsed {
                Ok(value) => Ok((value, relative, 1)),
                Err((error_line, message)) => Err((
                    relative,
                    error_line,
                    "bad_schema",
                    format!("the output schema does not parse: {message}"),
                )),
            }
        }
    }
}

fn lint_schema(repo: &Repo, version: &PromptVersion, schema: &OutputSchema, out: &mut Diagnostics) {
    let (value, file, line) = match load_output_schema(repo, version, schema) {
        Ok(found) => found,
        Err((file, line, code, message)) => {
            out.error(&file, line, code, message);
            return;
        }
    };
    match value.as_object() {
        Some(object)
            if object
                .get("type")
                .is_some_and(|t| t.is_string() || t.is_array()) => {}
        Some(_) => out.error(&file, line, "bad_schema", "the output schema has no `type`"),
        None => out.error(
            &file,
            line,
            "bad_schema",
            "the output schema must be a JSON object",
        ),
    }
}

/// True when some environment of the flag can serve `variant`: the baseline, or a rule or a
/// default at the top level or in an environment's settings. An archived version may stay
/// listed as a variant no one is served (the loser of a closed experiment, kept for the record).
fn serves_anywhere(flag: &repo::FlagSource, variant: &str) -> bool {
    let targeting_serves = |targeting: &repo::Targeting| {
        targeting
            .rules
            .as_ref()
            .is_some_and(|rules| rules.value.iter().any(|rule| rule.serve.serves(variant)))
            || targeting
                .default
                .as_ref()
                .is_some_and(|serve| serve.value.serves(variant))
    };
    flag.baseline.as_ref().is_some_and(|b| b.value == variant)
        || targeting_serves(&flag.targeting)
        || flag
            .environments
            .values()
            .any(|(_, targeting)| targeting_serves(targeting))
}

fn lint_flag(repo: &Repo, flag: &repo::FlagSource, out: &mut Diagnostics) {
    let Some(kind) = &flag.kind else {
        return;
    };
    if kind.value != FlagKind::Prompt {
        return;
    }
    // The variables each variant's body uses, and whether the variants agree.
    let mut sets: BTreeMap<String, (u32, BTreeSet<String>)> = BTreeMap::new();
    for variant in &flag.variants {
        let Some(reference) = &variant.prompt else {
            continue;
        };
        let Some(version) = repo.resolve(&reference.value) else {
            continue;
        };
        if version
            .status
            .as_ref()
            .is_some_and(|s| s.value == "archived")
            && serves_anywhere(flag, &variant.name.value)
        {
            out.error(
                &flag.file,
                reference.line,
                "archived_prompt",
                format!("{} is archived and cannot be served", reference.value),
            );
        }
        if let Some(family_flag) = &repo.families[&version.family].flag
            && family_flag.value != flag.key
        {
            out.warning(
                &flag.file,
                reference.line,
                "foreign_prompt",
                format!(
                    "{} belongs to the flag {:?} by its metadata",
                    reference.value, family_flag.value
                ),
            );
        }
        if let Some(body) = &version.body {
            let used = repo::template_variables(body)
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            sets.insert(variant.name.value.clone(), (reference.line, used));
        }
    }
    let reference_set = flag
        .baseline
        .as_ref()
        .and_then(|b| {
            sets.get(&b.value)
                .map(|(_, set)| (b.value.clone(), set.clone()))
        })
        .or_else(|| {
            sets.iter()
                .next()
                .map(|(name, (_, set))| (name.clone(), set.clone()))
        });
    if let Some((reference_name, reference_vars)) = reference_set {
        for (name, (line, vars)) in &sets {
            if vars != &reference_vars {
                let missing: Vec<&String> = reference_vars.difference(vars).collect();
                let extra: Vec<&String> = vars.difference(&reference_vars).collect();
                out.error(
                    &flag.file,
                    *line,
                    "variable_mismatch",
                    format!(
                        "variant {name:?} uses different template variables than {reference_name:?}: missing {missing:?}, extra {extra:?}; every variant of a flag must render from the same inputs"
                    ),
                );
            }
        }
    }
}
