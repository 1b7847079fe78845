//! The admin API of `docs/interfaces.md`, served by the admin authority: the Durable Object
//! (`PromptflagAuthority`, one per namespace) that the Worker's entry forwards every `/admin/*`
//! request to, and the only writer of Workers KV.
//!
//! - `PUT /admin/v1/prompts/{sha256}`: stores a body after checking its hash.
//! - `GET /admin/v1/rulesets/{env}`: the live, latest and kept revisions, and each kept
//!   revision's audit anchor.
//! - `PUT /admin/v1/rulesets/{env}[?expected_live=N&reason=…&override=true&action=kill]`:
//!   validates and publishes a revision.
//! - `POST /admin/v1/rulesets/{env}/rollback[?reason=…]`: points `ruleset:<env>` at a kept
//!   revision.
//! - `GET /admin/v1/audit[?after=SEQ&limit=N]` and `GET /admin/v1/audit/head`: the audit log.
//!
//! Callers present `Authorization: Bearer <token>`; the token names credentials of
//! `ADMIN_CREDENTIALS` (`promptflag_contracts::authority`), each scoped to one environment and
//! one role. Every write passes through [`authorize_write`], which checks the credential's scope
//! and role and the environment's gates (from `ENVIRONMENT_POLICY`, never from the upload).
//!
//! The object keeps the authoritative state in its own transactional storage: per environment
//! the pointer and the revision history under the same keys as KV (`ruleset:<env>`,
//! `meta:<env>`), the audit log (`audit:head`, `audit:<seq>`) and the prompt bodies each
//! environment has accepted (`accepted:<env>:<sha256>`).
//! A write holds [`WriteLock`] from reading that state to committing it (a Durable Object's input
//! gate does not stop requests interleaving across KV's awaits), checks the revision against it,
//! writes the revision's bytes to KV, then commits the new state and its audit entries in one
//! atomic storage write, and only then copies the history and the pointer to KV. So of N writers
//! of one revision exactly one commits; the others see the committed state and get 409.
//!
//! With the secret `RULESET_SIGNING_KEY` the authority signs every revision it makes live
//! (`promptflag_contracts::signing`): the signature covers the environment, the revision, the
//! environment's epoch and the exact stored bytes, and is written to `signature:<env>:<rev>`
//! before the pointer moves. The epoch (`epoch:<env>` in the object's storage, committed with
//! the state) advances only on a rollback, which signs its target again with the new epoch, so
//! readers tell a rollback from a replayed old revision. The signing itself is the entry's
//! (`worker/js/signer.js`, the runtime's Web Crypto); the Wasm builds the message and calls it.

use promptflag_contracts::authority::{
    self, AUDIT_PAGE_LIMIT, Credential, Entry, Head, WriteAction,
};
use promptflag_contracts::digest::content_hash_input;
use promptflag_contracts::keys::{
    authority_key, meta_key, pointer_key, pointer_value, prompt_key, revision_key, signature_key,
};
use promptflag_contracts::signing;
use promptflag_contracts::{Meta, admin, keys};
use promptflag_core::Ruleset;
use serde_json::{Value, json};

use crate::app::Config;
use crate::http::{bearer_token, percent_decode, query_param, rfc3339_millis};
use crate::input::limits;
use crate::js::{
    BodyError, Incoming, Kv, Method, Storage, call_gate, call_signer, read_body, sha256_hex,
};
use crate::prompts::remember_written;
use crate::reply::{Failure, Outcome, Reply};

/// The longest `reason` a write may carry, in bytes.
const REASON_BYTES: usize = 1024;

/// A contract rule's refusal as the admin API answers it (`docs/interfaces.md`).
pub fn refusal(error: promptflag_contracts::Error) -> Failure {
    use promptflag_contracts::Error as Contract;
    let message = error.to_string();
    match error {
        Contract::StaleRevision { highest, .. } => {
            Failure::api(409, "stale_revision", message).with_field("latest", Value::from(highest))
        }
        Contract::LiveMoved { live, .. } => {
            Failure::api(409, "conflict", message).with_field("live", json!(live))
        }
        Contract::RevisionNotKept { kept, .. } => {
            Failure::api(404, "revision_not_kept", message).with_field("kept", json!(kept))
        }
        Contract::RevisionOutOfRange { .. } | Contract::RevisionsExhausted { .. } => {
            Failure::api(422, "invalid_ruleset", "the ruleset does not validate").with_field(
                "problems",
                json!([{"path": "revision", "code": error.code(), "message": message}]),
            )
        }
        _ => Failure::bad_request(message),
    }
}

/// Who is calling: the credentials of `ADMIN_CREDENTIALS` whose token was presented. `404
/// admin_disabled` when the secret is unset; `503 credentials_invalid` naming the credential
/// when the list cannot be used (a token under 32 bytes among it); `401 unauthorized` when no
/// credential has the token.
pub fn authenticate(
    configured: Option<&str>,
    authorization: Option<&str>,
) -> Result<Vec<Credential>, Failure> {
    let Some(text) = configured.filter(|text| !text.trim().is_empty()) else {
        return Err(Failure::api(
            404,
            "admin_disabled",
            "the admin API is off: ADMIN_CREDENTIALS is not set",
        ));
    };
    let credentials = authority::parse_credentials(text).map_err(|error| {
        let failure = Failure::api(503, "credentials_invalid", error.to_string());
        match error {
            authority::CredentialsError::ShortToken { name, .. }
            | authority::CredentialsError::Invalid { name, .. } => {
                failure.with_field("credential", Value::from(name))
            }
            authority::CredentialsError::Malformed(_) => failure,
        }
    })?;
    let presented = bearer_token(authorization).unwrap_or_default();
    let matched: Vec<Credential> = authority::matching(&credentials, presented)
        .into_iter()
        .cloned()
        .collect();
    if matched.is_empty() {
        return Err(Failure::api(
            401,
            "unauthorized",
            "a valid `Authorization: Bearer <token>` header is required",
        )
        .with_header("WWW-Authenticate", "Bearer realm=\"promptflag-admin\""));
    }
    Ok(matched)
}

/// What the admin handlers work with: the caller, the settings, KV and the object's storage.
pub struct Authority<'a> {
    /// The credentials the caller's token matched.
    pub caller: Vec<Credential>,
    pub config: &'a Config,
    pub kv: &'a Kv,
    pub storage: &'a Storage,
    /// Milliseconds since the epoch.
    pub now: u64,
    /// The signature gate (`decideGate` of `worker/js/signatures.js`, bound by the entry to the
    /// request's approvals): `(environment, ruleset) => Promise<decision JSON>`.
    pub gate: Option<js_sys::Function>,
    /// The ruleset signer (`worker/js/signer.js`, over `RULESET_SIGNING_KEY`): `(message) =>
    /// Promise<Uint8Array>`; `None` when the secret is unset, and then nothing is signed.
    pub signer: Option<js_sys::Function>,
}

/// The entry's JavaScript that the authority calls, each absent when not configured.
#[derive(Default)]
pub struct Hooks {
    /// The signature gate ([`Authority::gate`]).
    pub gate: Option<js_sys::Function>,
    /// The ruleset signer ([`Authority::signer`]).
    pub signer: Option<js_sys::Function>,
}

/// Routes an admin request (after `/admin`) inside the authority. Authentication comes first,
/// so nothing about the routes is revealed to a caller without a credential.
pub async fn handle(
    request: &Incoming,
    path: &[&str],
    config: &Config,
    kv: Option<&Kv>,
    storage: &Storage,
    now: u64,
    hooks: Hooks,
) -> Outcome {
    let authorization = request.header("Authorization");
    let caller = authenticate(
        config.admin_credentials.as_deref(),
        authorization.as_deref(),
    )?;
    let context = Authority {
        caller,
        config,
        kv: store(kv)?,
        storage,
        now,
        gate: hooks.gate,
        signer: hooks.signer,
    };
    let method = request.method();
    match path {
        ["v1", "prompts", hash] => {
            require(&method, Method::Put, "PUT")?;
            routed(put_prompt(request, hash, context.kv)).await
        }
        ["v1", "rulesets", environment] => {
            let environment = environment_name(environment)?;
            match method {
                Method::Get => routed(status(environment, &context)).await,
                Method::Put => routed(publish(request, environment, &context)).await,
                _ => Err(Failure::method_not_allowed("GET, PUT")),
            }
        }
        ["v1", "rulesets", environment, "rollback"] => {
            let environment = environment_name(environment)?;
            require(&method, Method::Post, "POST")?;
            routed(rollback(request, environment, &context)).await
        }
        ["v1", "audit"] => {
            require(&method, Method::Get, "GET")?;
            routed(audit_page(request, &context)).await
        }
        ["v1", "audit", "head"] => {
            require(&method, Method::Get, "GET")?;
            Ok(Reply::json(
                200,
                &audit_head(context.storage).await?.to_value(),
            ))
        }
        _ => Err(Failure::not_found()),
    }
}

/// A route's future behind a pointer: each route's state machine stays its own function
/// instead of being inlined into one that holds every route's states at once.
fn routed<'a>(
    route: impl core::future::Future<Output = Outcome> + 'a,
) -> core::pin::Pin<Box<dyn core::future::Future<Output = Outcome> + 'a>> {
    Box::pin(route)
}

/// The admin API when the Worker has no authority binding: off without credentials, else 503.
pub fn without_authority(config: &Config) -> Failure {
    if config
        .admin_credentials
        .as_deref()
        .is_none_or(|text| text.trim().is_empty())
    {
        return Failure::api(
            404,
            "admin_disabled",
            "the admin API is off: ADMIN_CREDENTIALS is not set",
        );
    }
    Failure::api(
        503,
        "authority_unavailable",
        "the admin API runs in the PROMPTFLAG_AUTHORITY Durable Object, which this Worker has no binding for",
    )
}

fn require(method: &Method, wanted: Method, allow: &'static str) -> Result<(), Failure> {
    if *method == wanted {
        Ok(())
    } else {
        Err(Failure::method_not_allowed(allow))
    }
}

fn store(kv: Option<&Kv>) -> Result<&Kv, Failure> {
    kv.ok_or_else(|| Failure::unavailable("the Worker has no KV binding"))
}

fn environment_name(name: &str) -> Result<&str, Failure> {
    keys::environment(name).map_err(refusal)
}

fn body_failure(error: BodyError) -> Failure {
    match error {
        BodyError::TooLarge(limit) => Failure::too_large(limit),
        BodyError::Unreadable => Failure::bad_request("the request body could not be read"),
    }
}

fn kv_failure(what: &str, error: impl core::fmt::Display) -> Failure {
    Failure::unavailable(format!("KV failed while {what}: {error}"))
}

fn storage_failure(what: &str, error: impl core::fmt::Display) -> Failure {
    Failure::unavailable(format!(
        "the authority's storage failed while {what}: {error}"
    ))
}

async fn put_prompt(request: &Incoming, hash: &str, kv: &Kv) -> Outcome {
    if !keys::is_prompt_hash(hash) {
        return Err(Failure::api(
            400,
            "bad_hash",
            "a prompt is named by the SHA-256 of its body: 64 lowercase hex digits",
        ));
    }
    let body = read_body(request, limits::PROMPT_BYTES)
        .await
        .map_err(body_failure)?;
    let computed = hash_of(&body).await?;
    if computed != hash {
        return Err(Failure::api(
            422,
            "hash_mismatch",
            format!("the body's SHA-256 is {computed}, not {hash}"),
        )
        .with_field("computed", Value::from(computed)));
    }
    let Ok(text) = String::from_utf8(body) else {
        return Err(Failure::api(
            422,
            "invalid_body",
            "a prompt body must be UTF-8 text",
        ));
    };
    let key = prompt_key(hash);
    let existing = kv
        .text(&key)
        .await
        .map_err(|e| kv_failure("reading the body", e))?;
    let created = existing.is_none();
    if created {
        put(kv, &key, &text).await?;
    }
    remember_written(hash, &text);
    Ok(Reply::json(
        if created { 201 } else { 200 },
        &json!({"hash": hash, "created": created}),
    ))
}

async fn hash_of(bytes: &[u8]) -> Result<String, Failure> {
    sha256_hex(bytes)
        .await
        .map_err(|e| Failure::unavailable(format!("the runtime could not hash: {e}")))
}

/// The live revision and history from the texts of `ruleset:<env>` and `meta:<env>`.
fn parse_state(
    environment: &str,
    pointer: Option<String>,
    meta: Option<String>,
) -> Result<(Option<u64>, Meta), Failure> {
    let live = match pointer {
        None => None,
        Some(text) => Some(
            keys::parse_pointer(&text)
                .map_err(|e| Failure::unavailable(format!("{}: {e}", pointer_key(environment))))?,
        ),
    };
    let meta = match meta {
        None => Meta::default(),
        Some(text) => Meta::parse(text.as_bytes()).map_err(|e| {
            Failure::unavailable(format!("{} is {e}: {text:?}", meta_key(environment)))
        })?,
    };
    Ok((live, meta))
}

/// The environment's state as the authority holds it. An environment the authority has never
/// written is read from KV once, so a namespace published before the authority existed carries
/// on from its revisions.
async fn read_state(
    environment: &str,
    context: &Authority<'_>,
) -> Result<(Option<u64>, Meta), Failure> {
    let keys = [pointer_key(environment), meta_key(environment)];
    let mut held = context
        .storage
        .texts(&keys)
        .await
        .map_err(|e| storage_failure("reading the revision state", e))?;
    let meta = held.pop().flatten();
    let pointer = held.pop().flatten();
    if pointer.is_some() || meta.is_some() {
        return parse_state(environment, pointer, meta);
    }
    let kv = context.kv;
    let pointer = kv
        .text(&keys[0])
        .await
        .map_err(|e| kv_failure("reading the live revision", e))?;
    let meta = kv
        .text(&keys[1])
        .await
        .map_err(|e| kv_failure("reading the revision history", e))?;
    parse_state(environment, pointer, meta)
}

/// Copies the committed pointer and history to KV (and marks the environment as governed), the
/// live revision's signature first, so the pointer never names a revision before its signature
/// is there. If this fails after a commit, the write answers 503 and the next write to the
/// environment, which starts from the committed state, copies its own.
async fn copy_to_kv(
    environment: &str,
    live: u64,
    meta: &Meta,
    signature: Option<&str>,
    context: &Authority<'_>,
) -> Result<(), Failure> {
    if let Some(text) = signature {
        put(context.kv, &signature_key(environment, live), text).await?;
    }
    put(context.kv, &authority_key(environment), "1").await?;
    put(context.kv, &meta_key(environment), &meta.to_json()).await?;
    put(context.kv, &pointer_key(environment), &pointer_value(live)).await
}

/// The environment's signing epoch in the object's storage (absent: 0).
fn epoch_key(environment: &str) -> String {
    format!("epoch:{environment}")
}

/// The epoch the revision a write makes live is signed with: the environment's stored epoch,
/// one higher for a rollback (committed with the write).
async fn next_epoch(environment: &str, rollback: bool, storage: &Storage) -> Result<u64, Failure> {
    let stored = storage
        .text(&epoch_key(environment))
        .await
        .map_err(|e| storage_failure("reading the signing epoch", e))?;
    let epoch = match stored {
        None => 0,
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| storage_failure("reading the signing epoch", text))?,
    };
    Ok(if rollback {
        epoch.saturating_add(1)
    } else {
        epoch
    })
}

/// Signs revision `revision` of `environment` (its bytes' SHA-256 `ruleset_sha256`) for `epoch`
/// with the entry's signer: the signature text for `signature:<env>:<rev>`, or `None` when the
/// authority has no signing key. A key the runtime refuses is `503 signing_key_invalid`, so a
/// misconfigured authority writes nothing rather than publishing unsigned.
async fn sign(
    environment: &str,
    revision: u64,
    epoch: u64,
    ruleset_sha256: &str,
    context: &Authority<'_>,
) -> Result<Option<String>, Failure> {
    let Some(signer) = context.signer.as_ref() else {
        return Ok(None);
    };
    let message = signing::signed_message_of_digest(environment, revision, epoch, ruleset_sha256);
    let refused = |reason: String| Failure::api(503, "signing_key_invalid", reason);
    let bytes = call_signer(signer, &message).await.map_err(refused)?;
    let bytes = <[u8; signing::SIGNATURE_BYTES]>::try_from(bytes.as_slice()).map_err(|_| {
        refused(String::from(
            "the ruleset signer answered something other than an Ed25519 signature",
        ))
    })?;
    Ok(Some(signing::format_signature(&signing::Signature {
        epoch,
        bytes,
    })))
}

fn accepted_key(environment: &str, hash: &str) -> String {
    format!("accepted:{environment}:{hash}")
}

fn audit_key(seq: u64) -> String {
    format!("audit:{seq:016}")
}

const AUDIT_HEAD_KEY: &str = "audit:head";

/// The key registry the signature gate last accepted (the entry's gate reads it too).
const REGISTRY_KEY: &str = "governance:registry";

/// What the signature gate let through: the registry it accepted (to keep) and, when an
/// `override` credential passed a refusal, that credential and the refusal's message.
#[derive(Default)]
struct Gated {
    registry: Option<String>,
    overridden: Option<(Credential, String)>,
}

/// The error codes the signature gate answers with (`docs/interfaces.md`), as the admin API's
/// codes; an unknown one is `fallback`.
fn static_code(code: Option<&str>, fallback: &'static str) -> &'static str {
    const CODES: [&str; 14] = [
        "approval_missing",
        "approval_invalid",
        "approver_not_reviewer",
        "self_approval",
        "registry_change_unsigned",
        "registry_invalid",
        "publisher_not_authorized",
        "too_large",
        "invalid_base64",
        "invalid_public_key",
        "invalid_signature",
        "invalid_registry",
        "invalid_approval",
        "invalid_gate_input",
    ];
    CODES
        .into_iter()
        .find(|known| Some(*known) == code)
        .unwrap_or(fallback)
}

/// The signature gate of an environment whose policy requires approvals: the entry's gate
/// decides from the ruleset's content and the approvals the request carried. A refusal is `403`
/// with the decision's reason as its code and the decision itself, unless the caller overrides
/// it (`override=true` with a reason, under an `override` credential); a gate input that cannot
/// be decided is `400`.
async fn signature_gate(
    environment: &str,
    raw: &str,
    query: &WriteQuery,
    context: &Authority<'_>,
) -> Result<Gated, Failure> {
    let Some(gate) = context.gate.as_ref() else {
        return Err(Failure::unavailable(
            "this environment requires approvals, and the authority has no signature gate",
        ));
    };
    let text = call_gate(gate, environment, raw)
        .await
        .map_err(|e| Failure::unavailable(format!("the signature gate failed: {e}")))?;
    let decision: Value = serde_json::from_slice(text.as_bytes())
        .map_err(|e| Failure::unavailable(format!("the signature gate answered {e}")))?;
    let message = decision["message"].as_str().unwrap_or_default().to_string();
    if let Some(error) = decision.get("error") {
        let code = static_code(error["code"].as_str(), "invalid_gate_input");
        let message = error["message"].as_str().unwrap_or_default().to_string();
        return Err(Failure::api(400, code, message));
    }
    let registry = decision["registry"].as_str().map(String::from);
    if decision["allowed"] == Value::Bool(true) {
        return Ok(Gated {
            registry,
            overridden: None,
        });
    }
    if !query.override_gates || query.reason.trim().is_empty() {
        let code = static_code(decision["reason"].as_str(), "approval_missing");
        return Err(Failure::api(403, code, message).with_field("decision", decision));
    }
    let caller: Vec<&Credential> = context.caller.iter().collect();
    let overrider = authority::grant(&caller, WriteAction::Override, environment)
        .map_err(forbidden)?
        .clone();
    Ok(Gated {
        registry: None,
        overridden: Some((overrider, message)),
    })
}

async fn status(environment: &str, context: &Authority<'_>) -> Outcome {
    let (live, meta) = read_state(environment, context).await?;
    let mut anchors = serde_json::Map::new();
    for revision in &meta.kept {
        let metadata = context
            .kv
            .metadata(&revision_key(environment, *revision))
            .await
            .map_err(|e| kv_failure("reading a revision's audit anchor", e))?;
        if let Some(anchor) =
            metadata.and_then(|text| serde_json::from_slice::<Value>(text.as_bytes()).ok())
        {
            anchors.insert(revision.to_string(), anchor);
        }
    }
    let mut status = serde_json::Map::new();
    status.insert("environment".into(), Value::from(environment));
    status.insert("live".into(), optional(live));
    status.insert("latest".into(), optional(meta.latest));
    status.insert("kept".into(), Value::from(meta.kept));
    status.insert("anchors".into(), Value::Object(anchors));
    Ok(Reply::json(200, &status))
}

/// What a write's query carries besides `expected_live`.
struct WriteQuery {
    reason: String,
    /// `override=true`: pass a gate that would refuse (needs the override role and a reason).
    override_gates: bool,
    /// `action=kill|rollout`: how the audit entry names a publish (`publish` by default).
    label: &'static str,
}

impl WriteQuery {
    fn read(request: &Incoming, write: WriteAction) -> Result<WriteQuery, Failure> {
        let url = request.url();
        let reason = query_param(url, "reason")
            .map(|raw| percent_decode(raw).into_owned())
            .unwrap_or_default();
        if reason.len() > REASON_BYTES {
            return Err(Failure::bad_request("reason is over the 1024-byte limit"));
        }
        let override_gates = match query_param(url, "override") {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(Failure::bad_request("override must be true or false")),
        };
        let label = match (write, query_param(url, "action")) {
            (WriteAction::Rollback, _) => "rollback",
            (_, None | Some("publish")) => "publish",
            (_, Some("kill")) => "kill",
            (_, Some("rollout")) => "rollout",
            (_, Some(_)) => {
                return Err(Failure::bad_request(
                    "action must be publish, kill or rollout",
                ));
            }
        };
        Ok(WriteQuery {
            reason,
            override_gates,
            label,
        })
    }
}

/// A write the authority is asked to make, as [`authorize_write`] judges it.
pub struct Write<'a> {
    pub action: WriteAction,
    pub environment: &'a str,
    /// The prompt bodies the resulting ruleset names (empty for a rollback, whose target was
    /// accepted when it was published).
    pub bodies: Vec<&'a str>,
    /// The caller asked to override the gates that would refuse, with this reason.
    pub override_reason: Option<&'a str>,
}

/// What [`authorize_write`] allowed.
pub struct Authorized {
    /// The credential the write is made under (the audit log's actor).
    pub credential: Credential,
    /// The gates overridden, one sentence each (each becomes an `override` audit entry).
    pub overridden: Vec<String>,
}

/// The one gate every admin write passes: the caller's credential must be scoped to the
/// environment with a role that allows the action, and the environment's policy must accept
/// the content (the promotion gate: every prompt body must have been accepted in the
/// environment it promotes from), unless an `override` credential overrides it with a reason.
/// Nothing is written before this answers.
pub async fn authorize_write(
    write: &Write<'_>,
    context: &Authority<'_>,
) -> Result<Authorized, Failure> {
    let caller: Vec<&Credential> = context.caller.iter().collect();
    let credential = authority::grant(&caller, write.action, write.environment)
        .map_err(forbidden)?
        .clone();
    let policy = environment_policy(context.config, write.environment)?;
    let Some(from) = policy.promote_from.as_deref() else {
        return Ok(Authorized {
            credential,
            overridden: Vec::new(),
        });
    };
    let missing = not_accepted(from, &write.bodies, context).await?;
    if missing.is_empty() {
        return Ok(Authorized {
            credential,
            overridden: Vec::new(),
        });
    }
    let message = format!(
        "{} serves only prompt bodies accepted in {from} first; {} of this ruleset's are not",
        write.environment,
        missing.len(),
    );
    let Some(reason) = write.override_reason else {
        return Err(Failure::api(403, "promotion_required", message)
            .with_field("missing", Value::from(missing)));
    };
    if reason.trim().is_empty() {
        return Err(Failure::api(
            400,
            "reason_required",
            "an override needs a reason (?reason=…); it is recorded in the audit log",
        ));
    }
    let overrider = authority::grant(&caller, WriteAction::Override, write.environment)
        .map_err(forbidden)?
        .clone();
    Ok(Authorized {
        credential: overrider,
        overridden: vec![message],
    })
}

/// Refuses a ruleset naming a draft where the environment's policy serves none: `403
/// draft_not_allowed`, naming the versions in `prompts` ([`authority::draft_refusal`] decides
/// from the status the ruleset states and whether the environment served the body before). It is
/// not overridable: a draft becomes servable by changing its status in the repository, which
/// a reviewer sees, never by a parameter of the request.
async fn draft_gate(
    environment: &str,
    ruleset: &Ruleset,
    policy: &authority::EnvironmentPolicy,
    context: &Authority<'_>,
) -> Result<(), Failure> {
    if policy.allow_drafts {
        return Ok(());
    }
    let prompts = ruleset.prompts();
    let bodies: Vec<&str> = prompts.iter().map(|p| p.hash.as_str()).collect();
    let new_bodies = not_accepted(environment, &bodies, context).await?;
    let mut message = format!("{environment} serves no drafts:");
    let mut refused = Vec::new();
    for prompt in prompts {
        let served_before = !new_bodies.contains(&prompt.hash);
        if let Some(why) = authority::draft_refusal(policy, prompt.status.as_deref(), served_before)
        {
            let name = format!("{}@{}", prompt.id, prompt.version);
            message.push_str(&format!(" {name} {why};"));
            refused.push(Value::from(name));
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    message.pop();
    Err(Failure::api(403, "draft_not_allowed", message).with_field("prompts", Value::from(refused)))
}

fn forbidden(refused: authority::Forbidden) -> Failure {
    Failure::api(403, "forbidden", refused.reason)
        .with_field("credential", Value::from(refused.credential))
}

fn environment_policy(
    config: &Config,
    environment: &str,
) -> Result<authority::EnvironmentPolicy, Failure> {
    let text = config.environment_policy.as_deref().unwrap_or_default();
    authority::policy_for(text, environment)
        .map_err(|reason| Failure::api(503, "policy_invalid", reason))
}

/// The bodies of `bodies` that `environment` has not accepted.
async fn not_accepted(
    environment: &str,
    bodies: &[&str],
    context: &Authority<'_>,
) -> Result<Vec<String>, Failure> {
    let mut missing = Vec::new();
    for chunk in bodies.chunks(STORAGE_KEYS_AT_ONCE) {
        let keys: Vec<String> = chunk
            .iter()
            .map(|hash| accepted_key(environment, hash))
            .collect();
        let found = context
            .storage
            .texts(&keys)
            .await
            .map_err(|e| storage_failure("reading the accepted bodies", e))?;
        for (hash, value) in chunk.iter().zip(found) {
            if value.is_none() {
                missing.push(String::from(*hash));
            }
        }
    }
    Ok(missing)
}

/// The most keys one storage call reads or writes (the runtime's limit is 128).
const STORAGE_KEYS_AT_ONCE: usize = 128;

/// `expected_live` from the query: `Some(Some(n))`, `Some(None)` for `none` (no live revision
/// expected), `None` when absent.
fn expected_live(request: &Incoming) -> Result<Option<Option<u64>>, Failure> {
    // The raw URL, not a parsed `Url`: parsing it would link the `url` crate and its IDNA
    // tables into the Wasm for one numeric parameter.
    match query_param(request.url(), "expected_live") {
        Some(value) => parse_expected_live(value).map(Some),
        None => Ok(None),
    }
}

pub fn parse_expected_live(value: &str) -> Result<Option<u64>, Failure> {
    admin::parse_expected_live(value).map_err(|_| {
        Failure::bad_request(format!(
            "expected_live must be a revision number or `none`, not {value:?}"
        ))
    })
}

/// The checks a publish must pass against the stored state ([`Meta::check_publish`]).
pub fn check_publish(
    meta: &Meta,
    live: Option<u64>,
    revision: u64,
    expected_live: Option<Option<u64>>,
) -> Result<(), Failure> {
    meta.check_publish(live, revision, expected_live)
        .map_err(refusal)
}

/// The content hash of a ruleset's bytes, as the companion computes it (`build::content_hash`):
/// SHA-256 of its canonical JSON without `environment`, `revision` and `source`.
async fn content_hash(raw: &str) -> Result<Option<String>, Failure> {
    let Ok(value) = serde_json::from_slice::<Value>(raw.as_bytes()) else {
        return Ok(None);
    };
    hash_of(content_hash_input(&value).as_bytes())
        .await
        .map(Some)
}

/// An entry's summary: the caller's role and one more field (none when it is `role` itself).
fn summary(role: &str, name: &str, value: Value) -> Value {
    let mut summary = serde_json::Map::new();
    summary.insert("role".into(), Value::from(role));
    if name != "role" {
        summary.insert(name.into(), value);
    }
    Value::Object(summary)
}

/// An audit entry before its place in the chain is known.
struct Record {
    actor: String,
    action: &'static str,
    environment: String,
    revision: Option<u64>,
    previous_revision: Option<u64>,
    reason: String,
    content_hash: Option<String>,
    ruleset_hash: Option<String>,
    summary: Value,
}

async fn audit_head(storage: &Storage) -> Result<Head, Failure> {
    let text = storage
        .text(AUDIT_HEAD_KEY)
        .await
        .map_err(|e| storage_failure("reading the audit head", e))?;
    match text {
        None => Ok(Head::default()),
        Some(text) => serde_json::from_slice::<Value>(text.as_bytes())
            .ok()
            .as_ref()
            .and_then(Head::from_value)
            .ok_or_else(|| storage_failure("reading the audit head", text)),
    }
}

/// Chains the records after the current head: their entries and the new head.
async fn chain(
    records: Vec<Record>,
    context: &Authority<'_>,
) -> Result<(Vec<Entry>, Head), Failure> {
    let mut head = audit_head(context.storage).await?;
    let mut entries = Vec::with_capacity(records.len());
    for record in records {
        let mut entry = Entry {
            seq: head.seq + 1,
            time: rfc3339_millis(context.now),
            actor: record.actor,
            action: String::from(record.action),
            environment: record.environment,
            revision: record.revision,
            previous_revision: record.previous_revision,
            reason: record.reason,
            content_hash: record.content_hash,
            ruleset_hash: record.ruleset_hash,
            summary: record.summary,
            prev_hash: head.hash.clone(),
            hash: String::new(),
        };
        entry.hash = hash_of(entry.hash_input().as_bytes()).await?;
        head = Head {
            seq: entry.seq,
            hash: entry.hash.clone(),
        };
        entries.push(entry);
    }
    Ok((entries, head))
}

/// Commits a write: chains its audit records, stores the published bytes (if any) in KV with
/// their anchor, then the new state, the entries, the new head and the bodies the environment
/// now accepts in one atomic storage write, then copies the history and pointer to KV. Answers
/// with what the admin API returns for a moved pointer.
async fn commit(
    change: Change<'_>,
    records: Vec<Record>,
    context: &Authority<'_>,
) -> Result<Value, Failure> {
    let Change {
        environment,
        live,
        previous,
        meta,
        published,
        accepted,
        registry,
        ruleset_sha256,
        rollback,
    } = change;
    // Signed before anything is written: a signing key that does not work refuses the write.
    let epoch = next_epoch(environment, rollback, context.storage).await?;
    let signature = sign(environment, live, epoch, ruleset_sha256, context).await?;
    let (entries, head) = chain(records, context).await?;
    if let Some(raw) = published {
        // The revision's bytes carry the audit entry they were published under (its KV
        // metadata), so the kept revisions anchor the chain.
        let anchor = authority::Anchor {
            audit_seq: head.seq,
            audit_hash: head.hash.clone(),
        };
        let key = revision_key(environment, live);
        context
            .kv
            .put_with_metadata(&key, raw, &anchor.to_value())
            .await
            .map_err(|e| kv_failure("writing the revision", e))?;
    }
    let mut pairs = vec![
        (pointer_key(environment), pointer_value(live)),
        (meta_key(environment), meta.to_json()),
        (String::from(AUDIT_HEAD_KEY), json_text(&head.to_value())),
    ];
    for entry in &entries {
        pairs.push((audit_key(entry.seq), json_text(&entry.to_value())));
    }
    if let Some(text) = registry {
        pairs.push((String::from(REGISTRY_KEY), String::from(text)));
    }
    if rollback {
        pairs.push((epoch_key(environment), epoch.to_string()));
    }
    let accepted: Vec<(String, String)> = accepted
        .iter()
        .map(|hash| (accepted_key(environment, hash), String::from("1")))
        .collect();
    // Storage writes issued with no await between them are one atomic write: the state, the
    // audit entries and the accepted bodies commit together or not at all.
    let writes = core::iter::once(pairs.as_slice())
        .chain(accepted.chunks(STORAGE_KEYS_AT_ONCE - 8))
        .map(|chunk| context.storage.put_all(chunk));
    for written in join_all(writes).await {
        written.map_err(|e| storage_failure("committing", e))?;
    }
    copy_to_kv(environment, live, meta, signature.as_deref(), context).await?;
    let mut moved = serde_json::Map::new();
    moved.insert("environment".into(), Value::from(environment));
    moved.insert("revision".into(), Value::from(live));
    moved.insert("previous".into(), optional(previous));
    moved.insert("epoch".into(), Value::from(epoch));
    moved.insert("signed".into(), Value::Bool(signature.is_some()));
    moved.insert("audit".into(), head.to_value());
    Ok(Value::Object(moved))
}

/// A state change to commit: the environment, its new live revision, the one before, its new
/// history, the bytes published (none for a rollback) and the bodies it now accepts.
struct Change<'a> {
    environment: &'a str,
    live: u64,
    previous: Option<u64>,
    meta: &'a Meta,
    published: Option<&'a str>,
    accepted: &'a [&'a str],
    /// The key registry the signature gate accepted with this write, kept for the next one.
    registry: Option<&'a str>,
    /// The SHA-256 (hex) of the live revision's bytes as stored, which its signature covers.
    ruleset_sha256: &'a str,
    /// A rollback: the environment's signing epoch advances.
    rollback: bool,
}

fn optional(revision: Option<u64>) -> Value {
    revision.map_or(Value::Null, Value::from)
}

fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

async fn publish(request: &Incoming, environment: &str, context: &Authority<'_>) -> Outcome {
    let expected_live = expected_live(request)?;
    let query = WriteQuery::read(request, WriteAction::Publish)?;
    // The body is read (within its bound) before the caller's scope is checked: a refusal sent
    // while the body is still arriving makes the runtime reset the connection, which a client
    // reusing it would see as a network failure instead of the 403. The scope is still checked
    // before anything of the environment's state is read, so a credential of another
    // environment learns nothing about it.
    let body = read_body(request, limits::RULESET_BYTES)
        .await
        .map_err(body_failure)?;
    let caller: Vec<&Credential> = context.caller.iter().collect();
    authority::grant(&caller, WriteAction::Publish, environment).map_err(forbidden)?;
    let ruleset = Ruleset::from_json(&body).map_err(|error| {
        Failure::api(422, "invalid_ruleset", "the ruleset does not validate")
            .with_field("problems", json!(error.problems()))
    })?;
    if ruleset.environment() != environment {
        return Err(Failure::api(
            422,
            "invalid_ruleset",
            "the ruleset is for another environment",
        )
        .with_field(
            "problems",
            json!([{"path": "environment", "code": "environment_mismatch",
                    "message": format!("the ruleset is for {:?}, published to {environment:?}",
                                       ruleset.environment())}]),
        ));
    }
    let Ok(raw) = String::from_utf8(body) else {
        return Err(Failure::api(
            422,
            "invalid_ruleset",
            "the ruleset is not UTF-8",
        ));
    };
    let revision = ruleset.revision();
    let bodies: Vec<&str> = ruleset.prompts().iter().map(|p| p.hash.as_str()).collect();
    let kv = context.kv;
    let _writing = WriteLock::acquire().await;
    let (live, meta) = read_state(environment, context).await?;
    check_publish(&meta, live, revision, expected_live)?;

    let mut missing = Vec::new();
    for prompts in ruleset.prompts().chunks(LOOKUPS_AT_ONCE) {
        let lookups = prompts.iter().map(|prompt| async move {
            let stored = kv.text(&prompt_key(&prompt.hash)).await;
            (prompt.hash.as_str(), stored)
        });
        for (hash, stored) in join_all(lookups).await {
            match stored {
                Ok(Some(_)) => {}
                Ok(None) => missing.push(hash),
                Err(error) => return Err(kv_failure("checking the prompt bodies", error)),
            }
        }
    }
    if !missing.is_empty() {
        return Err(Failure::api(
            422,
            "missing_prompt",
            format!(
                "{} prompt bod{} named by the ruleset {} not stored; PUT them first",
                missing.len(),
                if missing.len() == 1 { "y" } else { "ies" },
                if missing.len() == 1 { "is" } else { "are" },
            ),
        )
        .with_field("hashes", json!(missing)));
    }
    let policy = environment_policy(context.config, environment)?;
    draft_gate(environment, &ruleset, &policy, context).await?;
    let authorized = authorize_write(
        &Write {
            action: WriteAction::Publish,
            environment,
            bodies: bodies.clone(),
            override_reason: query.override_gates.then_some(query.reason.as_str()),
        },
        context,
    )
    .await?;

    let gated = if policy.require_approvals {
        signature_gate(environment, &raw, &query, context).await?
    } else {
        Gated::default()
    };
    let (next, dropped) = meta.after_publish(revision, live).map_err(refusal)?;
    let content_hash = content_hash(&raw).await?;
    let ruleset_sha256 = hash_of(raw.as_bytes()).await?;
    let ruleset_hash = Some(ruleset_sha256.clone());
    let role = authorized.credential.role.as_str();
    let record = |action: &'static str, summary: Value| Record {
        actor: authorized.credential.name.clone(),
        action,
        environment: String::from(environment),
        revision: Some(revision),
        previous_revision: live,
        reason: query.reason.clone(),
        content_hash: content_hash.clone(),
        ruleset_hash: ruleset_hash.clone(),
        summary,
    };
    let mut records = Vec::new();
    if let Some((overrider, message)) = gated.overridden {
        records.push(Record {
            actor: overrider.name.clone(),
            ..record(
                "override",
                summary(
                    overrider.role.as_str(),
                    "overridden",
                    Value::from(vec![message]),
                ),
            )
        });
    }
    if !authorized.overridden.is_empty() {
        records.push(record(
            "override",
            summary(
                role,
                "overridden",
                Value::from(authorized.overridden.clone()),
            ),
        ));
    }
    records.push(record(
        query.label,
        summary(role, "bodies", Value::from(bodies.len())),
    ));
    let change = Change {
        environment,
        live: revision,
        previous: live,
        meta: &next,
        published: Some(&raw),
        accepted: &bodies,
        registry: gated.registry.as_deref(),
        ruleset_sha256: &ruleset_sha256,
        rollback: false,
    };
    let moved = commit(change, records, context).await?;
    for old in dropped {
        // Best effort: a revision that stays behind is unreachable, not harmful.
        let _ = kv.delete(&revision_key(environment, old)).await;
    }
    Ok(Reply::json(201, &moved))
}

async fn put(kv: &Kv, key: &str, value: &str) -> Result<(), Failure> {
    kv.put(key, value)
        .await
        .map_err(|e| kv_failure(&format!("writing {key}"), e))
}

/// The revision a rollback asks for: `{"revision": N}`, or `{}` (or nothing) for the default.
pub fn rollback_request(body: &[u8]) -> Result<Option<u64>, Failure> {
    admin::parse_rollback_request(body).map_err(refusal)
}

/// The revision a rollback goes to: the one asked for, or the revision live before the current
/// one ([`Meta::rollback_target`]).
pub fn rollback_target(
    meta: &Meta,
    live: Option<u64>,
    requested: Option<u64>,
) -> Result<u64, Failure> {
    meta.rollback_target(live, requested).map_err(refusal)
}

async fn rollback(request: &Incoming, environment: &str, context: &Authority<'_>) -> Outcome {
    let query = WriteQuery::read(request, WriteAction::Rollback)?;
    let body = read_body(request, limits::ROLLBACK_BYTES)
        .await
        .map_err(body_failure)?;
    let requested = rollback_request(&body)?;
    let authorized = authorize_write(
        &Write {
            action: WriteAction::Rollback,
            environment,
            bodies: Vec::new(),
            override_reason: None,
        },
        context,
    )
    .await?;
    let kv = context.kv;
    let _writing = WriteLock::acquire().await;
    let (live, meta) = read_state(environment, context).await?;
    let target = rollback_target(&meta, live, requested)?;
    let stored = kv
        .text(&revision_key(environment, target))
        .await
        .map_err(|e| kv_failure("reading the kept revision", e))?;
    let Some(stored) = stored else {
        return Err(Failure::api(
            404,
            "revision_not_kept",
            format!("{} is no longer stored", revision_key(environment, target)),
        )
        .with_field("kept", json!(meta.kept)));
    };
    let next = meta.after_rollback(live, requested, target);
    let ruleset_sha256 = hash_of(stored.as_bytes()).await?;
    let record = Record {
        actor: authorized.credential.name.clone(),
        action: query.label,
        environment: String::from(environment),
        revision: Some(target),
        previous_revision: live,
        reason: query.reason,
        content_hash: content_hash(&stored).await?,
        ruleset_hash: Some(ruleset_sha256.clone()),
        summary: summary(authorized.credential.role.as_str(), "role", Value::Null),
    };
    let change = Change {
        environment,
        live: target,
        previous: live,
        meta: &next,
        published: None,
        accepted: &[],
        registry: None,
        ruleset_sha256: &ruleset_sha256,
        rollback: true,
    };
    let moved = commit(change, vec![record], context).await?;
    Ok(Reply::json(200, &moved))
}

/// `GET /admin/v1/audit?after=SEQ&limit=N`: the entries after `after` (0 by default), at most
/// `limit` ([`AUDIT_PAGE_LIMIT`] by default and at most), and the head.
async fn audit_page(request: &Incoming, context: &Authority<'_>) -> Outcome {
    let number = |name: &str, default: u64| match query_param(request.url(), name) {
        None => Ok(default),
        Some(text) => text.parse::<u64>().map_err(|_| {
            Failure::bad_request(format!(
                "{name} must be a non-negative integer, not {text:?}"
            ))
        }),
    };
    let after = number("after", 0)?;
    let limit = number("limit", AUDIT_PAGE_LIMIT)?.min(AUDIT_PAGE_LIMIT);
    let head = audit_head(context.storage).await?;
    let keys: Vec<String> = (after.saturating_add(1)..=head.seq.min(after.saturating_add(limit)))
        .map(audit_key)
        .collect();
    let texts = context
        .storage
        .texts(&keys)
        .await
        .map_err(|e| storage_failure("reading the audit log", e))?;
    let mut entries = Vec::with_capacity(texts.len());
    for text in texts.into_iter().flatten() {
        let entry: Value = serde_json::from_slice(text.as_bytes())
            .map_err(|e| storage_failure("reading an audit entry", e))?;
        entries.push(entry);
    }
    let mut page = serde_json::Map::new();
    page.insert("head".into(), head.to_value());
    page.insert("entries".into(), Value::Array(entries));
    Ok(Reply::json(200, &page))
}

/// How many prompt bodies a publish looks up in KV at once.
const LOOKUPS_AT_ONCE: usize = 32;

/// Runs the futures together and gives their outputs in order, as `futures::future::join_all`
/// does for up to 30 futures: every wake-up polls each unfinished one, so the work grows with
/// the square of their number, and publish hands it [`LOOKUPS_AT_ONCE`] at a time. (The
/// futures crate's version switches to a queue for longer lists, which adds its own code to
/// the Wasm.)
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    use std::task::Poll;
    /// A future and, once it is ready, its output.
    type Slot<F> = (std::pin::Pin<Box<F>>, Option<<F as Future>::Output>);
    let mut slots: Vec<Slot<F>> = futures
        .into_iter()
        .map(|future| (Box::pin(future), None))
        .collect();
    std::future::poll_fn(|context| {
        let mut finished = true;
        for (future, output) in &mut slots {
            if output.is_none() {
                match future.as_mut().poll(context) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => finished = false,
                }
            }
        }
        if finished {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    slots.into_iter().filter_map(|(_, output)| output).collect()
}

/// The isolate's lock on ruleset writes: held from reading an environment's state to writing
/// the new one, so a concurrent publish or rollback in this isolate waits and then sees the
/// result. An isolate runs one thread; requests interleave only at `await`s, which is where a
/// waiter parks.
pub struct WriteLock(());

#[derive(Default)]
struct WriteLockState {
    held: bool,
    waiting: std::collections::VecDeque<std::task::Waker>,
}

std::thread_local! {
    static WRITE_LOCK: std::cell::RefCell<WriteLockState> =
        std::cell::RefCell::new(WriteLockState::default());
}

impl WriteLock {
    /// Waits until no other request of this isolate holds the lock, then holds it until dropped.
    pub async fn acquire() -> WriteLock {
        std::future::poll_fn(|context| {
            WRITE_LOCK.with_borrow_mut(|state| {
                if state.held {
                    state.waiting.push_back(context.waker().clone());
                    std::task::Poll::Pending
                } else {
                    state.held = true;
                    std::task::Poll::Ready(WriteLock(()))
                }
            })
        })
        .await
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let waiting = WRITE_LOCK.with_borrow_mut(|state| {
            state.held = false;
            core::mem::take(&mut state.waiting)
        });
        // Every waiter polls again: the first takes the lock and the rest wait again. Waking
        // them all means a waiter whose request went away cannot strand the ones behind it.
        for waker in waiting {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_all_gives_every_output_in_order() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};

        // The first future is ready only on its second poll, so the join has to come back to it.
        let mut polled = false;
        let late = std::future::poll_fn(move |context| {
            if polled {
                Poll::Ready(1)
            } else {
                polled = true;
                context.waker().wake_by_ref();
                Poll::Pending
            }
        });
        let futures: Vec<std::pin::Pin<Box<dyn Future<Output = i32>>>> = vec![
            Box::pin(late),
            Box::pin(std::future::ready(2)),
            Box::pin(std::future::ready(3)),
        ];
        let mut joined = std::pin::pin!(join_all(futures));
        let mut context = Context::from_waker(Waker::noop());
        assert!(joined.as_mut().poll(&mut context).is_pending());
        assert_eq!(
            joined.as_mut().poll(&mut context),
            Poll::Ready(vec![1, 2, 3])
        );
    }

    #[test]
    fn the_write_lock_admits_one_request_at_a_time_and_wakes_the_rest() {
        use std::future::Future;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::{Context, Poll, Wake, Waker};

        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let counted = || {
            let count = Arc::new(Count(AtomicUsize::new(0)));
            (count.clone(), Waker::from(count))
        };

        let (_, waker) = counted();
        let mut first = std::pin::pin!(WriteLock::acquire());
        let Poll::Ready(held) = first.as_mut().poll(&mut Context::from_waker(&waker)) else {
            panic!("a free lock is taken at once");
        };
        let (second_woken, second_waker) = counted();
        let mut second = std::pin::pin!(WriteLock::acquire());
        assert!(
            second
                .as_mut()
                .poll(&mut Context::from_waker(&second_waker))
                .is_pending()
        );
        let (abandoned_woken, abandoned_waker) = counted();
        {
            // A waiter whose request goes away must not strand the one behind it.
            let mut abandoned = std::pin::pin!(WriteLock::acquire());
            assert!(
                abandoned
                    .as_mut()
                    .poll(&mut Context::from_waker(&abandoned_waker))
                    .is_pending()
            );
        }
        drop(held);
        assert_eq!(second_woken.0.load(Ordering::SeqCst), 1);
        assert_eq!(abandoned_woken.0.load(Ordering::SeqCst), 1);
        let Poll::Ready(again) = second
            .as_mut()
            .poll(&mut Context::from_waker(&second_waker))
        else {
            panic!("the woken waiter takes the lock");
        };
        let (third_woken, third_waker) = counted();
        let mut third = std::pin::pin!(WriteLock::acquire());
        assert!(
            third
                .as_mut()
                .poll(&mut Context::from_waker(&third_waker))
                .is_pending()
        );
        drop(again);
        assert_eq!(third_woken.0.load(Ordering::SeqCst), 1);
        assert!(
            third
                .as_mut()
                .poll(&mut Context::from_waker(&third_waker))
                .is_ready()
        );
    }

    fn code(failure: Failure) -> (u16, String) {
        let reply = Reply::from(failure);
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        (
            reply.status,
            body["error"]["code"].as_str().unwrap().to_string(),
        )
    }

    const LONG: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn admin_is_off_without_credentials_and_needs_a_listed_token() {
        let listed =
            format!(r#"[{{"name":"ci","token":"{LONG}","environment":"dev","role":"publisher"}}]"#);
        assert_eq!(
            code(authenticate(None, Some("Bearer x")).unwrap_err()),
            (404, "admin_disabled".into())
        );
        assert_eq!(
            code(authenticate(Some(" "), Some("Bearer ")).unwrap_err()),
            (404, "admin_disabled".into())
        );
        assert_eq!(
            code(authenticate(Some(&listed), None).unwrap_err()),
            (401, "unauthorized".into())
        );
        assert_eq!(
            code(authenticate(Some(&listed), Some(&format!("Bearer {}", &LONG[1..]))).unwrap_err()),
            (401, "unauthorized".into())
        );
        assert_eq!(
            code(authenticate(Some(&listed), Some(&format!("Basic {LONG}"))).unwrap_err()),
            (401, "unauthorized".into())
        );
        let caller = authenticate(Some(&listed), Some(&format!("Bearer {LONG}"))).unwrap();
        assert_eq!(caller[0].name, "ci");
        let reply = Reply::from(authenticate(Some(&listed), None).unwrap_err());
        assert!(
            reply
                .header("www-authenticate")
                .unwrap()
                .starts_with("Bearer")
        );
    }

    #[test]
    fn a_short_token_turns_the_admin_api_off_naming_the_credential() {
        let listed =
            r#"[{"name":"laptop","token":"short","environment":"dev","role":"publisher"}]"#;
        let reply = Reply::from(authenticate(Some(listed), Some("Bearer short")).unwrap_err());
        assert_eq!(reply.status, 503);
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"]["code"], "credentials_invalid");
        assert_eq!(body["credential"], "laptop");
    }

    #[test]
    fn publishes_must_be_newer_than_anything_published() {
        let meta = Meta {
            latest: Some(9),
            kept: vec![8, 9],
            undo: Vec::new(),
        };
        assert_eq!(
            code(check_publish(&meta, Some(9), 9, None).unwrap_err()).1,
            "stale_revision"
        );
        assert_eq!(
            code(check_publish(&meta, Some(7), 8, None).unwrap_err()).1,
            "stale_revision"
        );
        // A live pointer written by hand above `latest` also counts.
        assert_eq!(
            code(check_publish(&Meta::default(), Some(4), 3, None).unwrap_err()).1,
            "stale_revision"
        );
        assert!(check_publish(&meta, Some(9), 10, None).is_ok());
        assert!(check_publish(&Meta::default(), None, 1, None).is_ok());
    }

    #[test]
    fn expected_live_guards_against_concurrent_changes() {
        let meta = Meta {
            latest: Some(9),
            kept: vec![9],
            undo: Vec::new(),
        };
        assert_eq!(
            code(check_publish(&meta, Some(9), 10, Some(Some(8))).unwrap_err()),
            (409, "conflict".into())
        );
        assert_eq!(
            code(check_publish(&meta, Some(9), 10, Some(None)).unwrap_err()).1,
            "conflict"
        );
        assert!(check_publish(&meta, Some(9), 10, Some(Some(9))).is_ok());
        assert!(check_publish(&Meta::default(), None, 1, Some(None)).is_ok());
        assert_eq!(parse_expected_live("7").unwrap(), Some(7));
        assert_eq!(parse_expected_live("none").unwrap(), None);
        assert_eq!(code(parse_expected_live("x").unwrap_err()).0, 400);
    }

    #[test]
    fn revisions_past_the_bound_are_invalid_rulesets() {
        let meta = Meta {
            latest: Some(promptflag_contracts::revision::MAX_REVISION),
            kept: vec![promptflag_contracts::revision::MAX_REVISION],
            undo: Vec::new(),
        };
        let too_high = promptflag_contracts::revision::MAX_REVISION + 1;
        assert_eq!(
            code(check_publish(&Meta::default(), None, too_high, None).unwrap_err()),
            (422, "invalid_ruleset".into())
        );
        assert_eq!(
            code(check_publish(&meta, None, too_high, None).unwrap_err()),
            (422, "invalid_ruleset".into())
        );
        assert_eq!(
            code(refusal(meta.next_revision(None).unwrap_err())),
            (422, "invalid_ruleset".into())
        );
        assert_eq!(
            code(parse_expected_live("9007199254740992").unwrap_err()).0,
            400
        );
    }

    #[test]
    fn rollback_requests_name_a_revision_or_nothing() {
        assert_eq!(rollback_request(b"").unwrap(), None);
        assert_eq!(rollback_request(b"{}").unwrap(), None);
        assert_eq!(rollback_request(br#"{"revision": 4}"#).unwrap(), Some(4));
        for bad in [
            &b"{"[..],
            b"[]",
            br#"{"revision": "4"}"#,
            br#"{"revision": 4, "x": 1}"#,
        ] {
            assert_eq!(
                code(rollback_request(bad).unwrap_err()),
                (400, "bad_request".into())
            );
        }
    }

    #[test]
    fn rollback_goes_to_a_kept_revision() {
        let meta = Meta {
            latest: Some(9),
            kept: vec![5, 7, 9],
            undo: Vec::new(),
        };
        assert_eq!(rollback_target(&meta, Some(9), None).unwrap(), 7);
        assert_eq!(rollback_target(&meta, Some(7), None).unwrap(), 5);
        assert_eq!(rollback_target(&meta, Some(9), Some(5)).unwrap(), 5);
        assert_eq!(
            code(rollback_target(&meta, Some(5), None).unwrap_err()),
            (404, "revision_not_kept".into())
        );
        assert_eq!(
            code(rollback_target(&meta, Some(9), Some(6)).unwrap_err()).1,
            "revision_not_kept"
        );
        assert_eq!(
            code(rollback_target(&Meta::default(), None, None).unwrap_err()).1,
            "revision_not_kept"
        );
    }
}
