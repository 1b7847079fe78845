//! promptflag-authoring: the prompt repository, from files to artefacts.
//!
//! It loads a prompt repository ([`repo`]: `promptflag.yaml`, `prompts/`, `flags/`, `segments/`,
//! `rollouts/`), checks it ([`lint`]), builds it into content-addressed prompt bodies and one
//! ruleset per environment ([`build`]), compares builds ([`diff`]) and explains an evaluation
//! ([`explain`], always through `promptflag-core`), and writes decisions taken on a live
//! environment back into the files ([`sync`]). Rollout policies are parsed here ([`policy`])
//! because they live in the repository beside the flags they govern, and so are eval suites and
//! their recorded results ([`evals`], keyed by the content id of `promptflag-contracts`).
//! [`signatures`] checks the signed key registry and
//! approvals the repository holds, through `promptflag-governance`.
//!
//! Authoring reads local files and runs `git`; it does no network or database I/O.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod build;
pub mod diagnostic;
pub mod diff;
pub mod error;
pub mod evals;
pub mod explain;
pub mod git;
pub mod hygiene;
pub mod lint;
pub mod policy;
pub mod repo;
pub mod signatures;
pub mod sync;
pub mod tokens;
pub mod yaml;

pub use diagnostic::{Diagnostic, Severity};
pub use error::{Error, Result};
