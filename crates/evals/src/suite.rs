//! The eval suite of a prompt family, `evals/<family>/eval.yaml` (`docs/evals.md`): a golden set
//! of cases (template variables, an optional extra user message) and the criteria every output
//! must meet, versioned in git beside the prompt.
//!
//! The suite's identity is [`suite_hash`]: the SHA-256 of the canonical JSON of the suite and
//! the output schema it checks against, so a result recorded under other criteria no longer
//! counts once the criteria change, while comments and formatting do not matter.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::criteria::Criteria;
use promptflag_contracts::digest::{canonical_json, sha256_hex};

/// The most cases one suite may hold, so a run's cost is bounded.
pub const MAX_CASES: usize = 1000;

/// `evals/<family>/eval.yaml`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Criteria every case's output must meet.
    #[serde(default)]
    pub criteria: Criteria,
    /// Check every output against the family's `output_schema` when it has one (default true).
    #[serde(default = "yes")]
    pub output_schema: bool,
    /// An LLM judge grading every output against a rubric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeConfig>,
    /// The share of cases that must pass for the suite to pass (default 1: all).
    #[serde(default = "all")]
    pub min_pass_rate: f64,
    /// The golden set.
    pub cases: Vec<Case>,
}

fn yes() -> bool {
    true
}

fn all() -> f64 {
    1.0
}

/// One golden case.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique within the suite: letters, digits, `-`, `_`, `.`.
    pub id: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Values of the template variables (`{{name}}` in the body).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// An extra user message sent after the prompt, for prompts that take one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Criteria of this case, added to the suite's.
    #[serde(default)]
    pub expect: Criteria,
}

/// The judge of a suite.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    /// What a good output is, in words the judge model reads.
    pub rubric: String,
    /// The lowest passing score, in `[0, 1]`.
    pub threshold: f64,
    /// The judge model (default: the prompt version's model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl Suite {
    /// Decodes a suite from its JSON form (the YAML file converted) and checks it: at least one
    /// case and at most [`MAX_CASES`], unique well-formed case ids, rates within `[0, 1]`.
    pub fn from_json(value: Value) -> Result<Suite, String> {
        let suite: Suite = serde_json::from_value(value).map_err(|e| e.to_string())?;
        if suite.cases.is_empty() {
            return Err(String::from("the suite has no cases"));
        }
        if suite.cases.len() > MAX_CASES {
            return Err(format!(
                "the suite has {} cases, more than the limit of {MAX_CASES}",
                suite.cases.len()
            ));
        }
        if !(0.0..=1.0).contains(&suite.min_pass_rate) {
            return Err(String::from("min_pass_rate must be within [0, 1]"));
        }
        if let Some(judge) = &suite.judge
            && (!(0.0..=1.0).contains(&judge.threshold) || judge.rubric.trim().is_empty())
        {
            return Err(String::from(
                "judge needs a rubric and a threshold within [0, 1]",
            ));
        }
        let mut seen = BTreeSet::new();
        for case in &suite.cases {
            if case.id.is_empty()
                || !case
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                return Err(format!(
                    "case id {:?} must be letters, digits, '-', '_' or '.'",
                    case.id
                ));
            }
            if !seen.insert(case.id.as_str()) {
                return Err(format!("two cases have the id {:?}", case.id));
            }
        }
        Ok(suite)
    }
}

/// The identity of a suite and the output schema it checks against.
pub fn suite_hash(suite: &Suite, output_schema: Option<&Value>) -> String {
    let value = json!({
        "suite": serde_json::to_value(suite).unwrap_or(Value::Null),
        "output_schema": if suite.output_schema { output_schema.cloned() } else { None },
    });
    sha256_hex(canonical_json(&value).as_bytes())
}

/// Renders a template: every `{{ name }}` replaced by its value; unknown names stay as written.
pub fn render(template: &str, variables: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                match variables.get(name) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The chat messages of a rendered prompt body. A body written in sections (`## System`,
/// `## Messages`, `## Tools`, as the example repository's are) sends the System section as the
/// system message and the rest as the user message; a body without a `## System` heading is
/// one user message. The case's `input`, when given, follows as a second user message.
pub fn messages(rendered: &str, input: Option<&str>) -> Vec<Value> {
    let mut system = String::new();
    let mut user = String::new();
    let mut in_system = false;
    let mut saw_system = false;
    for line in rendered.lines() {
        let heading = line.trim_end();
        if heading.eq_ignore_ascii_case("## system") {
            in_system = true;
            saw_system = true;
            continue;
        }
        if heading.starts_with("## ") {
            in_system = false;
            if heading.eq_ignore_ascii_case("## messages") {
                continue;
            }
        }
        let target = if in_system { &mut system } else { &mut user };
        target.push_str(line);
        target.push('\n');
    }
    let mut out = Vec::new();
    if saw_system && !system.trim().is_empty() {
        out.push(json!({"role": "system", "content": system.trim()}));
    }
    if !user.trim().is_empty() {
        out.push(json!({"role": "user", "content": user.trim()}));
    }
    if let Some(input) = input {
        out.push(json!({"role": "user", "content": input}));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(value: Value) -> Result<Suite, String> {
        Suite::from_json(value)
    }

    #[test]
    fn a_suite_needs_unique_well_formed_cases_and_rates_in_range() {
        let ok = suite(json!({"cases": [{"id": "a", "variables": {"x": "1"}}]})).unwrap();
        assert!(ok.output_schema);
        assert_eq!(ok.min_pass_rate, 1.0);
        assert!(
            suite(json!({"cases": []}))
                .unwrap_err()
                .contains("no cases")
        );
        assert!(
            suite(json!({"cases": [{"id": "a"}, {"id": "a"}]}))
                .unwrap_err()
                .contains("two cases")
        );
        assert!(
            suite(json!({"cases": [{"id": "a b"}]}))
                .unwrap_err()
                .contains("case id")
        );
        assert!(suite(json!({"min_pass_rate": 2, "cases": [{"id": "a"}]})).is_err());
        assert!(
            suite(json!({"judge": {"rubric": "x", "threshold": 1.5}, "cases": [{"id": "a"}]}))
                .is_err()
        );
        assert!(suite(json!({"cases": [{"id": "a", "expect": {"contain": ["typo"]}}]})).is_err());
    }

    #[test]
    fn the_hash_follows_criteria_and_schema_not_formatting() {
        let one = suite(json!({"cases": [{"id": "a"}]})).unwrap();
        let two = suite(json!({"cases": [{"id": "a", "expect": {"contains": ["x"]}}]})).unwrap();
        let schema = json!({"type": "object"});
        assert_eq!(suite_hash(&one, None), suite_hash(&one.clone(), None));
        assert_ne!(suite_hash(&one, None), suite_hash(&two, None));
        assert_ne!(suite_hash(&one, None), suite_hash(&one, Some(&schema)));
    }

    #[test]
    fn rendering_and_messages() {
        let variables = BTreeMap::from([(String::from("name"), String::from("Ana"))]);
        assert_eq!(
            render("Hi {{name}} and {{ name }}, {{other}}", &variables),
            "Hi Ana and Ana, {{other}}"
        );
        assert_eq!(
            render("open {{ never closed", &variables),
            "open {{ never closed"
        );
        let body = "## System\n\nBe brief.\n\n## Messages\n\nTicket: x\n\n## Tools\n\nlookup\n";
        let messages = messages(body, Some("extra"));
        assert_eq!(
            messages[0],
            json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(messages[1]["role"], "user");
        assert_eq!(messages[1]["content"], "Ticket: x\n\n## Tools\n\nlookup");
        assert_eq!(messages[2], json!({"role": "user", "content": "extra"}));
        assert_eq!(
            super::messages("Just text", None),
            vec![json!({"role": "user", "content": "Just text"})]
        );
    }
}
