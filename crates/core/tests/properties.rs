//! Property tests for the invariants of `docs/ruleset.md`: bucketing is deterministic and is xxh3;
//! lanes are sticky as allocations change; slots are uniform; layers keep experiments apart;
//! and validation and evaluation never panic, whatever the ruleset or context.
//!
//! Uniformity is checked over a fixed set of units, so it cannot flake.

#![cfg(not(target_arch = "wasm32"))]
// Test code states its assumptions with unwrap and expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use promptflag_core::bucket::{SLOTS, bucket_hash, lane_of_slot, slot, slot_of_hash};
use promptflag_core::{Context, Evaluation, ExpectedType, Reason, Ruleset};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

mod common;

// ------------------------------------------------------------------------------------------
// Helpers

/// A ruleset with one string flag per entry: `(key, split JSON)` served by default.
fn split_ruleset(flags: &[(String, Value)], layers: &[&str]) -> Ruleset {
    let mut flag_map = Map::new();
    for (key, split) in flags {
        let count = split["treatments"].as_array().map_or(0, Vec::len);
        let mut variants = Map::new();
        variants.insert("control".into(), json!({"value": "control"}));
        for index in 0..count {
            variants.insert(format!("t{index}"), json!({"value": format!("t{index}")}));
        }
        flag_map.insert(
            key.clone(),
            json!({"kind": "string", "variants": variants, "baseline": "control", "default": {"split": split}}),
        );
    }
    let layer_map: Map<String, Value> = layers
        .iter()
        .map(|name| ((*name).to_string(), json!({})))
        .collect();
    let document = json!({"schema": 1, "environment": "test", "revision": 1, "layers": layer_map, "flags": flag_map});
    Ruleset::from_json_str(&document.to_string())
        .unwrap_or_else(|e| panic!("the generated ruleset is valid: {e}"))
}

fn treatments(weights: &[u32]) -> Value {
    Value::Array(
        weights
            .iter()
            .enumerate()
            .map(|(index, weight)| json!({"variant": format!("t{index}"), "weight": weight}))
            .collect(),
    )
}

fn unit_context(unit: &str) -> Context {
    Context::new().with_targeting_key(unit)
}

/// The lane an evaluation put the unit in (`None` for the baseline), checking it agrees with
/// the variant served.
fn lane_of(evaluation: &Evaluation<'_>) -> Option<usize> {
    assert_eq!(evaluation.reason, Reason::Split, "{evaluation:?}");
    let bucket = evaluation.bucket.expect("a split reports its bucket");
    let lane = bucket.lane.map(|lane| lane as usize);
    let expected_variant = lane.map_or_else(|| "control".to_string(), |lane| format!("t{lane}"));
    assert_eq!(evaluation.variant, Some(expected_variant.as_str()));
    lane
}

/// Chi-square statistic of observed counts against equal expected counts.
fn chi_square(counts: &[u64], expected: &[f64]) -> f64 {
    counts
        .iter()
        .zip(expected)
        .map(|(&observed, &expected)| (observed as f64 - expected).powi(2) / expected)
        .sum()
}

/// The case files' rulesets (every one of them valid), parsed once.
fn vector_documents() -> &'static [(String, Value)] {
    static DOCUMENTS: LazyLock<Vec<(String, Value)>> = LazyLock::new(|| {
        common::FILES
            .iter()
            .filter_map(|(name, text)| {
                let file: Value = serde_json::from_str(text).expect("vector files are JSON");
                file.get("ruleset")
                    .map(|ruleset| (name.to_string(), ruleset.clone()))
            })
            .collect()
    });
    &DOCUMENTS
}

/// The case files' rulesets, compiled once.
fn vector_rulesets() -> &'static [(String, Ruleset)] {
    static RULESETS: LazyLock<Vec<(String, Ruleset)>> = LazyLock::new(|| {
        vector_documents()
            .iter()
            .map(|(name, document)| {
                let ruleset = Ruleset::from_json_str(&document.to_string())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                (name.clone(), ruleset)
            })
            .collect()
    });
    &RULESETS
}

// ------------------------------------------------------------------------------------------
// Determinism

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_bucket_hash_is_xxh3_of_seed_slash_unit(seed in ".{0,40}", unit in ".{0,300}") {
        let expected = twox_hash::XxHash3_64::oneshot(format!("{seed}/{unit}").as_bytes());
        prop_assert_eq!(bucket_hash(&seed, &unit), expected);
        let expected_slot = ((u128::from(expected) * 100_000) >> 64) as u32;
        prop_assert_eq!(slot(&seed, &unit), expected_slot);
        prop_assert_eq!(slot_of_hash(expected), expected_slot);
        prop_assert!(expected_slot < SLOTS);
    }

    #[test]
    fn evaluation_is_deterministic(unit in ".{0,40}", country in "[A-Z]{2}", age in any::<i64>(), version in "[0-9]\\.[0-9]{1,2}\\.[0-9]") {
        for ((name, first), (_, document)) in vector_rulesets().iter().zip(vector_documents()) {
            let second = Ruleset::from_json_str(&document.to_string()).expect("vector rulesets are valid");
            let context = || {
                let mut context = Context::from_json_value(&json!({
                    "targetingKey": unit, "accountId": unit, "country": country, "age": age, "appVersion": version,
                })).expect("an object");
                context.set_now_millis(Some(1_750_000_000_000));
                context
            };
            let (one, two) = (context(), context());
            for key in first.flag_keys() {
                let a = first.evaluate(key, &one);
                prop_assert_eq!(&a, &first.evaluate(key, &one), "{} {}: twice on one ruleset", name, key);
                prop_assert_eq!(&a, &second.evaluate(key, &two), "{} {}: on a second copy", name, key);
            }
            prop_assert_eq!(first.evaluate_all(&one), second.evaluate_all(&two));
        }
    }
}

// ------------------------------------------------------------------------------------------
// Stickiness

/// `k` treatments and two allocations of them, each weight within the lane width.
fn two_allocations() -> impl Strategy<Value = (Vec<u32>, Vec<u32>)> {
    (1usize..=5).prop_flat_map(|count| {
        let width = SLOTS / count as u32;
        // Weights cluster at the edges of the lane as often as inside it.
        let weight = prop_oneof![Just(0), Just(width), 0..=width];
        (
            prop::collection::vec(weight.clone(), count),
            prop::collection::vec(weight, count),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any change of allocations: a unit only moves between the baseline and one treatment, into
    /// treatment `i` only when `p_i` grew, and out of it only when `p_i` shrank.
    #[test]
    fn units_only_move_between_the_baseline_and_a_treatment_whose_weight_changed(
        seed in "[a-z0-9:-]{1,20}",
        (before, after) in two_allocations(),
    ) {
        let split = |weights: &[u32]| json!({"seed": seed, "treatments": treatments(weights)});
        let old = split_ruleset(&[("flag".into(), split(&before))], &[]);
        let new = split_ruleset(&[("flag".into(), split(&after))], &[]);
        for n in 0..1_000 {
            let context = unit_context(&format!("unit-{n}"));
            let was = lane_of(&old.evaluate("flag", &context));
            let is = lane_of(&new.evaluate("flag", &context));
            match (was, is) {
                (Some(i), Some(j)) => prop_assert_eq!(i, j, "unit-{} moved between treatments", n),
                (None, Some(i)) => prop_assert!(after[i] > before[i], "unit-{} entered t{} without a raise", n, i),
                (Some(i), None) => prop_assert!(after[i] < before[i], "unit-{} left t{} without a cut", n, i),
                (None, None) => {}
            }
        }
    }

    /// Raising one weight keeps every treated unit where it was and adds only baseline units.
    #[test]
    fn raising_one_weight_only_adds_baseline_units_to_that_treatment(
        seed in "[a-z0-9]{1,12}",
        (before, _) in two_allocations(),
        which in any::<Index>(),
        share in 0.0f64..=1.0,
    ) {
        let width = SLOTS / before.len() as u32;
        let index = which.index(before.len());
        let mut after = before.clone();
        after[index] += ((width - before[index]) as f64 * share) as u32;
        for n in 0..2_000 {
            let unit = format!("unit-{n}");
            let slot = slot(&seed, &unit);
            let (was, is) = (lane_of_slot(slot, &before), lane_of_slot(slot, &after));
            if was.is_some() {
                prop_assert_eq!(was, is);
            } else if is.is_some() {
                prop_assert_eq!(is, Some(index));
            }
        }
    }
}

/// `docs/ruleset.md`: "A 1 % canary's users stay treated at 5 %, 25 %, 50 %".
#[test]
fn a_canary_cohort_stays_treated_as_the_rollout_ramps() {
    let stages = [1_000u32, 5_000, 25_000, 50_000, 100_000];
    let flags: Vec<(String, Value)> = stages
        .iter()
        .map(|weight| {
            (
                format!("stage-{weight}"),
                json!({"seed": "ramp", "treatments": treatments(&[*weight])}),
            )
        })
        .collect();
    let ruleset = split_ruleset(&flags, &[]);
    let mut treated_counts = Vec::new();
    let mut previous: Option<Vec<bool>> = None;
    for weight in stages {
        let treated: Vec<bool> = (0..20_000)
            .map(|n| {
                lane_of(&ruleset.evaluate(
                    &format!("stage-{weight}"),
                    &unit_context(&format!("user-{n}")),
                ))
                .is_some()
            })
            .collect();
        if let Some(previous) = &previous {
            for (n, (was, is)) in previous.iter().zip(&treated).enumerate() {
                assert!(
                    !was || *is,
                    "user-{n} lost the treatment when the rollout grew to {weight}"
                );
            }
        }
        treated_counts.push(treated.iter().filter(|treated| **treated).count());
        previous = Some(treated);
    }
    // Roughly the allocated share at each stage, and everyone at 100 %.
    assert_eq!(treated_counts.last(), Some(&20_000));
    for (weight, count) in stages.iter().zip(&treated_counts) {
        let expected = 20_000.0 * f64::from(*weight) / f64::from(SLOTS);
        assert!(
            (*count as f64 - expected).abs() <= 5.0 * expected.sqrt().max(1.0),
            "{count} treated at {weight}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// Uniformity (a fixed population of 100 000 units: deterministic, so it cannot flake)

const POPULATION: u32 = 100_000;
/// Chi-square critical values at p = 0.001.
const CHI_SQUARE_9_DF: f64 = 27.877;
const CHI_SQUARE_99_DF: f64 = 148.230;
const CHI_SQUARE_3_DF: f64 = 16.266;

#[test]
fn slots_are_uniform_across_ten_and_a_hundred_buckets() {
    for seed in ["canary", "support_prompt", "layer:checkout", ""] {
        let mut tens = [0u64; 10];
        let mut hundreds = [0u64; 100];
        for n in 0..POPULATION {
            let slot = slot(seed, &format!("user-{n}"));
            tens[(slot / 10_000) as usize] += 1;
            hundreds[(slot / 1_000) as usize] += 1;
        }
        let ten = chi_square(&tens, &[f64::from(POPULATION) / 10.0; 10]);
        let hundred = chi_square(&hundreds, &[f64::from(POPULATION) / 100.0; 100]);
        assert!(
            ten < CHI_SQUARE_9_DF,
            "seed {seed:?}: chi-square {ten} over 10 buckets: {tens:?}"
        );
        assert!(
            hundred < CHI_SQUARE_99_DF,
            "seed {seed:?}: chi-square {hundred} over 100 buckets"
        );
    }
}

#[test]
fn numeric_and_uuid_like_units_are_uniform_too() {
    // Units that differ in one digit, or look like UUIDs, are what real targeting keys are.
    let mut numeric = [0u64; 10];
    let mut uuid_like = [0u64; 10];
    for n in 0..POPULATION {
        numeric[(slot("canary", &n.to_string()) / 10_000) as usize] += 1;
        let uuid = format!(
            "{:08x}-4b1d-4e2a-9c3f-{:012x}",
            n.wrapping_mul(2_654_435_761),
            n
        );
        uuid_like[(slot("canary", &uuid) / 10_000) as usize] += 1;
    }
    let expected = [f64::from(POPULATION) / 10.0; 10];
    assert!(
        chi_square(&numeric, &expected) < CHI_SQUARE_9_DF,
        "{numeric:?}"
    );
    assert!(
        chi_square(&uuid_like, &expected) < CHI_SQUARE_9_DF,
        "{uuid_like:?}"
    );
}

#[test]
fn split_evaluation_serves_variants_in_their_allocated_shares() {
    // Lanes of 33 333 slots holding 10 %, 20 % and 30 %: the baseline keeps the other 40 %.
    let ruleset = split_ruleset(
        &[(
            "flag".into(),
            json!({"treatments": treatments(&[10_000, 20_000, 30_000])}),
        )],
        &[],
    );
    let mut counts = [0u64; 4];
    for n in 0..POPULATION {
        match lane_of(&ruleset.evaluate("flag", &unit_context(&format!("user-{n}")))) {
            Some(lane) => counts[lane] += 1,
            None => counts[3] += 1,
        }
    }
    let expected: Vec<f64> = [0.1, 0.2, 0.3, 0.4]
        .iter()
        .map(|share| share * f64::from(POPULATION))
        .collect();
    let statistic = chi_square(&counts, &expected);
    assert!(
        statistic < CHI_SQUARE_3_DF,
        "chi-square {statistic}: {counts:?}"
    );
}

// ------------------------------------------------------------------------------------------
// Layer exclusivity

/// Cut points that split `[0, 100000)` into ranges, and which ranges an experiment holds.
fn layer_partition() -> impl Strategy<Value = (Vec<u32>, Vec<bool>)> {
    prop::collection::btree_set(1..SLOTS, 1..6).prop_flat_map(|cuts| {
        let cuts: Vec<u32> = cuts.into_iter().collect();
        let ranges = cuts.len() + 1;
        (Just(cuts), prop::collection::vec(any::<bool>(), ranges))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn experiments_on_disjoint_ranges_of_a_layer_never_share_a_unit(
        (cuts, held) in layer_partition(),
        prefix in "[a-z]{0,6}",
    ) {
        let mut bounds = vec![0];
        bounds.extend(&cuts);
        bounds.push(SLOTS);
        let mut flags = Vec::new();
        for (index, range) in bounds.windows(2).enumerate() {
            if held[index] {
                let split = json!({
                    "treatments": treatments(&[SLOTS]),
                    "layer": {"name": "exclusive", "start": range[0], "end": range[1]},
                });
                flags.push((format!("exp-{index}"), split));
            }
        }
        let ruleset = split_ruleset(&flags, &["exclusive"]);
        for n in 0..300 {
            let unit = format!("{prefix}{n}");
            let layer_slot = slot("layer:exclusive", &unit);
            let context = unit_context(&unit);
            let mut inside = Vec::new();
            for (key, _) in &flags {
                let evaluation = ruleset.evaluate(key, &context);
                let bucket = evaluation.bucket.expect("a layered split reports its bucket");
                prop_assert_eq!(bucket.layer_slot, Some(layer_slot));
                if bucket.in_experiment {
                    prop_assert_eq!(evaluation.reason, Reason::Split);
                    prop_assert_eq!(evaluation.variant, Some("t0"));
                    inside.push(key.clone());
                } else {
                    prop_assert_eq!(evaluation.reason, Reason::Default);
                    prop_assert_eq!(evaluation.variant, Some("control"));
                }
            }
            prop_assert!(inside.len() <= 1, "{} is in {:?}", unit, inside);
            // And a unit whose layer slot falls in a held range is in exactly that experiment.
            let range = bounds.windows(2).position(|range| range[0] <= layer_slot && layer_slot < range[1]).expect("a range");
            prop_assert_eq!(inside.len(), usize::from(held[range]));
        }
    }
}

// ------------------------------------------------------------------------------------------
// Validation and evaluation never panic

const NAMES: &[&str] = &[
    "a",
    "b",
    "c",
    "control",
    "s1",
    "s2",
    "L1",
    "targetingKey",
    "accountId",
    "country",
    "age",
    "appVersion",
    "signup",
    "currentTime",
    "tags",
    "",
    " ",
    "in",
    "zzz",
];

const OPERATORS: &[&str] = &[
    "in",
    "not_in",
    "str_contains",
    "str_starts_with",
    "str_ends_with",
    "num_eq",
    "num_gt",
    "num_gte",
    "num_lt",
    "num_lte",
    "date_after",
    "date_before",
    "semver_eq",
    "semver_gt",
    "semver_lt",
    "in_segment",
    "regex",
];

/// Strings that parse as something (numbers, dates, versions, names) as often as not.
fn interesting_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(NAMES).prop_map(String::from),
        prop::sample::select(
            &[
                "0",
                "-1",
                "42",
                " 42 ",
                "1e3",
                "1e309",
                "-0",
                "NaN",
                "inf",
                "0x10",
                "1.5",
                "18446744073709551616",
                "2025-01-01T00:00:00Z",
                "2025-01-01T00:00:00.123456789+23:59",
                "9999-12-31T23:59:60Z",
                "0000-01-01T00:00:00Z",
                "2025-02-29T00:00:00Z",
                "1.2.3",
                "v1.2.3-rc.1+b",
                "1.0.0-0.3.7",
                "99999999999999999999.0.0",
                "1.2.3-",
                "=v0.0.0",
                "true",
                "null",
            ][..]
        )
        .prop_map(String::from),
        ".{0,12}",
        "\\PC{200,300}",
    ]
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just(0u32),
            Just(1),
            Just(33_333),
            Just(50_000),
            Just(99_999),
            Just(SLOTS),
            Just(SLOTS + 1)
        ]
        .prop_map(Value::from),
        any::<f64>().prop_filter_map("a finite number", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        interesting_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((interesting_string(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// A context of plausible attribute names with arbitrary values.
fn arbitrary_context() -> impl Strategy<Value = Value> {
    prop::collection::vec((interesting_string(), arbitrary_json()), 0..8)
        .prop_map(|entries| Value::Object(entries.into_iter().collect()))
}

fn arbitrary_condition() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(NAMES),
        prop::sample::select(OPERATORS),
        prop::collection::vec(interesting_string(), 0..3),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(attribute, op, values, negate, case_insensitive)| {
            let mut condition = json!({"op": op, "values": values, "negate": negate, "case_insensitive": case_insensitive});
            if op != "in_segment" {
                condition["attribute"] = json!(attribute);
            }
            condition
        })
}

fn arbitrary_serve() -> impl Strategy<Value = Value> {
    let weight = prop_oneof![
        Just(0u32),
        Just(1_000),
        Just(33_333),
        Just(50_000),
        Just(SLOTS),
        0..=SLOTS + 1
    ];
    let treatment = (
        prop::sample::select(&["a", "b", "c", "control"][..]),
        weight,
    )
        .prop_map(|(variant, weight)| json!({"variant": variant, "weight": weight}));
    let layer = prop::option::weighted(
        0.3,
        (prop::sample::select(&["L1", "L2"][..]), 0..=SLOTS, 0..=SLOTS)
            .prop_map(|(name, start, end)| json!({"name": name, "start": start.min(end), "end": start.max(end)})),
    );
    prop_oneof![
        prop::sample::select(&["a", "b", "c", "control", "zzz"][..])
            .prop_map(|variant| json!({"variant": variant})),
        (
            prop::collection::vec(treatment, 0..4),
            layer,
            prop::option::of(prop::sample::select(NAMES))
        )
            .prop_map(|(treatments, layer, bucket_by)| {
                let mut split = json!({"treatments": treatments});
                if let Some(layer) = layer {
                    split["layer"] = layer;
                }
                if let Some(bucket_by) = bucket_by {
                    split["bucket_by"] = json!(bucket_by);
                }
                json!({"split": split})
            }),
    ]
}

const HASHES: [&str; 2] = [
    "1111111111111111111111111111111111111111111111111111111111111111",
    "2222222222222222222222222222222222222222222222222222222222222222",
];

fn arbitrary_flag() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(&["boolean", "string", "number", "object", "prompt"][..]);
    let rule = (
        prop::collection::vec(arbitrary_condition(), 0..3),
        arbitrary_serve(),
    )
        .prop_map(|(when, serve)| json!({"when": when, "serve": serve}));
    (
        kind,
        prop::collection::vec(rule, 0..4),
        prop::option::of(arbitrary_serve()),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(kind, rules, default, enabled)| {
            let value = |index: usize| match kind {
                "boolean" => json!({"value": index.is_multiple_of(2)}),
                "string" => json!({"value": format!("v{index}")}),
                "number" => json!({"value": index as f64 / 2.0}),
                "object" => json!({"value": {"index": index}}),
                _ => json!({"prompt": HASHES[index % 2]}),
            };
            let mut flag = json!({
                "kind": kind,
                "variants": {"control": value(0), "a": value(1), "b": value(2), "c": value(3)},
                "baseline": "control",
                "enabled": enabled,
                "rules": rules,
            });
            if let Some(default) = default {
                flag["default"] = default;
            }
            flag
        })
}

fn arbitrary_segment() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(interesting_string(), 0..3),
        prop::collection::vec(interesting_string(), 0..2),
        prop::collection::vec(arbitrary_condition(), 0..3),
        prop::option::weighted(0.2, prop::sample::select(NAMES)),
    )
        .prop_map(|(included, excluded, conditions, match_by)| {
            let mut segment =
                json!({"included": included, "excluded": excluded, "conditions": conditions});
            if let Some(match_by) = match_by {
                segment["match_by"] = json!(match_by);
            }
            segment
        })
}

/// Rulesets of the right shape with arbitrary contents: many are invalid, many are not.
fn arbitrary_ruleset() -> impl Strategy<Value = Value> {
    (prop::collection::vec(arbitrary_flag(), 1..4), prop::collection::vec(arbitrary_segment(), 0..3)).prop_map(
        |(flags, segments)| {
            let flags: Map<String, Value> =
                flags.into_iter().enumerate().map(|(index, flag)| (format!("flag-{index}"), flag)).collect();
            let segments: Map<String, Value> =
                segments.into_iter().enumerate().map(|(index, segment)| (format!("s{}", index + 1), segment)).collect();
            json!({
                "schema": 1, "environment": "test", "revision": 7,
                "prompts": {
                    HASHES[0]: {"id": "p", "version": "1.0.0", "model": "m", "parameters": {"t": 0.5}},
                    HASHES[1]: {"id": "p", "version": "2.0.0-rc.1"},
                },
                "layers": {"L1": {}, "L2": {"bucket_by": "accountId"}},
                "segments": segments,
                "flags": flags,
            })
        },
    )
}

/// Every JSON pointer in a document, the document itself included.
fn pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{prefix}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                pointers(child, format!("{prefix}/{index}"), out);
            }
        }
        _ => {}
    }
    out.push(prefix);
}

/// Replaces, removes or duplicates the node at one pointer.
fn mutate(document: &mut Value, which: Index, replacement: Value, remove: bool) {
    let mut all = Vec::new();
    pointers(document, String::new(), &mut all);
    let pointer = &all[which.index(all.len())];
    if remove && !pointer.is_empty() {
        let (parent, last) = pointer.rsplit_once('/').expect("a child pointer");
        let last = last.replace("~1", "/").replace("~0", "~");
        match document.pointer_mut(parent) {
            Some(Value::Object(map)) => {
                map.remove(&last);
            }
            Some(Value::Array(items)) => {
                if let Ok(index) = last.parse::<usize>() {
                    let removed = items.remove(index);
                    // Half the time the element comes back twice, as a duplicate.
                    if replacement.is_null() {
                        items.push(removed.clone());
                        items.push(removed);
                    }
                }
            }
            _ => {}
        }
    } else if let Some(node) = document.pointer_mut(pointer) {
        *node = replacement;
    }
}

/// Evaluates every flag every way; checks what holds for any evaluation.
fn evaluate_everything(
    ruleset: &Ruleset,
    context_json: &Value,
    now: Option<i64>,
) -> Result<(), TestCaseError> {
    let mut context = match Context::from_json_value(context_json) {
        Ok(context) => context,
        Err(problem) => {
            for key in ruleset.flag_keys() {
                let evaluation = promptflag_core::context_error(ruleset, key, &problem);
                prop_assert_eq!(evaluation.reason, Reason::Error);
            }
            return Ok(());
        }
    };
    context.set_now_millis(now);
    let keys: Vec<String> = ruleset
        .flag_keys()
        .map(String::from)
        .chain(["no-such-flag".to_string()])
        .collect();
    for key in &keys {
        let mut evaluations = vec![
            ruleset.evaluate(key, &context),
            ruleset.resolve_prompt(key, &context),
        ];
        for expected in [
            ExpectedType::Boolean,
            ExpectedType::String,
            ExpectedType::Number,
            ExpectedType::Object,
        ] {
            evaluations.push(ruleset.evaluate_typed(key, &context, expected));
        }
        for evaluation in evaluations {
            prop_assert_eq!(
                evaluation.error_code.is_some(),
                evaluation.reason == Reason::Error,
                "{:?}",
                evaluation
            );
            let exists = ruleset.flag_kind(key).is_some();
            prop_assert_eq!(evaluation.variant.is_some(), exists);
            prop_assert_eq!(evaluation.value.is_some(), exists);
            if let Some(bucket) = evaluation.bucket {
                prop_assert!(bucket.slot < SLOTS);
                prop_assert!(bucket.layer_slot.is_none_or(|slot| slot < SLOTS));
            }
            // The JSON form every runtime ships must always serialize.
            prop_assert!(serde_json::to_string(&evaluation).is_ok());
        }
    }
    let all = ruleset.evaluate_all(&context);
    prop_assert_eq!(all.len(), keys.len() - 1);
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Ruleset::from_json(&bytes);
        let _ = Context::from_json_str(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_json_never_panics(document in arbitrary_json()) {
        if let Ok(ruleset) = Ruleset::from_json_str(&document.to_string()) {
            evaluate_everything(&ruleset, &json!({}), None)?;
        }
        let _ = Context::from_json_value(&document);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_rulesets_and_contexts_never_panic(
        document in arbitrary_ruleset(),
        contexts in prop::collection::vec(arbitrary_context(), 1..4),
        now in prop::option::of(any::<i64>()),
    ) {
        let text = document.to_string();
        match Ruleset::from_json_str(&text) {
            Ok(ruleset) => {
                for context in &contexts {
                    evaluate_everything(&ruleset, context, now)?;
                }
            }
            Err(error) => {
                let problems = error.problems();
                prop_assert!(!problems.is_empty());
                prop_assert!(problems.iter().all(|problem| !problem.path.is_empty() && !problem.code.is_empty()));
            }
        }
    }

    #[test]
    fn mutated_vector_rulesets_never_panic(
        file in any::<Index>(),
        mutations in prop::collection::vec((any::<Index>(), arbitrary_json(), prop::bool::weighted(0.3)), 1..4),
        context in arbitrary_context(),
        now in prop::option::of(any::<i64>()),
    ) {
        let documents = vector_documents();
        let (_, mut document) = documents[file.index(documents.len())].clone();
        for (which, replacement, remove) in mutations {
            mutate(&mut document, which, replacement, remove);
        }
        if let Ok(ruleset) = Ruleset::from_json_str(&document.to_string()) {
            evaluate_everything(&ruleset, &context, now)?;
        }
    }

    #[test]
    fn arbitrary_contexts_never_panic_on_the_vector_rulesets(
        context in arbitrary_context(),
        unit in interesting_string(),
        now in prop::option::of(any::<i64>()),
    ) {
        let mut context = context;
        context["targetingKey"] = json!(unit);
        for (_, ruleset) in vector_rulesets() {
            evaluate_everything(ruleset, &context, now)?;
        }
    }
}

/// The generator of arbitrary rulesets must reach evaluation often enough to mean something.
#[test]
fn the_ruleset_generator_produces_valid_rulesets_often() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = arbitrary_ruleset();
    let valid = (0..200)
        .filter(|_| {
            let document = strategy.new_tree(&mut runner).expect("a value").current();
            Ruleset::from_json_str(&document.to_string()).is_ok()
        })
        .count();
    assert!(
        valid >= 10,
        "only {valid} of 200 generated rulesets were valid"
    );
}
