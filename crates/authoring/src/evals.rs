//! The eval files of a prompt repository (`docs/evals.md`):
//!
//! ```text
//! evals/<family>/eval.yaml           the family's golden set and criteria
//! evals/results/<content id>.json    the recorded result of a run, one per content id
//! evals/recordings/<content id>.json recorded outputs a replayed run reads
//! ```
//!
//! This module reads and writes those files; what a suite means and how a result is checked is
//! `promptflag-evals`' (pure) business, and running a suite against a model is the companion's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::repo::{OutputSchema, PromptVersion, Repo};
use crate::yaml;
use promptflag_evals::result::{EvalResult, Refusal};
use promptflag_evals::suite::{Suite, suite_hash};

/// The folder of eval suites, results and recordings.
pub const EVALS_DIR: &str = "evals";
/// A family's suite file, under `evals/<family>/`.
pub const SUITE_FILE: &str = "eval.yaml";
/// Where results are recorded, relative to the repository.
pub const RESULTS_DIR: &str = "evals/results";
/// Where recorded outputs are kept, relative to the repository.
pub const RECORDINGS_DIR: &str = "evals/recordings";
/// Folder names under `evals/` that are not families.
const RESERVED: &[&str] = &["results", "recordings"];

/// A family's suite, decoded.
#[derive(Debug, Clone)]
pub struct LoadedSuite {
    /// The family folder.
    pub family: String,
    /// `evals/<family>/eval.yaml`.
    pub file: String,
    /// The suite.
    pub suite: Suite,
}

impl LoadedSuite {
    /// The suite hash for a version of the family (its output schema is part of the criteria).
    pub fn hash_for(&self, repo: &Repo, version: &PromptVersion) -> String {
        suite_hash(&self.suite, output_schema(repo, version).as_ref())
    }
}

/// The families with a folder under `evals/`, sorted.
pub fn suite_folders(root: &Path) -> Result<Vec<String>> {
    let dir = root.join(EVALS_DIR);
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        if entry.path().is_dir()
            && let Some(name) = entry.file_name().to_str()
            && !name.starts_with('.')
            && !RESERVED.contains(&name)
        {
            out.push(name.to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// Loads `evals/<family>/eval.yaml`: `Ok(None)` when the family has no suite, an error naming
/// the file when it does not decode.
pub fn load_suite(root: &Path, family: &str) -> Result<Option<LoadedSuite>> {
    let file = format!("{EVALS_DIR}/{family}/{SUITE_FILE}");
    let path = root.join(&file);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let node = yaml::parse(&text)
        .map_err(|e| Error::Invalid(format!("{file}:{}: {}", e.line, e.message)))?;
    let suite = Suite::from_json(yaml::to_json(&node.value))
        .map_err(|message| Error::Invalid(format!("{file}: {message}")))?;
    Ok(Some(LoadedSuite {
        family: family.to_string(),
        file,
        suite,
    }))
}

/// A version's output schema as a value; `None` when it has none or it does not parse (lint
/// reports that).
pub fn output_schema(repo: &Repo, version: &PromptVersion) -> Option<Value> {
    match version.output_schema.as_ref()? {
        OutputSchema::Inline { schema, .. } => Some(schema.clone()),
        OutputSchema::File { path, .. } => {
            let text =
                std::fs::read_to_string(repo.root.join("prompts").join(&version.family).join(path))
                    .ok()?;
            crate::lint::parse_schema_text(path, &text).ok()
        }
    }
}

/// The path of the result file for a content id in a results folder.
pub fn result_path(results: &Path, content_id: &str) -> PathBuf {
    results.join(format!("{content_id}.json"))
}

/// Writes a sealed result as `<results>/<content id>.json`.
pub fn write_result(results: &Path, result: &EvalResult) -> Result<PathBuf> {
    std::fs::create_dir_all(results).map_err(|e| Error::io(results, e))?;
    let path = result_path(results, &result.content_id);
    std::fs::write(&path, result.to_file_text()).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// The gate's check of the recorded result for a content id under the current suite hash.
pub fn check_result(
    results: &Path,
    content_id: &str,
    suite_hash: &str,
) -> Result<std::result::Result<EvalResult, Refusal>> {
    if !promptflag_contracts::digest::is_sha256_hex(content_id) {
        return Err(Error::Invalid(format!(
            "{content_id:?} is not a content id"
        )));
    }
    let path = result_path(results, content_id);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(Error::io(&path, error)),
    };
    Ok(promptflag_evals::result::check(
        text.as_deref(),
        content_id,
        suite_hash,
    ))
}

/// Recorded outputs of one content id: case id → the recorded answer (`{"content", …}`).
pub type Recording = BTreeMap<String, Value>;

/// Reads `<dir>/<content id>.json`; `Ok(None)` when there is none.
pub fn read_recording(dir: &Path, content_id: &str) -> Result<Option<Recording>> {
    let path = dir.join(format!("{content_id}.json"));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(Error::io(&path, error)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Invalid(format!("{}: not a recording: {e}", path.display())))
}

/// Writes `<dir>/<content id>.json`: pretty JSON with sorted keys and a final newline.
pub fn write_recording(dir: &Path, content_id: &str, recording: &Recording) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join(format!("{content_id}.json"));
    let mut text = serde_json::to_string_pretty(recording)
        .map_err(|e| Error::Invalid(format!("cannot write a recording: {e}")))?;
    text.push('\n');
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}
