//! ssh-ed25519 public keys as people write them (`ssh-ed25519 AAAAC3Nza… comment`, the line of
//! an `id_ed25519.pub` or of `authorized_keys`), their SSH wire blob and their SHA-256
//! fingerprint in `ssh-keygen -l` form.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use crate::encoding::{WireReader, base64_decode, base64_encode, put_string};
use crate::error::{Error, Result};

/// The only key type promptflag accepts.
pub const KEY_TYPE: &str = "ssh-ed25519";

/// The longest public key line read (a key is about 100 bytes; the rest is its comment).
pub const MAX_KEY_LINE_BYTES: usize = 1024;

/// How many keys a list of keys (the root owner keys) may hold.
pub const MAX_KEYS_IN_LIST: usize = 64;

/// An Ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Parses `ssh-ed25519 <base64 blob> [comment]`.
    pub fn parse(line: &str) -> Result<PublicKey> {
        if line.len() > MAX_KEY_LINE_BYTES {
            return Err(Error::TooLarge {
                what: "a public key line",
                limit: MAX_KEY_LINE_BYTES,
            });
        }
        let mut fields = line.split_ascii_whitespace();
        let key_type = fields.next().ok_or_else(|| Error::PublicKey {
            reason: String::from("the line is empty"),
        })?;
        if key_type != KEY_TYPE {
            return Err(Error::PublicKey {
                reason: format!("the key type is {key_type:?}; only ssh-ed25519 keys are accepted"),
            });
        }
        let blob_text = fields.next().ok_or_else(|| Error::PublicKey {
            reason: String::from("the base64 key is missing after ssh-ed25519"),
        })?;
        let blob = base64_decode(blob_text, "the public key")?;
        PublicKey::from_blob(&blob)
    }

    /// Reads the SSH wire blob: `string "ssh-ed25519"`, `string key` (32 bytes), nothing more.
    pub fn from_blob(blob: &[u8]) -> Result<PublicKey> {
        let mut reader = WireReader::new(blob, "the public key blob");
        let key_type = reader.string().map_err(|_| invalid_blob())?;
        if key_type != KEY_TYPE.as_bytes() {
            return Err(Error::PublicKey {
                reason: String::from("the blob is not an ssh-ed25519 key"),
            });
        }
        let key = reader.string().map_err(|_| invalid_blob())?;
        if !reader.is_empty() {
            return Err(invalid_blob());
        }
        let key: [u8; 32] = key.try_into().map_err(|_| Error::PublicKey {
            reason: String::from("an ed25519 key is 32 bytes"),
        })?;
        Ok(PublicKey(key))
    }

    /// The SSH wire blob.
    pub fn blob(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(51);
        put_string(&mut out, KEY_TYPE.as_bytes());
        put_string(&mut out, &self.0);
        out
    }

    /// `ssh-ed25519 <base64 blob>`, without a comment: the canonical form compared and stored.
    pub fn to_openssh(&self) -> String {
        format!("{KEY_TYPE} {}", base64_encode(&self.blob()))
    }

    /// `SHA256:<unpadded base64>`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.blob());
        let mut text = base64_encode(&digest);
        while text.ends_with('=') {
            text.pop();
        }
        format!("SHA256:{text}")
    }
}

fn invalid_blob() -> Error {
    Error::PublicKey {
        reason: String::from("the base64 does not hold an SSH key blob"),
    }
}

/// Parses a list of keys, one a line (the root owner keys' Worker secret, an
/// `authorized_keys`-like file); blank lines and `#` comments are skipped.
pub fn parse_key_list(text: &str) -> Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if keys.len() == MAX_KEYS_IN_LIST {
            return Err(Error::TooLarge {
                what: "a key list",
                limit: MAX_KEYS_IN_LIST,
            });
        }
        keys.push(PublicKey::parse(line)?);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A key made by `ssh-keygen -t ed25519`, with its fingerprint as `ssh-keygen -l` printed it.
    const LINE: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAeMGFcjXraNOyfvt+wsgxogcjoRk2gCossFIucbfrqQ test";

    #[test]
    fn a_key_line_round_trips_without_its_comment() {
        let key = PublicKey::parse(LINE).unwrap();
        assert_eq!(
            key.to_openssh(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAeMGFcjXraNOyfvt+wsgxogcjoRk2gCossFIucbfrqQ"
        );
        assert_eq!(
            key.fingerprint(),
            "SHA256:cmf1azYNcdqVIJpWHh6W605HiNS1DxG9lf5eQAMeBs8"
        );
    }

    #[test]
    fn other_key_types_and_broken_blobs_are_refused() {
        assert!(PublicKey::parse("ssh-rsa AAAAB3NzaC1yc2E= x").is_err());
        assert!(PublicKey::parse("ssh-ed25519").is_err());
        assert!(PublicKey::parse("ssh-ed25519 AAAA").is_err());
        assert!(PublicKey::parse("").is_err());
        let long = format!("{LINE}{}", " ".repeat(MAX_KEY_LINE_BYTES));
        assert_eq!(PublicKey::parse(&long).unwrap_err().code(), "too_large");
    }

    #[test]
    fn key_lists_skip_comments_and_blank_lines() {
        let text = format!("# root owners\n\n{LINE}\n  {LINE}  \n");
        assert_eq!(parse_key_list(&text).unwrap().len(), 2);
        assert!(parse_key_list("nonsense").is_err());
    }
}
