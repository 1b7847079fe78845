//! Nanoseconds per evaluation for promptflag-core, side by side with Unleash's Rust engine
//! (`unleash-yggdrasil`) evaluating the equivalent shapes in the same run.
//!
//! Four shapes, each a criterion group with one function per engine
//! (`eval/static/promptflag`, `eval/static/yggdrasil`, …):
//!
//! - `static`: a flag with no rules that serves one variant to everyone;
//! - `targeted`: one rule of three conditions (`in`, `str_starts_with`, `semver_gt`) plus
//!   `in_segment` of a segment that has a condition of its own (`num_gte`): four attribute tests
//!   in all, on both engines, and every context in the pool passes them all, so neither engine
//!   can stop early;
//! - `split`: two treatments of 25 % each, the baseline for the other 50 %, sticky on the user id;
//! - `bulk50`: all 50 flags of the ruleset for one context (`evaluate_all` / `resolve_all`).
//!
//! Each engine gets one ruleset of 50 flags, the three shapes cycled (`flag-00-static`,
//! `flag-01-targeted`, `flag-02-split`, `flag-03-static`, …); the single-flag groups evaluate
//! flags 0, 1 and 2 of it, so a lookup searches a ruleset of realistic size.
//!
//! Both engines are handed their contexts ready-made: a pool of [`POOL`] users, each with a fresh
//! id and varied attributes, built before timing and cycled through, so neither engine is timed
//! building inputs nor benefits from seeing one input over and over. Before anything is timed
//! every pool entry is evaluated by both engines and the variant checked against an expectation
//! computed independently (for splits, from each engine's published hashing scheme), so the
//! numbers compare engines that give the right answers.
//!
//! Choices that favour yggdrasil, so that the ratios are conservative:
//! - Splits use Unleash's `default` strategy with `stickiness` and `groupId` parameters and
//!   strategy variants; a `flexibleRollout` at 100 % would cost a second murmur3 hash per call.
//! - For `static` and `targeted`, `yggdrasil-enabled` also times `check_enabled`, Unleash's
//!   cheapest path (a boolean: no variant selection, no hash, no clone of the variant). The
//!   equivalent of what promptflag returns, a variant and its value, is `check_variant`
//!   (`yggdrasil`).
//!
//! Run: `cargo bench -p promptflag-core --bench evaluate` (about two minutes).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use promptflag_core::bucket::{lane_of_slot, slot};
use promptflag_core::{Context, Reason, Ruleset};
use unleash_yggdrasil::state::EnrichedContext;
use unleash_yggdrasil::strategy_parsing::normalized_hash;
use unleash_yggdrasil::{ClientFeatures, EngineState, UpdateMessage};

/// Contexts in each pool; a power of two so cycling is a mask.
const POOL: usize = 4096;

/// Flags in each engine's ruleset.
const FLAGS: usize = 50;

/// The seed Unleash's client specification fixes for variant hashing (yggdrasil keeps it private).
const UNLEASH_VARIANT_SEED: u32 = 86_028_157;

/// Treatment allocations of the split, in slots of 100 000 (each lane is 50 000 wide).
const SPLIT_WEIGHTS: [u32; 2] = [25_000, 25_000];

/// The same split as Unleash variant weights out of 1 000, baseline first.
const UNLEASH_SPLIT: [(&str, u32); 3] =
    [("control", 500), ("treatment-a", 250), ("treatment-b", 250)];

const COUNTRIES: [&str; 5] = ["IE", "GB", "FR", "DE", "NL"];
const PLANS: [&str; 4] = ["pro-monthly", "pro-annual", "team-monthly", "team-annual"];
const APP_VERSIONS: [&str; 4] = ["2.4.0", "2.10.3", "3.0.0", "3.1.0-beta.2"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    Static,
    Targeted,
    Split,
}

impl Shape {
    fn of_flag(index: usize) -> Shape {
        match index % 3 {
            0 => Shape::Static,
            1 => Shape::Targeted,
            _ => Shape::Split,
        }
    }
}

fn flag_key(index: usize) -> String {
    let shape = match Shape::of_flag(index) {
        Shape::Static => "static",
        Shape::Targeted => "targeted",
        Shape::Split => "split",
    };
    format!("flag-{index:02}-{shape}")
}

// ---------------------------------------------------------------------------------------------
// The rulesets, one per engine, each of 50 flags.
// ---------------------------------------------------------------------------------------------

fn promptflag_flag(shape: Shape) -> serde_json::Value {
    let variants = serde_json::json!({
        "control": { "value": "You are a helpful assistant." },
        "targeted": { "value": "You are a concise assistant for paying teams." },
        "treatment-a": { "value": "You are a friendly assistant." },
        "treatment-b": { "value": "You are a terse assistant." }
    });
    match shape {
        Shape::Static => serde_json::json!({
            "kind": "string", "baseline": "control", "variants": variants,
            "default": { "variant": "targeted" }
        }),
        Shape::Targeted => serde_json::json!({
            "kind": "string", "baseline": "control", "variants": variants,
            "rules": [ {
                "when": [
                    { "attribute": "country", "op": "in", "values": COUNTRIES },
                    { "attribute": "plan", "op": "str_starts_with", "values": ["pro", "team"] },
                    { "attribute": "appVersion", "op": "semver_gt", "values": ["2.3.0"] },
                    { "op": "in_segment", "values": ["big-teams"] }
                ],
                "serve": { "variant": "targeted" }
            } ]
        }),
        Shape::Split => serde_json::json!({
            "kind": "string", "baseline": "control", "variants": variants,
            "default": { "split": { "treatments": [
                { "variant": "treatment-a", "weight": SPLIT_WEIGHTS[0] },
                { "variant": "treatment-b", "weight": SPLIT_WEIGHTS[1] }
            ] } }
        }),
    }
}

fn promptflag_ruleset() -> Ruleset {
    let mut flags = serde_json::Map::new();
    for index in 0..FLAGS {
        flags.insert(flag_key(index), promptflag_flag(Shape::of_flag(index)));
    }
    let document = serde_json::json!({
        "schema": 1, "environment": "bench", "revision": 1,
        "segments": { "big-teams": {
            "conditions": [ { "attribute": "seats", "op": "num_gte", "values": ["10"] } ]
        } },
        "flags": flags
    });
    Ruleset::from_json_str(&document.to_string())
        .unwrap_or_else(|error| panic!("bench ruleset: {error}"))
}

fn unleash_variant(name: &str, weight: u32) -> serde_json::Value {
    let text = match name {
        "control" => "You are a helpful assistant.",
        "targeted" => "You are a concise assistant for paying teams.",
        "treatment-a" => "You are a friendly assistant.",
        _ => "You are a terse assistant.",
    };
    serde_json::json!({
        "name": name, "weight": weight, "stickiness": "userId",
        "payload": { "type": "string", "value": text }
    })
}

fn unleash_feature(name: &str, shape: Shape) -> serde_json::Value {
    let parameters = serde_json::json!({ "groupId": name, "stickiness": "userId" });
    let strategy = match shape {
        Shape::Static => serde_json::json!({
            "name": "default", "parameters": parameters,
            "variants": [ unleash_variant("targeted", 1000) ]
        }),
        Shape::Targeted => serde_json::json!({
            "name": "default", "parameters": parameters,
            "constraints": [
                { "contextName": "country", "operator": "IN", "values": COUNTRIES },
                { "contextName": "plan", "operator": "STR_STARTS_WITH", "values": ["pro", "team"] },
                { "contextName": "appVersion", "operator": "SEMVER_GT", "value": "2.3.0" }
            ],
            "segments": [1],
            "variants": [ unleash_variant("targeted", 1000) ]
        }),
        Shape::Split => serde_json::json!({
            "name": "default", "parameters": parameters,
            "variants": UNLEASH_SPLIT.iter().map(|(name, weight)| unleash_variant(name, *weight)).collect::<Vec<_>>()
        }),
    };
    serde_json::json!({ "name": name, "enabled": true, "strategies": [strategy] })
}

fn yggdrasil_engine() -> EngineState {
    let features: Vec<_> = (0..FLAGS)
        .map(|index| unleash_feature(&flag_key(index), Shape::of_flag(index)))
        .collect();
    let document = serde_json::json!({
        "version": 2,
        "features": features,
        "segments": [ { "id": 1, "constraints": [
            { "contextName": "seats", "operator": "NUM_GTE", "value": "10" }
        ] } ]
    });
    let client_features: ClientFeatures = serde_json::from_value(document)
        .unwrap_or_else(|error| panic!("bench client features: {error}"));
    let engine = EngineState::default();
    let warnings = engine.take_state(UpdateMessage::FullResponse(client_features));
    assert!(
        warnings.is_none(),
        "yggdrasil warned about the bench features: {warnings:?}"
    );
    engine
}

// ---------------------------------------------------------------------------------------------
// Context pools: the same users, attribute for attribute, in each engine's own context type.
// ---------------------------------------------------------------------------------------------

struct User {
    id: String,
    country: &'static str,
    plan: &'static str,
    app_version: &'static str,
    seats: String,
}

fn users() -> Vec<User> {
    (0..POOL)
        .map(|index| User {
            // Ids shaped like real ones (and all distinct), not a counter that hashes alike.
            id: format!(
                "user-{:016x}",
                (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ),
            country: COUNTRIES[index % COUNTRIES.len()],
            plan: PLANS[(index / 5) % PLANS.len()],
            app_version: APP_VERSIONS[(index / 7) % APP_VERSIONS.len()],
            seats: (10 + index % 490).to_string(),
        })
        .collect()
}

fn promptflag_contexts(users: &[User]) -> Vec<Context> {
    users
        .iter()
        .map(|user| {
            Context::new()
                .with_targeting_key(&user.id)
                .with("country", user.country)
                .with("plan", user.plan)
                .with("appVersion", user.app_version)
                .with("seats", &user.seats)
        })
        .collect()
}

fn yggdrasil_contexts(users: &[User]) -> Vec<unleash_yggdrasil::Context> {
    users
        .iter()
        .map(|user| {
            let properties: HashMap<String, String> = [
                ("country", user.country.to_string()),
                ("plan", user.plan.to_string()),
                ("appVersion", user.app_version.to_string()),
                ("seats", user.seats.clone()),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
            unleash_yggdrasil::Context {
                user_id: Some(user.id.clone()),
                properties: Some(properties),
                ..unleash_yggdrasil::Context::default()
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Expectations, computed without either engine's evaluator.
// ---------------------------------------------------------------------------------------------

/// The variant promptflag must serve: the bucketing of `docs/ruleset.md` for splits.
fn promptflag_expected(flag_key: &str, shape: Shape, user: &User) -> &'static str {
    match shape {
        Shape::Static | Shape::Targeted => "targeted",
        Shape::Split => match lane_of_slot(slot(flag_key, &user.id), &SPLIT_WEIGHTS) {
            Some(0) => "treatment-a",
            Some(_) => "treatment-b",
            None => "control",
        },
    }
}

/// The variant yggdrasil must serve: Unleash's variant hashing (murmur3 of `groupId:userId`
/// with the specification's seed, 1-based, against cumulative weights).
fn yggdrasil_expected(flag_key: &str, shape: Shape, user: &User) -> &'static str {
    match shape {
        Shape::Static | Shape::Targeted => "targeted",
        Shape::Split => {
            let total: u32 = UNLEASH_SPLIT.iter().map(|(_, weight)| weight).sum();
            let target = normalized_hash(flag_key, &user.id, total, UNLEASH_VARIANT_SEED)
                .unwrap_or_else(|error| panic!("murmur3: {error}"));
            let mut cumulative = 0;
            for (name, weight) in UNLEASH_SPLIT {
                cumulative += weight;
                if cumulative >= target {
                    return name;
                }
            }
            panic!("target {target} is beyond the total weight {total}")
        }
    }
}

fn check_promptflag(
    ruleset: &Ruleset,
    flag_key: &str,
    shape: Shape,
    users: &[User],
    contexts: &[Context],
) {
    let mut served = HashMap::<&str, usize>::new();
    for (user, context) in users.iter().zip(contexts) {
        let evaluation = ruleset.evaluate(flag_key, context);
        let expected = promptflag_expected(flag_key, shape, user);
        assert_eq!(
            evaluation.variant,
            Some(expected),
            "promptflag {flag_key} for {}",
            user.id
        );
        let reason = match shape {
            Shape::Static => Reason::Static,
            Shape::Targeted => Reason::TargetingMatch,
            Shape::Split => Reason::Split,
        };
        assert_eq!(
            evaluation.reason, reason,
            "promptflag {flag_key} for {}",
            user.id
        );
        *served.entry(expected).or_default() += 1;
    }
    assert_spread(shape, &served, "promptflag");
}

fn check_yggdrasil(
    engine: &EngineState,
    flag_key: &str,
    shape: Shape,
    users: &[User],
    contexts: &[EnrichedContext<'_>],
) {
    let mut served = HashMap::<&str, usize>::new();
    for (user, context) in users.iter().zip(contexts) {
        let expected = yggdrasil_expected(flag_key, shape, user);
        let variant = engine
            .check_variant(context)
            .unwrap_or_else(|| panic!("yggdrasil has no {flag_key}"));
        assert!(
            variant.enabled,
            "yggdrasil {flag_key} disabled for {}",
            user.id
        );
        assert_eq!(
            variant.name, expected,
            "yggdrasil {flag_key} for {}",
            user.id
        );
        assert_eq!(
            engine.check_enabled(context),
            Some(true),
            "yggdrasil {flag_key} for {}",
            user.id
        );
        *served.entry(expected).or_default() += 1;
    }
    assert_spread(shape, &served, "yggdrasil");
}

/// A split that served one variant to the whole pool would make the bench meaningless.
fn assert_spread(shape: Shape, served: &HashMap<&str, usize>, engine: &str) {
    if shape == Shape::Split {
        for (variant, share) in [
            ("control", 0.5),
            ("treatment-a", 0.25),
            ("treatment-b", 0.25),
        ] {
            let got = served.get(variant).copied().unwrap_or(0) as f64 / POOL as f64;
            assert!(
                (got - share).abs() < 0.05,
                "{engine} served {variant} to {got:.3} of the pool, not ~{share}"
            );
        }
    }
}

fn enriched<'a>(
    contexts: &'a [unleash_yggdrasil::Context],
    flag_key: &'a str,
) -> Vec<EnrichedContext<'a>> {
    contexts
        .iter()
        .map(|context| EnrichedContext::from(context, flag_key, None))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The benchmarks.
// ---------------------------------------------------------------------------------------------

fn single_flag_shapes(c: &mut Criterion) {
    let ruleset = promptflag_ruleset();
    let engine = yggdrasil_engine();
    let users = users();
    let promptflag_pool = promptflag_contexts(&users);
    let yggdrasil_pool = yggdrasil_contexts(&users);

    // Flags 0, 1 and 2 of the ruleset are one of each shape.
    for (group, index) in [("eval/static", 0), ("eval/targeted", 1), ("eval/split", 2)] {
        let key = flag_key(index);
        let flag_key = key.as_str();
        let shape = Shape::of_flag(index);
        let yggdrasil_enriched = enriched(&yggdrasil_pool, flag_key);
        check_promptflag(&ruleset, flag_key, shape, &users, &promptflag_pool);
        check_yggdrasil(&engine, flag_key, shape, &users, &yggdrasil_enriched);

        let mut group = c.benchmark_group(group);
        group.sampling_mode(SamplingMode::Flat);
        group.bench_function("promptflag", |b| {
            let mut next = 0usize;
            b.iter(|| {
                let context = &promptflag_pool[next & (POOL - 1)];
                next = next.wrapping_add(1);
                ruleset.evaluate(black_box(flag_key), black_box(context))
            })
        });
        group.bench_function("yggdrasil", |b| {
            let mut next = 0usize;
            b.iter(|| {
                let context = &yggdrasil_enriched[next & (POOL - 1)];
                next = next.wrapping_add(1);
                engine.check_variant(black_box(context))
            })
        });
        if shape != Shape::Split {
            group.bench_function("yggdrasil-enabled", |b| {
                let mut next = 0usize;
                b.iter(|| {
                    let context = &yggdrasil_enriched[next & (POOL - 1)];
                    next = next.wrapping_add(1);
                    engine.check_enabled(black_box(context))
                })
            });
        }
        group.finish();
    }
}

fn bulk(c: &mut Criterion) {
    let ruleset = promptflag_ruleset();
    let engine = yggdrasil_engine();
    let users = users();
    let promptflag_pool = promptflag_contexts(&users);
    let yggdrasil_pool = yggdrasil_contexts(&users);

    for (user, (promptflag_context, yggdrasil_context)) in users
        .iter()
        .zip(promptflag_pool.iter().zip(&yggdrasil_pool))
    {
        let evaluations = ruleset.evaluate_all(promptflag_context);
        assert_eq!(evaluations.len(), FLAGS);
        let resolved = engine
            .resolve_all(yggdrasil_context, &None)
            .unwrap_or_else(|| panic!("yggdrasil has no state"));
        assert_eq!(resolved.len(), FLAGS);
        for index in 0..FLAGS {
            let key = flag_key(index);
            let shape = Shape::of_flag(index);
            let evaluation = evaluations
                .iter()
                .find(|evaluation| evaluation.key == key.as_str())
                .unwrap_or_else(|| panic!("promptflag skipped {key}"));
            assert_eq!(
                evaluation.variant,
                Some(promptflag_expected(&key, shape, user)),
                "promptflag {key}"
            );
            let toggle = resolved
                .get(&key)
                .unwrap_or_else(|| panic!("yggdrasil skipped {key}"));
            assert!(
                toggle.enabled && toggle.variant.feature_enabled,
                "yggdrasil {key} disabled"
            );
            assert_eq!(
                toggle.variant.name,
                yggdrasil_expected(&key, shape, user),
                "yggdrasil {key}"
            );
        }
    }

    let mut group = c.benchmark_group("eval/bulk50");
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("promptflag", |b| {
        let mut next = 0usize;
        b.iter(|| {
            let context = &promptflag_pool[next & (POOL - 1)];
            next = next.wrapping_add(1);
            ruleset.evaluate_all(black_box(context))
        })
    });
    group.bench_function("yggdrasil", |b| {
        let mut next = 0usize;
        b.iter(|| {
            let context = &yggdrasil_pool[next & (POOL - 1)];
            next = next.wrapping_add(1);
            engine.resolve_all(black_box(context), &None)
        })
    });
    group.finish();
}

fn config() -> Criterion {
    // Many short samples of equal length: on a machine shared with other work, a sample that
    // the scheduler interrupts is an outlier, and the median of many short samples stays with
    // the uninterrupted ones. Shorter than criterion's defaults, so the run takes two minutes.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(400)
        .nresamples(20_000)
}

criterion_group! {
    name = benches;
    config = config();
    targets = single_flag_shapes, bulk
}
criterion_main!(benches);
