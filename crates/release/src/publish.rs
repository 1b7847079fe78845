//! `promptflag publish --env <env>`: governance gates, then bodies → revision → pointer, then the
//! audit entry.
//!
//! Publishing is split into [`plan`] (check the gates, read the store's state, fix the revision
//! as the contracts' next revision, one above the latest or live one, and the expected live
//! revision) and [`execute`] (write). Two publishers that
//! plan against the same state both aim at the same revision; the store lets one through and
//! answers the other with a conflict, so nothing is ever silently overwritten.

use promptflag_core::model::RawRuleset;
use serde_json::{Value, json};

use crate::audit::{Action, AuditLog, NewEntry};
use crate::error::{Error, Problem, Result};
use crate::store::{Progress, Store, WriteIntent, contract_error};
use promptflag_authoring::build::{Build, PromptArtifact, ruleset_publish_bytes};
use promptflag_authoring::diff;
use promptflag_authoring::evals;
use promptflag_contracts::digest::sha256_hex;
use promptflag_contracts::runtime::{self, RawRuntimeDecision};

/// Who publishes, and on what authority.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// The environment.
    pub environment: String,
    /// Recorded in the audit log.
    pub actor: String,
    /// Why (required with `force`).
    pub reason: String,
    /// Overrides the promotion gate (`promote_from`); recorded as an `override` entry.
    pub force: bool,
    /// Reverts the runtime decisions git does not hold (kills, the loop's rollbacks, promotions
    /// and running canaries) instead of keeping them, and publishes over an operator's rollback
    /// what it took away; needs a reason, recorded as an `override` entry.
    pub revert_runtime: bool,
    /// The folder of recorded eval results (`<repo>/evals/results`), read where the
    /// environment has `require_evals`.
    pub eval_results: Option<std::path::PathBuf>,
    /// The signature gate's material sent with the ruleset ([`WriteIntent::approvals`]).
    pub approvals: Option<String>,
}

/// A publish ready to execute.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The environment.
    pub environment: String,
    /// The revision it will create.
    pub revision: u64,
    /// The revision live when planned; the store refuses the write if it moved.
    pub expected_live: Option<u64>,
    /// The ruleset, with `revision` set.
    pub ruleset: RawRuleset,
    /// Exactly the bytes that will be stored.
    pub bytes: Vec<u8>,
    /// Content hash (environment, revision and source left out).
    pub content_hash: String,
    /// SHA-256 of `bytes`.
    pub ruleset_hash: String,
    /// Every body the ruleset names.
    pub bodies: Vec<(String, Vec<u8>)>,
    /// Gates overridden with `--force`, one sentence each.
    pub overridden: Vec<String>,
    /// The audit diff summary against the live ruleset.
    pub summary: Value,
    /// What became of the live runtime decisions.
    pub runtime: RuntimeOutcome,
    /// Who and why.
    pub options: PublishOptions,
}

/// What a publish did with the decisions taken on the live environment, one sentence each
/// (`flag: killed at T by X because …`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RuntimeOutcome {
    /// Kept over git's flag: git does not hold them yet (`promptflag sync` writes them back).
    pub kept: Vec<String>,
    /// Canaries the loop is ramping, kept over git's flag until the rollout ends.
    pub running: Vec<String>,
    /// Ended: git now holds them.
    pub converged: Vec<String>,
    /// Reverted with `--revert-runtime`.
    pub reverted: Vec<String>,
    /// Ended with their flag, which git removed.
    pub orphaned: Vec<String>,
}

impl RuntimeOutcome {
    fn of(carried: &runtime::Carried) -> RuntimeOutcome {
        let lines = |list: &[(String, RawRuntimeDecision)]| -> Vec<String> {
            list.iter()
                .map(|(flag, decision)| format!("{flag}: {}", runtime::describe(decision)))
                .collect()
        };
        let (running, kept): (Vec<_>, Vec<_>) = carried
            .kept
            .iter()
            .cloned()
            .partition(|(_, decision)| decision.action == runtime::CANARY);
        RuntimeOutcome {
            kept: lines(&kept),
            running: lines(&running),
            converged: lines(&carried.converged),
            reverted: lines(&carried.reverted),
            orphaned: lines(&carried.orphaned),
        }
    }
}

/// What a publish did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishReport {
    /// The environment.
    pub environment: String,
    /// The revision now live.
    pub revision: u64,
    /// The revision live before.
    pub previous: Option<u64>,
    /// Content hash.
    pub content_hash: String,
    /// Hash of the stored bytes.
    pub ruleset_hash: String,
    /// Bodies sent.
    pub bodies: usize,
    /// Bodies the store did not have yet (when it can tell).
    pub bodies_created: usize,
    /// Gates overridden.
    pub overridden: Vec<String>,
    /// The audit entry written.
    pub audit_seq: u64,
    /// The diff summary.
    pub summary: Value,
    /// What became of the live runtime decisions.
    pub runtime: RuntimeOutcome,
}

/// Checks the governance gates of an environment for a build. Returns the gates that `force`
/// overrode; a gate that cannot be overridden, or any gate without `force`, is an error.
pub fn check_gates(
    build: &Build,
    audit: &AuditLog,
    options: &PublishOptions,
) -> Result<Vec<String>> {
    let env = build
        .environments
        .get(&options.environment)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "the build has no ruleset for {:?} (it has: {})",
                options.environment,
                build
                    .environments
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let mut refusals = Vec::new();
    for (content_id, _) in env.ruleset.prompts.iter() {
        let Some(prompt) = build.prompts.get(content_id) else {
            return Err(Error::Invalid(format!(
                "the build has no body for prompt {content_id}"
            )));
        };
        let hash = &prompt.body_sha256;
        let name = format!("{}@{}", prompt.id, prompt.version);
        let mut refuse = |code: &str, message: String| {
            refusals.push(Problem {
                path: format!("prompts.{hash}"),
                code: code.to_string(),
                message,
            });
        };
        let approved = prompt
            .approved_by
            .get(&options.environment)
            .is_some_and(|names| !names.is_empty());
        if env.config.require_approvals && prompt.risk == "high" && !approved {
            refuse(
                "approval_missing",
                format!(
                    "{name} is high risk and has no signed approval of its content ({hash}) for {} from a registered reviewer other than its author {} (`promptflag approve {name} --env {}`)",
                    options.environment, prompt.author, options.environment
                ),
            );
        }
        if !env.config.allow_drafts && prompt.status == "draft" {
            refuse(
                "draft",
                format!(
                    "{name} is a draft and {} does not serve drafts",
                    options.environment
                ),
            );
        }
        if env.config.require_evals
            && let Some((code, refusal)) = eval_refusal(prompt, options)?
        {
            refuse(
                code,
                format!(
                    "{name} (content id {}) {refusal}, and {} requires passing evals",
                    prompt.content_id, options.environment
                ),
            );
        }
    }
    if !refusals.is_empty() {
        // Approvals, drafts and evals are not overridable: --force is for the promotion order only.
        return Err(Error::RefusedPrompts { problems: refusals });
    }
    let mut overridden = Vec::new();
    if let Some(from) = &env.config.promote_from
        && !audit.was_published(from, &env.content_hash)?
    {
        let message = format!(
            "{} needs this ruleset content ({}) published to {from} first, and the audit log has no such publish",
            options.environment, &env.content_hash
        );
        if !options.force {
            return Err(Error::Refused(format!(
                "{message}; publish to {from} first, or pass --force --reason \"…\""
            )));
        }
        if options.reason.trim().is_empty() {
            return Err(Error::Invalid(String::from(
                "--force needs --reason \"why\"; the override is recorded in the audit log",
            )));
        }
        overridden.push(message);
    }
    Ok(overridden)
}

/// Why a prompt's eval evidence does not let it into an environment that requires evals (a
/// problem code and a phrase), or `None` when it has a sealed, passing result for its content id
/// under its current suite.
fn eval_refusal(
    prompt: &PromptArtifact,
    options: &PublishOptions,
) -> Result<Option<(&'static str, String)>> {
    let Some(suite) = &prompt.eval_suite else {
        return Ok(Some((
            "eval_suite_missing",
            format!("has no eval suite (evals/{}/eval.yaml)", prompt.id),
        )));
    };
    let Some(results) = &options.eval_results else {
        return Ok(Some((
            "eval_result_missing",
            String::from("has no eval results folder to read"),
        )));
    };
    if prompt.content_id.is_empty() {
        return Ok(Some((
            "eval_result_missing",
            String::from("has no content id (rebuild it)"),
        )));
    }
    let checked = evals::check_result(results, &prompt.content_id, suite)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(checked
        .err()
        .map(|refusal| (refusal.code(), refusal.to_string())))
}

/// Reads the live ruleset bytes of an environment: from the audit log's copy of what was
/// published, or else from the store.
pub fn live_ruleset(
    store: &dyn Store,
    audit: &AuditLog,
    environment: &str,
    revision: u64,
) -> Result<Option<RawRuleset>> {
    let bytes = match audit.ruleset_of_revision(environment, revision)? {
        Some(bytes) => Some(bytes),
        None => store.fetch_ruleset(environment, revision)?,
    };
    Ok(bytes.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// Checks the gates and fixes the revision against the store's current state.
pub fn plan(
    store: &dyn Store,
    audit: &AuditLog,
    build: &Build,
    options: &PublishOptions,
) -> Result<Plan> {
    let overridden = check_gates(build, audit, options)?;
    let env = &build.environments[&options.environment];
    let state = store.state(&options.environment)?;
    let revision =
        promptflag_contracts::revision::next(state.latest, state.live).map_err(contract_error)?;
    if options.revert_runtime && options.reason.trim().is_empty() {
        return Err(Error::Invalid(String::from(
            "--revert-runtime needs --reason \"why\"; the revert is recorded in the audit log",
        )));
    }
    let mut ruleset = env.ruleset.clone();
    ruleset.revision = revision;
    let previous = match state.live {
        Some(live) => live_ruleset(store, audit, &options.environment, live)?,
        None => None,
    };
    // A publish from git never silently undoes a decision taken on the live environment.
    let carried = match &previous {
        Some(live) => {
            runtime::carry(live, &mut ruleset, options.revert_runtime).map_err(contract_error)?
        }
        None => runtime::Carried::default(),
    };
    let mut outcome = RuntimeOutcome::of(&carried);
    if let Some(live) = &previous
        && let Some(rollback) =
            crate::ops::rollback_in_force(store, audit, &options.environment, &state, live)?
    {
        // An operator's rollback ends with this publish, unless the publish would serve again
        // what it took away: that needs the same override as reverting a kill.
        let line = format!("environment: {}", runtime::describe_rollback(&rollback));
        let again = runtime::served_again(&rollback, &ruleset);
        if again.is_empty() {
            outcome
                .converged
                .push(format!("{line} (git serves none of what it took away)"));
        } else if options.revert_runtime {
            outcome.reverted.push(line);
        } else {
            let parts: Vec<String> = again
                .iter()
                .map(|part| format!("{} as revision {} had it", part.part, part.revision))
                .collect();
            return Err(Error::Refused(format!(
                "{} was {}, and this publish would serve again what the rollback took away ({}); \
                 change it in git, or publish with --revert-runtime --reason \"…\"",
                options.environment,
                runtime::describe_rollback(&rollback),
                parts.join(", ")
            )));
        }
    }
    promptflag_core::compile(&ruleset).map_err(|e| {
        Error::Invalid(format!(
            "{e}{}",
            if carried.kept.is_empty() {
                ""
            } else {
                " (after keeping the live runtime decisions: run `promptflag sync` to write them into the repository, or publish with --revert-runtime --reason \"…\")"
            }
        ))
    })?;
    let bytes = ruleset_publish_bytes(&ruleset)?;
    let summary = diff::summary(previous.as_ref(), &ruleset);
    // Versions that share a body (the same text on two models) share its one KV entry.
    let bodies: std::collections::BTreeMap<String, Vec<u8>> = ruleset
        .prompts
        .iter()
        .filter_map(|(content_id, _)| {
            build
                .prompts
                .get(content_id)
                .map(|p| (p.body_sha256.clone(), p.body.clone()))
        })
        .collect();
    let bodies = bodies.into_iter().collect();
    Ok(Plan {
        environment: options.environment.clone(),
        revision,
        expected_live: state.live,
        ruleset_hash: sha256_hex(&bytes),
        content_hash: env.content_hash.clone(),
        ruleset,
        bytes,
        bodies,
        overridden,
        summary,
        runtime: outcome,
        options: options.clone(),
    })
}

/// Writes a planned publish: bodies, then the revision and pointer, then the audit entries.
pub fn execute(
    store: &dyn Store,
    audit: &mut AuditLog,
    plan: Plan,
    progress: &dyn Progress,
) -> Result<PublishReport> {
    let bodies_created = store.put_prompts(&plan.bodies, progress)?;
    // The entries are fixed before the write and recorded as an intent, so a command that dies
    // between the store's write and the append leaves them for `reconcile` to finish.
    let entry = |action: Action, summary: Value| NewEntry {
        actor: plan.options.actor.clone(),
        action,
        environment: plan.environment.clone(),
        revision: Some(plan.revision),
        previous_revision: plan.expected_live,
        reason: plan.options.reason.clone(),
        content_hash: Some(plan.content_hash.clone()),
        ruleset_hash: Some(plan.ruleset_hash.clone()),
        summary,
    };
    let mut entries = Vec::new();
    if !plan.overridden.is_empty() {
        entries.push(entry(
            Action::Override,
            json!({ "overridden": plan.overridden }),
        ));
    }
    if !plan.runtime.reverted.is_empty() {
        entries.push(entry(
            Action::Override,
            json!({ "reverted_runtime": plan.runtime.reverted }),
        ));
    }
    let mut summary = plan.summary.clone();
    let kept: Vec<&String> = plan
        .runtime
        .kept
        .iter()
        .chain(&plan.runtime.running)
        .collect();
    if let Value::Object(map) = &mut summary
        && !kept.is_empty()
    {
        map.insert(String::from("runtime_kept"), json!(kept));
    }
    entries.push(entry(Action::Publish, summary));
    audit.record_intent(&plan.environment, plan.revision, &entries)?;
    audit.store_ruleset(&plan.bytes)?;
    let moved = store.put_ruleset_with(
        &plan.environment,
        plan.revision,
        &plan.bytes,
        plan.expected_live,
        &WriteIntent {
            action: "publish",
            reason: plan.options.reason.clone(),
            override_gates: plan.options.force,
            approvals: plan.options.approvals.clone(),
        },
    );
    let moved = match moved {
        Ok(moved) => moved,
        Err(error) => {
            audit.clear_intent()?;
            return Err(error);
        }
    };
    let mut last = None;
    for entry in entries {
        last = Some(audit.append(entry)?);
    }
    audit.clear_intent()?;
    let audit_seq = last.map_or(0, |entry| entry.seq);
    Ok(PublishReport {
        environment: plan.environment,
        revision: moved.revision,
        previous: moved.previous,
        content_hash: plan.content_hash,
        ruleset_hash: plan.ruleset_hash,
        bodies: plan.bodies.len(),
        bodies_created,
        overridden: plan.overridden,
        audit_seq,
        summary: plan.summary,
        runtime: plan.runtime,
    })
}

/// [`plan`] then [`execute`].
pub fn publish(
    store: &dyn Store,
    audit: &mut AuditLog,
    build: &Build,
    options: &PublishOptions,
    progress: &dyn Progress,
) -> Result<PublishReport> {
    let plan = plan(store, audit, build, options)?;
    execute(store, audit, plan, progress)
}
