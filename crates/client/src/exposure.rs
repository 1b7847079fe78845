//! Exposures: one per evaluation, handed to a hook the service supplies (to log, count, or
//! forward to the collector), in the exposure schema of `promptflag_contracts::events` — the one
//! the Worker sends and the collector decodes (`docs/interfaces.md`). An evaluation that served
//! no variant (an error) reaches the hook with `variant: None`; the collector takes only those
//! that served one ([`Exposure::check`] says whether it will).

use std::sync::Arc;

/// One evaluation, as an exposure event (serializes to the collector's JSON).
pub type Exposure<'a> = promptflag_contracts::events::Exposure<'a>;

/// A callback run on every evaluation. It runs on the caller's thread, so it should be cheap
/// (push to a queue, bump a counter).
pub type ExposureHook = Arc<dyn Fn(&Exposure<'_>) + Send + Sync>;
