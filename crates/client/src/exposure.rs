//! Exposures: one per evaluation, handed to a hook the service supplies (to log, count, or
//! forward to the collector), in the shape the Worker's exposures have (docs/interfaces.md).

use std::sync::Arc;

use serde::Serialize;

/// One evaluation, as an exposure event.
#[derive(Debug, Clone, Serialize)]
pub struct Exposure<'a> {
    /// Always `"exposure"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Milliseconds since the Unix epoch.
    pub timestamp_millis: u64,
    /// The ruleset's environment.
    pub environment: &'a str,
    /// The flag evaluated.
    pub flag_key: &'a str,
    /// The variant served (absent when the flag does not exist).
    pub variant: Option<&'a str>,
    /// The prompt body's hash, for prompt flags.
    pub prompt_hash: Option<&'a str>,
    /// The ruleset revision that answered.
    pub revision: Option<u64>,
    /// The targeting key, when the context has one.
    pub unit: Option<&'a str>,
    /// The reason (`SPLIT`, `TARGETING_MATCH`, …).
    pub reason: &'static str,
}

/// A callback run on every evaluation. It runs on the caller's thread, so it should be cheap
/// (push to a queue, bump a counter).
pub type ExposureHook = Arc<dyn Fn(&Exposure<'_>) + Send + Sync>;
