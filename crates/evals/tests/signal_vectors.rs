//! Shared vectors for the hallucination signals and the judge's sampling: evidence → signals and
//! request id/rate → sampled, written to `tests/signal-vectors.json`. The npm package walks the
//! same file (`npm/tests/signals.test.mjs`), so its port of the rules can never drift from this
//! crate's. The file is compared here with what this crate answers now; `UPDATE_EXPECT=1`
//! rewrites it.

use promptflag_evals::judge;
use promptflag_evals::signals::{self, Evidence, Source, ToolCall, ToolDeclaration};
use serde_json::{Value, json};

/// The evidence of each vector, as the npm helper takes it (`response`, `input?`, `sources?`,
/// `toolCalls?`, `declaredTools?`).
fn evidence_cases() -> Vec<(&'static str, Value)> {
    let order_tool = json!({"name": "lookup_order", "parameters": {"type": "object",
        "required": ["order_id"], "additionalProperties": false,
        "properties": {"order_id": {"type": "string", "pattern": "^A-[0-9]+$"},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 10}}}});
    let kinds_tool = json!({"name": "classify", "parameters": {"type": "object", "properties": {
        "label": {"enum": ["billing", "bug"]}, "tags": {"type": "array", "items": {"type": "string"},
            "maxItems": 2, "uniqueItems": true},
        "score": {"anyOf": [{"type": "number", "multipleOf": 0.5}, {"type": "null"}]}}}});
    let sources = json!([{"id": "kb-12", "text": "The Pro plan costs $1,200 a year."},
        {"id": "https://acme.example/refunds", "text": "Refunds within 30 days."}]);
    // Schemas nested either side of the validator's depth bound, with a value as deep.
    let nested = |levels: usize| {
        let (mut schema, mut value) = (json!({"type": "string"}), json!("leaf"));
        for _ in 0..levels {
            schema = json!({"type": "object", "properties": {"next": schema}});
            value = json!({"next": value});
        }
        (schema, value)
    };
    let (shallow_schema, shallow_value) = nested(60);
    let (deep_schema, deep_value) = nested(70);
    let deep_tools = json!([{"name": "shallow", "parameters": shallow_schema},
        {"name": "deep", "parameters": deep_schema}]);
    vec![
        (
            "schemas within the depth bound",
            json!({"response": "", "declaredTools": deep_tools,
                "toolCalls": [{"name": "shallow", "arguments": shallow_value}]}),
        ),
        (
            "schemas past the depth bound",
            json!({"response": "", "declaredTools": deep_tools,
                "toolCalls": [{"name": "deep", "arguments": deep_value}]}),
        ),
        (
            "own properties only",
            json!({"response": "", "declaredTools": [{"name": "t", "parameters":
                {"type": "object", "required": ["toString", "constructor"]}}],
                "toolCalls": [{"name": "t", "arguments": {}}]}),
        ),
        (
            "nothing given",
            json!({"response": "It costs 4242 [doc-9]"}),
        ),
        (
            "citations that match",
            json!({"response":
            "Reset it [kb-12] as shown [2] and [in the guide](https://acme.example/refunds).",
            "sources": sources}),
        ),
        (
            "citations that do not match",
            json!({"response":
            "See [kb-99], [3], [+2], [0] and [source:kb-12]; not a citation: [a b], [--], [](x).",
            "sources": sources}),
        ),
        (
            "a link to an unknown page",
            json!({"response": "Read [this](https://other.example/x)",
            "sources": sources}),
        ),
        (
            "unclosed brackets",
            json!({"response": "[kb-12 and ( [x](y", "sources": sources}),
        ),
        (
            "numbers supported and not",
            json!({"response":
            "1. Open settings.\n2) Pick a plan.\nPro is 1200 a year, 3 steps, or 99.5 monthly; order 4417.",
            "input": "My order 4417 was charged twice.", "sources": sources}),
        ),
        (
            "numbers by value",
            json!({"response":
            "Your order 4417 on gpt4o costs 1,200.00 per year, 30 days, -5 or 12k, v1.2.3, x2.",
            "input": "order 4417, -5 and 12", "sources": sources}),
        ),
        (
            "numbers against the input only",
            json!({"response": "About 250 users and 0.5 %; 7 left.",
            "input": "We have 250 users."}),
        ),
        (
            "list markers and sentence ends",
            json!({"response": "  10. Ten\n11) Eleven\nThe end. 12.\n13.x",
            "input": ""}),
        ),
        (
            "unicode around numbers",
            json!({"response": "Prix : 45 € — ça fait 45,5 ou ５０ 。 [référence-1]",
            "input": "45", "sources": [{"id": "référence-1", "text": ""}]}),
        ),
        (
            "unicode white space",
            json!({"response":
                "[a\u{85}b] [\u{feff}kb] [ok](\u{85}kb-12\u{85})\n\u{85}20.\u{85}x\n30.\u{feff}y\n40.\u{1F600}",
                "sources": sources}),
        ),
        (
            "tool calls that conform",
            json!({"response": "", "declaredTools": [order_tool, kinds_tool],
            "toolCalls": [{"name": "lookup_order", "arguments": "{\"order_id\": \"A-77\", \"quantity\": 2}"},
                {"name": "classify", "arguments": {"label": "bug", "tags": ["a", "b"], "score": 1.5}},
                {"name": "classify", "arguments": {"score": null}}]}),
        ),
        (
            "an undeclared tool",
            json!({"response": "", "declaredTools": [order_tool],
            "toolCalls": [{"name": "refund", "arguments": {}}]}),
        ),
        (
            "arguments that fail",
            json!({"response": "", "declaredTools": [order_tool, kinds_tool],
            "toolCalls": [{"name": "lookup_order", "arguments": {"order_id": "made-up"}},
                {"name": "lookup_order", "arguments": "{not json"},
                {"name": "lookup_order", "arguments": {"order_id": "A-1", "quantity": 11}},
                {"name": "lookup_order", "arguments": {"order_id": "A-1", "extra": true}},
                {"name": "lookup_order"},
                {"name": "classify", "arguments": {"label": "other"}},
                {"name": "classify", "arguments": {"tags": ["a", "a"]}},
                {"name": "classify", "arguments": {"score": 0.3}}]}),
        ),
        (
            "declared tools and no calls",
            json!({"response": "fine", "declaredTools": []}),
        ),
        (
            "a tool that takes anything",
            json!({"response": "", "declaredTools": [{"name": "free"}],
            "toolCalls": [{"name": "free", "arguments": "[1, 2]"}]}),
        ),
    ]
}

fn parse<T: serde::de::DeserializeOwned>(value: Option<&Value>) -> Option<T> {
    value.map(|v| serde_json::from_value(v.clone()).expect("a vector's evidence parses"))
}

fn signal_vectors() -> Vec<Value> {
    evidence_cases()
        .into_iter()
        .map(|(name, given)| {
            let sources: Option<Vec<Source>> = parse(given.get("sources"));
            let tools: Option<Vec<ToolDeclaration>> = parse(given.get("declaredTools"));
            let calls: Vec<ToolCall> = parse(given.get("toolCalls")).unwrap_or_default();
            let computed = signals::compute(&Evidence {
                response: given["response"].as_str().expect("a response"),
                input: given.get("input").and_then(Value::as_str),
                sources: sources.as_deref(),
                tools: tools.as_deref(),
                tool_calls: &calls,
            });
            json!({
                "name": name,
                "evidence": given,
                "signals": {
                    "citation_mismatch": computed.citation_mismatch,
                    "tool_call_mismatch": computed.tool_call_mismatch,
                    "unsupported_numeric_claims": computed.unsupported_numeric_claims,
                    "unmatched_citations": computed.unmatched_citations,
                    "tool_call_problems": computed.tool_call_problems.len(),
                    "unsupported_numbers": computed.unsupported_numbers,
                },
            })
        })
        .collect()
}

fn sampling_vectors() -> Vec<Value> {
    let mut out = Vec::new();
    for rate in [0.0, 0.05, 0.5, 0.999, 1.0, 1.5, -1.0] {
        for index in 0..12 {
            let request_id = format!("req-{index}-{}", (rate * 1000.0) as i64);
            out.push(json!({"request_id": request_id, "rate": rate,
                "sampled": judge::sampled(&request_id, rate)}));
        }
    }
    for request_id in ["", "ünïcode-id", "00000000-0000-0000-0000-000000000000"] {
        out.push(json!({"request_id": request_id, "rate": 0.3,
            "sampled": judge::sampled(request_id, 0.3)}));
    }
    out
}

#[test]
fn the_shared_vectors_file_is_current() {
    let document = json!({
        "note": "Generated by crates/evals/tests/signal_vectors.rs (UPDATE_EXPECT=1); walked by npm/tests/signals.test.mjs.",
        "signals": signal_vectors(),
        "sampling": sampling_vectors(),
    });
    let text = format!(
        "{}\n",
        serde_json::to_string_pretty(&document).expect("the vectors serialize")
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/signal-vectors.json");
    if std::env::var("UPDATE_EXPECT").as_deref() == Ok("1") {
        std::fs::write(path, &text).expect("the vectors file is writable");
    }
    let stored = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        stored == text,
        "tests/signal-vectors.json is not what this crate answers now; rerun with UPDATE_EXPECT=1 and commit it"
    );
}

#[test]
fn the_vectors_cover_both_answers_of_every_signal_and_of_sampling() {
    let vectors = signal_vectors();
    for field in [
        "citation_mismatch",
        "tool_call_mismatch",
        "unsupported_numeric_claims",
    ] {
        for wanted in [json!(true), json!(false), Value::Null] {
            assert!(
                vectors.iter().any(|v| v["signals"][field] == wanted),
                "no vector has {field} = {wanted}"
            );
        }
    }
    let sampling = sampling_vectors();
    assert!(sampling.iter().any(|v| v["sampled"] == json!(true)));
    assert!(sampling.iter().any(|v| v["sampled"] == json!(false)));
}
