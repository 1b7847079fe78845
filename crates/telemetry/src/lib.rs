//! promptflag-telemetry: what happened after a prompt was served.
//!
//! The [`collector`] takes LLM-call events and exposures over HTTP, validates each one, and keeps
//! it durably in SQLite before acknowledging it; [`read`] is the one read API over what it kept
//! (per-variant aggregates over a window, units per variant), which the control loop and every
//! report use; [`forensics`] is its forensic half (who saw which variant and prompt version,
//! when each version first reached a variant, a metric's per-window time series).
//!
//! Only this crate knows the event tables: no other crate writes SQL against them.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod collector;
pub mod error;
pub mod forensics;
pub mod read;

pub use error::{Error, Result};
