//! The per-isolate ruleset cache.
//!
//! The compiled ruleset is kept for `CACHE_TTL_MS`; after that the next request reads the pointer
//! `ruleset:<env>` (one small KV read) and fetches and compiles `ruleset:<env>:<rev>` only when
//! the revision changed. Whatever goes wrong on a refresh (KV throws, the pointer is missing or
//! garbled, the revision is missing, invalid, or not the one named), the last ruleset that loaded
//! from KV keeps serving (`last-known-good`); with none, the compiled-in fallback serves.
//!
//! With a public key configured (the var `RULESET_PUBLIC_KEY`), a revision is served only when
//! its signature (`signature:<env>:<rev>`, `promptflag_contracts::signing`) verifies, through
//! the runtime's `crypto.subtle.verify("Ed25519")`, over that environment, revision, epoch and
//! the ruleset's bytes, and when the contracts' epoch rule accepts it after the revision the
//! isolate accepted last: a replayed older revision is refused, a rollback signed with a higher
//! epoch is not. A refused revision is a failed refresh like any other: the last good ruleset
//! keeps serving, the reason is logged and `/healthz` shows it ([`last_failure`]). Without a
//! key, a revision's signature is still read and served (`X-Promptflag-Signature`), unchecked,
//! for clients that verify it themselves. While a signed revision stays live its signature is
//! read again at each check, so a rollback that returns to the revision an isolate holds (signed
//! again with the next epoch) serves with its new signature.
//!
//! The isolate is single-threaded, but requests interleave at `await`s, so no `RefCell` borrow is
//! held across one, and a refresh that finishes after a newer one is discarded.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::js::Kv;
use promptflag_contracts::keys::{self, pointer_key, revision_key, signature_key};
use promptflag_contracts::signing::{self, Signed};
use promptflag_core::Ruleset;

use crate::fallback;
use crate::http::etag_of;

/// Where the serving ruleset came from (the `X-Promptflag-Ruleset-Source` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Loaded from KV on the latest check.
    Kv,
    /// The latest check failed; an earlier ruleset from KV serves.
    LastKnownGood,
    /// Nothing valid ever came from KV; the compiled-in ruleset serves.
    Fallback,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Kv => "kv",
            Source::LastKnownGood => "last-known-good",
            Source::Fallback => "fallback",
        }
    }
}

/// A compiled ruleset with the JSON it came from.
#[derive(Debug)]
pub struct Loaded {
    pub ruleset: Ruleset,
    /// The JSON exactly as stored (served by `GET /v1/ruleset`).
    pub raw: String,
    /// The entity tag of `raw`.
    pub etag: String,
    /// Its signature text (`X-Promptflag-Signature`): verified when the Worker has the public
    /// key, passed on as stored otherwise.
    pub signature: Option<String>,
    /// JSON already written for this ruleset (see [`Loaded::written`]).
    written: RefCell<Written>,
}

/// JSON by what decides it. A key maps to a position in `texts` (as the prompt body cache
/// does: core links `BTreeMap<String, usize>` already).
#[derive(Debug, Default)]
struct Written {
    by_key: BTreeMap<String, usize>,
    texts: Vec<Rc<[u8]>>,
}

/// Texts kept per ruleset. A ruleset has few flags, variants, reasons and rules, so this bounds
/// only a pathological one (past it, the texts are written every time).
const WRITTEN_KEPT: usize = 4096;

impl Loaded {
    pub fn compile(raw: String) -> Result<Loaded, String> {
        let ruleset = Ruleset::from_json_str(&raw).map_err(|error| error.to_string())?;
        let etag = etag_of(&[raw.as_bytes()]);
        Ok(Loaded {
            ruleset,
            raw,
            etag,
            signature: None,
            written: RefCell::new(Written::default()),
        })
    }

    /// Sets the signature served with the ruleset. The entity tag then covers it too: a
    /// revision signed again (a rollback's next epoch, same bytes) is a new answer, so a client
    /// holding the old signature gets the new one rather than `304`.
    fn sign(&mut self, signature: Option<String>) {
        if let Some(text) = &signature {
            self.etag = etag_of(&[self.raw.as_bytes(), text.as_bytes()]);
        }
        self.signature = signature;
    }

    /// The JSON that `key` names for this ruleset (a key says everything the text depends on
    /// besides the ruleset: a `/v1/resolve` body's flag, variant and reason, say), written by
    /// `write` the first time and kept.
    pub fn written<E>(
        &self,
        key: &str,
        write: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Rc<[u8]>, E> {
        if let Some(text) = self.written.borrow().find(key) {
            return Ok(text);
        }
        let text: Rc<[u8]> = Rc::from(write()?);
        let mut written = self.written.borrow_mut();
        if written.texts.len() < WRITTEN_KEPT && written.find(key).is_none() {
            let index = written.texts.len();
            written.by_key.insert(String::from(key), index);
            written.texts.push(Rc::clone(&text));
        }
        Ok(text)
    }
}

impl Written {
    fn find(&self, key: &str) -> Option<Rc<[u8]>> {
        self.texts.get(*self.by_key.get(key)?).cloned()
    }
}

/// The ruleset a request is served with.
#[derive(Debug, Clone)]
pub struct Served {
    /// `None` only if even the fallback failed to compile (the tests rule that out).
    pub loaded: Option<Rc<Loaded>>,
    pub source: Source,
}

impl Served {
    /// The `X-Promptflag-Revision` header value.
    pub fn revision_header(&self) -> String {
        match &self.loaded {
            Some(loaded) => loaded.ruleset.revision().to_string(),
            None => String::from("none"),
        }
    }
}

struct State {
    /// The last ruleset that loaded from KV.
    from_kv: Option<Rc<Loaded>>,
    /// The outcome of the latest check.
    kv_ok: bool,
    /// When the next check is due (ms since the epoch); 0 before the first.
    next_check: u64,
    /// Bumped on every update, so a refresh that started before another finished is dropped.
    generation: u64,
    /// The signed revision accepted last, for the epoch rule.
    accepted: Option<Signed>,
    /// Why the latest check failed, if it did.
    failure: Option<String>,
}

thread_local! {
    static STATE: RefCell<State> = const {
        RefCell::new(State {
            from_kv: None,
            kv_ok: false,
            next_check: 0,
            generation: 0,
            accepted: None,
            failure: None,
        })
    };
    static FALLBACK: Option<Rc<Loaded>> = Loaded::compile(fallback::ruleset_json())
        .ok()
        .map(Rc::new);
}

fn served_from(state: &State) -> Served {
    match &state.from_kv {
        Some(loaded) => Served {
            loaded: Some(Rc::clone(loaded)),
            source: if state.kv_ok {
                Source::Kv
            } else {
                Source::LastKnownGood
            },
        },
        None => Served {
            loaded: FALLBACK.with(Clone::clone),
            source: Source::Fallback,
        },
    }
}

/// The ruleset to serve now if it needs no KV read: a check has been made and its TTL has not
/// passed. The synchronous path serves with this; `None` sends the request to [`current`].
pub fn fresh(now: u64) -> Option<Served> {
    STATE.with(|state| {
        let state = state.borrow();
        (now < state.next_check).then(|| served_from(&state))
    })
}

/// Why the latest ruleset check failed (`None` after a success): `/healthz` reports it.
pub fn last_failure() -> Option<String> {
    STATE.with(|state| state.borrow().failure.clone())
}

/// The ruleset to serve now, refreshing from KV when the TTL has passed. `public_key` is the
/// parsed `RULESET_PUBLIC_KEY`, when set: revisions must then be signed.
pub async fn current(
    kv: Option<&Kv>,
    environment: &str,
    ttl_millis: u64,
    now: u64,
    public_key: Option<&Result<[u8; 32], String>>,
) -> Served {
    let (due, generation, known, accepted) = STATE.with(|state| {
        let state = state.borrow();
        (
            now >= state.next_check,
            state.generation,
            state.from_kv.as_ref().map(|l| Known {
                revision: l.ruleset.revision(),
                signature: l.signature.clone(),
            }),
            state.accepted,
        )
    });
    if !due {
        return STATE.with(|state| served_from(&state.borrow()));
    }
    let outcome = refresh(kv, environment, known.as_ref(), public_key, accepted).await;
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        if state.generation != generation {
            // Another request refreshed while this one awaited KV; its answer is at least as new.
            return served_from(&state);
        }
        state.generation = state.generation.wrapping_add(1);
        state.next_check = now.saturating_add(ttl_millis);
        match outcome {
            Refresh::Unchanged => {
                state.kv_ok = true;
                state.failure = None;
            }
            Refresh::Fresh(loaded, signed) => {
                state.from_kv = Some(loaded);
                state.kv_ok = true;
                state.failure = None;
                if signed.is_some() {
                    state.accepted = signed;
                }
            }
            Refresh::Failed(reason) => {
                state.kv_ok = false;
                state.failure = Some(reason.clone());
                crate::js::warn(&format!(
                    "promptflag: ruleset refresh failed ({reason}); serving {}",
                    if state.from_kv.is_some() {
                        "the last known good ruleset"
                    } else {
                        "the fallback ruleset"
                    }
                ));
            }
        }
        served_from(&state)
    })
}

/// The revision the isolate serves from KV and the signature text it came with.
struct Known {
    revision: u64,
    signature: Option<String>,
}

enum Refresh {
    Unchanged,
    /// A new ruleset, with its signed revision and epoch when it was verified.
    Fresh(Rc<Loaded>, Option<Signed>),
    Failed(String),
}

async fn refresh(
    kv: Option<&Kv>,
    environment: &str,
    known: Option<&Known>,
    public_key: Option<&Result<[u8; 32], String>>,
    accepted: Option<Signed>,
) -> Refresh {
    let Some(kv) = kv else {
        return Refresh::Failed(String::from("the KV binding is missing"));
    };
    let pointer = match kv.text(&pointer_key(environment)).await {
        Ok(Some(text)) => text,
        Ok(None) => return Refresh::Failed(format!("{} is not set", pointer_key(environment))),
        Err(error) => return Refresh::Failed(format!("reading the pointer: {error}")),
    };
    let Ok(revision) = keys::parse_pointer(&pointer) else {
        return Refresh::Failed(format!("the pointer holds {pointer:?}, not a revision"));
    };
    if let Some(known) = known.filter(|known| known.revision == revision) {
        // A signed revision is signed again when a rollback returns to it with the next epoch:
        // its signature is read again (one small read, only where revisions are signed) and a
        // changed one loads the revision afresh, so the new epoch is what serves and counts.
        let Some(served) = &known.signature else {
            return Refresh::Unchanged;
        };
        match kv.text(&signature_key(environment, revision)).await {
            Ok(Some(text)) if text != *served => {}
            _ => return Refresh::Unchanged,
        }
    }
    let key = revision_key(environment, revision);
    let raw = match kv.text(&key).await {
        Ok(Some(raw)) => raw,
        Ok(None) => return Refresh::Failed(format!("{key} is missing")),
        Err(error) => return Refresh::Failed(format!("reading {key}: {error}")),
    };
    match Loaded::compile(raw) {
        Ok(loaded) if loaded.ruleset.revision() != revision => Refresh::Failed(format!(
            "{key} holds revision {}",
            loaded.ruleset.revision()
        )),
        Ok(loaded) if loaded.ruleset.environment() != environment => Refresh::Failed(format!(
            "{key} is for environment {:?}",
            loaded.ruleset.environment()
        )),
        Ok(mut loaded) => match public_key {
            None => {
                // Not verified here, but passed on: a client with the public key checks it.
                let signature = kv
                    .text(&signature_key(environment, revision))
                    .await
                    .ok()
                    .flatten();
                loaded.sign(signature);
                Refresh::Fresh(Rc::new(loaded), None)
            }
            Some(Err(problem)) => Refresh::Failed(problem.clone()),
            Some(Ok(public_key)) => {
                match verify(kv, environment, revision, &loaded.raw, public_key, accepted).await {
                    Ok((text, signed)) => {
                        loaded.sign(Some(text));
                        Refresh::Fresh(Rc::new(loaded), Some(signed))
                    }
                    Err(reason) => Refresh::Failed(reason),
                }
            }
        },
        Err(error) => Refresh::Failed(format!("{key} is invalid: {error}")),
    }
}

/// Reads and checks revision `revision`'s signature: present, well-formed, made by the key for
/// this environment, revision and bytes, and accepted after `accepted` by the epoch rule.
/// Returns its text and the signed revision, or why it is refused.
async fn verify(
    kv: &Kv,
    environment: &str,
    revision: u64,
    raw: &str,
    public_key: &[u8; 32],
    accepted: Option<Signed>,
) -> Result<(String, Signed), String> {
    let key = signature_key(environment, revision);
    let text = match kv.text(&key).await {
        Ok(Some(text)) => text,
        Ok(None) => {
            return Err(format!(
                "revision {revision} is not signed ({key} is missing)"
            ));
        }
        Err(error) => return Err(format!("reading {key}: {error}")),
    };
    let Some(signature) = signing::parse_signature(&text) else {
        return Err(format!("{key} is not a signature (v1 epoch=N ed25519=HEX)"));
    };
    let digest = crate::js::sha256_hex(raw.as_bytes()).await?;
    let message =
        signing::signed_message_of_digest(environment, revision, signature.epoch, &digest);
    if !crate::js::ed25519_verify(public_key, &signature.bytes, &message).await? {
        return Err(format!(
            "the signature of revision {revision} does not verify (a changed ruleset, or one signed for another environment, revision or key)"
        ));
    }
    let signed = Signed {
        revision,
        epoch: signature.epoch,
    };
    signing::accept(accepted, signed).map_err(|refusal| format!("refused: {refusal}"))?;
    Ok((text, signed))
}

/// The var `RULESET_PUBLIC_KEY`: an Ed25519 public key as 64 hex digits.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    let mut key = [0u8; 32];
    let digits: Option<Vec<u8>> = text
        .bytes()
        .map(|b| {
            char::from(b)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
        })
        .collect();
    match digits {
        Some(digits) if digits.len() == 64 => {
            for (index, pair) in digits.chunks(2).enumerate() {
                key[index] = (pair[0] << 4) | pair[1];
            }
            Ok(key)
        }
        _ => Err(String::from(
            "RULESET_PUBLIC_KEY is not an Ed25519 public key (64 hex digits); no revision is served from KV",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_public_key;

    #[test]
    fn public_keys_are_64_hex_digits() {
        let key = parse_public_key(&format!(" {}{} ", "0f".repeat(31), "A0")).unwrap();
        assert_eq!((key[0], key[31]), (0x0f, 0xa0));
        for bad in ["", "0f", &"0g".repeat(32), &"0f".repeat(33)] {
            assert!(
                parse_public_key(bad)
                    .unwrap_err()
                    .contains("RULESET_PUBLIC_KEY")
            );
        }
    }
}
