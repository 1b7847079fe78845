//! Why a governance input was refused: one error type for every parser and rule of the crate,
//! each with a machine-readable code ([`Error::code`]) and a message for people.

use alloc::string::String;
use core::fmt;

/// A governance input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An input is larger than its bound.
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its bound.
        limit: usize,
    },
    /// Base64 that does not decode.
    Base64 {
        /// What held it.
        what: &'static str,
    },
    /// A public key line that is not `ssh-ed25519 <base64> [comment]`.
    PublicKey {
        /// Why.
        reason: String,
    },
    /// An armored SSH signature or its blob does not parse.
    Signature {
        /// Why.
        reason: String,
    },
    /// An OpenSSH private key that cannot be read.
    PrivateKey {
        /// Why.
        reason: String,
    },
    /// A private key protected by a passphrase (not read: sign with `ssh-keygen -Y sign`).
    EncryptedPrivateKey,
    /// A key registry that does not parse or breaks a rule.
    Registry {
        /// Why.
        reason: String,
    },
    /// An approval subject that cannot make a message (a field with a line break, …).
    Approval {
        /// Why.
        reason: String,
    },
    /// A gate input that does not parse or does not match the check results given.
    GateInput {
        /// Why.
        reason: String,
    },
}

impl Error {
    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::TooLarge { .. } => "too_large",
            Error::Base64 { .. } => "invalid_base64",
            Error::PublicKey { .. } => "invalid_public_key",
            Error::Signature { .. } => "invalid_signature",
            Error::PrivateKey { .. } => "invalid_private_key",
            Error::EncryptedPrivateKey => "encrypted_private_key",
            Error::Registry { .. } => "invalid_registry",
            Error::Approval { .. } => "invalid_approval",
            Error::GateInput { .. } => "invalid_gate_input",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLarge { what, limit } => write!(f, "{what} is larger than {limit} bytes"),
            Error::Base64 { what } => write!(f, "{what} is not valid base64"),
            Error::PublicKey { reason } => write!(f, "not an ssh-ed25519 public key: {reason}"),
            Error::Signature { reason } => write!(f, "not an SSH signature: {reason}"),
            Error::PrivateKey { reason } => {
                write!(f, "not an unencrypted OpenSSH ed25519 private key: {reason}")
            }
            Error::EncryptedPrivateKey => f.write_str(
                "the private key is protected by a passphrase, which promptflag does not read; \
                 print the message with --message-only, sign it with `ssh-keygen -Y sign -n promptflag -f <key>` \
                 (ssh-agent works too) and pass the signature with --signature",
            ),
            Error::Registry { reason } => write!(f, "invalid key registry: {reason}"),
            Error::Approval { reason } => write!(f, "invalid approval subject: {reason}"),
            Error::GateInput { reason } => write!(f, "invalid gate input: {reason}"),
        }
    }
}

impl core::error::Error for Error {}

/// A result with this crate's error.
pub type Result<T> = core::result::Result<T, Error>;
