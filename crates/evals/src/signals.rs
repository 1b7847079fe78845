//! Hallucination signals of one LLM call, computed from what the caller already has: the
//! response, the retrieved sources, the input, and the tool calls with the declared tool set.
//!
//! - **Citation mismatch**: the response cites a source that is not among the provided ones.
//!   A citation is a bracketed token without spaces (`[doc-7]`, `[2]`, `[source:kb/12]`) not
//!   followed by `(`, or the target of a Markdown link (`[text](https://…)`). It matches a source
//!   whose id equals it (a `source:` prefix is ignored), or, for `[n]`, the n-th source (1-based).
//! - **Tool-call mismatch**: a tool call names a tool that was not declared, or its arguments
//!   (an object, or the JSON text OpenAI sends) do not parse or fail the tool's parameter schema.
//! - **Unsupported numeric claims**: numbers in the response that appear nowhere in the input or
//!   the sources. Numbers compare by value (`1,200` is `1200`, `3.50` is `3.5`); integers below
//!   10 and list markers at the start of a line (`1.`, `2)`) are not claims.
//!
//! Each signal is `None` when its evidence was not given (no sources, no declared tools, no
//! input), so "not computed" never reads as "no hallucination". Costs are linear in the text.

use serde_json::Value;

use crate::schema;

/// A retrieved source the response may cite.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Source {
    /// Its id (`doc-7`, a URL, …).
    pub id: String,
    /// Its text (searched for numbers).
    #[serde(default)]
    pub text: String,
}

/// A declared tool.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolDeclaration {
    /// The tool's name.
    pub name: String,
    /// The JSON schema of its arguments (`true`: anything).
    #[serde(default = "accept_anything")]
    pub parameters: Value,
}

fn accept_anything() -> Value {
    Value::Bool(true)
}

/// A tool call the model made.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolCall {
    /// The tool called.
    pub name: String,
    /// Its arguments: an object, or JSON text.
    #[serde(default)]
    pub arguments: Value,
}

/// What a call gives the signals to work with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    /// The response text.
    pub response: &'a str,
    /// The input: the rendered prompt or the user's message (searched for numbers).
    pub input: Option<&'a str>,
    /// The retrieved sources, when retrieval ran.
    pub sources: Option<&'a [Source]>,
    /// The declared tools, when the call could use tools.
    pub tools: Option<&'a [ToolDeclaration]>,
    /// The tool calls made.
    pub tool_calls: &'a [ToolCall],
}

/// The three signals and what triggered them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Signals {
    /// Some cited source is not among the provided ones.
    pub citation_mismatch: Option<bool>,
    /// Some tool call is undeclared or has arguments failing its schema.
    pub tool_call_mismatch: Option<bool>,
    /// Some number in the response is absent from the input and sources.
    pub unsupported_numeric_claims: Option<bool>,
    /// The citations that matched no source.
    pub unmatched_citations: Vec<String>,
    /// One sentence per mismatched tool call.
    pub tool_call_problems: Vec<String>,
    /// The numbers (as written) found nowhere in the input or sources.
    pub unsupported_numbers: Vec<String>,
}

/// Computes every signal whose evidence is present.
pub fn compute(evidence: &Evidence<'_>) -> Signals {
    let mut signals = Signals::default();
    if let Some(sources) = evidence.sources {
        signals.unmatched_citations = citations(evidence.response)
            .into_iter()
            .filter(|cited| !cites_a_source(cited, sources))
            .collect();
        signals.citation_mismatch = Some(!signals.unmatched_citations.is_empty());
    }
    if let Some(tools) = evidence.tools {
        signals.tool_call_problems = evidence
            .tool_calls
            .iter()
            .filter_map(|call| tool_call_problem(call, tools))
            .collect();
        signals.tool_call_mismatch = Some(!signals.tool_call_problems.is_empty());
    }
    if evidence.input.is_some() || evidence.sources.is_some() {
        let mut known: Vec<f64> = Vec::new();
        if let Some(input) = evidence.input {
            known.extend(numbers(input).into_iter().map(|(_, value)| value));
        }
        for source in evidence.sources.unwrap_or_default() {
            known.extend(numbers(&source.text).into_iter().map(|(_, value)| value));
            known.extend(numbers(&source.id).into_iter().map(|(_, value)| value));
        }
        signals.unsupported_numbers = claims(evidence.response)
            .into_iter()
            .filter(|(_, value)| !known.iter().any(|k| same_number(*k, *value)))
            .map(|(text, _)| text)
            .collect();
        signals.unsupported_numeric_claims = Some(!signals.unsupported_numbers.is_empty());
    }
    signals
}

fn same_number(left: f64, right: f64) -> bool {
    (left - right).abs() <= 1e-9 * left.abs().max(right.abs()).max(1.0)
}

/// Every citation of a text, in order.
pub fn citations(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        let inside = &after[..close];
        let tail = &after[close + 1..];
        if let Some(link) = tail.strip_prefix('(') {
            if let Some(end) = link.find(')') {
                let target = link[..end].trim();
                if !target.is_empty() {
                    out.push(target.to_string());
                }
            }
        } else if !inside.is_empty()
            && inside.len() <= 128
            && !inside.chars().any(char::is_whitespace)
            && inside.chars().any(|c| c.is_alphanumeric())
        {
            out.push(inside.to_string());
        }
        rest = &after[close + 1..];
    }
    out
}

fn cites_a_source(cited: &str, sources: &[Source]) -> bool {
    let id = cited.strip_prefix("source:").unwrap_or(cited);
    if sources.iter().any(|source| source.id == id) {
        return true;
    }
    id.parse::<usize>()
        .is_ok_and(|position| position >= 1 && position <= sources.len())
}

fn tool_call_problem(call: &ToolCall, tools: &[ToolDeclaration]) -> Option<String> {
    let Some(tool) = tools.iter().find(|tool| tool.name == call.name) else {
        return Some(format!("{} is not a declared tool", call.name));
    };
    let arguments = match &call.arguments {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(value) => value,
            Err(error) => return Some(format!("{}: arguments are not JSON ({error})", call.name)),
        },
        Value::Null => Value::Object(serde_json::Map::new()),
        other => other.clone(),
    };
    let violations = schema::validate(&tool.parameters, &arguments);
    if violations.is_empty() {
        return None;
    }
    let described: Vec<String> = violations
        .iter()
        .map(|v| {
            format!(
                "{} {}",
                if v.path.is_empty() { "/" } else { &v.path },
                v.message
            )
        })
        .collect();
    Some(format!(
        "{}: arguments fail its schema: {}",
        call.name,
        described.join("; ")
    ))
}

/// Numbers of a text, as written and as values.
pub fn numbers(text: &str) -> Vec<(String, f64)> {
    scan_numbers(text, false)
}

/// The numbers of a response that count as claims (no list markers, no integers below 10).
fn claims(text: &str) -> Vec<(String, f64)> {
    scan_numbers(text, true)
        .into_iter()
        .filter(|(written, value)| written.contains('.') || value.abs() >= 10.0)
        .collect()
}

fn scan_numbers(text: &str, skip_list_markers: bool) -> Vec<(String, f64)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        let starts_number = bytes[index].is_ascii_digit()
            && (index == 0
                || !(bytes[index - 1].is_ascii_alphanumeric() || bytes[index - 1] == b'_'));
        if !starts_number {
            index += 1;
            continue;
        }
        let start = index;
        let mut end = index;
        while end < bytes.len() {
            let byte = bytes[end];
            let next_is_digit = bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
            if byte.is_ascii_digit() || ((byte == b',' || byte == b'.') && next_is_digit) {
                end += 1;
            } else {
                break;
            }
        }
        let written = &text[start..end];
        index = end;
        // Letters glued to the digits make an identifier (`gpt4o`, `A1`), not a quantity.
        if bytes
            .get(end)
            .is_some_and(|b| b.is_ascii_alphabetic() && *b != b'k' && *b != b'm')
        {
            continue;
        }
        if skip_list_markers && is_list_marker(text, start, end) {
            continue;
        }
        let normal: String = written.chars().filter(|c| *c != ',').collect();
        if let Ok(value) = normal.parse::<f64>() {
            let negative = start > 0
                && bytes[start - 1] == b'-'
                && (start == 1 || !bytes[start - 2].is_ascii_alphanumeric());
            out.push((written.to_string(), if negative { -value } else { value }));
        }
    }
    out
}

fn is_list_marker(text: &str, start: usize, end: usize) -> bool {
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..start];
    before.trim().is_empty()
        && matches!(text.as_bytes().get(end), Some(b'.' | b')'))
        && text[end..].chars().nth(1).is_none_or(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(id: &str, text: &str) -> Source {
        Source {
            id: id.to_string(),
            text: text.to_string(),
        }
    }

    #[test]
    fn citations_match_ids_positions_and_link_targets() {
        let sources = [
            source("kb-12", ""),
            source("https://acme.example/refunds", ""),
        ];
        let evidence = Evidence {
            response: "Reset it [kb-12] as shown [2] and [in the guide](https://acme.example/refunds).",
            sources: Some(&sources),
            ..Evidence::default()
        };
        let signals = compute(&evidence);
        assert_eq!(signals.citation_mismatch, Some(false));
        let evidence = Evidence {
            response: "See [kb-99], [3] and [source:kb-12]; not a citation: [a b].",
            sources: Some(&sources),
            ..Evidence::default()
        };
        let signals = compute(&evidence);
        assert_eq!(signals.citation_mismatch, Some(true));
        assert_eq!(signals.unmatched_citations, vec!["kb-99", "3"]);
    }

    #[test]
    fn tool_calls_must_be_declared_and_match_their_schema() {
        let tools = [ToolDeclaration {
            name: String::from("lookup_order"),
            parameters: json!({"type": "object", "required": ["order_id"],
                "properties": {"order_id": {"type": "string", "pattern": "^A-[0-9]+$"}}}),
        }];
        let good = [ToolCall {
            name: String::from("lookup_order"),
            arguments: json!("{\"order_id\": \"A-77\"}"),
        }];
        let evidence = Evidence {
            response: "",
            tools: Some(&tools),
            tool_calls: &good,
            ..Evidence::default()
        };
        assert_eq!(compute(&evidence).tool_call_mismatch, Some(false));
        let bad = [
            ToolCall {
                name: String::from("refund"),
                arguments: json!({}),
            },
            ToolCall {
                name: String::from("lookup_order"),
                arguments: json!({"order_id": "made-up"}),
            },
            ToolCall {
                name: String::from("lookup_order"),
                arguments: json!("{not json"),
            },
        ];
        let signals = compute(&Evidence {
            tool_calls: &bad,
            ..evidence
        });
        assert_eq!(signals.tool_call_mismatch, Some(true));
        assert_eq!(signals.tool_call_problems.len(), 3, "{signals:?}");
        assert!(signals.tool_call_problems[0].contains("not a declared tool"));
        assert!(signals.tool_call_problems[1].contains("pattern"));
        assert!(signals.tool_call_problems[2].contains("not JSON"));
    }

    #[test]
    fn numbers_in_the_response_must_come_from_the_input_or_sources() {
        let sources = [source("doc-1", "The Pro plan costs $1,200 a year.")];
        let evidence = Evidence {
            response: "1. Open settings.\n2) Pick a plan.\nPro is 1200 a year, 3 steps, or 99.5 monthly; order 4417.",
            input: Some("My order 4417 was charged twice."),
            sources: Some(&sources),
            ..Evidence::default()
        };
        let signals = compute(&evidence);
        assert_eq!(signals.unsupported_numeric_claims, Some(true));
        assert_eq!(signals.unsupported_numbers, vec!["99.5"]);
        let supported = Evidence {
            response: "Your order 4417 on gpt4o costs 1,200.00 per year.",
            ..evidence
        };
        assert_eq!(compute(&supported).unsupported_numeric_claims, Some(false));
    }

    #[test]
    fn a_signal_without_its_evidence_is_not_computed() {
        let signals = compute(&Evidence {
            response: "It costs 4242 [doc-9]",
            ..Evidence::default()
        });
        assert_eq!(signals.citation_mismatch, None);
        assert_eq!(signals.tool_call_mismatch, None);
        assert_eq!(signals.unsupported_numeric_claims, None);
    }

    #[test]
    fn number_scanning_reads_separators_decimals_and_signs() {
        let found: Vec<f64> = numbers("a -3.5 and 1,234,567 x2 and v1.2.3 end.")
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(found[..2], [-3.5, 1_234_567.0]);
        assert!(numbers("The end. 12.").iter().any(|(w, _)| w == "12"));
    }
}
