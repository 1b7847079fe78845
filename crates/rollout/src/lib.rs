//! promptflag-rollout: the decision, without I/O.
//!
//! [`metrics`] turns telemetry's per-variant aggregates into the metrics a rollout policy names
//! and the summaries the statistics need; [`decide`] is the pure check that advances, holds,
//! rolls back or promotes a rollout from those metrics and the policy; [`analyze`] answers
//! `promptflag analyze` from summaries given as JSON; [`attribution`] finds when a per-variant
//! metric degraded and the version, revision and publish that explain it.
//!
//! Nothing here reads a clock, a file, a database or the network: the caller passes the
//! aggregates, the time and a seeded random source, so every decision can be replayed.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod analyze;
pub mod attribution;
pub mod decide;
pub mod error;
pub mod metrics;

pub use error::{Error, Result};
