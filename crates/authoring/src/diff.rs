//! `promptflag diff`: what changes between two builds (or two revisions of the repository), per
//! environment — flags, variants, weights, rules, the prompt body text, and the estimated change
//! in prompt tokens (see [`crate::tokens`]).
//!
//! The same comparison, without body text, is the diff summary stored with each audit entry.

use std::collections::{BTreeMap, BTreeSet};

use promptflag_core::model::{RawCondition, RawFlag, RawRule, RawRuleset, RawServe};
use similar::TextDiff;

use crate::tokens;

/// A prompt a variant names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PromptRef {
    /// The prompt id.
    pub id: String,
    /// Its version.
    pub version: String,
    /// The body's SHA-256.
    pub hash: String,
    /// The model it is served with (empty when none).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub model: String,
}

/// How one variant changed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VariantChange {
    /// The variant.
    pub variant: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// The prompt before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<PromptRef>,
    /// The prompt after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<PromptRef>,
    /// Estimated prompt tokens after minus before (when both bodies are known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_delta: Option<i64>,
    /// A unified line diff of the bodies (only with bodies; never in audit summaries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_diff: Option<String>,
}

/// How one flag changed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FlagChange {
    /// The flag.
    pub flag: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// One line per change of baseline, kill switch, rules and default serve.
    pub details: Vec<String>,
    /// Variant changes.
    pub variants: Vec<VariantChange>,
}

/// The difference between two rulesets of one environment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RulesetDiff {
    /// The environment.
    pub environment: String,
    /// Content hash before (absent when there was no old ruleset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_content_hash: Option<String>,
    /// Content hash after (absent when the environment was removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_content_hash: Option<String>,
    /// Changed flags.
    pub flags: Vec<FlagChange>,
    /// Segments added, removed or changed (`+name`, `-name`, `~name`).
    pub segments: Vec<String>,
    /// Estimated prompt-token change summed over changed variants.
    pub token_delta: i64,
}

impl RulesetDiff {
    /// True when nothing differs.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty() && self.segments.is_empty()
    }
}

/// Looks up body text by the content id of its prompt version; `None` when the body is not at
/// hand.
pub type Bodies<'a> = &'a dyn Fn(&str) -> Option<String>;

fn prompt_ref(ruleset: &RawRuleset, content_id: &str) -> PromptRef {
    let meta = ruleset.prompts.get(content_id);
    PromptRef {
        id: meta.map(|m| m.id.clone()).unwrap_or_default(),
        version: meta.map(|m| m.version.clone()).unwrap_or_default(),
        hash: meta
            .map_or(content_id, |m| m.body_hash(content_id))
            .to_string(),
        model: meta.map(|m| m.model.clone()).unwrap_or_default(),
    }
}

/// A weight in slots as a percentage (`5000` → `5%`), written once in the contracts, which
/// describe a running canary's split the same way.
pub use promptflag_contracts::runtime::percent;

/// `variant concise` or `split(concise 5%, terse 1%)`.
pub fn describe_serve(serve: &RawServe) -> String {
    match (&serve.variant, &serve.split) {
        (Some(variant), _) => format!("variant {variant}"),
        (None, Some(split)) => {
            let lanes: Vec<String> = split
                .treatments
                .iter()
                .map(|t| format!("{} {}", t.variant, percent(t.weight)))
                .collect();
            let mut text = format!("split({})", lanes.join(", "));
            if let Some(seed) = &split.seed {
                text.push_str(&format!(" seed={seed}"));
            }
            if let Some(by) = &split.bucket_by {
                text.push_str(&format!(" by={by}"));
            }
            text
        }
        (None, None) => String::from("nothing"),
    }
}

fn describe_condition(condition: &RawCondition) -> String {
    let mut text = String::new();
    if condition.negate {
        text.push_str("not ");
    }
    if !condition.attribute.is_empty() {
        text.push_str(&condition.attribute);
        text.push(' ');
    }
    text.push_str(&condition.op);
    if condition.case_insensitive {
        text.push_str("(ci)");
    }
    text.push_str(&format!(" [{}]", condition.values.join(", ")));
    text
}

/// `#1 eu-holdout: when plan in [enterprise] and … → variant stable`.
pub fn describe_rule(index: usize, rule: &RawRule) -> String {
    let name = rule
        .id
        .as_deref()
        .map(|id| format!(" {id}"))
        .unwrap_or_default();
    let when = if rule.when.is_empty() {
        String::from("always")
    } else {
        rule.when
            .iter()
            .map(describe_condition)
            .collect::<Vec<_>>()
            .join(" and ")
    };
    format!(
        "#{index}{name}: when {when} → {}",
        describe_serve(&rule.serve)
    )
}

fn diff_flag(
    key: &str,
    old: &RawFlag,
    new: &RawFlag,
    old_set: &RawRuleset,
    new_set: &RawRuleset,
    bodies: Option<(Bodies<'_>, Bodies<'_>)>,
) -> Option<FlagChange> {
    let mut details = Vec::new();
    if old.kind != new.kind {
        details.push(format!(
            "kind: {} → {}",
            old.kind.as_str(),
            new.kind.as_str()
        ));
    }
    if old.enabled != new.enabled {
        details.push(format!(
            "enabled: {} → {}{}",
            old.enabled,
            new.enabled,
            if new.enabled {
                ""
            } else {
                " (killed: everyone gets the baseline)"
            }
        ));
    }
    if old.baseline != new.baseline {
        details.push(format!("baseline: {} → {}", old.baseline, new.baseline));
    }
    let longest = old.rules.len().max(new.rules.len());
    for index in 0..longest {
        match (old.rules.get(index), new.rules.get(index)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                details.push(format!("rule - {}", describe_rule(index, a)));
                details.push(format!("rule + {}", describe_rule(index, b)));
            }
            (Some(a), None) => details.push(format!("rule - {}", describe_rule(index, a))),
            (None, Some(b)) => details.push(format!("rule + {}", describe_rule(index, b))),
            (None, None) => {}
        }
    }
    let baseline_serve = |flag: &RawFlag| RawServe {
        variant: Some(flag.baseline.clone()),
        split: None,
    };
    let old_default = old.default.clone().unwrap_or_else(|| baseline_serve(old));
    let new_default = new.default.clone().unwrap_or_else(|| baseline_serve(new));
    if old_default != new_default {
        details.push(format!(
            "default: {} → {}",
            describe_serve(&old_default),
            describe_serve(&new_default)
        ));
    }
    let mut variants = Vec::new();
    let names: BTreeSet<&String> = old
        .variants
        .iter()
        .map(|(k, _)| k)
        .chain(new.variants.iter().map(|(k, _)| k))
        .collect();
    for name in names {
        let before = old.variants.get(name);
        let after = new.variants.get(name);
        let change = match (before, after) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(_), Some(_)) => "changed",
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            (None, None) => continue,
        };
        let old_hash = before.and_then(|v| v.prompt.clone());
        let new_hash = after.and_then(|v| v.prompt.clone());
        let mut entry = VariantChange {
            variant: name.clone(),
            change,
            old: old_hash.as_deref().map(|h| prompt_ref(old_set, h)),
            new: new_hash.as_deref().map(|h| prompt_ref(new_set, h)),
            token_delta: None,
            body_diff: None,
        };
        if let Some((old_bodies, new_bodies)) = bodies {
            let old_text = old_hash.as_deref().and_then(old_bodies);
            let new_text = new_hash.as_deref().and_then(new_bodies);
            let before_tokens = old_text.as_deref().map_or(0, tokens::estimate) as i64;
            let after_tokens = new_text.as_deref().map_or(0, tokens::estimate) as i64;
            if old_text.is_some() || new_text.is_some() {
                entry.token_delta = Some(after_tokens - before_tokens);
            }
            let old_label = entry.old.as_ref().map_or_else(
                || String::from("(none)"),
                |p| format!("{}@{}", p.id, p.version),
            );
            let new_label = entry.new.as_ref().map_or_else(
                || String::from("(none)"),
                |p| format!("{}@{}", p.id, p.version),
            );
            let old_text = old_text.unwrap_or_default();
            let new_text = new_text.unwrap_or_default();
            if old_text != new_text {
                let diff = TextDiff::from_lines(&old_text, &new_text);
                entry.body_diff = Some(
                    diff.unified_diff()
                        .context_radius(2)
                        .header(&old_label, &new_label)
                        .to_string(),
                );
            }
        }
        variants.push(entry);
    }
    if details.is_empty() && variants.is_empty() && old.description == new.description {
        return None;
    }
    if details.is_empty() && variants.is_empty() {
        details.push(String::from("description changed"));
    }
    Some(FlagChange {
        flag: key.to_string(),
        change: "changed",
        details,
        variants,
    })
}

fn whole_flag(key: &str, flag: &RawFlag, set: &RawRuleset, change: &'static str) -> FlagChange {
    FlagChange {
        flag: key.to_string(),
        change,
        details: vec![format!(
            "baseline {}, {} variant(s), {} rule(s)",
            flag.baseline,
            flag.variants.len(),
            flag.rules.len()
        )],
        variants: flag
            .variants
            .iter()
            .map(|(name, variant)| VariantChange {
                variant: name.clone(),
                change,
                old: None,
                new: variant.prompt.as_deref().map(|h| prompt_ref(set, h)),
                token_delta: None,
                body_diff: None,
            })
            .collect(),
    }
}

/// Compares two rulesets of one environment. With `bodies` (old lookup, new lookup), variant
/// changes carry a body diff and a token estimate.
pub fn diff_rulesets(
    old: Option<&RawRuleset>,
    new: Option<&RawRuleset>,
    bodies: Option<(Bodies<'_>, Bodies<'_>)>,
) -> RulesetDiff {
    let environment = new
        .or(old)
        .map(|r| r.environment.clone())
        .unwrap_or_default();
    let mut out = RulesetDiff {
        environment,
        old_content_hash: old.and_then(|r| crate::build::content_hash(r).ok()),
        new_content_hash: new.and_then(|r| crate::build::content_hash(r).ok()),
        flags: Vec::new(),
        segments: Vec::new(),
        token_delta: 0,
    };
    let empty = RawRuleset {
        schema: promptflag_core::SCHEMA_VERSION,
        environment: String::new(),
        revision: 0,
        source: String::new(),
        prompts: Default::default(),
        layers: Default::default(),
        segments: Default::default(),
        flags: Default::default(),
        runtime: Default::default(),
    };
    let old = old.unwrap_or(&empty);
    let new = new.unwrap_or(&empty);
    let keys: BTreeSet<&String> = old
        .flags
        .iter()
        .map(|(k, _)| k)
        .chain(new.flags.iter().map(|(k, _)| k))
        .collect();
    for key in keys {
        match (old.flags.get(key), new.flags.get(key)) {
            (Some(a), Some(b)) => {
                if let Some(change) = diff_flag(key, a, b, old, new, bodies) {
                    out.flags.push(change);
                }
            }
            (None, Some(b)) => out.flags.push(whole_flag(key, b, new, "added")),
            (Some(a), None) => out.flags.push(whole_flag(key, a, old, "removed")),
            (None, None) => {}
        }
    }
    let segments: BTreeMap<&String, (Option<_>, Option<_>)> = old
        .segments
        .iter()
        .map(|(k, v)| (k, (Some(v), None)))
        .chain(new.segments.iter().map(|(k, v)| (k, (None, Some(v)))))
        .fold(BTreeMap::new(), |mut acc, (k, (a, b))| {
            let entry = acc.entry(k).or_insert((None, None));
            if a.is_some() {
                entry.0 = a;
            }
            if b.is_some() {
                entry.1 = b;
            }
            acc
        });
    for (key, (a, b)) in segments {
        match (a, b) {
            (Some(a), Some(b)) if a != b => out.segments.push(format!("~{key}")),
            (None, Some(_)) => out.segments.push(format!("+{key}")),
            (Some(_), None) => out.segments.push(format!("-{key}")),
            _ => {}
        }
    }
    out.token_delta = out
        .flags
        .iter()
        .flat_map(|f| f.variants.iter())
        .filter_map(|v| v.token_delta)
        .sum();
    out
}

/// The audit-log summary of a change: the diff without body text, as JSON.
pub fn summary(old: Option<&RawRuleset>, new: &RawRuleset) -> serde_json::Value {
    let diff = diff_rulesets(old, Some(new), None);
    serde_json::json!({
        "initial": old.is_none(),
        "from_revision": old.map(|r| r.revision),
        "flags": diff.flags,
        "segments": diff.segments,
    })
}

/// Renders a diff for people.
pub fn render(diff: &RulesetDiff) -> String {
    let mut out = String::new();
    out.push_str(&format!("== {} ", diff.environment));
    match (&diff.old_content_hash, &diff.new_content_hash) {
        (Some(a), Some(b)) if a == b => out.push_str("(same content)\n"),
        (Some(a), Some(b)) => out.push_str(&format!("(content {} → {})\n", &a[..12], &b[..12])),
        (None, Some(_)) => out.push_str("(new environment)\n"),
        (Some(_), None) => out.push_str("(environment removed)\n"),
        (None, None) => out.push('\n'),
    }
    for flag in &diff.flags {
        out.push_str(&format!("flag {} ({})\n", flag.flag, flag.change));
        for detail in &flag.details {
            out.push_str(&format!("  {detail}\n"));
        }
        for variant in &flag.variants {
            let label = |p: &Option<PromptRef>| {
                p.as_ref().map_or_else(
                    || String::from("-"),
                    |p| {
                        format!(
                            "{}@{} ({})",
                            p.id,
                            p.version,
                            &p.hash[..p.hash.len().min(12)]
                        )
                    },
                )
            };
            out.push_str(&format!(
                "  variant {} {}: {} → {}",
                variant.variant,
                variant.change,
                label(&variant.old),
                label(&variant.new)
            ));
            if let Some(delta) = variant.token_delta {
                out.push_str(&format!(", ~{delta:+} prompt tokens"));
            }
            out.push('\n');
            if let Some(body) = &variant.body_diff {
                for line in body.lines() {
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
    }
    for segment in &diff.segments {
        out.push_str(&format!("segment {segment}\n"));
    }
    if diff.is_empty() {
        out.push_str("no changes\n");
    } else {
        out.push_str(&format!(
            "estimated prompt tokens: {:+} (≈ chars/4 per changed variant)\n",
            diff.token_delta
        ));
    }
    out
}
