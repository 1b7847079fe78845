//! Runtime state: decisions taken on a live environment that git does not hold yet (a kill, the
//! control loop's rollback, abort, promotion or bandit reallocation). Each is recorded in the
//! `runtime` map of the ruleset revision that first serves it, by the same write that serves it,
//! so every writer that reads the live ruleset sees it. A publish from git keeps each decision
//! git does not hold yet (it applies the decision over git's flag and carries the record on),
//! drops the records git has caught up with, and reverts one only when told to, with a reason.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use promptflag_core::model::{
    RawFlag, RawRuleset, RawRuntimeDecision, RawServe, RawSplit, RawTreatment,
};

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
pub fn carry(live: &RawRuleset, built: &mut RawRuleset, revert: bool) -> Carried {
    let mut carried = Carried::default();
    for (key, decision) in live.runtime.iter() {
        let entry = (key.clone(), decision.clone());
        let Some((_, flag)) = built.flags.0.iter_mut().find(|(k, _)| k == key) else {
            carried.orphaned.push(entry);
            continue;
        };
        if holds(flag, decision) {
            carried.converged.push(entry);
        } else if revert {
            carried.reverted.push(entry);
        } else {
            apply(flag, decision);
            carried.kept.push(entry);
        }
    }
    built.runtime.0.retain(|_| false);
    for (key, decision) in &carried.kept {
        built.runtime.insert(key.clone(), decision.clone());
    }
    carried
}

/// Records a decision on a flag in a ruleset about to be published, replacing an earlier one
/// on that flag (the later decision wins: a promotion after an advance, a kill after a rollback
/// keeps both effects in the flag, and the record names the latest).
pub fn record(ruleset: &mut RawRuleset, flag: &str, decision: RawRuntimeDecision) {
    match ruleset.runtime.0.iter_mut().find(|(k, _)| k == flag) {
        Some(slot) => {
            // Both effects stay in the flag; the record keeps the earlier one's too, so that a
            // publish re-applies everything the flag went through.
            let earlier = core::mem::replace(&mut slot.1, decision);
            merge_effects(&mut slot.1, &earlier);
        }
        None => ruleset.runtime.insert(String::from(flag), decision),
    }
}

fn merge_effects(later: &mut RawRuntimeDecision, earlier: &RawRuntimeDecision) {
    later.disabled |= earlier.disabled;
    if later.baseline.is_none() && later.weights.is_empty() {
        later.baseline = earlier.baseline.clone();
    }
    if later.baseline.is_none() {
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
            details: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_publish_keeps_each_decision_git_does_not_hold() {
        for action in [KILL, ROLLBACK, PROMOTE] {
            let mut live = ruleset(GIT);
            record(&mut live, "f", decision(action));
            let mut built = ruleset(GIT);
            let carried = carry(&live, &mut built, false);
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
        let carried = carry(&live, &mut built, false);
        assert_eq!((carried.kept.len(), carried.converged.len()), (0, 1));
        assert!(built.runtime.is_empty());
        // Reverted on request: git's flag stands.
        let mut built = ruleset(GIT);
        let carried = carry(&live, &mut built, true);
        assert_eq!(carried.reverted.len(), 1);
        assert_eq!(built.flags, ruleset(GIT).flags);
    }

    #[test]
    fn a_later_decision_keeps_the_earlier_effects() {
        let mut live = ruleset(GIT);
        record(&mut live, "f", decision(ROLLBACK));
        record(&mut live, "f", decision(KILL));
        let kept = live.runtime.get("f").unwrap();
        assert!(kept.disabled);
        assert_eq!(kept.weights.len(), 1);
        assert_eq!(kept.action, KILL);
        assert!(describe(kept).starts_with("killed at 2026-01-02T03:04:05.000Z by loop"));
    }
}
