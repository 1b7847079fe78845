//! Exposures: one event per evaluation served, in the exposure schema of
//! `promptflag_contracts::events` (`docs/interfaces.md`), collected
//! while a request is handled and handed to the JavaScript entry beside the response (`wire`),
//! which POSTs them as one JSON array to `EXPOSURE_SINK_URL` after the response has gone
//! (through `waitUntil`). A sink that fails or hangs never touches a response.

use std::borrow::Cow;

use promptflag_contracts::events::Exposure;
use promptflag_core::Evaluation;

/// The exposures of one request. When no sink is configured it records nothing, so the hot path
/// allocates nothing for it.
#[derive(Debug)]
pub struct ExposureLog {
    enabled: bool,
    environment: String,
    revision: u64,
    timestamp_millis: i64,
    unit: Option<String>,
    events: Vec<Exposure<'static>>,
}

impl ExposureLog {
    /// A log that records nothing.
    pub fn disabled() -> ExposureLog {
        ExposureLog {
            enabled: false,
            environment: String::new(),
            revision: 0,
            timestamp_millis: 0,
            unit: None,
            events: Vec::new(),
        }
    }

    /// A log for one request against one ruleset revision.
    pub fn new(environment: &str, revision: u64, now_millis: u64) -> ExposureLog {
        ExposureLog {
            enabled: true,
            environment: String::from(environment),
            revision,
            timestamp_millis: i64::try_from(now_millis).unwrap_or(i64::MAX),
            unit: None,
            events: Vec::new(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Sets the unit (the request's targeting key).
    pub fn set_unit(&mut self, unit: Option<String>) {
        self.unit = unit;
    }

    /// Records an evaluation that served a variant (errors serve the caller's default, not ours).
    pub fn record(&mut self, evaluation: &Evaluation<'_>) {
        if !self.enabled || evaluation.is_error() {
            return;
        }
        let Some(variant) = evaluation.variant else {
            return;
        };
        self.events.push(Exposure {
            id: None,
            timestamp_millis: self.timestamp_millis,
            environment: Some(Cow::Owned(self.environment.clone())),
            flag_key: Cow::Owned(evaluation.key.to_string()),
            variant: Some(Cow::Owned(String::from(variant))),
            prompt_id: evaluation
                .prompt
                .map(|prompt| Cow::Owned(prompt.id.clone())),
            prompt_version: evaluation
                .prompt
                .map(|prompt| Cow::Owned(prompt.version.clone())),
            prompt_hash: evaluation
                .prompt
                .map(|prompt| Cow::Owned(prompt.hash.clone())),
            revision: Some(self.revision),
            unit: self.unit.clone().map(Cow::Owned),
            reason: Some(Cow::Borrowed(evaluation.reason.as_str())),
        });
    }

    /// The batch as a JSON array, or `None` when there is nothing to send.
    pub fn into_batch(self) -> Option<Vec<u8>> {
        if self.events.is_empty() {
            return None;
        }
        serde_json::to_vec(&self.events).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptflag_core::{Context, Ruleset};

    fn ruleset() -> Ruleset {
        Ruleset::from_json_str(
            r#"{"schema": 1, "environment": "dev", "revision": 3, "flags": {"f": {
                "kind": "string", "baseline": "a",
                "variants": {"a": {"value": "A"}, "b": {"value": "B"}},
                "default": {"split": {"treatments": [{"variant": "b", "weight": 100000}]}}}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn records_served_evaluations_in_the_documented_format() {
        let ruleset = ruleset();
        let mut log = ExposureLog::new("dev", 3, 1_795_255_200_000);
        log.set_unit(Some("user-42".into()));
        log.record(&ruleset.evaluate("f", &Context::new().with_targeting_key("user-42")));
        let batch: serde_json::Value = serde_json::from_slice(&log.into_batch().unwrap()).unwrap();
        assert_eq!(
            batch,
            serde_json::json!([{"type": "exposure", "timestamp": "2026-11-21T10:00:00.000Z",
                "environment": "dev", "flag_key": "f", "variant": "b", "prompt_id": null, "prompt_version": null, "prompt_hash": null,
                "revision": 3, "unit": "user-42", "reason": "SPLIT"}])
        );
    }

    #[test]
    fn errors_and_disabled_logs_record_nothing() {
        let ruleset = ruleset();
        let mut log = ExposureLog::new("dev", 3, 0);
        // No targeting key: the split cannot bucket, so the evaluation is an error.
        log.record(&ruleset.evaluate("f", &Context::new()));
        log.record(&ruleset.evaluate("missing", &Context::new()));
        assert!(log.into_batch().is_none());

        let mut disabled = ExposureLog::disabled();
        disabled.record(&ruleset.evaluate("f", &Context::new().with_targeting_key("u")));
        assert!(!disabled.is_enabled());
        assert!(disabled.into_batch().is_none());
    }
}
