//! Deep segment graphs: segments naming segments through `in_segment`, many times over, up to
//! fourteen deep, sometimes in cycles. Validation must bound the work of compiling and
//! evaluating them (docs/ruleset.md, "Segments"): a ruleset compiles exactly when a model of the
//! rules — no cycle, at most 8 deep, at most 10 000 condition tests for any segment or rule,
//! counting a segment's tests each time it is named — says it may, and one that compiles
//! evaluates as the model does. The bound on work is what bounds the time: a wall-clock
//! assertion would only measure the machine running the test.

#![cfg(not(target_arch = "wasm32"))]
// Test code states its assumptions with unwrap and expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use promptflag_core::{Context, Ruleset};
use proptest::prelude::*;
use serde_json::{Value, json};

const MAX_SEGMENT_DEPTH: usize = 8;
const MAX_EXPANDED_CONDITIONS: u64 = 10_000;
const SEGMENTS: usize = 14;

/// One segment: an optional test of its own attribute (`a<i>` equals `yes`) and `in_segment`
/// conditions, each naming a set of segments and repeated `repeats` times.
#[derive(Debug, Clone)]
struct Segment {
    own_test: bool,
    references: Vec<(BTreeSet<usize>, usize)>,
}

#[derive(Debug, Clone)]
struct Graph {
    segments: Vec<Segment>,
    /// The segments the flag's one rule names.
    rule_targets: BTreeSet<usize>,
}

fn graph() -> impl Strategy<Value = Graph> {
    (1..=SEGMENTS).prop_flat_map(|count| {
        // Mostly references to later segments (a DAG, so chains as deep as there are segments),
        // sometimes to any segment (itself or an earlier one: a cycle).
        let reference = move |index: usize| {
            let later = if index + 1 < count {
                index + 1..count
            } else {
                0..count
            };
            (
                prop::bool::weighted(0.08),
                prop::collection::btree_set(later, 1..3),
                prop::collection::btree_set(0..count, 1..3),
                1usize..=12,
            )
                .prop_map(|(anywhere, later, any, repeats)| {
                    (if anywhere { any } else { later }, repeats)
                })
        };
        let segments: Vec<_> = (0..count)
            .map(|index| {
                let references = if index + 1 < count {
                    prop::collection::vec(reference(index), 0..3).boxed()
                } else {
                    prop::collection::vec(reference(index), 0..=0).boxed()
                };
                (any::<bool>(), references).prop_map(|(own_test, references)| Segment {
                    own_test: own_test || references.is_empty(),
                    references,
                })
            })
            .collect();
        (segments, prop::collection::btree_set(0..count, 1..3)).prop_map(
            |(segments, rule_targets)| Graph {
                segments,
                rule_targets,
            },
        )
    })
}

fn ruleset_json(graph: &Graph) -> String {
    let mut segments = serde_json::Map::new();
    for (index, segment) in graph.segments.iter().enumerate() {
        let mut conditions = Vec::new();
        if segment.own_test {
            conditions
                .push(json!({"attribute": format!("a{index}"), "op": "in", "values": ["yes"]}));
        }
        for (targets, repeats) in &segment.references {
            let names: Vec<String> = targets.iter().map(|target| format!("s{target}")).collect();
            for _ in 0..*repeats {
                conditions.push(json!({"op": "in_segment", "values": names}));
            }
        }
        segments.insert(format!("s{index}"), json!({"conditions": conditions}));
    }
    let names: Vec<String> = graph
        .rule_targets
        .iter()
        .map(|target| format!("s{target}"))
        .collect();
    json!({
        "schema": 1, "environment": "test", "revision": 1,
        "segments": segments,
        "flags": {"f": {
            "kind": "boolean",
            "variants": {"off": {"value": false}, "on": {"value": true}},
            "baseline": "off",
            "rules": [{"when": [{"op": "in_segment", "values": names}], "serve": {"variant": "on"}}],
        }},
    })
    .to_string()
}

/// Whether a segment reaches itself through its references.
fn has_cycle(graph: &Graph) -> bool {
    (0..graph.segments.len()).any(|start| {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<usize> = targets_of(&graph.segments[start]).collect();
        while let Some(node) = stack.pop() {
            if node == start {
                return true;
            }
            if seen.insert(node) {
                stack.extend(targets_of(&graph.segments[node]));
            }
        }
        false
    })
}

fn targets_of(segment: &Segment) -> impl Iterator<Item = usize> + '_ {
    segment
        .references
        .iter()
        .flat_map(|(targets, _)| targets.iter().copied())
}

/// Each segment's depth (one for a segment naming none) in a graph without cycles.
fn depths(graph: &Graph) -> Vec<usize> {
    let mut depth = vec![0usize; graph.segments.len()];
    // References point to later segments only when there is no cycle among them, but an
    // acyclic graph may still point backwards: settle by repeated passes (at most one per
    // segment, since depth is bounded by the segment count).
    for _ in 0..graph.segments.len() {
        for (index, segment) in graph.segments.iter().enumerate() {
            depth[index] = 1 + targets_of(segment)
                .map(|target| depth[target])
                .max()
                .unwrap_or(0);
        }
    }
    depth
}

/// How many condition tests each segment expands to, and the rule: each `in_segment` counts one
/// test plus every test of each segment it names, saturating.
fn costs(graph: &Graph) -> (Vec<u64>, u64) {
    let mut cost = vec![0u64; graph.segments.len()];
    for _ in 0..graph.segments.len() {
        for (index, segment) in graph.segments.iter().enumerate() {
            let mut total = u64::from(segment.own_test);
            for (targets, repeats) in &segment.references {
                let named = targets
                    .iter()
                    .fold(0u64, |sum, &target| sum.saturating_add(cost[target]));
                let one = named.saturating_add(1);
                total = total.saturating_add(one.saturating_mul(*repeats as u64));
            }
            cost[index] = total;
        }
    }
    let rule = graph
        .rule_targets
        .iter()
        .fold(1u64, |sum, &target| sum.saturating_add(cost[target]));
    (cost, rule)
}

/// Whether the context is in the segment, by the rules: every condition holds; an
/// `in_segment` holds when the context is in any segment it names.
fn model_in(graph: &Graph, index: usize, attributes: &[Option<bool>]) -> bool {
    let segment = &graph.segments[index];
    (!segment.own_test || attributes[index] == Some(true))
        && segment.references.iter().all(|(targets, _)| {
            targets
                .iter()
                .any(|&target| model_in(graph, target, attributes))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn deep_segment_graphs_compile_exactly_within_the_bounds_and_evaluate_as_the_rules_say(
        graph in graph(),
        contexts in prop::collection::vec(prop::collection::vec(prop::option::of(any::<bool>()), SEGMENTS), 1..4),
    ) {
        let compiled = Ruleset::from_json_str(&ruleset_json(&graph));
        if has_cycle(&graph) {
            let error = compiled.expect_err("a cycle is refused");
            prop_assert!(error.problems().iter().any(|problem| problem.code == "segment_cycle"));
            return Ok(());
        }
        let depths = depths(&graph);
        let (costs, rule_cost) = costs(&graph);
        let too_deep = depths.iter().any(|&depth| depth > MAX_SEGMENT_DEPTH);
        let too_complex = rule_cost > MAX_EXPANDED_CONDITIONS
            || costs.iter().any(|&cost| cost > MAX_EXPANDED_CONDITIONS);
        match compiled {
            Ok(ruleset) => {
                prop_assert!(!too_deep && !too_complex, "compiled past the bounds: depths {depths:?}, costs {costs:?}, rule {rule_cost}");
                for attributes in &contexts {
                    let mut context = serde_json::Map::new();
                    context.insert("targetingKey".into(), Value::from("u"));
                    for (index, value) in attributes.iter().enumerate() {
                        if let Some(yes) = value {
                            context.insert(format!("a{index}"), Value::from(if *yes { "yes" } else { "no" }));
                        }
                    }
                    let context = Context::from_json_value(&Value::Object(context)).unwrap();
                    let expected = graph.rule_targets.iter().any(|&target| model_in(&graph, target, attributes));
                    let evaluation = ruleset.evaluate("f", &context);
                    prop_assert_eq!(evaluation.variant, Some(if expected { "on" } else { "off" }));
                }
            }
            Err(error) => {
                let codes: BTreeSet<&str> = error.problems().iter().map(|problem| problem.code).collect();
                prop_assert!(too_deep || too_complex, "refused within the bounds: {codes:?}");
                prop_assert_eq!(codes.contains("too_deep"), too_deep, "{:?}", codes);
                prop_assert_eq!(codes.contains("too_complex"), too_complex, "{:?}", codes);
                prop_assert!(codes.iter().all(|code| matches!(*code, "too_deep" | "too_complex")), "{:?}", codes);
            }
        }
    }
}
