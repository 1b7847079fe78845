//! promptflag-control: the native companion of promptflag.
//!
//! It turns a prompt repository (SPEC §2) into content-addressed prompt bodies and one ruleset per
//! environment, checks it ([`lint`]), compares builds ([`diff`]), publishes to Workers KV through
//! the Worker's admin API or the Cloudflare KV REST API ([`store`], [`publish`]), flips the kill
//! switch and rolls back ([`ops`]), and records every change in a hash-chained audit log
//! ([`audit`]). Evaluation itself is always `promptflag-core`'s ([`explain`]).
//!
//! Only this crate does file, network or database I/O; the engine stays pure. The `promptflag`
//! binary is a thin clap front end over these modules.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod analyze;
pub mod audit;
pub mod build;
pub mod collector;
pub mod controller;
pub mod diagnostic;
pub mod diff;
pub mod digest;
pub mod error;
pub mod explain;
pub mod git;
pub mod lint;
pub mod memstore;
pub mod metrics;
pub mod ops;
pub mod publish;
pub mod repo;
pub mod rollout;
pub mod simulate;
pub mod store;
pub mod tokens;
pub mod yaml;

pub use diagnostic::{Diagnostic, Severity};
pub use error::{Error, ExitCode};
