//! Signed rulesets: what a ruleset revision's signature covers, how it travels, and which
//! signed revision a reader may accept after another.
//!
//! A signature is Ed25519 over [`signed_message`]: a fixed domain line, the environment, the
//! revision, the epoch and the SHA-256 of the ruleset's bytes exactly as stored and served. So
//! a signature for one environment does not verify for another, and a changed byte of the
//! ruleset fails it. It travels as the text [`format_signature`] writes (the header
//! [`SIGNATURE_HEADER`] of `GET /v1/ruleset`, and the KV value of `signature:<env>:<revision>`,
//! `crate::keys::signature_key`), which names the epoch it was made for.
//!
//! The epoch is what tells a deliberate rollback from a replay. Publishing a new revision keeps
//! the epoch; only a rollback advances it, signing the older revision again with the higher
//! epoch. A reader that has accepted (revision, epoch) accepts a next one only when
//! [`accept`] says so: a lower epoch never, the same epoch only for the same or a higher
//! revision. A replayed old signed revision therefore fails, and a rollback does not.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::digest::sha256_hex;

/// The first line of every signed message: names the format, so a signature made for anything
/// else never verifies as a ruleset's.
pub const MESSAGE_DOMAIN: &str = "promptflag-ruleset-signature-v1";

/// The response header of `GET /v1/ruleset` that carries the signature text.
pub const SIGNATURE_HEADER: &str = "X-Promptflag-Signature";

/// An Ed25519 signature's length in bytes.
pub const SIGNATURE_BYTES: usize = 64;

/// The bytes an Ed25519 signature of a ruleset revision covers:
/// `MESSAGE_DOMAIN \n environment \n revision \n epoch \n sha256-hex(ruleset)`, decimal numbers,
/// no trailing newline.
pub fn signed_message(environment: &str, revision: u64, epoch: u64, ruleset: &[u8]) -> Vec<u8> {
    signed_message_of_digest(environment, revision, epoch, &sha256_hex(ruleset))
}

/// [`signed_message`] from the ruleset's SHA-256 (64 lowercase hex digits) computed elsewhere:
/// the Worker hashes with the runtime's Web Crypto, so its Wasm carries no SHA-256 code.
pub fn signed_message_of_digest(
    environment: &str,
    revision: u64,
    epoch: u64,
    sha256_hex: &str,
) -> Vec<u8> {
    format!("{MESSAGE_DOMAIN}\n{environment}\n{revision}\n{epoch}\n{sha256_hex}").into_bytes()
}

/// A signature and the epoch it was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The epoch: advanced only by a rollback.
    pub epoch: u64,
    /// The Ed25519 signature over [`signed_message`].
    pub bytes: [u8; SIGNATURE_BYTES],
}

/// The text of a signature: `v1 epoch=<decimal> ed25519=<128 lowercase hex digits>`.
pub fn format_signature(signature: &Signature) -> String {
    let mut hex = String::with_capacity(2 * SIGNATURE_BYTES);
    for byte in signature.bytes {
        hex.push_str(&format!("{byte:02x}"));
    }
    format!("v1 epoch={} ed25519={hex}", signature.epoch)
}

/// Reads [`format_signature`]'s text; `None` when it is not of that form.
pub fn parse_signature(text: &str) -> Option<Signature> {
    let mut parts = text.trim().split(' ');
    if parts.next()? != "v1" {
        return None;
    }
    let epoch = parts.next()?.strip_prefix("epoch=")?;
    if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let epoch: u64 = epoch.parse().ok()?;
    let hex = parts.next()?.strip_prefix("ed25519=")?;
    if parts.next().is_some() || hex.len() != 2 * SIGNATURE_BYTES {
        return None;
    }
    let mut bytes = [0u8; SIGNATURE_BYTES];
    for (index, pair) in hex.as_bytes().chunks(2).enumerate() {
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        bytes[index] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(Signature { epoch, bytes })
}

/// A signed revision a reader serves (or is offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed {
    /// The ruleset's revision.
    pub revision: u64,
    /// The epoch its signature was made for.
    pub epoch: u64,
}

/// Why a signed revision was refused after another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its epoch is below the accepted one: an old signature, replayed.
    EpochWentBack {
        /// The accepted revision and epoch.
        accepted: Signed,
        /// The one offered.
        offered: Signed,
    },
    /// Its revision is below the accepted one in the same epoch: a replay, not a rollback
    /// (a rollback advances the epoch).
    RevisionWentBack {
        /// The accepted revision and epoch.
        accepted: Signed,
        /// The one offered.
        offered: Signed,
    },
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Refusal::EpochWentBack { accepted, offered } => write!(
                f,
                "revision {} is signed for epoch {}, below the accepted epoch {} (revision {}): a replayed signature",
                offered.revision, offered.epoch, accepted.epoch, accepted.revision
            ),
            Refusal::RevisionWentBack { accepted, offered } => write!(
                f,
                "revision {} goes back from revision {} without a higher epoch (both epoch {}): a replay, not a rollback",
                offered.revision, accepted.revision, offered.epoch
            ),
        }
    }
}

/// Whether a reader that has accepted `accepted` (none yet: `None`) may accept `offered`.
pub fn accept(accepted: Option<Signed>, offered: Signed) -> Result<(), Refusal> {
    let Some(accepted) = accepted else {
        return Ok(());
    };
    if offered.epoch < accepted.epoch {
        return Err(Refusal::EpochWentBack { accepted, offered });
    }
    if offered.epoch == accepted.epoch && offered.revision < accepted.revision {
        return Err(Refusal::RevisionWentBack { accepted, offered });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn signed(revision: u64, epoch: u64) -> Signed {
        Signed { revision, epoch }
    }

    #[test]
    fn the_message_binds_environment_revision_epoch_and_bytes() {
        let message = signed_message("prod", 7, 2, b"{}");
        assert_eq!(
            String::from_utf8(message.clone()).unwrap(),
            format!(
                "promptflag-ruleset-signature-v1\nprod\n7\n2\n{}",
                sha256_hex(b"{}")
            )
        );
        assert_ne!(message, signed_message("dev", 7, 2, b"{}"));
        assert_ne!(message, signed_message("prod", 8, 2, b"{}"));
        assert_ne!(message, signed_message("prod", 7, 3, b"{}"));
        assert_ne!(message, signed_message("prod", 7, 2, b"{ }"));
    }

    #[test]
    fn signature_text_round_trips_and_refuses_other_forms() {
        let signature = Signature {
            epoch: 3,
            bytes: core::array::from_fn(|index| index as u8),
        };
        let text = format_signature(&signature);
        assert!(text.starts_with("v1 epoch=3 ed25519=000102"));
        assert_eq!(parse_signature(&text), Some(signature));
        for bad in [
            "",
            "v2 epoch=3 ed25519=00",
            "v1 epoch=-3 ed25519=00",
            "v1 epoch= ed25519=00",
            &text.replace("ed25519=00", "ed25519=0G"),
            &text.replace("ed25519=00", "ed25519=00ff"),
            &format!("{text} extra"),
        ] {
            assert_eq!(parse_signature(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn forward_and_rollbacks_with_a_higher_epoch_are_accepted_replays_are_not() {
        assert_eq!(accept(None, signed(1, 0)), Ok(()));
        assert_eq!(accept(Some(signed(4, 0)), signed(5, 0)), Ok(()));
        assert_eq!(accept(Some(signed(4, 0)), signed(4, 0)), Ok(()));
        // A rollback to revision 3 signed with the advanced epoch.
        assert_eq!(accept(Some(signed(4, 0)), signed(3, 1)), Ok(()));
        // The old revision 3 replayed with its old signature.
        assert!(matches!(
            accept(Some(signed(4, 0)), signed(3, 0)),
            Err(Refusal::RevisionWentBack { .. })
        ));
        // After the rollback, the pre-rollback revision 4 replayed.
        assert!(matches!(
            accept(Some(signed(3, 1)), signed(4, 0)),
            Err(Refusal::EpochWentBack { .. })
        ));
        // Publishing on after the rollback keeps the new epoch.
        assert_eq!(accept(Some(signed(3, 1)), signed(5, 1)), Ok(()));
    }
}
