//! The collector's request-body decoding: `decode_body` of `promptflag_telemetry::collector::event`,
//! the function the collector runs on every `POST /v1/events` body (a JSON array, NDJSON or one
//! object; per-event errors; the batch bound). The module is compiled here from its source file,
//! so the fuzz build does not compile the collector's server and SQLite; it depends on the
//! contracts and serde_json only. The input's first byte picks the content type and a small
//! batch bound; the rest is the body. Property: nothing panics; every event is either a record
//! or an error at a position inside the batch, and the bound holds.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../crates/telemetry/src/collector/event.rs"]
mod event;

use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&str>; 4] = [
    None,
    Some("application/json"),
    Some("application/x-ndjson"),
    Some("application/jsonl; charset=utf-8"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector & 3)];
    // The collector's bound is 50 000 events; a small one here reaches the refusal too.
    let max_events = 1 + usize::from(selector >> 2);
    match event::decode_body(body, content_type, max_events) {
        Ok(decoded) => {
            let events = decoded.records.len() + decoded.errors.len();
            assert!(events <= max_events, "{events} events over the bound {max_events}");
            for (index, _) in &decoded.records {
                assert!(*index < max_events);
            }
            for error in &decoded.errors {
                assert!(error.index < max_events);
                assert!(!error.message.is_empty());
            }
        }
        Err(error) => assert!(!error.message.is_empty() && !error.code.is_empty()),
    }
});
