//! Regression tests, each named after what broke. They run natively and on wasm32.

// Test code states its assumptions with unwrap and expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use promptflag_core::Ruleset;

/// A ruleset whose segments chain `count` deep: `s0` is in `s1`, which is in `s2`, and so on.
fn segment_chain(count: usize) -> String {
    let mut segments = Vec::with_capacity(count);
    for index in 0..count {
        if index + 1 < count {
            segments.push(format!(
                r#""s{index}": {{"conditions": [{{"op": "in_segment", "values": ["s{}"]}}]}}"#,
                index + 1
            ));
        } else {
            segments.push(format!(r#""s{index}": {{"included": ["unit"]}}"#));
        }
    }
    format!(
        r#"{{"schema": 1, "environment": "test", "revision": 1, "segments": {{{}}}, "flags": {{}}}}"#,
        segments.join(", ")
    )
}

fn assert_chain_rejected_as_too_deep(count: usize) {
    let error = Ruleset::from_json_str(&segment_chain(count))
        .expect_err("a chain past the depth limit is invalid");
    let problems = error.problems();
    assert!(
        problems.iter().all(|problem| problem.code == "too_deep"),
        "{problems:?}"
    );
    // Every segment that nests more than 8 deep is reported: s0 .. s{count - 9}.
    assert_eq!(problems.len(), count - 8);
    assert_eq!(
        problems
            .iter()
            .filter(|problem| problem.path == "segments.s0")
            .count(),
        1
    );
}

/// Validation walked segment references recursively, one call frame per link, so 5 000 chained
/// segments (well within the 10 000-segment limit) overflowed a 1 MiB stack, the size of a wasm
/// stack, and aborted the process instead of reporting `too_deep`.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn validating_thousands_of_chained_segments_does_not_overflow_the_stack() {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let worker = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(|| assert_chain_rejected_as_too_deep(10_000))
            .expect("a thread starts");
        worker.join().expect("validation finished on a 1 MiB stack");
    }
    #[cfg(target_arch = "wasm32")]
    assert_chain_rejected_as_too_deep(10_000);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_chain_exactly_at_the_depth_limit_is_valid() {
    let ruleset = Ruleset::from_json_str(&segment_chain(8)).expect("8 nested segments are allowed");
    assert_eq!(ruleset.flag_keys().count(), 0);
    assert_chain_rejected_as_too_deep(9);
}

/// Segments `s0` .. `s{depth - 1}`, each but the last naming the next `repeats` times, and a flag
/// whose one rule names `s0`: the shape that once took seconds to compile and would take
/// `repeats^depth` tests to evaluate.
fn repeated_segment_chain(depth: usize, repeats: usize) -> String {
    let mut segments = Vec::with_capacity(depth);
    for index in 0..depth {
        if index + 1 < depth {
            let reference = format!(r#"{{"op": "in_segment", "values": ["s{}"]}}"#, index + 1);
            let conditions = vec![reference; repeats].join(", ");
            segments.push(format!(r#""s{index}": {{"conditions": [{conditions}]}}"#));
        } else {
            segments.push(format!(
                r#""s{index}": {{"conditions": [{{"attribute": "plan", "op": "in", "values": ["pro"]}}]}}"#
            ));
        }
    }
    format!(
        r#"{{"schema": 1, "environment": "test", "revision": 1, "segments": {{{}}},
            "flags": {{"f": {{"kind": "boolean", "variants": {{"off": {{"value": false}}, "on": {{"value": true}}}},
            "baseline": "off", "rules": [{{"when": [{{"op": "in_segment", "values": ["s0"]}}], "serve": {{"variant": "on"}}}}]}}}}}}"#,
        segments.join(", ")
    )
}

#[test]
fn chained_segments_repeating_in_segment_are_too_complex_instead_of_stalling_compile() {
    // Eight segments each naming the next twelve times: 12^7 tests for one rule. Compiling it
    // once stalled for more than 20 seconds; it is now rejected, with the segments' paths.
    let error = Ruleset::from_json_str(&repeated_segment_chain(8, 12))
        .expect_err("a rule that expands past the limit is invalid");
    let problems = error.problems();
    assert!(
        problems.iter().all(|problem| problem.code == "too_complex"),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|problem| problem.path == "segments.s0"),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|problem| problem.path == "flags.f.rules[0].when"),
        "{problems:?}"
    );
    // The same shape under the limit (6 991 tests) compiles and evaluates, each segment
    // flattened once however often it is named.
    let ruleset = Ruleset::from_json_str(&repeated_segment_chain(4, 15)).unwrap();
    let context =
        promptflag_core::Context::from_json_str(r#"{"targetingKey": "u", "plan": "pro"}"#).unwrap();
    let evaluation = ruleset.evaluate("f", &context);
    assert_eq!(evaluation.variant, Some("on"));
}
