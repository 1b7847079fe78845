//! promptflag-core: the evaluation engine every promptflag runtime shares.
//!
//! A [`Ruleset`] is parsed and validated once ([`Ruleset::from_json`], which reports every problem
//! with its path), then evaluated per request ([`Ruleset::evaluate`], [`Ruleset::evaluate_all`],
//! [`Ruleset::resolve_prompt`]) against a [`Context`]. Evaluation never panics and never returns
//! `Err`: on any error it serves the flag's baseline with reason `ERROR` and an OpenFeature error
//! code.
//!
//! The crate is `#![no_std]` + `alloc` and does no I/O: no clock (date operators read the `now`
//! the caller puts in the context), no randomness (bucketing is `xxh3_64`), no network.
//!
//! ```
//! use promptflag_core::{Context, Reason, Ruleset};
//! let ruleset = Ruleset::from_json_str(r#"{
//!   "schema": 1, "environment": "dev", "revision": 1,
//!   "flags": { "greeting": {
//!     "kind": "string", "baseline": "plain",
//!     "variants": { "plain": {"value": "Hello"}, "warm": {"value": "Hi there"} },
//!     "rules": [ { "when": [ {"attribute": "country", "op": "in", "values": ["IE", "GB"]} ],
//!                  "serve": {"variant": "warm"} } ] } }
//! }"#).unwrap();
//! let context = Context::new().with_targeting_key("user-1").with("country", "IE");
//! let evaluation = ruleset.evaluate("greeting", &context);
//! assert_eq!(evaluation.variant, Some("warm"));
//! assert_eq!(evaluation.reason, Reason::TargetingMatch);
//! ```

#![no_std]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod bucket;
mod case;
mod case_tables;
pub mod compile;
pub mod context;
mod decimal;
pub mod eval;
pub mod literal;
pub mod model;
pub mod ruleset;

pub use compile::{Problem, RulesetError, compile, validate};
pub use context::{AttributeValue, Context, ContextError};
pub use eval::{Bucket, ErrorCode, Evaluation, ExpectedType, Reason, context_error};
pub use model::{FlagKind, RawRuleset, SCHEMA_VERSION};
pub use ruleset::{PromptMeta, Ruleset};
