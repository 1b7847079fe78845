//! The SSH signature format (`SSHSIG`, OpenSSH's PROTOCOL.sshsig) that `ssh-keygen -Y sign`
//! writes and git uses for signed commits: the armor, the blob inside it, and the exact bytes
//! an Ed25519 signature covers. Verification itself is not here: the Worker asks workerd's
//! WebCrypto, native callers ask the `ed25519` feature's library, both over [`signed_data`].

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use sha2::{Digest, Sha256, Sha512};

use crate::encoding::{WireReader, base64_decode, base64_encode, put_string, put_u32};
use crate::error::{Error, Result};
use crate::keys::{KEY_TYPE, PublicKey};

/// The namespace every promptflag signature is made in (`ssh-keygen -Y sign -n promptflag`),
/// so a signature made for git or for another tool never counts here.
pub const NAMESPACE: &str = "promptflag";

/// The longest armored signature read (an ed25519 one is about 300 bytes).
pub const MAX_ARMOR_BYTES: usize = 4096;

const MAGIC: &[u8; 6] = b"SSHSIG";
const VERSION: u32 = 1;
const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
const END: &str = "-----END SSH SIGNATURE-----";

/// The message digest a signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// `sha256`.
    Sha256,
    /// `sha512`, what `ssh-keygen` uses by default and promptflag writes.
    Sha512,
}

impl HashAlgorithm {
    /// The name in the blob.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
        }
    }

    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha256 => Sha256::digest(message).to_vec(),
            HashAlgorithm::Sha512 => Sha512::digest(message).to_vec(),
        }
    }
}

/// A parsed SSH signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSignature {
    /// The key that claims to have signed.
    pub public_key: PublicKey,
    /// The namespace it was made in.
    pub namespace: String,
    /// The message digest.
    pub hash_algorithm: HashAlgorithm,
    /// The raw Ed25519 signature.
    pub signature: [u8; 64],
}

impl SshSignature {
    /// Parses an armored signature (`-----BEGIN SSH SIGNATURE-----` … `-----END SSH
    /// SIGNATURE-----`), as `ssh-keygen -Y sign` writes it.
    pub fn parse_armored(text: &str) -> Result<SshSignature> {
        if text.len() > MAX_ARMOR_BYTES {
            return Err(Error::TooLarge {
                what: "an armored signature",
                limit: MAX_ARMOR_BYTES,
            });
        }
        let trimmed = text.trim();
        let inner = trimmed
            .strip_prefix(BEGIN)
            .and_then(|rest| rest.strip_suffix(END))
            .ok_or_else(|| Error::Signature {
                reason: format!("the text must start with {BEGIN} and end with {END}"),
            })?;
        let blob = base64_decode(inner, "the signature armor")?;
        SshSignature::from_blob(&blob)
    }

    /// Reads the `SSHSIG` blob.
    pub fn from_blob(blob: &[u8]) -> Result<SshSignature> {
        let mut reader = WireReader::new(blob, "the signature blob");
        if reader.take(MAGIC.len())? != MAGIC {
            return Err(invalid("the blob does not start with SSHSIG"));
        }
        let version = reader.u32()?;
        if version != VERSION {
            return Err(invalid(&format!("version {version} is not 1")));
        }
        let public_key = PublicKey::from_blob(reader.string()?)?;
        let namespace = core::str::from_utf8(reader.string()?)
            .map_err(|_| invalid("the namespace is not UTF-8"))?;
        let _reserved = reader.string()?;
        let hash_algorithm = match reader.string()? {
            b"sha256" => HashAlgorithm::Sha256,
            b"sha512" => HashAlgorithm::Sha512,
            _ => return Err(invalid("the hash algorithm is neither sha256 nor sha512")),
        };
        let mut inner = WireReader::new(reader.string()?, "the signature");
        if !reader.is_empty() {
            return Err(invalid("bytes follow the signature"));
        }
        if inner.string()? != KEY_TYPE.as_bytes() {
            return Err(invalid("the signature is not ssh-ed25519"));
        }
        let signature: [u8; 64] = inner
            .string()?
            .try_into()
            .map_err(|_| invalid("an ed25519 signature is 64 bytes"))?;
        if !inner.is_empty() {
            return Err(invalid("bytes follow the ed25519 signature"));
        }
        Ok(SshSignature {
            public_key,
            namespace: String::from(namespace),
            hash_algorithm,
            signature,
        })
    }

    /// The `SSHSIG` blob.
    pub fn blob(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(MAGIC);
        put_u32(&mut out, VERSION);
        put_string(&mut out, &self.public_key.blob());
        put_string(&mut out, self.namespace.as_bytes());
        put_string(&mut out, b"");
        put_string(&mut out, self.hash_algorithm.name().as_bytes());
        let mut inner = Vec::with_capacity(83);
        put_string(&mut inner, KEY_TYPE.as_bytes());
        put_string(&mut inner, &self.signature);
        put_string(&mut out, &inner);
        out
    }

    /// The armored form, lines of 70 characters as `ssh-keygen` writes them.
    pub fn to_armored(&self) -> String {
        let body = base64_encode(&self.blob());
        let mut out = String::with_capacity(body.len() + 80);
        out.push_str(BEGIN);
        out.push('\n');
        for chunk in body.as_bytes().chunks(70) {
            out.push_str(core::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str(END);
        out.push('\n');
        out
    }

    /// The bytes the Ed25519 signature must cover for `message` in this signature's namespace
    /// and hash (see [`signed_data`]).
    pub fn signed_data(&self, message: &[u8]) -> Vec<u8> {
        signed_data(&self.namespace, self.hash_algorithm, message)
    }
}

/// The bytes an SSH signature's Ed25519 signature covers: `"SSHSIG"`, then as SSH strings the
/// namespace, an empty reserved field, the hash algorithm's name and the message's digest.
pub fn signed_data(namespace: &str, hash_algorithm: HashAlgorithm, message: &[u8]) -> Vec<u8> {
    let digest = hash_algorithm.digest(message);
    let mut out = Vec::with_capacity(32 + namespace.len() + digest.len());
    out.extend_from_slice(MAGIC);
    put_string(&mut out, namespace.as_bytes());
    put_string(&mut out, b"");
    put_string(&mut out, hash_algorithm.name().as_bytes());
    put_string(&mut out, &digest);
    out
}

fn invalid(reason: &str) -> Error {
    Error::Signature {
        reason: String::from(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SshSignature {
        SshSignature {
            public_key: PublicKey([7; 32]),
            namespace: String::from(NAMESPACE),
            hash_algorithm: HashAlgorithm::Sha512,
            signature: [9; 64],
        }
    }

    #[test]
    fn armor_round_trips() {
        let armored = sample().to_armored();
        assert!(armored.starts_with("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH"));
        assert!(armored.lines().all(|line| line.len() <= 70));
        assert_eq!(SshSignature::parse_armored(&armored).unwrap(), sample());
    }

    #[test]
    fn every_truncation_of_a_blob_is_an_error_not_a_panic() {
        let blob = sample().blob();
        for length in 0..blob.len() {
            assert!(
                SshSignature::from_blob(&blob[..length]).is_err(),
                "{length}"
            );
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(SshSignature::from_blob(&longer).is_err());
    }

    #[test]
    fn signed_data_has_the_protocol_layout() {
        let data = signed_data("promptflag", HashAlgorithm::Sha512, b"hello");
        assert_eq!(&data[..6], b"SSHSIG");
        assert_eq!(&data[6..10], &[0, 0, 0, 10]);
        assert_eq!(&data[10..20], b"promptflag");
        assert_eq!(data.len(), 6 + 14 + 4 + 10 + 4 + 64);
    }

    #[test]
    fn armor_without_markers_is_refused() {
        assert!(SshSignature::parse_armored("U1NIU0lH").is_err());
        let big = "A".repeat(MAX_ARMOR_BYTES + 1);
        assert_eq!(
            SshSignature::parse_armored(&big).unwrap_err().code(),
            "too_large"
        );
    }
}
