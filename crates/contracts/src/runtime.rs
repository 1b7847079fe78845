//! Runtime state: decisions taken on a live environment that git does not hold yet (a kill, the
//! control loop's rollback, abort, promotion or bandit reallocation, and the split of a canary it
//! is ramping). Each is recorded in the
//! `runtime` map of the ruleset revision that first serves it, by the same write that serves it,
//! so every writer that reads the live ruleset sees it. A publish from git keeps each decision
//! git does not hold yet (it applies the decision over git's flag and carries the record on),
//! drops the records git has caught up with, and reverts one only when told to, with a reason.
//!
//! An operator's rollback of a whole environment moves the pointer back to a kept revision, which
//! cannot change; it is recorded under the runtime map's reserved key [`ENVIRONMENT_ROLLBACK`]
//! by the next write built on it (a kill, a loop step), and seen from the revision state
//! (a live revision below the latest) until then. Its record names what it took away, part by
//! part ([`rolled_back_parts`]); a publish that would serve one of those parts again as the
//! rolled-back revision had it is refused unless told to ([`served_again`]).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use promptflag_core::model::{RawFlag, RawRuleset, RawServe, RawSplit, RawTreatment};
use serde_json::Value;

use crate::error::Error;

/// A runtime decision on one flag: what it changed, who took it, when and why. Stored as JSON
/// in the ruleset's `runtime` map (core keeps it opaque, so evaluation and the Worker's Wasm
/// carry no code for it).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuntimeDecision {
    /// `kill`, `rollback`, `abort`, `promote`, `reallocate` or `canary`.
    pub action: String,
    /// Who took it (a person, or the control loop's actor).
    pub by: String,
    /// When, RFC 3339 UTC with milliseconds.
    pub at: String,
    /// Why (the operator's reason, or the loop's: the guardrail that fired, the test that won).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The revision that first served it.
    pub revision: u64,
    /// `kill`: the flag serves its baseline to everyone (`enabled: false`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// `promote`: the variant that became the baseline (the default split removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// `rollback`, `abort`, `reallocate`: the weights set in the default split, by variant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<RawTreatment>,
    /// `canary`: the ramp step the split is at (1 for the first), and how many the ramp has.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub step: u32,
    /// `canary`: the ramp's number of steps.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub steps: u32,
    /// Free-form details: the metrics and statistics behind a loop decision.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// The decisions a ruleset records, by flag, in its order. A record that is not of the shape
/// above is an error: dropping it would silently undo the decision.
pub fn decisions(ruleset: &RawRuleset) -> Result<Vec<(String, RawRuntimeDecision)>, Error> {
    ruleset
        .runtime
        .iter()
        .filter(|(key, _)| key.as_str() != ENVIRONMENT_ROLLBACK)
        .map(|(flag, value)| {
            serde_json::from_value(value.clone())
                .map(|decision| (flag.clone(), decision))
                .map_err(|e| Error::InvalidRuntime {
                    reason: format!("runtime.{flag}: {e}"),
                })
        })
        .collect()
}

/// The decision a ruleset records for one flag, if any (and if it reads).
pub fn decision_of(ruleset: &RawRuleset, flag: &str) -> Option<RawRuntimeDecision> {
    serde_json::from_value(ruleset.runtime.get(flag)?.clone()).ok()
}

fn to_value(decision: &RawRuntimeDecision) -> Value {
    serde_json::to_value(decision).unwrap_or(Value::Null)
}

/// A flag's kill.
pub const KILL: &str = "kill";
/// The loop took the treatment back to weight 0 (a guardrail or hard limit fired).
pub const ROLLBACK: &str = "rollback";
/// A person aborted a rollout (treatment back to 0).
pub const ABORT: &str = "abort";
/// The loop made the treatment the baseline.
pub const PROMOTE: &str = "promote";
/// A bandit moved its lane allocations.
pub const REALLOCATE: &str = "reallocate";
/// The loop started a canary or advanced it a step: the split it serves while it ramps. A
/// promotion, rollback or abort of the rollout replaces the record.
pub const CANARY: &str = "canary";

/// Sets these treatments' lane weights in the flag's default split, creating the split when the
/// default serves a single variant; other treatments keep theirs.
pub fn set_weights(flag: &mut RawFlag, weights: &[RawTreatment]) {
    let needs_split = flag
        .default
        .as_ref()
        .is_none_or(|serve| serve.split.is_none());
    if needs_split {
        flag.default = Some(RawServe {
            variant: None,
            split: Some(RawSplit::default()),
        });
    }
    if let Some(split) = flag.default.as_mut().and_then(|s| s.split.as_mut()) {
        for wanted in weights {
            match split
                .treatments
                .iter_mut()
                .find(|t| t.variant == wanted.variant)
            {
                Some(treatment) => treatment.weight = wanted.weight,
                None => split.treatments.push(wanted.clone()),
            }
        }
    }
}

/// Makes `variant` the flag's baseline and removes the default split: everyone outside the
/// rules gets it.
pub fn promote(flag: &mut RawFlag, variant: &str) {
    flag.baseline = String::from(variant);
    flag.default = None;
}

/// Applies a decision to a flag, as the write that took it did.
pub fn apply(flag: &mut RawFlag, decision: &RawRuntimeDecision) {
    if decision.disabled {
        flag.enabled = false;
    }
    if let Some(baseline) = &decision.baseline {
        promote(flag, baseline);
    }
    if !decision.weights.is_empty() {
        set_weights(flag, &decision.weights);
    }
}

/// True when the flag already is what the decision made it: git has caught up with it.
/// Weights of 0 count as held when the variant has no lane in the default split at all.
pub fn holds(flag: &RawFlag, decision: &RawRuntimeDecision) -> bool {
    let mut applied = flag.clone();
    apply(&mut applied, decision);
    normalized(&applied) == normalized(flag)
}

/// The flag with zero-weight treatments left out, and an empty split's default removed, so a
/// lane at 0 % and no lane compare equal.
fn normalized(flag: &RawFlag) -> RawFlag {
    let mut flag = flag.clone();
    if let Some(split) = flag.default.as_mut().and_then(|s| s.split.as_mut()) {
        split.treatments.retain(|t| t.weight > 0);
        if split.treatments.is_empty() && split.layer.is_none() {
            flag.default = None;
        }
    }
    flag
}

/// One sentence: what was decided, when, by whom, and why.
pub fn describe(decision: &RawRuntimeDecision) -> String {
    let what = match decision.action.as_str() {
        KILL => String::from("killed"),
        ROLLBACK => String::from("rolled back"),
        ABORT => String::from("aborted"),
        PROMOTE => format!(
            "promoted {}",
            decision.baseline.as_deref().unwrap_or("a variant")
        ),
        REALLOCATE => String::from("reallocated"),
        CANARY => {
            // The reason of a ramp step is the loop's routine "held and sampled": the audit
            // entry keeps it, and the line says where the ramp stands instead.
            let total = decision.weights.iter().map(|t| t.weight).sum();
            return format!(
                "canary at {} since {}, step {} of {}, by {} (revision {})",
                percent(total),
                decision.at,
                decision.step,
                decision.steps,
                decision.by,
                decision.revision
            );
        }
        other => String::from(other),
    };
    let mut text = format!(
        "{what} at {} by {} (revision {})",
        decision.at, decision.by, decision.revision
    );
    if !decision.reason.is_empty() {
        text.push_str(" because ");
        text.push_str(&decision.reason);
    }
    text
}

/// A split weight (slots of 100 000) as a percentage, as `promptflag status` writes splits:
/// `25%`, `0.5%`.
pub fn percent(weight: u32) -> String {
    let whole = weight / 1000;
    let fraction = weight % 1000;
    if fraction == 0 {
        return format!("{whole}%");
    }
    let digits = format!("{fraction:03}");
    format!("{whole}.{}%", digits.trim_end_matches('0'))
}

/// What a publish does with the live decisions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Carried {
    /// Decisions git does not hold: applied over git's flag and kept.
    pub kept: Vec<(String, RawRuntimeDecision)>,
    /// Decisions git now holds: their records end.
    pub converged: Vec<(String, RawRuntimeDecision)>,
    /// Decisions reverted on request (git's flag goes live as written).
    pub reverted: Vec<(String, RawRuntimeDecision)>,
    /// Decisions on flags git no longer has.
    pub orphaned: Vec<(String, RawRuntimeDecision)>,
}

/// Carries the live ruleset's decisions into a ruleset built from git: each decision git does
/// not hold is applied to git's flag and its record kept, unless `revert` is set, in which case
/// git's flag stands and the decision is listed as reverted.
pub fn carry(live: &RawRuleset, built: &mut RawRuleset, revert: bool) -> Result<Carried, Error> {
    let mut carried = Carried::default();
    for (key, decision) in decisions(live)? {
        let entry = (key.clone(), decision.clone());
        let Some((_, flag)) = built.flags.0.iter_mut().find(|(k, _)| *k == key) else {
            carried.orphaned.push(entry);
            continue;
        };
        if holds(flag, &decision) {
            carried.converged.push(entry);
        } else if revert {
            carried.reverted.push(entry);
        } else {
            apply(flag, &decision);
            carried.kept.push(entry);
        }
    }
    built.runtime.0.retain(|_| false);
    for (key, decision) in &carried.kept {
        built.runtime.insert(key.clone(), to_value(decision));
    }
    Ok(carried)
}

/// Records a decision on a flag in a ruleset about to be published, replacing an earlier one
/// on that flag (the later decision wins: a promotion after an advance, a kill after a rollback
/// keeps both effects in the flag, and the record names the latest).
pub fn record(ruleset: &mut RawRuleset, flag: &str, decision: RawRuntimeDecision) {
    let mut decision = decision;
    // Both effects stay in the flag; the record keeps the earlier one's too, so that a publish
    // re-applies everything the flag went through.
    if let Some(earlier) = decision_of(ruleset, flag) {
        merge_effects(&mut decision, &earlier);
    }
    ruleset
        .runtime
        .insert(String::from(flag), to_value(&decision));
}

fn merge_effects(later: &mut RawRuntimeDecision, earlier: &RawRuntimeDecision) {
    later.disabled |= earlier.disabled;
    // A promotion removes the split, so weights set after it apply over the new baseline: the
    // earlier promotion stays in the record (`apply` promotes first, then sets the weights).
    if later.baseline.is_none() {
        later.baseline = earlier.baseline.clone();
        let mut weights = earlier.weights.clone();
        for wanted in &later.weights {
            match weights.iter_mut().find(|t| t.variant == wanted.variant) {
                Some(t) => t.weight = wanted.weight,
                None => weights.push(wanted.clone()),
            }
        }
        later.weights = weights;
    }
}

/// The runtime map's key for an operator's rollback of the whole environment. A flag key cannot
/// hold `@`, so it never names a flag.
pub const ENVIRONMENT_ROLLBACK: &str = "@rollback";

/// An operator's rollback of a whole environment (`promptflag rollback`, the admin API's
/// rollback route): who moved the pointer back, when and why, and what it took away.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironmentRollback {
    /// Who rolled back (the audit entry's actor), or empty when no audit log at hand has it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub by: String,
    /// When, RFC 3339 UTC, or empty when unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub at: String,
    /// Why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The revision live before the rollback.
    pub from: u64,
    /// The revision it made live.
    pub to: u64,
    /// What it took away, part by part.
    pub parts: Vec<RolledBackPart>,
}

/// One part of a ruleset a rollback took away: a flag, segment or layer as a rolled-back
/// revision had it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolledBackPart {
    /// `flags.<key>`, `segments.<key>` or `layers.<key>`.
    pub part: String,
    /// The rolled-back revision that had it.
    pub revision: u64,
    /// SHA-256 of the part's canonical JSON there, or empty when that revision did not have it.
    pub sha256: String,
}

/// The SHA-256 of each part of a ruleset by its name (`flags.<key>`, …).
fn part_hashes(ruleset: &RawRuleset) -> Vec<(String, String)> {
    let mut hashes = Vec::new();
    let value = serde_json::to_value(ruleset).unwrap_or(Value::Null);
    for section in ["flags", "segments", "layers"] {
        if let Some(Value::Object(parts)) = value.get(section) {
            for (key, part) in parts {
                hashes.push((
                    format!("{section}.{key}"),
                    crate::digest::sha256_hex(crate::digest::canonical_json(part).as_bytes()),
                ));
            }
        }
    }
    hashes
}

fn hash_of<'a>(hashes: &'a [(String, String)], part: &str) -> &'a str {
    hashes
        .iter()
        .find(|(name, _)| name == part)
        .map_or("", |(_, hash)| hash.as_str())
}

/// The parts in which `rolled_back` (a revision the rollback went back over) differs from `live`
/// (the revision it made live), each as `rolled_back` had it.
pub fn rolled_back_parts(live: &RawRuleset, rolled_back: &RawRuleset) -> Vec<RolledBackPart> {
    let now = part_hashes(live);
    let then = part_hashes(rolled_back);
    let mut names: Vec<&String> = now.iter().chain(then.iter()).map(|(n, _)| n).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|name| hash_of(&now, name) != hash_of(&then, name))
        .map(|name| RolledBackPart {
            part: name.clone(),
            revision: rolled_back.revision,
            sha256: String::from(hash_of(&then, name)),
        })
        .collect()
}

/// The parts a rollback took away that `planned` would serve again exactly as the rolled-back
/// revision had them: a publish that re-serves what was rolled back away from.
pub fn served_again<'a>(
    rollback: &'a RawEnvironmentRollback,
    planned: &RawRuleset,
) -> Vec<&'a RolledBackPart> {
    let planned = part_hashes(planned);
    rollback
        .parts
        .iter()
        .filter(|part| hash_of(&planned, &part.part) == part.sha256)
        .collect()
}

/// The environment rollback a ruleset records, if any. One that does not read is an error, as
/// for a decision.
pub fn environment_rollback(ruleset: &RawRuleset) -> Result<Option<RawEnvironmentRollback>, Error> {
    let Some(value) = ruleset.runtime.get(ENVIRONMENT_ROLLBACK) else {
        return Ok(None);
    };
    serde_json::from_value(value.clone())
        .map(Some)
        .map_err(|e| Error::InvalidRuntime {
            reason: format!("runtime.{ENVIRONMENT_ROLLBACK}: {e}"),
        })
}

/// Records an environment rollback in a ruleset about to be written (replacing an earlier one:
/// the caller merges them with [`merge_rollbacks`]).
pub fn record_rollback(ruleset: &mut RawRuleset, rollback: &RawEnvironmentRollback) {
    let value = serde_json::to_value(rollback).unwrap_or(Value::Null);
    ruleset
        .runtime
        .insert(String::from(ENVIRONMENT_ROLLBACK), value);
}

/// A later rollback over an earlier one still in force: the later names who, when and why, and
/// both keep what they took away.
pub fn merge_rollbacks(
    later: RawEnvironmentRollback,
    earlier: &RawEnvironmentRollback,
) -> RawEnvironmentRollback {
    let mut merged = later;
    merged.parts.extend(earlier.parts.iter().cloned());
    merged.parts.sort();
    merged.parts.dedup();
    merged
}

/// One sentence: the rollback, who, when, why.
pub fn describe_rollback(rollback: &RawEnvironmentRollback) -> String {
    let mut text = format!(
        "rolled back from revision {} to {}",
        rollback.from, rollback.to
    );
    if !rollback.at.is_empty() {
        text.push_str(&format!(" at {}", rollback.at));
    }
    if rollback.by.is_empty() {
        text.push_str(" (not in this audit log: see the authority's)");
    } else {
        text.push_str(&format!(" by {}", rollback.by));
    }
    if !rollback.reason.is_empty() {
        text.push_str(" because ");
        text.push_str(&rollback.reason);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset(json: &str) -> RawRuleset {
        serde_json::from_str(json).unwrap()
    }

    const GIT: &str = r#"{"schema":1,"environment":"prod","revision":0,"flags":{
        "f":{"kind":"string","variants":{"a":{"value":"a"},"b":{"value":"b"}},"baseline":"a",
             "default":{"split":{"treatments":[{"variant":"b","weight":5000}]}}}}}"#;

    fn decision(action: &str) -> RawRuntimeDecision {
        RawRuntimeDecision {
            action: String::from(action),
            by: String::from("loop"),
            at: String::from("2026-01-02T03:04:05.000Z"),
            reason: String::from("guardrail error_rate"),
            revision: 7,
            disabled: action == KILL,
            baseline: (action == PROMOTE).then(|| String::from("b")),
            weights: if action == ROLLBACK {
                alloc::vec![RawTreatment {
                    variant: String::from("b"),
                    weight: 0
                }]
            } else {
                Vec::new()
            },
            ..RawRuntimeDecision::default()
        }
    }

    #[test]
    fn a_publish_keeps_each_decision_git_does_not_hold() {
        for action in [KILL, ROLLBACK, PROMOTE] {
            let mut live = ruleset(GIT);
            record(&mut live, "f", decision(action));
            let mut built = ruleset(GIT);
            let carried = carry(&live, &mut built, false).unwrap();
            assert_eq!(carried.kept.len(), 1, "{action}");
            let mut expected = ruleset(GIT);
            apply(&mut expected.flags.0[0].1, &decision(action));
            assert_eq!(built.flags, expected.flags, "{action}");
            assert_eq!(built.runtime.len(), 1);
        }
    }

    #[test]
    fn a_decision_git_holds_ends_and_a_revert_drops_it() {
        let mut live = ruleset(GIT);
        record(&mut live, "f", decision(ROLLBACK));
        // Git removed the lane: the rollback is held.
        let mut built = ruleset(GIT);
        built.flags.0[0].1.default = None;
        let carried = carry(&live, &mut built, false).unwrap();
        assert_eq!((carried.kept.len(), carried.converged.len()), (0, 1));
        assert!(built.runtime.is_empty());
        // Reverted on request: git's flag stands.
        let mut built = ruleset(GIT);
        let carried = carry(&live, &mut built, true).unwrap();
        assert_eq!(carried.reverted.len(), 1);
        assert_eq!(built.flags, ruleset(GIT).flags);
    }

    #[test]
    fn a_later_decision_keeps_the_earlier_effects() {
        let mut live = ruleset(GIT);
        record(&mut live, "f", decision(ROLLBACK));
        record(&mut live, "f", decision(KILL));
        let kept = decision_of(&live, "f").unwrap();
        assert!(kept.disabled);
        assert_eq!(kept.weights.len(), 1);
        assert_eq!(kept.action, KILL);
        assert!(describe(&kept).starts_with("killed at 2026-01-02T03:04:05.000Z by loop"));
    }

    fn canary(weight: u32, step: u32) -> RawRuntimeDecision {
        RawRuntimeDecision {
            action: String::from(CANARY),
            weights: alloc::vec![RawTreatment {
                variant: String::from("b"),
                weight,
            }],
            step,
            steps: 4,
            reason: String::from("held and sampled"),
            ..decision(CANARY)
        }
    }

    #[test]
    fn a_running_canary_is_kept_by_a_publish_and_said_where_it_stands() {
        let mut live = ruleset(GIT);
        record(&mut live, "f", canary(25_000, 2));
        let mut built = ruleset(GIT);
        let carried = carry(&live, &mut built, false).unwrap();
        assert_eq!(carried.kept.len(), 1);
        let split = built.flags.0[0].1.default.as_ref().unwrap().split.as_ref();
        assert_eq!(split.unwrap().treatments[0].weight, 25_000);
        assert_eq!(
            describe(&carried.kept[0].1),
            "canary at 25% since 2026-01-02T03:04:05.000Z, step 2 of 4, by loop (revision 7)"
        );
        assert_eq!(percent(500), "0.5%");
        assert_eq!(percent(12_345), "12.345%");
        // A canary still at git's own split is held by git: nothing to keep.
        let mut live = ruleset(GIT);
        record(&mut live, "f", canary(5_000, 1));
        let carried = carry(&live, &mut ruleset(GIT), false).unwrap();
        assert_eq!((carried.kept.len(), carried.converged.len()), (0, 1));
    }

    #[test]
    fn the_end_of_a_canary_replaces_its_record_and_an_earlier_promotion_stays() {
        let mut live = ruleset(GIT);
        record(&mut live, "f", canary(25_000, 2));
        record(&mut live, "f", decision(ROLLBACK));
        let ended = decision_of(&live, "f").unwrap();
        assert_eq!(ended.action, ROLLBACK);
        assert_eq!(ended.weights[0].weight, 0);
        // A new canary after a promotion git does not hold yet keeps the promotion too.
        let mut live = ruleset(GIT);
        record(&mut live, "f", decision(PROMOTE));
        let mut next = canary(10_000, 1);
        next.weights[0].variant = String::from("a");
        record(&mut live, "f", next);
        let kept = decision_of(&live, "f").unwrap();
        assert_eq!(kept.baseline.as_deref(), Some("b"));
        let mut built = ruleset(GIT);
        apply(&mut built.flags.0[0].1, &kept);
        assert_eq!(built.flags.0[0].1.baseline, "b");
        assert_eq!(
            built.flags.0[0]
                .1
                .default
                .as_ref()
                .unwrap()
                .split
                .as_ref()
                .unwrap()
                .treatments[0]
                .variant,
            "a"
        );
    }

    #[test]
    fn a_rollback_names_what_it_took_away_and_a_publish_of_it_again_is_caught() {
        let live = ruleset(GIT);
        let mut rolled_back = ruleset(GIT);
        rolled_back.revision = 2;
        rolled_back.flags.0[0].1.baseline = String::from("b");
        let parts = rolled_back_parts(&live, &rolled_back);
        assert_eq!(parts.len(), 1);
        assert_eq!((parts[0].part.as_str(), parts[0].revision), ("flags.f", 2));
        let rollback = RawEnvironmentRollback {
            by: String::from("oncall"),
            from: 2,
            to: 1,
            parts,
            ..RawEnvironmentRollback::default()
        };
        assert_eq!(served_again(&rollback, &rolled_back).len(), 1);
        assert!(served_again(&rollback, &live).is_empty());
        // Recorded under its reserved key, it reads back and is no flag's decision.
        let mut next = ruleset(GIT);
        record_rollback(&mut next, &rollback);
        assert_eq!(environment_rollback(&next).unwrap(), Some(rollback.clone()));
        assert!(decisions(&next).unwrap().is_empty());
        assert_eq!(
            describe_rollback(&rollback),
            "rolled back from revision 2 to 1 by oncall"
        );
    }

    #[test]
    fn a_record_of_another_shape_is_an_error_not_a_silent_revert() {
        let mut live = ruleset(GIT);
        live.runtime
            .insert(String::from("f"), serde_json::json!({"action": "kill"}));
        let mut built = ruleset(GIT);
        let error = carry(&live, &mut built, false).unwrap_err();
        assert_eq!(error.code(), "invalid_runtime");
    }
}
