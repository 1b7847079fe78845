//! How long compiling takes for rulesets at the size bound (`Limits::MAX_RULESET_BYTES`), in
//! two shapes: the adversarial one that once stalled compilation (segments naming segments
//! many times over, each chain just under the expansion bound, named by every rule of many
//! flags), and a plain one (many flags, each with rules of `in` lists and a split). A
//! measurement, not a test: `cargo run --release -p promptflag-core --example compile_bound`.

use std::time::Instant;

use promptflag_core::Ruleset;

/// The bound on a ruleset's bytes, as core enforces it.
const SIZE_BOUND: usize = 16 * 1024 * 1024;
/// Compilations timed per shape; the best and the median are printed.
const ROUNDS: usize = 5;

fn main() {
    // A quarter of the bound and the bound itself: compile time should grow with the size.
    for size in [SIZE_BOUND / 4, SIZE_BOUND] {
        report("chains at the expansion bound", &chains_to_the_bound(size));
        report(
            "plain flags, in-lists and splits",
            &plain_to_the_bound(size),
        );
    }
}

fn report(name: &str, json: &str) {
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let ruleset = Ruleset::from_json_str(json);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        if let Err(error) = ruleset {
            eprintln!("{name}: rejected: {:?}", error.problems().first());
            std::process::exit(1);
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{name}: {:.2} MiB, compile best {:.0} ms, median {:.0} ms ({ROUNDS} rounds)",
        json.len() as f64 / (1024.0 * 1024.0),
        times[0],
        times[ROUNDS / 2]
    );
}

/// Groups of four segments, each but the last naming the next fifteen times (6 991 condition
/// tests for a rule that names the first, under the bound of 10 000), and per group a flag whose
/// every rule names the group's first segment; groups are added until the next would pass the
/// size given.
fn chains_to_the_bound(bound: usize) -> String {
    let rule = |group: usize| {
        format!(
            r#"{{"when": [{{"op": "in_segment", "values": ["g{group}s0"]}}], "serve": {{"variant": "on"}}}}"#
        )
    };
    let mut segments = Vec::new();
    let mut flags = Vec::new();
    let mut size = 256;
    for group in 0.. {
        let mut group_segments = Vec::new();
        for index in 0..4 {
            if index < 3 {
                let reference = format!(
                    r#"{{"op": "in_segment", "values": ["g{group}s{}"]}}"#,
                    index + 1
                );
                let conditions = vec![reference; 15].join(", ");
                group_segments.push(format!(
                    r#""g{group}s{index}": {{"conditions": [{conditions}]}}"#
                ));
            } else {
                group_segments.push(format!(
                    r#""g{group}s{index}": {{"conditions": [{{"attribute": "plan", "op": "in", "values": ["pro"]}}]}}"#
                ));
            }
        }
        let rules = vec![rule(group); 1000].join(", ");
        let flag = format!(
            r#""f{group}": {{"kind": "boolean", "variants": {{"off": {{"value": false}}, "on": {{"value": true}}}}, "baseline": "off", "rules": [{rules}]}}"#
        );
        let added: usize =
            group_segments.iter().map(|s| s.len() + 2).sum::<usize>() + flag.len() + 2;
        if size + added > bound {
            break;
        }
        size += added;
        segments.extend(group_segments);
        flags.push(flag);
    }
    wrap(&segments, &flags)
}

/// Flags of ten rules (an `in` list of fifty countries, a `str_starts_with` and a `semver_gt`)
/// and a default split of two treatments, added until the next would pass the size given.
fn plain_to_the_bound(bound: usize) -> String {
    let countries: Vec<String> = (0..50).map(|n| format!(r#""c{n:02}""#)).collect();
    let countries = countries.join(", ");
    let rule = format!(
        r#"{{"when": [{{"attribute": "country", "op": "in", "values": [{countries}]}}, {{"attribute": "plan", "op": "str_starts_with", "values": ["pro", "team"]}}, {{"attribute": "appVersion", "op": "semver_gt", "values": ["2.3.0"]}}], "serve": {{"variant": "b"}}}}"#
    );
    let rules = vec![rule; 10].join(", ");
    let mut flags = Vec::new();
    let mut size = 256;
    for index in 0.. {
        let flag = format!(
            r#""flag-{index:05}": {{"kind": "string", "variants": {{"a": {{"value": "a"}}, "b": {{"value": "b"}}, "c": {{"value": "c"}}}}, "baseline": "a", "rules": [{rules}], "default": {{"split": {{"bucket_by": "targetingKey", "treatments": [{{"variant": "b", "weight": 25000}}, {{"variant": "c", "weight": 25000}}]}}}}}}"#
        );
        if size + flag.len() + 2 > bound || index == 10_000 {
            break;
        }
        size += flag.len() + 2;
        flags.push(flag);
    }
    wrap(&[], &flags)
}

fn wrap(segments: &[String], flags: &[String]) -> String {
    format!(
        r#"{{"schema": 1, "environment": "bench", "revision": 1, "segments": {{{}}}, "flags": {{{}}}}}"#,
        segments.join(", "),
        flags.join(", ")
    )
}
