//! Operations on a live environment: the kill switch, rollback, history, and waiting until the
//! Worker serves a change (the revert cycle time).
//!
//! A kill publishes a new revision, identical to the live one except that the flag is disabled,
//! and moves the pointer to it; a rollback moves the pointer to a kept revision. Either way the
//! change readers see is the single write of `ruleset:<env>`: the revision key and `meta` written
//! before it are invisible until the pointer names them.
//!
//! A rollback is runtime state too ([`rollback_in_force`]): the revision it makes live cannot
//! change, so the next write built on it (a kill here, a step of the control loop) records it in
//! the revision it writes, and a publish from git reads it there or from the revision state.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::audit::{Action, AuditLog, Entry, NewEntry};
use crate::error::{Error, Result};
use crate::publish::live_ruleset;
use crate::store::{EnvState, Http, NoProgress, Progress, Store, WriteIntent, contract_error};
use promptflag_authoring::build::{content_hash, ruleset_publish_bytes};
use promptflag_contracts::digest::sha256_hex;
use promptflag_contracts::runtime::{self, RawEnvironmentRollback, RawRuntimeDecision};
use promptflag_core::model::RawRuleset;

/// Who acts, and why.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// Recorded in the audit log.
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// What a kill or rollback did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Revert {
    /// `kill` or `rollback`.
    pub action: &'static str,
    /// The environment.
    pub environment: String,
    /// The flag killed (kill only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    /// The revision live now.
    pub revision: u64,
    /// The revision live before.
    pub previous: Option<u64>,
    /// True when the flag was already disabled and nothing was written.
    pub unchanged: bool,
    /// Milliseconds from the start of the command until the store acknowledged the pointer write.
    pub write_ms: u128,
    /// Milliseconds from the start of the command until the Worker served the new revision
    /// (the revert cycle time), when the command waited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_ms: Option<u128>,
    /// The audit entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_seq: Option<u64>,
}

/// Turns a flag's kill switch off in an environment.
pub fn kill(
    store: &dyn Store,
    audit: &mut AuditLog,
    environment: &str,
    flag: &str,
    who: &Actor,
    started: Instant,
) -> Result<Revert> {
    let state = store.state(environment)?;
    let Some(live) = state.live else {
        return Err(Error::Invalid(format!(
            "{environment} has no live ruleset to kill a flag in"
        )));
    };
    let mut ruleset = live_ruleset(store, audit, environment, live)?.ok_or_else(|| {
        Error::Invalid(format!(
            "cannot read revision {live} of {environment}: it is not in this audit log and the store does not serve it (point --worker at the Worker serving {environment}, or use the audit DB that published it)"
        ))
    })?;
    let previous_content = content_hash(&ruleset)?;
    record_rollback_in_force(store, audit, environment, &state, &mut ruleset)?;
    let mut found = false;
    let mut already = false;
    for (key, raw) in ruleset.flags.0.iter_mut() {
        if key == flag {
            found = true;
            already = !raw.enabled;
            raw.enabled = false;
        }
    }
    if !found {
        let keys: Vec<&str> = ruleset.flags.iter().map(|(k, _)| k.as_str()).collect();
        return Err(Error::Invalid(format!(
            "{environment} has no flag {flag:?} (flags: {})",
            keys.join(", ")
        )));
    }
    if already {
        return Ok(Revert {
            action: "kill",
            environment: environment.to_string(),
            flag: Some(flag.to_string()),
            revision: live,
            previous: Some(live),
            unchanged: true,
            write_ms: started.elapsed().as_millis(),
            served_ms: None,
            audit_seq: None,
        });
    }
    let revision =
        promptflag_contracts::revision::next(state.latest, Some(live)).map_err(contract_error)?;
    ruleset.revision = revision;
    // The kill is recorded in the revision that serves it, so the next publish from git keeps it.
    runtime::record(
        &mut ruleset,
        flag,
        RawRuntimeDecision {
            action: String::from(runtime::KILL),
            by: who.actor.clone(),
            at: crate::audit::now_rfc3339(),
            reason: who.reason.clone(),
            revision,
            disabled: true,
            ..RawRuntimeDecision::default()
        },
    );
    promptflag_core::compile(&ruleset).map_err(|e| Error::Invalid(e.to_string()))?;
    let bytes = ruleset_publish_bytes(&ruleset)?;
    let intent = WriteIntent {
        action: "kill",
        reason: who.reason.clone(),
        override_gates: false,
        approvals: None,
    };
    let entry = NewEntry {
        actor: who.actor.clone(),
        action: Action::Kill,
        environment: environment.to_string(),
        revision: Some(revision),
        previous_revision: Some(live),
        reason: who.reason.clone(),
        content_hash: Some(content_hash(&ruleset)?),
        ruleset_hash: Some(sha256_hex(&bytes)),
        summary: json!({
            "flag": flag,
            "enabled": [true, false],
            "from_content_hash": previous_content,
        }),
    };
    // Recorded before the write, so a kill that dies before its append is finished by the next
    // command (`reconcile`).
    audit.record_intent(environment, revision, std::slice::from_ref(&entry))?;
    audit.store_ruleset(&bytes)?;
    let moved = match store.put_ruleset_with(environment, revision, &bytes, Some(live), &intent) {
        Ok(moved) => moved,
        Err(error) => {
            audit.clear_intent()?;
            return Err(error);
        }
    };
    let write_ms = started.elapsed().as_millis();
    let entry = audit.append(entry)?;
    audit.clear_intent()?;
    Ok(Revert {
        action: "kill",
        environment: environment.to_string(),
        flag: Some(flag.to_string()),
        revision: moved.revision,
        previous: moved.previous,
        unchanged: false,
        write_ms,
        served_ms: None,
        audit_seq: Some(entry.seq),
    })
}

/// The operator's rollback in force on an environment whose pointer names `live`: the one the
/// live revision records, merged with the one the revision state shows when the live revision
/// is below the latest (a rollback no write has recorded yet: what each kept revision above
/// the live one had that the live one does not). Who, when and why come from this audit log's
/// rollback entry, when it has one. Reads at most the kept revisions.
pub fn rollback_in_force(
    store: &dyn Store,
    audit: &AuditLog,
    environment: &str,
    state: &EnvState,
    live: &RawRuleset,
) -> Result<Option<RawEnvironmentRollback>> {
    let recorded = runtime::environment_rollback(live).map_err(contract_error)?;
    let Some(live_revision) = state.live else {
        return Ok(recorded);
    };
    let above: Vec<u64> = state
        .kept
        .iter()
        .copied()
        .filter(|revision| *revision > live_revision)
        .collect();
    if above.is_empty() {
        return Ok(recorded);
    }
    let mut parts = Vec::new();
    for revision in &above {
        if let Some(rolled_back) = live_ruleset(store, audit, environment, *revision)? {
            parts.extend(runtime::rolled_back_parts(live, &rolled_back));
        }
    }
    let entry = audit
        .list(Some(environment))?
        .into_iter()
        .rev()
        .find(|entry| entry.action == Action::Rollback && entry.revision == Some(live_revision));
    let seen = RawEnvironmentRollback {
        by: entry.as_ref().map(|e| e.actor.clone()).unwrap_or_default(),
        at: entry.as_ref().map(|e| e.time.clone()).unwrap_or_default(),
        reason: entry.as_ref().map(|e| e.reason.clone()).unwrap_or_default(),
        from: entry
            .as_ref()
            .and_then(|e| e.previous_revision)
            .or(state.latest)
            .unwrap_or(live_revision),
        to: live_revision,
        parts,
    };
    Ok(Some(match &recorded {
        Some(earlier) => runtime::merge_rollbacks(seen, earlier),
        None => seen,
    }))
}

/// Records the rollback in force on the live revision in a ruleset built on it, so it outlives
/// the revision state that showed it (a write makes the live revision the latest again).
pub fn record_rollback_in_force(
    store: &dyn Store,
    audit: &AuditLog,
    environment: &str,
    state: &EnvState,
    ruleset: &mut RawRuleset,
) -> Result<()> {
    if let Some(rollback) = rollback_in_force(store, audit, environment, state, ruleset)? {
        runtime::record_rollback(ruleset, &rollback);
    }
    Ok(())
}

/// Moves an environment's pointer back to a kept revision (`None`: the one before the live one).
pub fn rollback(
    store: &dyn Store,
    audit: &mut AuditLog,
    environment: &str,
    to: Option<u64>,
    who: &Actor,
    started: Instant,
) -> Result<Revert> {
    let intent = WriteIntent {
        action: "rollback",
        reason: who.reason.clone(),
        override_gates: false,
        approvals: None,
    };
    let moved = store.rollback_with(environment, to, &intent)?;
    let write_ms = started.elapsed().as_millis();
    let target = audit.ruleset_of_revision(environment, moved.revision)?;
    let (content, ruleset_hash) = match &target {
        Some(bytes) => (
            serde_json::from_slice(bytes)
                .ok()
                .and_then(|r| content_hash(&r).ok()),
            Some(sha256_hex(bytes)),
        ),
        None => (None, None),
    };
    let entry = audit.append(NewEntry {
        actor: who.actor.clone(),
        action: Action::Rollback,
        environment: environment.to_string(),
        revision: Some(moved.revision),
        previous_revision: moved.previous,
        reason: who.reason.clone(),
        content_hash: content,
        ruleset_hash,
        summary: json!({ "pointer": [moved.previous, moved.revision] }),
    })?;
    Ok(Revert {
        action: "rollback",
        environment: environment.to_string(),
        flag: None,
        revision: moved.revision,
        previous: moved.previous,
        unchanged: false,
        write_ms,
        served_ms: None,
        audit_seq: Some(entry.seq),
    })
}

/// Polls `GET <serve>/v1/ruleset` until the Worker serves `revision` of `environment`. Returns
/// the milliseconds since `started` at the first answer that did. `read_key` is the Worker's
/// server read key (docs/interfaces.md, "Read keys"); a Worker that refuses it (401, 403, or 503
/// for read keys it lacks) is an error at once, since waiting cannot change that.
///
/// A Worker serves one environment, and revision numbers repeat across environments, so the
/// served ruleset's `environment` is checked as well as its revision: a Worker that serves
/// another environment from KV is an error at once (it will never serve this change), not a
/// match on a number that happens to be equal. Its compiled-in fallback (served before KV
/// holds anything for it) names no environment of KV, so it only means "not yet".
#[allow(clippy::too_many_arguments)]
pub fn wait_until_served(
    http: &Http,
    serve_url: &str,
    read_key: Option<&str>,
    environment: &str,
    revision: u64,
    started: Instant,
    timeout: Duration,
    poll: Duration,
) -> Result<u128> {
    wait_until_served_with_progress(
        http,
        serve_url,
        read_key,
        environment,
        revision,
        started,
        timeout,
        poll,
        &NoProgress,
    )
}

/// [`wait_until_served`], reporting the wait to `progress` in milliseconds of the timeout.
#[allow(clippy::too_many_arguments)]
pub fn wait_until_served_with_progress(
    http: &Http,
    serve_url: &str,
    read_key: Option<&str>,
    environment: &str,
    revision: u64,
    started: Instant,
    timeout: Duration,
    poll: Duration,
    progress: &dyn Progress,
) -> Result<u128> {
    let url = format!("{}/v1/ruleset", serve_url.trim_end_matches('/'));
    let headers: Vec<(&str, String)> = read_key
        .map(|key| ("Authorization", format!("Bearer {key}")))
        .into_iter()
        .collect();
    let wanted = revision.to_string();
    let waiting_since = Instant::now();
    let deadline = waiting_since + timeout;
    progress.begin(
        u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        &format!("waiting for the Worker to serve {environment} revision {revision} (ms)"),
    );
    let mut reported_ms = 0u64;
    let outcome = loop {
        let waited_ms = u64::try_from(waiting_since.elapsed().as_millis()).unwrap_or(u64::MAX);
        progress.advance(waited_ms.saturating_sub(reported_ms));
        reported_ms = waited_ms;
        // A failed poll is not fatal: the Worker may be restarting; the deadline decides.
        let reply = http.send("GET", &url, &headers, None, false);
        if let Ok(refused) = &reply
            && refused_read(refused.status, refused.error_code().as_deref())
        {
            break Err(Error::Remote {
                context: format!("GET {url}"),
                message: format!(
                    "the Worker refused to serve its ruleset ({}): pass its server read key \
                     (--read-key or PROMPTFLAG_READ_KEY)",
                    refused.error_text()
                ),
            });
        }
        if let Ok(reply) = reply
            && reply.status == 200
        {
            let from_kv = reply.source_header.as_deref() != Some("fallback");
            let served = reply.json();
            if let Some(other) = served["environment"]
                .as_str()
                .filter(|served| from_kv && *served != environment)
            {
                break Err(Error::Remote {
                    context: format!("GET {url}"),
                    message: format!(
                        "this Worker serves {other}, not {environment}: the change to \
                         {environment} was written (revision {revision} is live in its KV) but \
                         cannot be seen here; pass --serve-url of a Worker serving {environment}"
                    ),
                });
            }
            if reply.revision_header.as_deref() == Some(wanted.as_str()) {
                break Ok(started.elapsed().as_millis());
            }
        }
        if Instant::now() >= deadline {
            break Err(Error::NotServed {
                revision,
                waited_ms: started.elapsed().as_millis(),
            });
        }
        std::thread::sleep(poll);
    };
    progress.end();
    outcome
}

/// Whether a Worker's answer to `GET /v1/ruleset` refuses the read key (or lacks read keys),
/// which no amount of waiting changes.
fn refused_read(status: u16, code: Option<&str>) -> bool {
    matches!(status, 401 | 403) || (status == 503 && code == Some("read_keys_invalid"))
}

/// An environment's revisions, with the audit entries that made them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct History {
    /// The environment.
    pub environment: String,
    /// The store's view.
    pub state: EnvState,
    /// This audit log's entries for the environment, oldest first.
    pub entries: Vec<Entry>,
}

/// Reads an environment's history.
pub fn history(store: &dyn Store, audit: &AuditLog, environment: &str) -> Result<History> {
    Ok(History {
        environment: environment.to_string(),
        state: store.state(environment)?,
        entries: audit.list(Some(environment))?,
    })
}
