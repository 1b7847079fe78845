//! promptflag-release: what goes live, and the record of it.
//!
//! A build from `promptflag-authoring` is published through a [`store::Store`] (the Worker's
//! admin API, the Cloudflare KV REST API, or [`memstore::MemoryStore`] in memory) after its
//! gates pass ([`publish`]); the kill switch and rollbacks move the live pointer ([`ops`]); and
//! every change is an entry in the hash-chained audit log ([`audit`]); [`drift`] compares what
//! git intends with what is live.
//!
//! Release is the only stage that writes to Workers KV: the control loop writes through it too.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod audit;
pub mod drift;
pub mod error;
pub mod memstore;
pub mod ops;
pub mod publish;
pub mod store;

pub use error::{Error, Result};
