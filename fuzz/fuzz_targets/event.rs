//! The collector's event decoding: `promptflag_contracts::events::decode`, the per-event decoder
//! the collector's body decoding (`promptflag_telemetry::collector::event::decode_body`) calls
//! for each NDJSON line and each element of a JSON array. The target does that splitting itself,
//! so the fuzz build does not compile the collector's server and SQLite. The input is decoded
//! whole, line by line, and element by element when it is an array. Property: nothing panics,
//! and an event that decodes passes its own check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use promptflag_contracts::events::{Event, decode};

fn decode_checked(json: &str) {
    match decode(json) {
        Ok(Event::Call(call)) => assert!(call.check().is_ok(), "{call:?}"),
        Ok(Event::Exposure(exposure)) => assert!(exposure.check().is_ok(), "{exposure:?}"),
        Err(error) => {
            let _ = error.code();
            let _ = error.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    decode_checked(text);
    for line in text.lines() {
        decode_checked(line);
    }
    if let Ok(items) = serde_json::from_str::<Vec<Box<serde_json::value::RawValue>>>(text) {
        for item in items {
            decode_checked(item.get());
        }
    }
});
