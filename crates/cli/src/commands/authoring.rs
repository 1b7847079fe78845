//! The authoring commands: `lint`, `build`, `diff` and `eval`, over `promptflag-authoring`.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use promptflag_authoring::build::{Build, BuildOptions};
use promptflag_authoring::{build, diff, explain, git, lint};
use serde_json::{Value, json};

use crate::Output;
use crate::exit::ExitCode;

pub(crate) fn run_lint(repo: &Path, owner_keys: Option<&str>) -> Result<Output> {
    let (_, diagnostics) = lint::check_with(repo, owner_keys)?;
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let mut text = String::new();
    for diagnostic in &diagnostics {
        text.push_str(&format!("{diagnostic}\n"));
    }
    text.push_str(&format!("{errors} error(s), {warnings} warning(s)\n"));
    Ok(Output {
        text,
        json: json!({ "ok": errors == 0, "errors": errors, "warnings": warnings, "diagnostics": diagnostics }),
        code: if errors == 0 {
            ExitCode::Ok
        } else {
            ExitCode::Problems
        },
    })
}

/// `promptflag build`: the repository built into `out`.
pub(crate) fn run_build(
    repo: &Path,
    out: &Path,
    environments: &[String],
    source: &Option<String>,
    owner_keys: Option<&str>,
) -> Result<Output> {
    let build = build_repo(repo, environments.to_vec(), source.clone(), owner_keys)?;
    build.write(out)?;
    let manifest = build.manifest();
    let mut text = format!(
        "built {} from {} into {}\n",
        repo.display(),
        build.source,
        out.display()
    );
    for (env, described) in &manifest.environments {
        text.push_str(&format!(
            "  rulesets/{env}.json  content {}  {} flag(s), {} prompt(s)\n",
            described.content_hash, described.flags, described.prompts
        ));
    }
    let bodies: std::collections::BTreeSet<&str> = build
        .prompts
        .values()
        .map(|prompt| prompt.body_sha256.as_str())
        .collect();
    text.push_str(&format!("  prompts/  {} body(ies)\n", bodies.len()));
    text.push_str(&format!(
        "  fallback/  {} bundle(s), one per environment\n",
        manifest.environments.len()
    ));
    Ok(Output {
        text,
        json: json!({ "ok": true, "out": out, "manifest": manifest }),
        code: ExitCode::Ok,
    })
}

/// `promptflag eval`: why a context gets its variant, from a ruleset file or a fresh build.
pub(crate) fn run_eval(
    repo: &Path,
    flag: &str,
    context: &Value,
    ruleset: &Option<PathBuf>,
    environment: &Option<String>,
    now_millis: i64,
) -> Result<Output> {
    let raw = match (ruleset, environment) {
        (Some(path), _) => build::read_ruleset_file(path)?,
        (None, Some(env)) => {
            let mut build = build_repo(repo, vec![env.clone()], Some(String::from("eval")), None)?;
            build
                .environments
                .remove(env)
                .map(|e| e.ruleset)
                .with_context(|| format!("no ruleset for {env}"))?
        }
        (None, None) => anyhow::bail!("eval needs --ruleset or --env"),
    };
    let explanation = explain::explain(&raw, flag, context, Some(now_millis))?;
    let mut text = format!(
        "{flag} in {} r{}:\n",
        explanation.environment, explanation.revision
    );
    for line in &explanation.why {
        text.push_str(&format!("  {line}\n"));
    }
    Ok(Output {
        text,
        json: json!({ "ok": true, "eval": explanation }),
        code: ExitCode::Ok,
    })
}

/// The repository linted and built for these environments (all when empty).
pub(crate) fn build_repo(
    repo: &Path,
    environments: Vec<String>,
    source: Option<String>,
    owner_keys: Option<&str>,
) -> Result<Build> {
    let (loaded, diagnostics) = lint::check_with(repo, owner_keys)?;
    Ok(build::build(
        &loaded,
        &diagnostics,
        &BuildOptions {
            source,
            environments,
            owner_keys: owner_keys.map(String::from),
        },
    )?)
}

/// A scratch folder removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch() -> Result<Scratch> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("promptflag-diff-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(Scratch(dir))
}

/// A diff side: a build folder, or a git revision exported and built.
fn load_side(repo: &Path, spec: Option<&str>, scratches: &mut Vec<Scratch>) -> Result<Build> {
    let Some(spec) = spec else {
        return build_repo(repo, Vec::new(), None, None);
    };
    let path = Path::new(spec);
    if path.join("manifest.json").is_file() {
        return Ok(Build::read(path)?);
    }
    let dir = scratch()?;
    let commit = git::export_revision(repo, spec, &dir.0).with_context(|| {
        format!("{spec:?} is neither a build folder (with manifest.json) nor a git revision")
    })?;
    let build = build_repo(&dir.0, Vec::new(), Some(commit), None);
    scratches.push(dir);
    build
}

pub(crate) fn run_diff(
    repo: &Path,
    old: &str,
    new: Option<&str>,
    environment: Option<&str>,
) -> Result<Output> {
    let mut scratches = Vec::new();
    let old_build = load_side(repo, Some(old), &mut scratches)?;
    let new_build = load_side(repo, new, &mut scratches)?;
    let mut envs: Vec<&String> = old_build
        .environments
        .keys()
        .chain(new_build.environments.keys())
        .collect();
    envs.sort();
    envs.dedup();
    let old_body = |hash: &str| {
        old_build
            .prompts
            .get(hash)
            .map(|p| String::from_utf8_lossy(&p.body).into_owned())
    };
    let new_body = |hash: &str| {
        new_build
            .prompts
            .get(hash)
            .map(|p| String::from_utf8_lossy(&p.body).into_owned())
    };
    let mut diffs = Vec::new();
    for env in envs {
        if environment.is_some_and(|wanted| wanted != env) {
            continue;
        }
        let diff = diff::diff_rulesets(
            old_build.environments.get(env).map(|e| &e.ruleset),
            new_build.environments.get(env).map(|e| &e.ruleset),
            Some((&old_body, &new_body)),
        );
        diffs.push(diff);
    }
    let text: String = diffs.iter().map(diff::render).collect();
    Ok(Output {
        text,
        json: json!({ "ok": true, "old": old_build.source, "new": new_build.source, "environments": diffs }),
        code: ExitCode::Ok,
    })
}
