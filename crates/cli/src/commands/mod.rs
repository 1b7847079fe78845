//! What each command does once its arguments are validated: the binary's `run` dispatches here.
//! Each function returns an [`crate::Output`] (text for people, JSON for machines, the exit
//! code) and prints nothing itself.

pub(crate) mod authoring;
pub(crate) mod evals;
pub(crate) mod forensics;
pub(crate) mod governance;
pub(crate) mod hygiene;
pub(crate) mod release;

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::Output;
use crate::exit::ExitCode;

/// `promptflag analyze`: summaries in, the statistics' verdict out.
pub(crate) fn run_analyze(input: &Path, overrides: &Value) -> Result<Output> {
    let text = if input.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading the input from stdin")?;
        text
    } else {
        std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?
    };
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", input.display()))?;
    let result = promptflag_rollout::analyze::analyze(&value, overrides)?;
    Ok(Output {
        text: format!(
            "{}\n",
            serde_json::to_string_pretty(&result).unwrap_or_default()
        ),
        json: result,
        code: ExitCode::Ok,
    })
}

/// A revision for people: its number, or `none`.
pub(crate) fn revision_text(revision: Option<u64>) -> String {
    revision.map_or_else(|| String::from("none"), |revision| revision.to_string())
}

/// Kept revisions for people: `5, 6, 7`, or `none`.
pub(crate) fn revisions_text(revisions: &[u64]) -> String {
    if revisions.is_empty() {
        return String::from("none");
    }
    let texts: Vec<String> = revisions.iter().map(u64::to_string).collect();
    texts.join(", ")
}
