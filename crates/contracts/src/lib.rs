//! The contracts between the parts of promptflag, in one place: what the Worker, the native and
//! npm clients, every companion store and every test fake must agree on.
//!
//! - [`keys`]: the Workers KV key layout and environment names.
//! - [`revision`]: the revision rules (bounds, the next revision, the stale check, rollback).
//! - [`meta`]: the publish metadata `meta:<env>` and how many revisions are kept.
//! - [`admin`]: the admin API's revision-carrying requests (`expected_live`, rollback bodies).
//! - [`authority`]: the admin credentials and roles, the environment policy and the audit
//!   chain's entry and hash rules.
//! - [`events`]: the exposure and LLM-call event schemas (encoding, decoding, field lists).
//! - [`digest`]: the content address (SHA-256 hex) and canonical JSON.
//! - [`bundle`]: the fallback bundle a build writes per environment, and its verification.
//! - [`prompt`]: a prompt version's content id (body hash + model configuration).
//! - [`runtime`]: decisions taken on a live environment, and how a publish from git keeps them.
//! - [`signing`]: what a ruleset revision's Ed25519 signature covers, its text, and which signed
//!   revision may follow another (the epoch rule).
//! - [`error`]: why a rule refused.
//!
//! `docs/interfaces.md` is the human contract; this crate is its executable form. The crate is
//! `no_std` + `alloc` so the Worker's Wasm links only the rules it uses.

#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

extern crate alloc;

pub mod admin;
pub mod authority;
pub mod bundle;
pub mod digest;
pub mod error;
pub mod events;
pub mod keys;
pub mod meta;
pub mod prompt;
pub mod revision;
pub mod runtime;
pub mod signing;

pub use error::Error;
pub use meta::Meta;
