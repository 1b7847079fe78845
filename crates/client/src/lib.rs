//! promptflag-client: evaluate prompt flags inside a native service, locally, with the same
//! engine the edge runs.
//!
//! A [`Client`] keeps the current compiled ruleset, fetched from the Worker's `/v1/ruleset` with
//! ETags on an interval and on demand, behind an atomic pointer: evaluation is a synchronous read
//! that never blocks on a refresh (a refresh builds the new ruleset aside, then swaps it in). It
//! keeps the last known good ruleset through network errors, timeouts and invalid payloads,
//! starts from a fallback ruleset when the edge is unreachable at start-up, and fetches prompt
//! bodies by hash, verifying each one's SHA-256, into a bounded cache.
//!
//! ```no_run
//! use promptflag_client::{Client, ClientConfig};
//! use promptflag_core::Context;
//!
//! let client = Client::start(ClientConfig::new("http://127.0.0.1:8787"));
//! let context = Context::new().with_targeting_key("user-42");
//! let resolution = client.resolve_prompt("support_prompt", &context);
//! if let Some(prompt) = &resolution.prompt {
//!     let body = client.prompt_body(&prompt.hash).unwrap();
//!     println!("{} {} -> {} bytes", prompt.id, prompt.version, body.len());
//! }
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![deny(missing_docs)]

mod bodies;
mod client;
mod error;
mod exposure;
mod http;
pub mod judge;
pub mod openfeature;
pub mod telemetry;

pub use client::{
    Client, ClientConfig, ClientStatus, RefreshOutcome, Resolution, RulesetSource, Snapshot,
};
pub use error::ClientError;
pub use exposure::{Exposure, ExposureHook};
