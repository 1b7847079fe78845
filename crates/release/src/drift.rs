//! `promptflag status`: per flag, what git intends, what is live, and why they differ. Git's
//! intent is the ruleset built from the repository; what is live is the revision the store
//! serves; the why is the live revision's runtime record of the flag (a kill, the control loop's
//! rollback or promotion, the canary it is ramping), or an operator's rollback of the whole
//! environment, or, when there is none, a change made outside git and the loop.

use promptflag_authoring::build::Build;
use promptflag_authoring::diff::percent;
use promptflag_contracts::runtime::{self, RawEnvironmentRollback};
use promptflag_core::model::{RawFlag, RawRuleset, RawServe};

use crate::audit::AuditLog;
use crate::error::{Error, Result};
use crate::publish::live_ruleset;
use crate::store::Store;

/// One flag's standing.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FlagStatus {
    /// The flag key.
    pub flag: String,
    /// What git's build serves (`None`: the flag is not in git).
    pub intent: Option<String>,
    /// What is live (`None`: not published).
    pub live: Option<String>,
    /// True when git and live serve the same.
    pub in_sync: bool,
    /// Why they differ (empty when in sync).
    pub why: String,
}

/// An environment's standing.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Status {
    /// The environment.
    pub environment: String,
    /// The live revision.
    pub revision: Option<u64>,
    /// The operator's rollback in force, in one sentence, and what of it git would serve again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<String>,
    /// Per flag, sorted by key.
    pub flags: Vec<FlagStatus>,
}

/// Compares git's ruleset with the live one, flag by flag, with the operator's rollback in force.
pub fn compare(
    environment: &str,
    built: &RawRuleset,
    live: Option<&RawRuleset>,
    rollback: Option<&RawEnvironmentRollback>,
) -> Status {
    let again: Vec<String> = rollback
        .map(|r| {
            runtime::served_again(r, built)
                .into_iter()
                .map(|part| part.part.clone())
                .collect()
        })
        .unwrap_or_default();
    let rolled_back = |key: &str| -> Option<String> {
        let rollback = rollback?;
        let part = format!("flags.{key}");
        if again.contains(&part) {
            Some(format!(
                "{}; git still has what it took away (publishing it needs --revert-runtime)",
                runtime::describe_rollback(rollback)
            ))
        } else {
            rollback
                .parts
                .iter()
                .any(|p| p.part == part)
                .then(|| runtime::describe_rollback(rollback))
        }
    };
    let mut keys: Vec<&String> = built.flags.iter().map(|(k, _)| k).collect();
    if let Some(live) = live {
        keys.extend(live.flags.iter().map(|(k, _)| k));
    }
    keys.sort();
    keys.dedup();
    let flags = keys
        .into_iter()
        .map(|key| {
            let intent = built.flags.get(key);
            let served = live.and_then(|l| l.flags.get(key));
            let decision = live.and_then(|l| runtime::decision_of(l, key));
            let in_sync = match (intent, served) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            };
            let why = if in_sync {
                String::new()
            } else {
                match (intent, served, decision) {
                    (_, None, _) if live.is_none() => String::from("nothing is published"),
                    (_, None, _) => String::from("not published yet"),
                    (None, Some(_), _) => String::from("removed in git, still live"),
                    (Some(_), Some(_), Some(decision)) => match rolled_back(key) {
                        Some(rollback) => format!("{}; {rollback}", runtime::describe(&decision)),
                        None => runtime::describe(&decision),
                    },
                    (Some(_), Some(_), None) => rolled_back(key).unwrap_or_else(|| String::from(
                        "git changed since the last publish, or the live flag was changed outside git and the loop",
                    )),
                }
            };
            FlagStatus {
                flag: key.clone(),
                intent: intent.map(describe_flag),
                live: served.map(describe_flag),
                in_sync,
                why,
            }
        })
        .collect();
    Status {
        environment: String::from(environment),
        revision: live.map(|l| l.revision),
        rollback: rollback.map(|r| {
            let mut text = runtime::describe_rollback(r);
            if !again.is_empty() {
                text.push_str(&format!(
                    "; git would serve again what it took away ({}), so a publish needs --revert-runtime --reason",
                    again.join(", ")
                ));
            }
            text
        }),
        flags,
    }
}

/// Reads the live ruleset and compares it with the build's.
pub fn status(
    store: &dyn Store,
    audit: &AuditLog,
    build: &Build,
    environment: &str,
) -> Result<Status> {
    let built = build
        .environments
        .get(environment)
        .ok_or_else(|| Error::Invalid(format!("the build has no ruleset for {environment:?}")))?;
    let state = store.state(environment)?;
    let live = match state.live {
        Some(revision) => live_ruleset(store, audit, environment, revision)?,
        None => None,
    };
    let rollback = match &live {
        Some(live) => crate::ops::rollback_in_force(store, audit, environment, &state, live)?,
        None => None,
    };
    Ok(compare(
        environment,
        &built.ruleset,
        live.as_ref(),
        rollback.as_ref(),
    ))
}

/// The ruleset live in an environment (`None` when nothing is published).
pub fn live_of(
    store: &dyn Store,
    audit: &AuditLog,
    environment: &str,
) -> Result<Option<RawRuleset>> {
    match store.state(environment)?.live {
        Some(revision) => live_ruleset(store, audit, environment, revision),
        None => Ok(None),
    }
}

/// A flag in a few words: on or killed, its baseline, and what the default serves.
pub fn describe_flag(flag: &RawFlag) -> String {
    let mut text = String::from(if flag.enabled { "on" } else { "killed" });
    text.push_str(&format!(", baseline {}", flag.baseline));
    match &flag.default {
        None => {}
        Some(RawServe {
            variant: Some(variant),
            ..
        }) => text.push_str(&format!(", default {variant}")),
        Some(RawServe {
            split: Some(split), ..
        }) => {
            let lanes: Vec<String> = split
                .treatments
                .iter()
                .map(|t| format!("{} {}", t.variant, percent(t.weight)))
                .collect();
            text.push_str(&format!(", split {}", lanes.join(" + ")));
        }
        Some(_) => {}
    }
    if !flag.rules.is_empty() {
        text.push_str(&format!(", {} rule(s)", flag.rules.len()));
    }
    text
}
