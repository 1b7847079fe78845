//! The vector files of `tests/vectors/`, embedded with `include_str!` so the runners work on
//! wasm32, where there is no filesystem. `vectors.rs` checks this list against `index.json`.

#![allow(dead_code)]

/// Every vector file, embedded. A file listed in `index.json` but missing here (or the reverse)
/// fails `the_embedded_files_are_exactly_the_index`.
macro_rules! vector_files {
    ($($name:literal),* $(,)?) => {
        pub const FILES: &[(&str, &str)] = &[$(($name, include_str!(concat!("../../../../tests/vectors/", $name)))),*];
    };
}

vector_files!(
    "01-static.json",
    "02-operators-in.json",
    "03-operators-strings.json",
    "04-operators-numbers.json",
    "05-operators-dates.json",
    "06-operators-semver.json",
    "07-segments.json",
    "08-rule-order.json",
    "09-splits.json",
    "10-layers.json",
    "11-kill-switch.json",
    "12-errors.json",
    "13-prompts.json",
    "14-bulk.json",
    "15-invalid.json",
    "16-prompt-identity.json",
);

pub const INDEX: &str = include_str!("../../../../tests/vectors/index.json");
pub const BUCKETS: &str = include_str!("../../../../tests/vectors/buckets.json");
