//! The Workers KV layout (`docs/interfaces.md`, "Workers KV layout"):
//!
//! | key | value |
//! |---|---|
//! | `prompt:<sha256>` | a prompt body (UTF-8), immutable |
//! | `ruleset:<env>:<revision>` | the ruleset JSON of that revision, immutable |
//! | `ruleset:<env>` | the live revision as decimal text ([`pointer_value`]) |
//! | `meta:<env>` | the publish metadata ([`crate::meta::Meta`]) |
//! | `authority:<env>` | present once the Worker's admin authority governs `<env>` ([`authority_key`]) |
//! | `signature:<env>:<revision>` | that revision's signature text ([`crate::signing`]); rewritten, with a higher epoch, by a rollback to it |
//!
//! A revision written by the admin authority carries KV metadata naming the audit entry it was
//! published under ([`crate::authority::Anchor`]).
//!
//! Environment names are `[A-Za-z0-9_.-]`, 1 to [`MAX_ENVIRONMENT_LEN`] bytes, so they are safe
//! in URLs and never contain the `:` that separates key parts. The key builders do not check
//! names: check them once where they enter ([`environment`]).

use alloc::format;
use alloc::string::{String, ToString};

use crate::error::Error;
use crate::revision;

/// The longest environment name.
pub const MAX_ENVIRONMENT_LEN: usize = 64;

/// Whether `name` is an environment name: `[A-Za-z0-9_.-]`, 1 to 64 bytes.
pub fn is_environment_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ENVIRONMENT_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `name` when it is an environment name, else [`Error::InvalidEnvironment`].
pub fn environment(name: &str) -> Result<&str, Error> {
    if is_environment_name(name) {
        Ok(name)
    } else {
        Err(Error::InvalidEnvironment {
            name: name.to_string(),
        })
    }
}

/// Whether `text` names a prompt body: its SHA-256 as 64 lowercase hex digits.
pub fn is_prompt_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `prompt:<sha256>`: a prompt body.
pub fn prompt_key(hash: &str) -> String {
    format!("prompt:{hash}")
}

/// `ruleset:<env>:<revision>`: one published revision.
pub fn revision_key(environment: &str, revision: u64) -> String {
    format!("ruleset:{environment}:{revision}")
}

/// `ruleset:<env>`: the live revision pointer.
pub fn pointer_key(environment: &str) -> String {
    format!("ruleset:{environment}")
}

/// `signature:<env>:<revision>`: a revision's signature text ([`crate::signing`]).
pub fn signature_key(environment: &str, revision: u64) -> String {
    format!("signature:{environment}:{revision}")
}

/// `meta:<env>`: the publish metadata.
pub fn meta_key(environment: &str) -> String {
    format!("meta:{environment}")
}

/// `authority:<env>`: written by the Worker's admin authority once it governs the environment;
/// a publisher that bypasses the authority (the KV REST API) refuses such an environment.
pub fn authority_key(environment: &str) -> String {
    format!("authority:{environment}")
}

/// The value of `ruleset:<env>` naming `revision` (decimal text).
pub fn pointer_value(revision: u64) -> String {
    revision.to_string()
}

/// The revision a `ruleset:<env>` value names (surrounding whitespace allowed). A value that is
/// not a decimal revision within [`revision::MAX_REVISION`] is [`Error::InvalidPointer`].
pub fn parse_pointer(text: &str) -> Result<u64, Error> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|revision| revision::check(*revision).is_ok())
        .ok_or_else(|| Error::InvalidPointer {
            text: text.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout() {
        assert_eq!(prompt_key("ab"), "prompt:ab");
        assert_eq!(revision_key("dev", 7), "ruleset:dev:7");
        assert_eq!(pointer_key("dev"), "ruleset:dev");
        assert_eq!(meta_key("dev"), "meta:dev");
        assert_eq!(pointer_value(7), "7");
    }

    #[test]
    fn environment_names_are_url_and_key_safe() {
        assert!(is_environment_name("prod-eu.1"));
        assert!(is_environment_name(&"a".repeat(64)));
        for bad in ["", "a/b", "a:b", "a b", "é"] {
            assert!(!is_environment_name(bad), "{bad:?}");
            assert_eq!(environment(bad).unwrap_err().code(), "bad_request");
        }
        assert!(!is_environment_name(&"a".repeat(65)));
        assert_eq!(environment("dev"), Ok("dev"));
    }

    #[test]
    fn prompt_hashes_are_lowercase_sha256_hex() {
        assert!(is_prompt_hash(&"a".repeat(64)));
        assert!(!is_prompt_hash(&"A".repeat(64)));
        assert!(!is_prompt_hash(&"a".repeat(63)));
        assert!(!is_prompt_hash("../etc/passwd"));
    }

    #[test]
    fn pointers_hold_a_revision_within_the_bound() {
        assert_eq!(parse_pointer(" 7\n"), Ok(7));
        assert_eq!(
            parse_pointer(&pointer_value(revision::MAX_REVISION)),
            Ok(revision::MAX_REVISION)
        );
        for bad in ["", "x", "-1", "9007199254740992", "18446744073709551615"] {
            assert_eq!(parse_pointer(bad).unwrap_err().code(), "invalid_pointer");
        }
    }
}
