//! The key registry: who may do what, by public key. A JSON file in the prompt repository
//! (`governance/registry/<serial>.json`, each with its signature beside it) lists people and CI
//! by name with their ssh-ed25519 key and roles. The file is parsed at the edge too, where
//! serde_json is already linked and a YAML parser would weigh on the upload budget.
//!
//! The rule that makes the repository unable to forge it: registry `1` is accepted only when
//! signed by a root owner key configured outside the repository (the Worker secret
//! `OWNER_KEYS`), and registry `n + 1` only when signed by an `owner` of registry `n`. An edit
//! pushed to the repository without such a signature changes nothing ([`accept_change`]).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use promptflag_contracts::keys::is_environment_name;

use crate::error::{Error, Result};
use crate::json::{self, Fields};
use crate::keys::PublicKey;

/// The largest registry file read.
pub const MAX_REGISTRY_BYTES: usize = 64 * 1024;

/// The most members a registry may list.
pub const MAX_MEMBERS: usize = 256;

/// The registry format version.
pub const SCHEMA: u32 = 1;

/// What a member may do.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Writes prompt versions.
    Author,
    /// Approves high-risk prompt versions written by others.
    Reviewer,
    /// Publishes to one environment.
    Publisher(String),
    /// Publishes past a refused gate, with a reason.
    Override,
    /// Signs registry changes.
    Owner,
}

impl Role {
    /// Parses `author`, `reviewer`, `publisher:<env>`, `override` or `owner`.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "author" => Some(Role::Author),
            "reviewer" => Some(Role::Reviewer),
            "override" => Some(Role::Override),
            "owner" => Some(Role::Owner),
            _ => text
                .strip_prefix("publisher:")
                .filter(|env| is_environment_name(env))
                .map(|env| Role::Publisher(String::from(env))),
        }
    }

    /// The written form.
    pub fn name(&self) -> String {
        match self {
            Role::Author => String::from("author"),
            Role::Reviewer => String::from("reviewer"),
            Role::Publisher(env) => format!("publisher:{env}"),
            Role::Override => String::from("override"),
            Role::Owner => String::from("owner"),
        }
    }
}

/// One person or CI identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The name approvals and authorship refer to (an e-mail address, `ci-prod`, …).
    pub name: String,
    /// The key.
    pub key: PublicKey,
    /// The roles, each once, in the order written. (A vector: a set's code would weigh on the
    /// Worker's upload for a handful of items.)
    pub roles: Vec<Role>,
}

/// An accepted or proposed registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// 1 for the first registry, one more for each change.
    pub serial: u64,
    /// The members, in file order.
    pub members: Vec<Member>,
}

struct RawMember {
    name: String,
    key: String,
    roles: Vec<String>,
}

fn invalid(reason: String) -> Error {
    Error::Registry { reason }
}

/// Whether a member name is usable: 1 to 128 characters of letters, digits and `@._+-`.
pub fn is_member_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'@' | b'.' | b'_' | b'+' | b'-'))
}

impl Registry {
    /// Parses a registry file, checking its rules: schema 1, a serial of at least 1, unique
    /// names and keys, known roles.
    pub fn parse(text: &str) -> Result<Registry> {
        if text.len() > MAX_REGISTRY_BYTES {
            return Err(Error::TooLarge {
                what: "a key registry",
                limit: MAX_REGISTRY_BYTES,
            });
        }
        let value = json::parse(text, invalid)?;
        let fields = Fields::new(
            &value,
            String::from("registry"),
            &["schema", "serial", "members"],
            invalid,
        )?;
        let schema = fields.required_u64("schema")?;
        if schema != u64::from(SCHEMA) {
            return Err(invalid(format!("schema {schema} is not {SCHEMA}")));
        }
        let serial = fields.required_u64("serial")?;
        if serial == 0 {
            return Err(invalid(String::from("serial starts at 1")));
        }
        let raw_members = fields.array("members", MAX_MEMBERS)?;
        let mut members: Vec<Member> = Vec::with_capacity(raw_members.len());
        for (index, item) in raw_members.iter().enumerate() {
            let member_fields = Fields::new(
                item,
                fields.item_path("members", index),
                &["name", "key", "roles"],
                invalid,
            )?;
            let raw_member = RawMember {
                name: member_fields.required_string("name")?,
                key: member_fields.required_string("key")?,
                roles: member_fields.strings("roles", 64)?,
            };
            if !is_member_name(&raw_member.name) {
                return Err(invalid(format!(
                    "member name {:?} must be 1 to 128 letters, digits or @._+-",
                    raw_member.name
                )));
            }
            let key = PublicKey::parse(&raw_member.key)
                .map_err(|e| invalid(format!("{}: {e}", raw_member.name)))?;
            let mut roles = Vec::with_capacity(raw_member.roles.len());
            for role in &raw_member.roles {
                let parsed = Role::parse(role).ok_or_else(|| {
                    invalid(format!(
                        "{}: role {role:?} is not author, reviewer, publisher:<env>, override or owner",
                        raw_member.name
                    ))
                })?;
                if !roles.contains(&parsed) {
                    roles.push(parsed);
                }
            }
            if members.iter().any(|m| m.name == raw_member.name) {
                return Err(invalid(format!("{} is listed twice", raw_member.name)));
            }
            if members.iter().any(|m| m.key == key) {
                return Err(invalid(format!(
                    "{}'s key is already {}'s",
                    raw_member.name,
                    members
                        .iter()
                        .find(|m| m.key == key)
                        .map_or("", |m| m.name.as_str())
                )));
            }
            members.push(Member {
                name: raw_member.name,
                key,
                roles,
            });
        }
        Ok(Registry { serial, members })
    }

    /// The registry file's text (pretty JSON, one member per block), as `keys init` writes it.
    pub fn to_text(&self) -> String {
        let members: Vec<serde_json::Value> = self
            .members
            .iter()
            .map(|member| {
                serde_json::json!({
                    "name": member.name,
                    "key": member.key.to_openssh(),
                    "roles": member.roles.iter().map(Role::name).collect::<Vec<_>>(),
                })
            })
            .collect();
        let value =
            serde_json::json!({"schema": SCHEMA, "serial": self.serial, "members": members});
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The member holding `key`.
    pub fn member_by_key(&self, key: &PublicKey) -> Option<&Member> {
        self.members.iter().find(|m| &m.key == key)
    }

    /// The member named `name`.
    pub fn member_by_name(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Whether `key` belongs to a member with `role`.
    pub fn has_role(&self, key: &PublicKey, role: &Role) -> bool {
        self.member_by_key(key)
            .is_some_and(|m| m.roles.contains(role))
    }
}

/// Decides whether `proposed` (signed by `signer`, whose signature over the file's exact bytes
/// verified or not) replaces `accepted` (`None`: no registry yet, so a root owner key must
/// sign). Returns why not otherwise (the refusal is `registry_change_unsigned`).
pub fn accept_change(
    accepted: Option<&Registry>,
    root_owner_keys: &[PublicKey],
    proposed: &Registry,
    signer: Option<&PublicKey>,
    signature_valid: bool,
) -> core::result::Result<(), &'static str> {
    let expected_serial = accepted.map_or(1, |registry| registry.serial.saturating_add(1));
    if proposed.serial != expected_serial {
        return Err("not the next serial: each change is the next serial, signed anew");
    }
    let Some(signer) = signer.filter(|_| signature_valid) else {
        return Err("no valid signature over the file's exact bytes");
    };
    let is_owner = match accepted {
        Some(registry) => registry.has_role(signer, &Role::Owner),
        None => root_owner_keys.contains(signer),
    };
    if !is_owner {
        return Err(match accepted {
            Some(_) => "signed by a key that is not an owner of the registry it replaces",
            None => "registry 1 is signed by a key that is not a root owner key (OWNER_KEYS)",
        });
    }
    Ok(())
}
