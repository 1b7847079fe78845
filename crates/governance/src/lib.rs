//! promptflag-governance: identities that cannot be typed. People and CI hold ssh-ed25519 keys
//! (the ones they sign git commits with); a signed key registry gives them roles; reviewers
//! approve a prompt version for an environment by signing its exact content; and the publish
//! gate decides from signatures, never from names written in the repository.
//!
//! - [`sshsig`]: the SSH signature format (`ssh-keygen -Y sign`), armor and blob, and the exact
//!   bytes an Ed25519 signature covers.
//! - [`keys`]: `ssh-ed25519 AAAA… comment` public keys.
//! - [`approval`]: the canonical approval message.
//! - [`registry`]: the key registry and the rule for accepting a change to it.
//! - [`gate`]: the gate's decision, in two pure steps around the signature checks.
//! - `native` (feature `ed25519`): OpenSSH private keys, signing, verification.
//! - [`encoding`], [`json`], [`error`]: base64, the SSH wire format, JSON read field by field,
//!   and why an input was refused.
//!
//! The crate is `no_std` + `alloc` and does no I/O. Without the `ed25519` feature it links no
//! signature library, so the Worker's Wasm verifies through workerd's WebCrypto and stays within
//! its upload budget; native callers verify the same checks with the feature on.

#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

extern crate alloc;

pub mod approval;
pub mod encoding;
pub mod error;
pub mod gate;
pub mod json;
pub mod keys;
#[cfg(feature = "ed25519")]
pub mod native;
pub mod registry;
pub mod sshsig;

pub use approval::ApprovalSubject;
pub use error::Error;
pub use gate::{Decision, GateInput, Reason};
pub use keys::PublicKey;
pub use registry::{Registry, Role};
pub use sshsig::SshSignature;
