//! The publish gate's decision, as a pure function in two steps so that the signature checks
//! can happen wherever Ed25519 is at hand (workerd's WebCrypto at the edge, a Rust library
//! natively) and the decision is the same everywhere:
//!
//! 1. [`plan`] reads a [`GateInput`] (the accepted registry, registry changes, the content being
//!    published to one environment, the approvals, the publishing identity) and lists the
//!    [`Check`]s to make: public key, signed-data bytes, signature.
//! 2. [`decide`] takes the same input and one result per check, and returns a [`Decision`]:
//!    allow, or a refusal with its [`Reason`].
//!
//! The results are matched to the checks by position; [`decide`] recomputes the plan, so a
//! caller cannot pair a result with another check than the one it was asked to make.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::approval::ApprovalSubject;
use crate::encoding::{base64_decode, base64_encode};
use crate::error::{Error, Result};
use crate::json::{self, Fields};
use crate::keys::{PublicKey, parse_key_list};
use crate::registry::{Registry, Role, accept_change};
use crate::sshsig::{NAMESPACE, SshSignature};
use serde_json::{Map, Value};

/// The largest gate input read.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;
/// The most registry changes one input may carry.
pub const MAX_REGISTRY_CHANGES: usize = 64;
/// The most prompt versions one input may carry.
pub const MAX_PROMPTS: usize = 256;
/// The most approvals one input may carry.
pub const MAX_APPROVALS: usize = 1024;

/// Why the gate refused. Each has its own code (`snake_case` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// A high-risk prompt version has no approval for this environment.
    ApprovalMissing,
    /// An approval's signature does not verify over this content (a bad signature, another
    /// namespace, or a signature over other content such as a retyped hash).
    ApprovalInvalid,
    /// The approval's key is not in the registry, or its member is not a reviewer.
    ApproverNotReviewer,
    /// The version's author signed the approval.
    SelfApproval,
    /// A registry change is not signed by an owner of the registry it replaces (or, for the
    /// first registry, by a root owner key), or is not the next serial.
    RegistryChangeUnsigned,
    /// A registry change does not parse or breaks a registry rule.
    RegistryInvalid,
    /// The publishing key has no `publisher:<env>` role (nor `override` for an override).
    PublisherNotAuthorized,
}

impl Reason {
    /// The code, as in JSON.
    pub fn code(self) -> &'static str {
        match self {
            Reason::ApprovalMissing => "approval_missing",
            Reason::ApprovalInvalid => "approval_invalid",
            Reason::ApproverNotReviewer => "approver_not_reviewer",
            Reason::SelfApproval => "self_approval",
            Reason::RegistryChangeUnsigned => "registry_change_unsigned",
            Reason::RegistryInvalid => "registry_invalid",
            Reason::PublisherNotAuthorized => "publisher_not_authorized",
        }
    }
}

/// A registry file and its armored signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignedRegistry {
    /// The file's exact text (the signed message).
    pub text: String,
    /// `ssh-keygen -Y sign -n promptflag` output over it.
    pub signature: String,
}

/// One approval as submitted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubmittedApproval {
    /// The prompt version it approves (`<id>@<version>`).
    pub prompt: String,
    /// The armored signature over the approval message for the input's environment.
    pub signature: String,
}

/// Everything the gate decides on. Its JSON form (what [`GateInput::parse`] reads, and what
/// serializing it writes) has these field names; absent optional fields are empty.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GateInput {
    /// The root owner keys, one `ssh-ed25519` line each (the Worker secret `OWNER_KEYS`).
    pub owner_keys: String,
    /// The registry already accepted (trusted: the caller's own state), if any.
    pub accepted: Option<String>,
    /// Registry changes to accept first, in serial order after `accepted`.
    pub registry_changes: Vec<SignedRegistry>,
    /// The environment published to.
    pub environment: String,
    /// Whether the environment requires approvals of high-risk prompt versions.
    pub require_approvals: bool,
    /// The high-risk prompt versions being published, each as its approval subject.
    pub prompts: Vec<ApprovalSubject>,
    /// The approvals submitted with the publish.
    pub approvals: Vec<SubmittedApproval>,
    /// The publishing identity's key, when the publish is made with a key (a caller that
    /// authenticated the publish with an environment-scoped token leaves it out).
    pub publisher: Option<String>,
    /// Present to publish past missing approvals; needs a publisher with the `override` role.
    pub override_reason: Option<String>,
}

impl GateInput {
    /// Parses the JSON form, within [`MAX_INPUT_BYTES`] and the count limits.
    pub fn parse(text: &str) -> Result<GateInput> {
        if text.len() > MAX_INPUT_BYTES {
            return Err(Error::TooLarge {
                what: "a gate input",
                limit: MAX_INPUT_BYTES,
            });
        }
        let value = json::parse(text, input_error)?;
        let fields = Fields::new(
            &value,
            String::from("input"),
            &[
                "owner_keys",
                "accepted",
                "registry_changes",
                "environment",
                "require_approvals",
                "prompts",
                "approvals",
                "publisher",
                "override_reason",
            ],
            input_error,
        )?;
        let mut registry_changes = Vec::new();
        for (index, item) in fields
            .array("registry_changes", MAX_REGISTRY_CHANGES)?
            .iter()
            .enumerate()
        {
            let change = Fields::new(
                item,
                fields.item_path("registry_changes", index),
                &["text", "signature"],
                input_error,
            )?;
            registry_changes.push(SignedRegistry {
                text: change.required_string("text")?,
                signature: change.required_string("signature")?,
            });
        }
        let mut prompts = Vec::new();
        for (index, item) in fields.array("prompts", MAX_PROMPTS)?.iter().enumerate() {
            prompts.push(ApprovalSubject::from_json(
                item,
                fields.item_path("prompts", index),
            )?);
        }
        let mut approvals = Vec::new();
        for (index, item) in fields.array("approvals", MAX_APPROVALS)?.iter().enumerate() {
            let approval = Fields::new(
                item,
                fields.item_path("approvals", index),
                &["prompt", "signature"],
                input_error,
            )?;
            approvals.push(SubmittedApproval {
                prompt: approval.required_string("prompt")?,
                signature: approval.required_string("signature")?,
            });
        }
        Ok(GateInput {
            owner_keys: fields.string("owner_keys")?.unwrap_or_default(),
            accepted: fields.string("accepted")?,
            registry_changes,
            environment: fields.required_string("environment")?,
            require_approvals: fields.bool("require_approvals")?,
            prompts,
            approvals,
            publisher: fields.string("publisher")?,
            override_reason: fields.string("override_reason")?,
        })
    }
}

fn input_error(reason: String) -> Error {
    Error::GateInput { reason }
}

/// One Ed25519 verification to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The key.
    pub public_key: PublicKey,
    /// The exact bytes signed (SSHSIG's signed data).
    pub signed_data: Vec<u8>,
    /// The raw signature.
    pub signature: [u8; 64],
}

impl Check {
    /// `{"public_key", "signed_data", "signature"}`, each base64 (the key is the raw 32 bytes,
    /// as WebCrypto imports it).
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert(
            "public_key".into(),
            base64_encode(&self.public_key.0).into(),
        );
        object.insert(
            "signed_data".into(),
            base64_encode(&self.signed_data).into(),
        );
        object.insert("signature".into(), base64_encode(&self.signature).into());
        Value::Object(object)
    }
}

/// What a signature resolved to before its check: the claimed signer and the check's index, or
/// why no check can be made.
type Planned = core::result::Result<(PublicKey, usize), String>;

/// The checks of an input, with what each item of the input maps to.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The checks to make.
    pub checks: Vec<Check>,
    registry: Vec<core::result::Result<(Registry, Planned), String>>,
    approvals: Vec<(usize, Planned)>,
}

fn plan_signature(armored: &str, message: &[u8], checks: &mut Vec<Check>) -> Planned {
    let signature = SshSignature::parse_armored(armored).map_err(|e| e.to_string())?;
    if signature.namespace != NAMESPACE {
        return Err(String::from(
            "the signature was made in another namespace than promptflag",
        ));
    }
    checks.push(Check {
        public_key: signature.public_key,
        signed_data: signature.signed_data(message),
        signature: signature.signature,
    });
    Ok((signature.public_key, checks.len() - 1))
}

/// Step 1: the checks to make for `input`.
pub fn plan(input: &GateInput) -> Plan {
    let mut checks = Vec::new();
    let registry = input
        .registry_changes
        .iter()
        .map(|change| {
            let registry = Registry::parse(&change.text).map_err(|e| e.to_string())?;
            let planned = plan_signature(&change.signature, change.text.as_bytes(), &mut checks);
            Ok((registry, planned))
        })
        .collect();
    let mut approvals = Vec::new();
    for approval in &input.approvals {
        let Some(index) = input
            .prompts
            .iter()
            .position(|p| p.prompt == approval.prompt)
        else {
            continue;
        };
        let planned = input.prompts[index]
            .message(&input.environment)
            .map_err(|e| e.to_string())
            .and_then(|message| {
                plan_signature(&approval.signature, message.as_bytes(), &mut checks)
            });
        approvals.push((index, planned));
    }
    Plan {
        checks,
        registry,
        approvals,
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Its code.
    pub reason: Reason,
    /// What it concerns: a prompt version (`<id>@<version>`) or a registry (`registry <serial>`).
    pub subject: Option<String>,
    /// The registry member (or key fingerprint) that signed, if known.
    pub signer: Option<String>,
    /// What is wrong.
    pub detail: String,
}

impl Problem {
    /// For people: `<subject>: <signer>: <detail>`, each part when known.
    pub fn message(&self) -> String {
        let mut text = String::new();
        for part in [&self.subject, &self.signer].into_iter().flatten() {
            text.push_str(part);
            text.push_str(": ");
        }
        text.push_str(&self.detail);
        text
    }

    /// `{reason, subject?, signer?, message}`.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("reason".into(), self.reason.code().into());
        if let Some(subject) = &self.subject {
            object.insert("subject".into(), subject.as_str().into());
        }
        if let Some(signer) = &self.signer {
            object.insert("signer".into(), signer.as_str().into());
        }
        object.insert("message".into(), self.message().into());
        Value::Object(object)
    }
}

/// The prompt versions approved, and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    /// `<id>@<version>`.
    pub prompt: String,
    /// The reviewers whose approval holds, sorted.
    pub by: Vec<String>,
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the publish may go ahead.
    pub allowed: bool,
    /// The refusal's reason (the first problem's).
    pub reason: Option<Reason>,
    /// For people.
    pub message: String,
    /// The serial of the registry the decision was made under (0: none).
    pub registry_serial: u64,
    /// The accepted registry's text after the changes, for the caller to keep.
    pub registry: Option<String>,
    /// Every problem found (an allowed override lists what it overrode).
    pub problems: Vec<Problem>,
    /// Approvals that hold.
    pub approved: Vec<Approved>,
    /// True when an override let the publish past its problems.
    pub overridden: bool,
}

impl Decision {
    /// `{allowed, reason?, message, registry_serial, registry?, problems, approved,
    /// overridden}` (docs/interfaces.md).
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("allowed".into(), self.allowed.into());
        if let Some(reason) = self.reason {
            object.insert("reason".into(), reason.code().into());
        }
        object.insert("message".into(), self.message.as_str().into());
        object.insert("registry_serial".into(), self.registry_serial.into());
        if let Some(registry) = &self.registry {
            object.insert("registry".into(), registry.as_str().into());
        }
        let problems = self.problems.iter().map(Problem::to_json).collect();
        object.insert("problems".into(), Value::Array(problems));
        let approved = self
            .approved
            .iter()
            .map(|approved| {
                let by = approved
                    .by
                    .iter()
                    .map(|name| Value::from(name.as_str()))
                    .collect();
                let mut entry = Map::new();
                entry.insert("prompt".into(), approved.prompt.as_str().into());
                entry.insert("by".into(), Value::Array(by));
                Value::Object(entry)
            })
            .collect();
        object.insert("approved".into(), Value::Array(approved));
        object.insert("overridden".into(), self.overridden.into());
        Value::Object(object)
    }
}

fn refusal(problem: Problem, registry_serial: u64) -> Decision {
    Decision {
        allowed: false,
        reason: Some(problem.reason),
        message: problem.message(),
        registry_serial,
        registry: None,
        problems: alloc::vec![problem],
        approved: Vec::new(),
        overridden: false,
    }
}

fn problem(reason: Reason, subject: Option<&str>, signer: Option<String>, detail: &str) -> Problem {
    Problem {
        reason,
        subject: subject.map(String::from),
        signer,
        detail: String::from(detail),
    }
}

/// The registry the input's changes lead to.
#[derive(Debug, Clone)]
pub struct WalkedRegistry {
    /// The last accepted registry (`None`: none yet).
    pub registry: Option<Registry>,
    /// Its exact text.
    pub text: Option<String>,
    /// Why the next change was refused, if one was: the walk stops there.
    pub refusal: Option<Problem>,
}

/// Accepts the input's registry changes in order, from its `accepted` registry (or the root
/// owner keys), until one is refused; `results` are the plan's check results. Errors only when
/// the trusted parts (`accepted`, `owner_keys`) do not parse or the results do not match.
pub fn walk_registry(input: &GateInput, plan: Plan, results: &[bool]) -> Result<WalkedRegistry> {
    if results.len() != plan.checks.len() {
        return Err(input_error(String::from(
            "the check results do not match the checks, one boolean per check",
        )));
    }
    let root_keys = parse_key_list(&input.owner_keys)?;
    let mut walked = WalkedRegistry {
        registry: match &input.accepted {
            Some(text) => Some(Registry::parse(text)?),
            None => None,
        },
        text: input.accepted.clone(),
        refusal: None,
    };
    for (change, planned) in input.registry_changes.iter().zip(plan.registry) {
        let next = walked
            .registry
            .as_ref()
            .map_or(1, |r| r.serial.saturating_add(1));
        let subject = alloc::format!("registry {next}");
        let (proposed, signature) = match planned {
            Ok(pair) => pair,
            Err(reason) => {
                let problem = problem(Reason::RegistryInvalid, Some(&subject), None, &reason);
                walked.refusal = Some(problem);
                return Ok(walked);
            }
        };
        let (signer, valid) = match signature {
            Ok((key, index)) => (Some(key), results[index]),
            Err(_) => (None, false),
        };
        if let Err(detail) = accept_change(
            walked.registry.as_ref(),
            &root_keys,
            &proposed,
            signer.as_ref(),
            valid,
        ) {
            let signer = signer.map(|key| key.fingerprint());
            let problem = problem(
                Reason::RegistryChangeUnsigned,
                Some(&subject),
                signer,
                detail,
            );
            walked.refusal = Some(problem);
            return Ok(walked);
        }
        walked.registry = Some(proposed);
        walked.text = Some(change.text.clone());
    }
    Ok(walked)
}

/// Step 2: the decision, given one result per check of [`plan`] (true: the signature
/// verified). Errors only when the input itself is unusable (a trusted `accepted` registry or
/// root key list that does not parse, or a result count that does not match the plan).
pub fn decide(input: &GateInput, results: &[bool]) -> Result<Decision> {
    let mut plan = plan(input);
    let approvals = core::mem::take(&mut plan.approvals);
    let walked = walk_registry(input, plan, results)?;
    let serial = walked.registry.as_ref().map_or(0, |r| r.serial);
    if let Some(refused) = walked.refusal {
        return Ok(refusal(refused, serial));
    }
    let registry = walked.registry.as_ref();
    let overriding = input
        .override_reason
        .as_ref()
        .is_some_and(|r| !r.trim().is_empty());
    if let Some(refused) = check_publisher(input, registry, overriding) {
        return Ok(refusal(refused, serial));
    }
    let (problems, approved) = if input.require_approvals {
        check_approvals(input, &approvals, results, registry)
    } else {
        (Vec::new(), Vec::new())
    };
    let allowed = problems.is_empty() || overriding;
    let message = match problems.first() {
        None => String::from("allowed"),
        Some(first) if allowed => {
            let mut text = String::from("overridden (");
            text.push_str(input.override_reason.as_deref().unwrap_or_default().trim());
            text.push_str("): ");
            text.push_str(&first.message());
            text
        }
        Some(first) => first.message(),
    };
    Ok(Decision {
        allowed,
        reason: if allowed {
            None
        } else {
            problems.first().map(|p| p.reason)
        },
        message,
        registry_serial: serial,
        registry: walked.text.filter(|_| allowed),
        overridden: allowed && !problems.is_empty(),
        problems,
        approved,
    })
}

fn check_publisher(
    input: &GateInput,
    registry: Option<&Registry>,
    overriding: bool,
) -> Option<Problem> {
    let refuse = |signer: Option<String>, detail: &str| {
        Some(problem(
            Reason::PublisherNotAuthorized,
            None,
            signer,
            detail,
        ))
    };
    let Some(line) = &input.publisher else {
        if overriding {
            return refuse(
                None,
                "an override needs a publishing key with the override role",
            );
        }
        return None;
    };
    let Ok(key) = PublicKey::parse(line) else {
        return refuse(None, "the publishing identity is not an ssh-ed25519 key");
    };
    let member = registry.and_then(|r| r.member_by_key(&key));
    let name = member.map_or_else(|| key.fingerprint(), |m| m.name.clone());
    let role = Role::Publisher(input.environment.clone());
    let publishes = member.is_some_and(|m| m.roles.contains(&role));
    let overrides = member.is_some_and(|m| m.roles.contains(&Role::Override));
    if overriding && !overrides {
        refuse(Some(name), "has no override role in the accepted registry")
    } else if !publishes && !overriding {
        refuse(
            Some(name),
            "has no publisher role for this environment in the accepted registry",
        )
    } else {
        None
    }
}

fn check_approvals(
    input: &GateInput,
    approvals: &[(usize, Planned)],
    results: &[bool],
    registry: Option<&Registry>,
) -> (Vec<Problem>, Vec<Approved>) {
    let mut problems = Vec::new();
    let mut approved = Vec::new();
    for (index, subject) in input.prompts.iter().enumerate() {
        let mut found = Vec::new();
        let mut by: Vec<String> = Vec::new();
        for (_, planned) in approvals.iter().filter(|(i, _)| *i == index) {
            match judge(subject, planned, results, registry) {
                Ok(name) => by.push(name),
                Err(problem) => found.push(problem),
            }
        }
        if by.is_empty() {
            if found.is_empty() {
                found.push(problem(
                    Reason::ApprovalMissing,
                    Some(&subject.prompt),
                    None,
                    "high risk, and no approval for this environment from a registered reviewer who is not its author (`promptflag approve`)",
                ));
            }
            problems.extend(found);
        } else {
            by.sort();
            by.dedup();
            approved.push(Approved {
                prompt: subject.prompt.clone(),
                by,
            });
        }
    }
    (problems, approved)
}

/// One approval's verdict: the approving reviewer's name, or the problem.
fn judge(
    subject: &ApprovalSubject,
    planned: &Planned,
    results: &[bool],
    registry: Option<&Registry>,
) -> core::result::Result<String, Problem> {
    let prompt = Some(subject.prompt.as_str());
    let (key, check) = planned
        .as_ref()
        .map_err(|reason| problem(Reason::ApprovalInvalid, prompt, None, reason))?;
    let member = registry.and_then(|r| r.member_by_key(key));
    let signer = member.map_or_else(|| key.fingerprint(), |m| m.name.clone());
    let verdict = if !results[*check] {
        Some((
            Reason::ApprovalInvalid,
            "the approval does not verify over the current content (body, model, parameters, output schema, author, environment): it was signed over other content or is not a valid signature",
        ))
    } else if member.is_none() {
        Some((
            Reason::ApproverNotReviewer,
            "the approving key is not in the accepted registry",
        ))
    } else if member.is_some_and(|m| m.name == subject.author) {
        Some((
            Reason::SelfApproval,
            "the author cannot approve their own prompt",
        ))
    } else if !member.is_some_and(|m| m.roles.contains(&Role::Reviewer)) {
        Some((
            Reason::ApproverNotReviewer,
            "the signer has no reviewer role in the accepted registry",
        ))
    } else {
        None
    };
    match verdict {
        Some((reason, detail)) => Err(problem(reason, prompt, Some(signer), detail)),
        None => Ok(signer),
    }
}

/// [`plan`] over the JSON form: the checks as a JSON array (see [`Check::to_json`]).
pub fn checks_json(input: &str) -> Result<String> {
    let input = GateInput::parse(input)?;
    let checks = plan(&input).checks.iter().map(Check::to_json).collect();
    Ok(json::text(&Value::Array(checks)))
}

/// [`decide`] over the JSON forms: `results` is a JSON array of booleans, one per check.
pub fn decide_json(input: &str, results: &str) -> Result<String> {
    let input = GateInput::parse(input)?;
    if results.len() > MAX_INPUT_BYTES {
        return Err(Error::TooLarge {
            what: "check results",
            limit: MAX_INPUT_BYTES,
        });
    }
    let wrong = || {
        input_error(String::from(
            "the check results must be a JSON array of booleans",
        ))
    };
    let results: Vec<bool> = match json::parse(results, input_error)? {
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_bool().ok_or_else(wrong))
            .collect::<Result<_>>()?,
        _ => return Err(wrong()),
    };
    Ok(json::text(&decide(&input, &results)?.to_json()))
}

/// Decodes a check from its JSON form (the inverse of [`Check::to_json`]).
pub fn check_from_json(value: &serde_json::Value) -> Result<Check> {
    let field = |name: &'static str| -> Result<Vec<u8>> {
        let text = value
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::GateInput {
                reason: format!("a check has no {name}"),
            })?;
        base64_decode(text, name)
    };
    let public_key: [u8; 32] = field("public_key")?
        .try_into()
        .map_err(|_| Error::GateInput {
            reason: String::from("a check's public_key is not 32 bytes"),
        })?;
    let signature: [u8; 64] = field("signature")?
        .try_into()
        .map_err(|_| Error::GateInput {
            reason: String::from("a check's signature is not 64 bytes"),
        })?;
    Ok(Check {
        public_key: PublicKey(public_key),
        signed_data: field("signed_data")?,
        signature,
    })
}
