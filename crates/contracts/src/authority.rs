//! Who may write what through the Worker's admin authority (the Durable Object behind
//! `/admin/*`), and what it records: the credential list `ADMIN_CREDENTIALS` with its roles, the
//! server-side environment policy `ENVIRONMENT_POLICY`, and the audit log's entry and hash rules,
//! which the Worker and the companion compute with this one implementation.
//!
//! - A credential is `{"name", "token", "environment", "role"}`: one environment, one role. A
//!   `publisher` publishes, kills and rolls back in its environment; an `override` credential
//!   does the same and may also override the promotion gate (with a reason). Every credential
//!   may store prompt bodies (content-addressed, so harmless) and read state and the audit log.
//! - A token shorter than [`MIN_TOKEN_BYTES`] makes the whole list unusable: the admin API
//!   answers 503 naming the credential, since a Worker cannot refuse to start.
//! - The audit chain: entry `n`'s hash is the SHA-256 of [`Entry::hash_input`] (canonical JSON
//!   of its fields and the previous entry's hash, [`GENESIS`] for the first).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::digest::canonical_json;
use crate::keys;

/// The shortest token a credential may have, in bytes.
pub const MIN_TOKEN_BYTES: usize = 32;

/// What a credential may do in its environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Publish, kill (a publish) and roll back.
    Publisher,
    /// What a publisher may do, and override the promotion gate with a reason.
    Override,
}

impl Role {
    /// The role's name in `ADMIN_CREDENTIALS`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Override => "override",
        }
    }

    /// The role named `name`.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "publisher" => Some(Role::Publisher),
            "override" => Some(Role::Override),
            _ => None,
        }
    }

    /// Whether this role may take `action` (in its own environment).
    pub fn allows(self, action: WriteAction) -> bool {
        match action {
            WriteAction::Publish | WriteAction::Rollback => true,
            WriteAction::Override => self == Role::Override,
        }
    }
}

/// A write the authority performs on an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteAction {
    /// A new ruleset revision (a publish, a kill, a control-loop step).
    Publish,
    /// The pointer back to a kept revision.
    Rollback,
    /// Passing a gate that would refuse (recorded as its own audit entry).
    Override,
}

impl WriteAction {
    /// The action's name in audit entries and refusals.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteAction::Publish => "publish",
            WriteAction::Rollback => "rollback",
            WriteAction::Override => "override",
        }
    }
}

/// One entry of `ADMIN_CREDENTIALS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Who holds it; the audit log names the caller by it.
    pub name: String,
    /// The bearer token (at least [`MIN_TOKEN_BYTES`] bytes).
    pub token: String,
    /// The one environment it writes.
    pub environment: String,
    /// What it may do there.
    pub role: Role,
}

/// Why `ADMIN_CREDENTIALS` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsError {
    /// Not a JSON array of credentials.
    Malformed(String),
    /// A credential's token is shorter than [`MIN_TOKEN_BYTES`].
    ShortToken {
        /// The credential's name.
        name: String,
        /// Its token's length in bytes.
        bytes: usize,
    },
    /// A credential with an empty name, an invalid environment or a repeated name.
    Invalid {
        /// The credential's name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsError::Malformed(reason) => write!(
                f,
                "ADMIN_CREDENTIALS is not a JSON array of {{name, token, environment, role}}: {reason}"
            ),
            CredentialsError::ShortToken { name, bytes } => write!(
                f,
                "the token of credential {name:?} is {bytes} bytes; tokens must be at least {MIN_TOKEN_BYTES} bytes"
            ),
            CredentialsError::Invalid { name, reason } => {
                write!(f, "credential {name:?} {reason}")
            }
        }
    }
}

/// Reads `ADMIN_CREDENTIALS`. Every credential must be usable, or none is. (Read through
/// `serde_json::Value`, whose parser the Worker links anyway, rather than a derived
/// deserializer per type, which would weigh on the Worker's budgeted upload.)
pub fn parse_credentials(text: &str) -> Result<Vec<Credential>, CredentialsError> {
    let malformed = |reason: &str| CredentialsError::Malformed(String::from(reason));
    let value: Value = serde_json::from_slice(text.as_bytes())
        .map_err(|error| CredentialsError::Malformed(error.to_string()))?;
    let Value::Array(items) = value else {
        return Err(malformed("not an array"));
    };
    let mut credentials: Vec<Credential> = Vec::with_capacity(items.len());
    for item in &items {
        let Value::Object(fields) = item else {
            return Err(malformed("an entry is not an object"));
        };
        if let Some(unknown) = fields
            .keys()
            .find(|key| !matches!(key.as_str(), "name" | "token" | "environment" | "role"))
        {
            return Err(CredentialsError::Malformed(alloc::format!(
                "unknown field {unknown:?}"
            )));
        }
        let text = |key: &str| {
            fields[key].as_str().map(String::from).ok_or_else(|| {
                CredentialsError::Malformed(alloc::format!("{key} must be a string"))
            })
        };
        let name = text("name")?;
        let role_name = text("role")?;
        let credential = Credential {
            token: text("token")?,
            environment: text("environment")?,
            role: Role::parse(&role_name).ok_or_else(|| CredentialsError::Invalid {
                name: name.clone(),
                reason: "has a role other than publisher or override",
            })?,
            name,
        };
        let invalid = |reason| CredentialsError::Invalid {
            name: credential.name.clone(),
            reason,
        };
        if credential.name.trim().is_empty() {
            return Err(invalid("has an empty name"));
        }
        if credentials
            .iter()
            .any(|other| other.name == credential.name)
        {
            return Err(invalid("is listed twice"));
        }
        if keys::environment(&credential.environment).is_err() {
            return Err(invalid("names an invalid environment"));
        }
        if credential.token.len() < MIN_TOKEN_BYTES {
            return Err(CredentialsError::ShortToken {
                name: credential.name.clone(),
                bytes: credential.token.len(),
            });
        }
        credentials.push(credential);
    }
    Ok(credentials)
}

/// Compares a presented secret with the expected one in time that depends only on the length of
/// the expected secret, never on where the two first differ.
pub fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let mut difference: u8 = 0;
    for (index, byte) in expected.iter().enumerate() {
        let other = presented.get(index).copied().unwrap_or(0);
        difference |= byte ^ other;
    }
    let lengths_differ = u8::from(expected.len() != presented.len());
    core::hint::black_box(difference | lengths_differ) == 0
}

/// The credentials whose token is `presented`, every one compared in constant time (a token
/// may be listed under several names, each with its own environment and role).
pub fn matching<'a>(credentials: &'a [Credential], presented: &str) -> Vec<&'a Credential> {
    let mut found = Vec::new();
    for credential in credentials {
        if constant_time_eq(credential.token.as_bytes(), presented.as_bytes()) {
            found.push(credential);
        }
    }
    found
}

/// Why a credential may not take an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    /// The credential's name (the first that matched).
    pub credential: String,
    /// The sentence to answer with.
    pub reason: String,
}

/// The credential (of those a token matched) that may take `action` on `environment`.
pub fn grant<'a>(
    matched: &[&'a Credential],
    action: WriteAction,
    environment: &str,
) -> Result<&'a Credential, Forbidden> {
    if let Some(credential) = matched
        .iter()
        .find(|c| c.environment == environment && c.role.allows(action))
    {
        return Ok(credential);
    }
    let first = matched.first();
    let name = first.map_or_else(String::new, |c| c.name.clone());
    let reason = match matched.iter().find(|c| c.environment == environment) {
        Some(credential) => alloc::format!(
            "credential {:?} has the {} role in {environment}, which may not {}",
            credential.name,
            credential.role.as_str(),
            action.as_str()
        ),
        None => alloc::format!(
            "credential {name:?} is scoped to {}, not {environment}",
            first.map_or("no environment", |c| c.environment.as_str())
        ),
    };
    Err(Forbidden {
        credential: name,
        reason,
    })
}

/// One environment's server-side policy (`ENVIRONMENT_POLICY`, a JSON object keyed by
/// environment). The uploaded build's manifest has no say in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentPolicy {
    /// Every prompt body a ruleset names must have been named by a ruleset published to this
    /// environment first (the promotion gate).
    pub promote_from: Option<String>,
    /// Every prompt body a ruleset names that this environment has not served before needs a
    /// signed approval from a registered reviewer who is not its author (the signature gate,
    /// `docs/interfaces.md`, "Signed governance").
    pub require_approvals: bool,
    /// Prompt versions whose status is `draft` may be served (the default, as in the prompt
    /// repository's `promptflag.yaml`); when false, [`draft_refusal`] decides.
    pub allow_drafts: bool,
}

impl Default for EnvironmentPolicy {
    /// No gates: no promotion order, no approvals, drafts allowed.
    fn default() -> Self {
        EnvironmentPolicy {
            promote_from: None,
            require_approvals: false,
            allow_drafts: true,
        }
    }
}

/// Why an environment under `policy` refuses a ruleset naming a prompt version whose stated
/// status is `status` (`None`: the ruleset states none) and whose body it has `served_before`
/// or not, or `None` when it accepts it. Where the policy serves no drafts, a version stated as
/// a draft is refused, and so is one whose body is new to the environment and whose status is
/// not stated (nothing says it is not a draft); a body the environment served before that
/// states no status is let through, so a kill or a control-loop step over a ruleset written
/// before statuses were stated still serves.
pub fn draft_refusal(
    policy: &EnvironmentPolicy,
    status: Option<&str>,
    served_before: bool,
) -> Option<&'static str> {
    match status {
        _ if policy.allow_drafts => None,
        Some("draft") => Some("is a draft"),
        None if !served_before => Some("states no status, so it may be a draft"),
        _ => None,
    }
}

/// One environment's rules from `ENVIRONMENT_POLICY` (`{"prod": {"promote_from": "staging",
/// "require_approvals": true, "allow_drafts": false}, …}`); no rules when the text is empty or does not mention the environment. The whole text
/// is checked, so a mistake anywhere in it refuses every write rather than none.
pub fn policy_for(text: &str, environment: &str) -> Result<EnvironmentPolicy, String> {
    let mut found = EnvironmentPolicy::default();
    if text.trim().is_empty() {
        return Ok(found);
    }
    let shape = "ENVIRONMENT_POLICY must be a JSON object of {\"<env>\": {\"promote_from\": \"<env>\", \"require_approvals\": true, \"allow_drafts\": false}}";
    let Ok(Value::Object(environments)) = serde_json::from_slice::<Value>(text.as_bytes()) else {
        return Err(String::from(shape));
    };
    for (name, rules) in &environments {
        let Value::Object(rules) = rules else {
            return Err(String::from(shape));
        };
        let mut parsed = EnvironmentPolicy::default();
        for (key, value) in rules {
            match (key.as_str(), value) {
                ("promote_from", Value::Null) => {}
                ("promote_from", Value::String(from)) => parsed.promote_from = Some(from.clone()),
                ("require_approvals", Value::Bool(required)) => {
                    parsed.require_approvals = *required
                }
                ("allow_drafts", Value::Bool(allowed)) => parsed.allow_drafts = *allowed,
                _ => return Err(alloc::format!("{shape}; {name}.{key} is not")),
            }
        }
        for named in core::iter::once(name.as_str()).chain(parsed.promote_from.as_deref()) {
            keys::environment(named).map_err(|_| {
                alloc::format!("ENVIRONMENT_POLICY names an invalid environment {named:?}")
            })?;
        }
        if name == environment {
            found = parsed;
        }
    }
    Ok(found)
}

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry of the audit log, as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// 1, 2, 3, … in append order.
    pub seq: u64,
    /// RFC 3339 UTC with milliseconds (`promptflag_core::literal::format_rfc3339_millis`).
    pub time: String,
    /// The authenticated caller: the credential's name.
    pub actor: String,
    /// `publish`, `kill`, `rollback`, `override`, `rollout`.
    pub action: String,
    /// Where.
    pub environment: String,
    /// The revision live afterwards.
    pub revision: Option<u64>,
    /// The revision live before.
    pub previous_revision: Option<u64>,
    /// Why (empty when none was given).
    pub reason: String,
    /// The content hash of the ruleset now live, when the writer gave or computed one.
    pub content_hash: Option<String>,
    /// SHA-256 of the exact ruleset bytes now live.
    pub ruleset_hash: Option<String>,
    /// What changed, as a JSON object.
    pub summary: Value,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 of [`Entry::hash_input`].
    pub hash: String,
}

impl Entry {
    /// The names of an entry's fields, in the order [`Entry::hash_input`] hashes them (the
    /// `hash` itself is last and not hashed).
    pub const FIELDS: [&'static str; 13] = [
        "seq",
        "time",
        "actor",
        "action",
        "environment",
        "revision",
        "previous_revision",
        "reason",
        "content_hash",
        "ruleset_hash",
        "summary",
        "prev_hash",
        "hash",
    ];

    /// The field values in [`Entry::FIELDS`] order, the summary as `summary_text`.
    fn values(&self, summary_text: String) -> [Value; 13] {
        [
            Value::from(self.seq),
            Value::from(self.time.as_str()),
            Value::from(self.actor.as_str()),
            Value::from(self.action.as_str()),
            Value::from(self.environment.as_str()),
            self.revision.map_or(Value::Null, Value::from),
            self.previous_revision.map_or(Value::Null, Value::from),
            Value::from(self.reason.as_str()),
            self.content_hash
                .as_deref()
                .map_or(Value::Null, Value::from),
            self.ruleset_hash
                .as_deref()
                .map_or(Value::Null, Value::from),
            Value::from(summary_text),
            Value::from(self.prev_hash.as_str()),
            Value::from(self.hash.as_str()),
        ]
    }

    /// The entry as stored and served (a JSON object of its fields).
    pub fn to_value(&self) -> Value {
        let mut object = serde_json::Map::new();
        for (name, value) in Entry::FIELDS.iter().zip(self.values(String::new())) {
            object.insert(String::from(*name), value);
        }
        object.insert(String::from("summary"), self.summary.clone());
        Value::Object(object)
    }

    /// The bytes whose SHA-256 is the entry's hash: the canonical JSON of the array of its
    /// fields in [`Entry::FIELDS`] order without `hash`, the summary as its own canonical JSON
    /// text, `prev_hash` last.
    pub fn hash_input(&self) -> String {
        self.hash_input_with_summary_text(canonical_json(&self.summary))
    }

    /// [`Entry::hash_input`] with the summary's text as stored (a verifier hashes what it
    /// read, so an edit that keeps the summary's meaning still breaks the hash).
    pub fn hash_input_with_summary_text(&self, summary_text: String) -> String {
        let mut values = self.values(summary_text).to_vec();
        values.pop();
        canonical_json(&Value::Array(values))
    }
}

/// The head of the chain: the newest entry's `seq` and `hash` (`0` and [`GENESIS`] when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The newest entry's `seq`.
    pub seq: u64,
    /// The newest entry's hash.
    pub hash: String,
}

impl Head {
    /// The head as stored and served: `{"seq": N, "hash": "…"}`.
    pub fn to_value(&self) -> Value {
        json!({"seq": self.seq, "hash": self.hash})
    }

    /// Reads [`Head::to_value`]'s shape.
    pub fn from_value(value: &Value) -> Option<Head> {
        Some(Head {
            seq: value["seq"].as_u64()?,
            hash: String::from(value["hash"].as_str()?),
        })
    }
}

impl Default for Head {
    fn default() -> Head {
        Head {
            seq: 0,
            hash: String::from(GENESIS),
        }
    }
}

/// The KV metadata of a revision the authority published: the audit entry it was published
/// under. The kept revisions thereby anchor the chain: a log rewritten after them no longer has
/// these hashes at these places.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The entry's `seq`.
    pub audit_seq: u64,
    /// The entry's hash.
    pub audit_hash: String,
}

impl Anchor {
    /// The metadata as stored: `{"audit_seq": N, "audit_hash": "…"}`.
    pub fn to_value(&self) -> Value {
        json!({"audit_seq": self.audit_seq, "audit_hash": self.audit_hash})
    }

    /// Reads [`Anchor::to_value`]'s shape.
    pub fn from_value(value: &Value) -> Option<Anchor> {
        Some(Anchor {
            audit_seq: value["audit_seq"].as_u64()?,
            audit_hash: String::from(value["audit_hash"].as_str()?),
        })
    }
}

/// One way a chain of entries fails verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The entry (`seq`) where it shows.
    pub seq: u64,
    /// `edited`, `removed_or_reordered`, `truncated`, `anchor_mismatch`.
    pub kind: &'static str,
    /// What was found.
    pub message: String,
}

/// Checks a chain as served: every entry's hash is its own ([`Entry::hash_input`]), each links
/// to the one before with consecutive `seq` from 1, the head names the last entry, and each
/// anchor (a kept revision's `(environment, revision, anchor)` from KV) names an entry of that
/// environment and revision with that hash. A chain rebuilt from scratch with the formula
/// passes the first three and fails the anchors.
pub fn verify_chain(
    entries: &[Entry],
    head: &Head,
    anchors: &[(String, u64, Anchor)],
) -> Vec<ChainBreak> {
    let mut breaks = Vec::new();
    let mut previous = Head::default();
    for entry in entries {
        let computed = crate::digest::sha256_hex(entry.hash_input().as_bytes());
        if computed != entry.hash {
            breaks.push(ChainBreak {
                seq: entry.seq,
                kind: "edited",
                message: alloc::format!(
                    "its hash is {}, but its fields hash to {computed}",
                    entry.hash
                ),
            });
        }
        if entry.seq != previous.seq + 1 || entry.prev_hash != previous.hash {
            breaks.push(ChainBreak {
                seq: entry.seq,
                kind: "removed_or_reordered",
                message: alloc::format!(
                    "it follows entry {} but does not link to it (seq {}, prev_hash {})",
                    previous.seq,
                    entry.seq,
                    entry.prev_hash
                ),
            });
        }
        previous = Head {
            seq: entry.seq,
            hash: entry.hash.clone(),
        };
    }
    if *head != previous {
        breaks.push(ChainBreak {
            seq: head.seq,
            kind: "truncated",
            message: alloc::format!(
                "the head is entry {} ({}), but the chain ends at entry {} ({})",
                head.seq,
                head.hash,
                previous.seq,
                previous.hash
            ),
        });
    }
    for (environment, revision, anchor) in anchors {
        let matches = entries.iter().any(|entry| {
            entry.seq == anchor.audit_seq
                && entry.hash == anchor.audit_hash
                && entry.environment == *environment
                && entry.revision == Some(*revision)
        });
        if !matches {
            breaks.push(ChainBreak {
                seq: anchor.audit_seq,
                kind: "anchor_mismatch",
                message: alloc::format!(
                    "revision {revision} of {environment} was published under entry {} ({}), which the chain does not hold",
                    anchor.audit_seq,
                    anchor.audit_hash
                ),
            });
        }
    }
    breaks
}

/// The most entries one `GET /admin/v1/audit` returns.
pub const AUDIT_PAGE_LIMIT: u64 = 128;

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str = "0123456789abcdef0123456789abcdef";

    fn credentials() -> Vec<Credential> {
        parse_credentials(&alloc::format!(
            r#"[{{"name":"ci-dev","token":"{LONG}-dev","environment":"dev","role":"publisher"}},
                {{"name":"ops-prod","token":"{LONG}-prod","environment":"prod","role":"override"}}]"#
        ))
        .unwrap()
    }

    #[test]
    fn a_short_token_names_its_credential() {
        let error = parse_credentials(
            r#"[{"name":"ci","token":"short","environment":"dev","role":"publisher"}]"#,
        )
        .unwrap_err();
        assert_eq!(
            error,
            CredentialsError::ShortToken {
                name: "ci".into(),
                bytes: 5
            }
        );
        assert!(error.to_string().contains("\"ci\""));
        assert!(matches!(
            parse_credentials(r#"{"name":"x"}"#),
            Err(CredentialsError::Malformed(_))
        ));
        assert!(matches!(
            parse_credentials(&alloc::format!(
                r#"[{{"name":"x","token":"{LONG}","environment":"dev","role":"owner"}}]"#
            )),
            Err(CredentialsError::Invalid { .. })
        ));
        assert!(matches!(
            parse_credentials(&alloc::format!(
                r#"[{{"name":"x","token":"{LONG}","environment":"dev","role":"publisher","extra":1}}]"#
            )),
            Err(CredentialsError::Malformed(_))
        ));
    }

    #[test]
    fn a_credential_writes_only_its_environment_and_role() {
        let all = credentials();
        let dev = matching(&all, &alloc::format!("{LONG}-dev"));
        assert_eq!(dev.len(), 1);
        assert_eq!(
            grant(&dev, WriteAction::Publish, "dev").unwrap().name,
            "ci-dev"
        );
        let refused = grant(&dev, WriteAction::Publish, "prod").unwrap_err();
        assert_eq!(refused.credential, "ci-dev");
        assert!(refused.reason.contains("scoped to dev, not prod"));
        assert!(grant(&dev, WriteAction::Override, "dev").is_err());
        let prod = matching(&all, &alloc::format!("{LONG}-prod"));
        assert!(grant(&prod, WriteAction::Override, "prod").is_ok());
        assert!(matching(&all, LONG).is_empty());
    }

    fn chained(count: u64) -> (Vec<Entry>, Head) {
        let mut head = Head::default();
        let mut entries = Vec::new();
        for seq in 1..=count {
            let mut entry = Entry {
                seq,
                time: String::from("2026-12-06T20:00:00.000Z"),
                actor: String::from("ci-dev"),
                action: String::from("publish"),
                environment: String::from("dev"),
                revision: Some(seq),
                previous_revision: seq.checked_sub(1).filter(|r| *r > 0),
                reason: String::new(),
                content_hash: None,
                ruleset_hash: None,
                summary: json!({"role": "publisher"}),
                prev_hash: head.hash.clone(),
                hash: String::new(),
            };
            entry.hash = crate::digest::sha256_hex(entry.hash_input().as_bytes());
            head = Head {
                seq,
                hash: entry.hash.clone(),
            };
            entries.push(entry);
        }
        (entries, head)
    }

    fn kinds(breaks: &[ChainBreak]) -> Vec<&'static str> {
        breaks.iter().map(|b| b.kind).collect()
    }

    #[test]
    fn an_intact_chain_and_its_anchors_verify() {
        let (entries, head) = chained(3);
        let anchors = [(
            String::from("dev"),
            3,
            Anchor {
                audit_seq: 3,
                audit_hash: head.hash.clone(),
            },
        )];
        assert!(verify_chain(&entries, &head, &anchors).is_empty());
    }

    #[test]
    fn each_kind_of_tampering_has_its_own_reason() {
        let (entries, head) = chained(3);
        let mut edited = entries.clone();
        edited[1].reason = String::from("nothing to see");
        assert_eq!(kinds(&verify_chain(&edited, &head, &[])), ["edited"]);

        let mut reordered = entries.clone();
        reordered.swap(0, 1);
        assert!(kinds(&verify_chain(&reordered, &head, &[])).contains(&"removed_or_reordered"));

        let truncated = &entries[..2];
        assert_eq!(kinds(&verify_chain(truncated, &head, &[])), ["truncated"]);

        // Rebuilt from scratch with the formula: self-consistent, but not what KV anchors.
        let anchor = [(
            String::from("dev"),
            2,
            Anchor {
                audit_seq: 2,
                audit_hash: entries[1].hash.clone(),
            },
        )];
        let mut fabricated = entries.clone();
        fabricated[0].actor = String::from("someone-else");
        let mut previous = Head::default();
        for entry in &mut fabricated {
            entry.prev_hash = previous.hash.clone();
            entry.hash = crate::digest::sha256_hex(entry.hash_input().as_bytes());
            previous = Head {
                seq: entry.seq,
                hash: entry.hash.clone(),
            };
        }
        assert_eq!(
            kinds(&verify_chain(&fabricated, &previous, &anchor)),
            ["anchor_mismatch"]
        );
    }

    #[test]
    fn policy_names_valid_environments_only() {
        let text = r#"{"prod":{"promote_from":"staging"}}"#;
        let prod = policy_for(text, "prod").unwrap();
        assert_eq!(prod.promote_from.as_deref(), Some("staging"));
        assert_eq!(
            policy_for(text, "dev").unwrap(),
            EnvironmentPolicy::default()
        );
        assert_eq!(
            policy_for("", "prod").unwrap(),
            EnvironmentPolicy::default()
        );
        assert!(policy_for(r#"{"prod":{"promote_from":"a b"}}"#, "dev").is_err());
        assert!(policy_for(r#"{"prod":{"allow":"x"}}"#, "dev").is_err());
        let gated = policy_for(r#"{"prod":{"require_approvals":true}}"#, "prod").unwrap();
        assert!(gated.require_approvals && gated.promote_from.is_none());
        assert!(policy_for(r#"{"prod":{"require_approvals":"yes"}}"#, "dev").is_err());
        assert!(policy_for(text, "prod").unwrap().allow_drafts);
        let strict = policy_for(r#"{"prod":{"allow_drafts":false}}"#, "prod").unwrap();
        assert!(!strict.allow_drafts && !strict.require_approvals);
        assert!(policy_for(r#"{"prod":{"allow_drafts":"no"}}"#, "dev").is_err());
    }

    #[test]
    fn drafts_are_refused_only_where_the_policy_says_so() {
        let strict = EnvironmentPolicy {
            allow_drafts: false,
            ..EnvironmentPolicy::default()
        };
        let cases = [
            (Some("draft"), true, Some("is a draft")),
            (None, false, Some("states no status, so it may be a draft")),
            (None, true, None),
            (Some("canary"), false, None),
        ];
        for (status, served_before, refused) in cases {
            assert_eq!(draft_refusal(&strict, status, served_before), refused);
            assert_eq!(
                draft_refusal(&EnvironmentPolicy::default(), status, served_before),
                None
            );
        }
    }
}
