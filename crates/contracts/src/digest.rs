//! The content address and canonical JSON: a prompt body is stored under the SHA-256 of its
//! bytes (`prompt:<sha256>`), and every identity the companion computes (ruleset hashes, content
//! hashes, audit-chain hashes) and the native client's body check come from here.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The SHA-256 of some bytes, as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// True for 64 lowercase hex digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Canonical JSON: object keys sorted bytewise, no insignificant whitespace, serde_json's number
/// and string formatting. It does not depend on the order a map was built in, nor on whether
/// serde_json's `preserve_order` feature is on somewhere in the build.
pub fn canonical_json(value: &Value) -> String {
    canonical_json_without(value, &[])
}

/// The text a ruleset's content hash is the SHA-256 of: its canonical JSON without the
/// top-level `environment`, `revision`, `source` and `runtime` (the runtime decisions a
/// revision records), so two environments serving the same thing have the same content hash,
/// and without each prompt version's `status`, a lifecycle label that changes nothing served
/// (so the repository a promotion was synced into still builds what is live).
pub fn content_hash_input(ruleset: &Value) -> String {
    let mut out = String::new();
    write_canonical(
        ruleset,
        &["environment", "revision", "source", "runtime"],
        &[],
        Some(("prompts", &["status"])),
        &mut out,
    );
    out
}

/// [`canonical_json`] leaving out the top-level object's keys in `omitted`.
fn canonical_json_without(value: &Value, omitted: &[&str]) -> String {
    let mut out = String::new();
    write_canonical(value, omitted, &[], None, &mut out);
    out
}

/// Writes `value` as canonical JSON, leaving out its keys in `omitted`, the keys in
/// `omitted_in_members` of each of its members, and, for its member `(name, keys)` of
/// `in_member`, `keys` of each member of that one. (Written out rather than removed from a
/// copy: removing from a map links its removal code into the Worker for nothing else.)
fn write_canonical(
    value: &Value,
    omitted: &[&str],
    omitted_in_members: &[&str],
    in_member: Option<(&str, &[&str])>,
    out: &mut String,
) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map
                .keys()
                .filter(|key| !omitted.contains(&key.as_str()))
                .collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*key).clone()).to_string());
                out.push(':');
                if let Some(item) = map.get(*key) {
                    match in_member {
                        Some((name, inner)) if name == key.as_str() => {
                            write_canonical(item, &[], inner, None, out)
                        }
                        _ => write_canonical(item, omitted_in_members, &[], None, out),
                    }
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, &[], &[], None, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input_is_the_known_constant() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let value: Value =
            serde_json::from_str(r#"{"b":1,"a":{"d":[2,{"z":1,"y":2}],"c":null}}"#).unwrap();
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"c":null,"d":[2,{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn the_content_hash_input_leaves_out_what_serves_nothing() {
        let labelled: Value = serde_json::from_str(
            r#"{"schema":1,"environment":"prod","revision":3,"source":"abc","runtime":{},
                "prompts":{"c1":{"id":"p","version":"1.0.0","status":"canary"}},"flags":{}}"#,
        )
        .unwrap();
        let relabelled: Value = serde_json::from_str(
            r#"{"schema":1,"environment":"dev","revision":9,
                "prompts":{"c1":{"id":"p","version":"1.0.0","status":"production"}},"flags":{}}"#,
        )
        .unwrap();
        let expected = r#"{"flags":{},"prompts":{"c1":{"id":"p","version":"1.0.0"}},"schema":1}"#;
        assert_eq!(content_hash_input(&labelled), expected);
        assert_eq!(content_hash_input(&relabelled), expected);
        let other_version: Value = serde_json::from_str(
            r#"{"schema":1,"prompts":{"c1":{"id":"p","version":"1.0.1"}},"flags":{}}"#,
        )
        .unwrap();
        assert_ne!(content_hash_input(&other_version), expected);
    }
}
