//! `promptflag sync`: writes the decisions taken on a live environment back into the repository
//! files, so that git holds what is live and `promptflag build` reproduces it. Each runtime
//! decision recorded in the live ruleset that git does not hold yet becomes an edit:
//!
//! - a promotion: the flag's `baseline` becomes the winner and its `default` split goes (the
//!   flag stays, as a kill switch); the losing version's metadata gets `status: archived` (unless
//!   a rule still serves it) and the winner's `status: production`;
//! - a rollback, an abort or a bandit's reallocation: the environment's `default` becomes the
//!   live split (its lanes at their live weights, a closed lane at 0);
//! - a kill: the environment's `enabled: false`.
//!
//! A canary the loop is still ramping is not written back: its split changes with every step
//! and the rollout has no outcome yet. It is listed as still running, and a sync after the
//! rollout ends (promoted, rolled back or aborted) writes that outcome instead.
//!
//! A decision of the loop also writes its outcome (the decision, who, when, why, and the
//! metrics and statistics behind it) to `rollouts/<flag>.results.json`, beside the rollout
//! policy; a promoted rollout with a results file is closed (lint no longer asks that its
//! treatment differ from the baseline). Files are edited as text, line by line, so comments and layout elsewhere stay as they
//! were and the change reads well in review; nothing is committed.

use std::collections::BTreeMap;

use promptflag_contracts::runtime::{self, RawRuntimeDecision};
use promptflag_core::model::{RawFlag, RawRuleset, RawServe};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::repo::Repo;

/// The edits of one sync: new file contents by path (relative to the repository root), and
/// one line per decision written back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncPlan {
    /// New file contents by path relative to the repository root.
    pub files: BTreeMap<String, String>,
    /// What was written back, one sentence each.
    pub summary: Vec<String>,
    /// Running canaries left out, one sentence each.
    pub running: Vec<String>,
}

impl SyncPlan {
    /// Writes the edited files.
    pub fn write(&self, repo: &Repo) -> Result<()> {
        for (file, text) in &self.files {
            let path = repo.root.join(file);
            std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }
}

/// Plans the edits that make git hold every runtime decision of `live` (the ruleset serving
/// `environment`) that `built` (the same environment built from the repository) does not hold.
pub fn plan(
    repo: &Repo,
    environment: &str,
    live: &RawRuleset,
    built: &RawRuleset,
) -> Result<SyncPlan> {
    let mut plan = SyncPlan::default();
    let decisions = runtime::decisions(live).map_err(|e| Error::Invalid(e.to_string()))?;
    for (key, decision) in &decisions {
        let (Some(intent), Some(served), Some(source)) = (
            built.flags.get(key),
            live.flags.get(key),
            repo.flags.get(key),
        ) else {
            continue;
        };
        if runtime::holds(intent, decision) {
            continue;
        }
        if decision.action == runtime::CANARY {
            plan.running.push(format!(
                "{key} in {environment}: {}",
                runtime::describe(decision)
            ));
            continue;
        }
        let mut text = plan.text_of(repo, &source.file)?;
        if let Some(winner) = &decision.baseline {
            text = set_top_level(&text, "baseline", winner);
            text = remove_top_level(&text, "default");
            text = remove_environment_key(&text, environment, "default");
            plan.archive_loser(repo, key, served, &intent.baseline, winner)?;
        }
        // After a promotion too: weights recorded with one are a split set over the new
        // baseline (a bandit's reallocation after it).
        if !decision.weights.is_empty() {
            let serve = served.default.as_ref().map_or_else(
                || format!("{{variant: {}}}", scalar(&served.baseline)),
                serve_yaml,
            );
            text = set_environment_key(&text, environment, "default", &serve);
        }
        if decision.disabled {
            text = set_environment_key(&text, environment, "enabled", "false");
        }
        plan.files.insert(source.file.clone(), text);
        if decision.action != runtime::KILL {
            plan.files.insert(
                crate::lint::results_file(key),
                results_json(key, environment, &intent.baseline, decision)?,
            );
        }
        plan.summary.push(format!(
            "{key} in {environment}: {}",
            runtime::describe(decision)
        ));
    }
    Ok(plan)
}

impl SyncPlan {
    /// A file's text: as edited so far in this plan, or as on disk.
    fn text_of(&self, repo: &Repo, file: &str) -> Result<String> {
        match self.files.get(file) {
            Some(text) => Ok(text.clone()),
            None => {
                let path = repo.root.join(file);
                std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))
            }
        }
    }

    /// The losing variant's prompt version becomes `archived` (unless the live flag still
    /// serves it, by a rule), the winner's `production`.
    fn archive_loser(
        &mut self,
        repo: &Repo,
        flag: &str,
        served: &RawFlag,
        loser: &str,
        winner: &str,
    ) -> Result<()> {
        let Some(source) = repo.flags.get(flag) else {
            return Ok(());
        };
        let mut statuses = vec![(winner, "production")];
        if served.serves(loser) {
            self.summary.push(format!(
                "{flag}: {loser} stays as it is: a rule of the live flag still serves it"
            ));
        } else {
            statuses.push((loser, "archived"));
        }
        for (variant, status) in statuses {
            let Some(reference) = source
                .variants
                .iter()
                .find(|v| v.name.value == variant)
                .and_then(|v| v.prompt.as_ref())
            else {
                continue;
            };
            let Some(version) = repo.resolve(&reference.value) else {
                continue;
            };
            let file = repo.families[&version.family].metadata_file.clone();
            let text = self.text_of(repo, &file)?;
            let edited = set_version_status(&text, &version.version, status);
            self.files.insert(file, edited);
        }
        Ok(())
    }
}

/// The outcome of a loop decision as written beside the rollout policy.
fn results_json(
    flag: &str,
    environment: &str,
    baseline_before: &str,
    decision: &RawRuntimeDecision,
) -> Result<String> {
    let value = json!({
        "flag": flag,
        "environment": environment,
        "decision": decision.action,
        "at": decision.at,
        "by": decision.by,
        "reason": decision.reason,
        "revision": decision.revision,
        "baseline_before": baseline_before,
        "winner": decision.baseline,
        "weights": decision.weights,
        "details": decision.details,
    });
    let mut text = serde_json::to_string_pretty(&value)
        .map_err(|e| Error::Invalid(format!("cannot write the results: {e}")))?;
    text.push('\n');
    Ok(text)
}

/// A string as a YAML flow scalar: plain when it is a simple name, else double-quoted.
fn scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && text.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    if plain {
        text.to_string()
    } else {
        Value::String(text.to_string()).to_string()
    }
}

/// A serve in the repository's flow form: `{variant: x}` or `{split: {…, treatments: […]}}`,
/// weights in slots, a layer's range in percent.
fn serve_yaml(serve: &RawServe) -> String {
    if let Some(split) = &serve.split {
        let mut parts = Vec::new();
        if let Some(bucket_by) = &split.bucket_by {
            parts.push(format!("bucket_by: {}", scalar(bucket_by)));
        }
        if let Some(seed) = &split.seed {
            parts.push(format!("seed: {}", scalar(seed)));
        }
        let lanes: Vec<String> = split
            .treatments
            .iter()
            .map(|t| format!("{{variant: {}, weight: {}}}", scalar(&t.variant), t.weight))
            .collect();
        parts.push(format!("treatments: [{}]", lanes.join(", ")));
        if let Some(layer) = &split.layer {
            parts.push(format!(
                "layer: {{name: {}, range: [{}, {}]}}",
                scalar(&layer.name),
                f64::from(layer.start) / 1000.0,
                f64::from(layer.end) / 1000.0
            ));
        }
        return format!("{{split: {{{}}}}}", parts.join(", "));
    }
    format!(
        "{{variant: {}}}",
        scalar(serve.variant.as_deref().unwrap_or_default())
    )
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_content(line: &str) -> bool {
    let trimmed = line.trim();
    !trimmed.is_empty() && !trimmed.starts_with('#')
}

/// Whether `line` is the key `key:` at exactly `indent` spaces (quoted keys included).
fn is_key(line: &str, indent: usize, key: &str) -> bool {
    if indent_of(line) != indent {
        return false;
    }
    let rest = &line[indent..];
    [
        format!("{key}:"),
        format!("\"{key}\":"),
        format!("'{key}':"),
    ]
    .iter()
    .any(|prefix| {
        rest.starts_with(prefix.as_str())
            && rest[prefix.len()..]
                .chars()
                .next()
                .is_none_or(char::is_whitespace)
    })
}

/// The lines of the block at `start` (its key line and every following line indented deeper,
/// blank lines and comments inside included): `start..end`.
fn block_end(lines: &[&str], start: usize) -> usize {
    let indent = indent_of(lines[start]);
    let mut end = start + 1;
    let mut last_content = start + 1;
    while end < lines.len() {
        let line = lines[end];
        if is_content(line) {
            if indent_of(line) <= indent {
                break;
            }
            last_content = end + 1;
        }
        end += 1;
    }
    last_content
}

/// The first line in `from..to` that is the key at `indent`.
fn find_key(lines: &[&str], from: usize, to: usize, indent: usize, key: &str) -> Option<usize> {
    (from..to).find(|&index| is_key(lines[index], indent, key))
}

/// The indentation of the first content line in `from..to`.
fn child_indent(lines: &[&str], from: usize, to: usize) -> Option<usize> {
    (from..to)
        .find(|&index| is_content(lines[index]))
        .map(|index| indent_of(lines[index]))
}

fn join(lines: Vec<String>) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn owned(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

/// Sets a top-level `key: value`, replacing the key's whole block, or appends it.
pub fn set_top_level(text: &str, key: &str, value: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = owned(text);
    let line = format!("{key}: {value}");
    match find_key(&lines, 0, lines.len(), 0, key) {
        Some(start) => {
            let end = block_end(&lines, start);
            out.splice(start..end, [line]);
        }
        None => out.push(line),
    }
    join(out)
}

/// Removes a top-level key and its block.
pub fn remove_top_level(text: &str, key: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = owned(text);
    if let Some(start) = find_key(&lines, 0, lines.len(), 0, key) {
        let end = block_end(&lines, start);
        out.drain(start..end);
    }
    join(out)
}

/// Where an environment's block is: `(environment line, end, indent of its keys)`.
fn environment_block(lines: &[&str], environment: &str) -> Option<(usize, usize, usize)> {
    let top = find_key(lines, 0, lines.len(), 0, "environments")?;
    let top_end = block_end(lines, top);
    let indent = child_indent(lines, top + 1, top_end)?;
    let start = find_key(lines, top + 1, top_end, indent, environment)?;
    let end = block_end(lines, start);
    let keys = child_indent(lines, start + 1, end).unwrap_or(indent + 2);
    Some((start, end, keys))
}

/// Sets `key: value` in `environments.<environment>`, creating the environment's block (and
/// `environments:`) when missing.
pub fn set_environment_key(text: &str, environment: &str, key: &str, value: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = owned(text);
    match environment_block(&lines, environment) {
        Some((start, end, indent)) => {
            let line = format!("{}{key}: {value}", " ".repeat(indent));
            // `prod: {}` becomes a block.
            out[start] = format!("{}{}:", " ".repeat(indent_of(lines[start])), environment);
            match find_key(&lines, start + 1, end, indent, key) {
                Some(at) => {
                    let at_end = block_end(&lines, at);
                    out.splice(at..at_end, [line]);
                }
                None => out.insert(end, line),
            }
        }
        None => match find_key(&lines, 0, lines.len(), 0, "environments") {
            Some(top) => {
                let top_end = block_end(&lines, top);
                let indent = child_indent(&lines, top + 1, top_end).unwrap_or(2);
                out.splice(
                    top_end..top_end,
                    [
                        format!("{}{environment}:", " ".repeat(indent)),
                        format!("{}{key}: {value}", " ".repeat(indent * 2)),
                    ],
                );
            }
            None => {
                out.push(String::from("environments:"));
                out.push(format!("  {environment}:"));
                out.push(format!("    {key}: {value}"));
            }
        },
    }
    join(out)
}

/// Removes `key` from `environments.<environment>`, if there.
pub fn remove_environment_key(text: &str, environment: &str, key: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = owned(text);
    if let Some((start, end, indent)) = environment_block(&lines, environment)
        && let Some(at) = find_key(&lines, start + 1, end, indent, key)
    {
        let at_end = block_end(&lines, at);
        out.drain(at..at_end);
    }
    join(out)
}

/// Sets `status:` of a version under `versions:` in a family's metadata.
pub fn set_version_status(text: &str, version: &str, status: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = owned(text);
    let Some(top) = find_key(&lines, 0, lines.len(), 0, "versions") else {
        return text.to_string();
    };
    let top_end = block_end(&lines, top);
    let Some(indent) = child_indent(&lines, top + 1, top_end) else {
        return text.to_string();
    };
    let Some(start) = find_key(&lines, top + 1, top_end, indent, version) else {
        return text.to_string();
    };
    let end = block_end(&lines, start);
    let keys = child_indent(&lines, start + 1, end).unwrap_or(indent + 2);
    let line = format!("{}status: {status}", " ".repeat(keys));
    match find_key(&lines, start + 1, end, keys, "status") {
        Some(at) => out[at] = line,
        None => out.insert(start + 1, line),
    }
    join(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAG: &str = "kind: prompt\nbaseline: stable\n# The kill switch.\nenabled: true\ndefault:\n  split:\n    treatments:\n      - variant: concise\n        percent: 5\nenvironments:\n  # Everyone in dev.\n  dev:\n    rules: []\n    default:\n      variant: concise\n";

    #[test]
    fn a_promotion_switches_the_baseline_and_removes_the_split() {
        let text = set_top_level(FLAG, "baseline", "concise");
        let text = remove_top_level(&text, "default");
        assert_eq!(
            text,
            "kind: prompt\nbaseline: concise\n# The kill switch.\nenabled: true\nenvironments:\n  # Everyone in dev.\n  dev:\n    rules: []\n    default:\n      variant: concise\n"
        );
    }

    #[test]
    fn environment_keys_are_set_replaced_and_removed() {
        let text = set_environment_key(FLAG, "prod", "enabled", "false");
        assert!(
            text.ends_with("      variant: concise\n  prod:\n    enabled: false\n"),
            "{text}"
        );
        let text = set_environment_key(&text, "dev", "default", "{variant: stable}");
        assert!(
            text.contains("  dev:\n    rules: []\n    default: {variant: stable}\n  prod:"),
            "{text}"
        );
        let text = remove_environment_key(&text, "dev", "default");
        assert!(text.contains("  dev:\n    rules: []\n  prod:"), "{text}");
        let bare = set_environment_key("kind: prompt\n", "prod", "enabled", "false");
        assert_eq!(
            bare,
            "kind: prompt\nenvironments:\n  prod:\n    enabled: false\n"
        );
    }

    #[test]
    fn a_version_status_is_replaced_or_added() {
        let metadata = "id: x\nversions:\n  \"1.0.0\":\n    risk: low\n    status: production\n  \"2.0.0\":\n    risk: high\n";
        let text = set_version_status(metadata, "1.0.0", "archived");
        let text = set_version_status(&text, "2.0.0", "production");
        assert_eq!(
            text,
            "id: x\nversions:\n  \"1.0.0\":\n    risk: low\n    status: archived\n  \"2.0.0\":\n    status: production\n    risk: high\n"
        );
    }
}
