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

/// Finishes what a command that died mid-write left behind (`AuditLog::record_intent`): when
/// the store shows the environment at the intended revision, the write landed and its audit
/// entries are appended now (their summary says so); otherwise it never landed. Either way the
/// intent is cleared. Returns how many entries were appended.
pub fn reconcile(store: &dyn store::Store, audit: &mut audit::AuditLog) -> Result<usize> {
    let Some((environment, revision, entries)) = audit.pending_intent()? else {
        return Ok(0);
    };
    let landed = store.state(&environment)?.live == Some(revision);
    let mut appended = 0;
    if landed {
        for mut entry in entries {
            if let serde_json::Value::Object(summary) = &mut entry.summary {
                summary.insert(String::from("reconciled"), serde_json::Value::Bool(true));
            }
            audit.append(entry)?;
            appended += 1;
        }
    }
    audit.clear_intent()?;
    Ok(appended)
}
