//! Ed25519 for native callers (the `ed25519` feature): reading and writing OpenSSH private
//! keys (the `-----BEGIN OPENSSH PRIVATE KEY-----` files `ssh-keygen -t ed25519` writes and
//! reviewers already sign git commits with), signing in the SSH signature format, and making
//! the gate's checks. Only unencrypted keys are read: a passphrase-protected key is refused with
//! [`Error::EncryptedPrivateKey`], whose message says how to sign with `ssh-keygen` instead.

use alloc::string::String;
use alloc::vec::Vec;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::encoding::{WireReader, base64_decode, base64_encode, put_string, put_u32};
use crate::error::{Error, Result};
use crate::gate::Check;
use crate::keys::{KEY_TYPE, PublicKey};
use crate::sshsig::{HashAlgorithm, NAMESPACE, SshSignature};

const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";
const MAGIC: &[u8] = b"openssh-key-v1\0";

/// The largest private key file read.
pub const MAX_PRIVATE_KEY_BYTES: usize = 16 * 1024;

/// An Ed25519 private key with its OpenSSH comment.
pub struct PrivateKey {
    signing: SigningKey,
    /// The comment stored with the key.
    pub comment: String,
}

fn invalid(reason: &str) -> Error {
    Error::PrivateKey {
        reason: String::from(reason),
    }
}

impl PrivateKey {
    /// The key made from a 32-byte seed (the caller draws it from the system's random source).
    pub fn from_seed(seed: [u8; 32], comment: &str) -> PrivateKey {
        PrivateKey {
            signing: SigningKey::from_bytes(&seed),
            comment: String::from(comment),
        }
    }

    /// Reads an unencrypted OpenSSH ed25519 private key file.
    pub fn from_openssh(text: &str) -> Result<PrivateKey> {
        if text.len() > MAX_PRIVATE_KEY_BYTES {
            return Err(Error::TooLarge {
                what: "a private key file",
                limit: MAX_PRIVATE_KEY_BYTES,
            });
        }
        let inner = text
            .trim()
            .strip_prefix(BEGIN)
            .and_then(|rest| rest.strip_suffix(END))
            .ok_or_else(|| {
                invalid("the file is not an OpenSSH private key (BEGIN OPENSSH PRIVATE KEY)")
            })?;
        let bytes = base64_decode(inner, "the private key")?;
        let mut reader = WireReader::new(&bytes, "the private key");
        if reader.take(MAGIC.len())? != MAGIC {
            return Err(invalid("the key does not start with openssh-key-v1"));
        }
        let cipher = reader.string()?;
        let kdf = reader.string()?;
        let _kdf_options = reader.string()?;
        if cipher != b"none" || kdf != b"none" {
            return Err(Error::EncryptedPrivateKey);
        }
        if reader.u32()? != 1 {
            return Err(invalid("the file holds more than one key"));
        }
        let public = PublicKey::from_blob(reader.string()?)?;
        let mut private = WireReader::new(reader.string()?, "the private key section");
        if private.u32()? != private.u32()? {
            return Err(invalid("the check integers differ"));
        }
        if private.string()? != KEY_TYPE.as_bytes() {
            return Err(invalid("the key is not ssh-ed25519"));
        }
        let public_again = private.string()?;
        let secret = private.string()?;
        let comment = core::str::from_utf8(private.string()?)
            .map_err(|_| invalid("the comment is not UTF-8"))?;
        let seed: [u8; 32] = secret
            .get(..32)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| invalid("the ed25519 secret is not 64 bytes"))?;
        if secret.len() != 64 || public_again != public.0 || secret[32..] != public.0 {
            return Err(invalid("the secret and public halves disagree"));
        }
        let key = PrivateKey::from_seed(seed, comment);
        if key.public_key() != public {
            return Err(invalid("the public key is not the secret's"));
        }
        Ok(key)
    }

    /// The OpenSSH private key file (unencrypted), as `ssh-keygen -N ''` writes it. `check` is
    /// the file's check integer (any value; `ssh-keygen` draws it at random).
    pub fn to_openssh(&self, check: u32) -> String {
        let public = self.public_key();
        let mut private = Vec::with_capacity(160);
        put_u32(&mut private, check);
        put_u32(&mut private, check);
        put_string(&mut private, KEY_TYPE.as_bytes());
        put_string(&mut private, &public.0);
        let mut secret = Vec::with_capacity(64);
        secret.extend_from_slice(self.signing.as_bytes());
        secret.extend_from_slice(&public.0);
        put_string(&mut private, &secret);
        put_string(&mut private, self.comment.as_bytes());
        let mut pad = 1u8;
        while private.len() % 8 != 0 {
            private.push(pad);
            pad += 1;
        }
        let mut bytes = Vec::with_capacity(256);
        bytes.extend_from_slice(MAGIC);
        put_string(&mut bytes, b"none");
        put_string(&mut bytes, b"none");
        put_string(&mut bytes, b"");
        put_u32(&mut bytes, 1);
        put_string(&mut bytes, &public.blob());
        put_string(&mut bytes, &private);
        let body = base64_encode(&bytes);
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

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// The `.pub` line: `ssh-ed25519 <base64> <comment>`.
    pub fn public_line(&self) -> String {
        let mut line = self.public_key().to_openssh();
        if !self.comment.is_empty() {
            line.push(' ');
            line.push_str(&self.comment);
        }
        line
    }

    /// Signs `message` in the promptflag namespace with SHA-512, as
    /// `ssh-keygen -Y sign -n promptflag` does.
    pub fn sign(&self, message: &[u8]) -> SshSignature {
        let mut signature = SshSignature {
            public_key: self.public_key(),
            namespace: String::from(NAMESPACE),
            hash_algorithm: HashAlgorithm::Sha512,
            signature: [0; 64],
        };
        signature.signature = self
            .signing
            .sign(&signature.signed_data(message))
            .to_bytes();
        signature
    }
}

/// Makes one check: whether `signature` is `public_key`'s over `signed_data` (strict RFC 8032
/// verification, as WebCrypto's).
pub fn verify(check: &Check) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(&check.public_key.0) else {
        return false;
    };
    key.verify_strict(&check.signed_data, &Signature::from_bytes(&check.signature))
        .is_ok()
}

/// Makes every check of a plan, in order.
pub fn verify_all(checks: &[Check]) -> Vec<bool> {
    checks.iter().map(verify).collect()
}
