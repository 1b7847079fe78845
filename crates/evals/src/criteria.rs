//! An eval case's criteria, checked against one model output.
//!
//! Criteria come from `evals/<family>/eval.yaml` (`docs/evals.md`): the suite's `criteria` apply
//! to every case and a case's `expect` adds to them. A check is one of: the output matches the
//! family's output schema, contains every required phrase, contains no forbidden phrase, has the
//! expected field values, has numbers within tolerance, and stays within the token budget.
//! Phrases compare without regard to case, as lint's forbidden phrases do. Field and number
//! checks (and the schema) need the output to be JSON: the whole output, trimmed, with no code
//! fence, since that is what a caller parsing it would get.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::schema;

/// What an output must satisfy.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criteria {
    /// Phrases the output must contain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contains: Vec<String>,
    /// Phrases the output must not contain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_contains: Vec<String>,
    /// Values fields of the JSON output must equal, by path (`a.b[0]` or `/a/b/0`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Value>,
    /// Numbers of the JSON output and how far each may be from its expected value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub numbers: Vec<NumericExpectation>,
    /// The most output tokens (completion tokens) one answer may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
}

/// A number the output must hold, within a tolerance.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericExpectation {
    /// Where in the JSON output.
    pub path: String,
    /// The expected value.
    pub value: f64,
    /// The largest absolute difference accepted (default 0: exact).
    #[serde(default)]
    pub tolerance: f64,
    /// Or the largest difference as a fraction of `value` (0.05 is 5 %); the looser one counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative: Option<f64>,
}

impl Criteria {
    /// The suite's criteria with a case's added: lists concatenate, a case's field values and
    /// token budget replace the suite's.
    pub fn merged(&self, case: &Criteria) -> Criteria {
        let mut merged = self.clone();
        merged.contains.extend(case.contains.iter().cloned());
        merged
            .not_contains
            .extend(case.not_contains.iter().cloned());
        for (path, value) in &case.fields {
            merged.fields.insert(path.clone(), value.clone());
        }
        merged.numbers.extend(case.numbers.iter().cloned());
        if case.max_output_tokens.is_some() {
            merged.max_output_tokens = case.max_output_tokens;
        }
        merged
    }

    /// Whether any check needs the output to be JSON.
    fn needs_json(&self) -> bool {
        !self.fields.is_empty() || !self.numbers.is_empty()
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    /// `schema`, `json`, `contains`, `not_contains`, `field`, `number`, `token_budget` or `judge`.
    pub check: String,
    /// What was wrong, for people.
    pub message: String,
}

impl Failure {
    fn new(check: &str, message: String) -> Failure {
        Failure {
            check: check.to_string(),
            message,
        }
    }
}

/// The outcome of checking one output.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// How many checks ran.
    pub checks: u32,
    /// The ones that failed.
    pub failures: Vec<Failure>,
}

impl Verdict {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// One model answer as the checks see it.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The output text.
    pub text: &'a str,
    /// Output tokens, as the endpoint reported them (or an estimate when it did not).
    pub output_tokens: u64,
}

/// Checks an answer against criteria and, when given, the family's output schema.
pub fn check(criteria: &Criteria, output_schema: Option<&Value>, answer: Answer<'_>) -> Verdict {
    let mut verdict = Verdict::default();
    let lowered = answer.text.to_lowercase();
    for phrase in &criteria.contains {
        verdict.checks += 1;
        if !lowered.contains(&phrase.to_lowercase()) {
            verdict.failures.push(Failure::new(
                "contains",
                format!("the output does not contain {phrase:?}"),
            ));
        }
    }
    for phrase in &criteria.not_contains {
        verdict.checks += 1;
        if lowered.contains(&phrase.to_lowercase()) {
            verdict.failures.push(Failure::new(
                "not_contains",
                format!("the output contains the forbidden {phrase:?}"),
            ));
        }
    }
    if let Some(budget) = criteria.max_output_tokens {
        verdict.checks += 1;
        if answer.output_tokens > budget {
            verdict.failures.push(Failure::new(
                "token_budget",
                format!(
                    "{} output tokens, over the budget of {budget}",
                    answer.output_tokens
                ),
            ));
        }
    }
    if output_schema.is_none() && !criteria.needs_json() {
        return verdict;
    }
    verdict.checks += 1;
    let parsed: Value = match serde_json::from_str(answer.text.trim()) {
        Ok(value) => value,
        Err(error) => {
            verdict.failures.push(Failure::new(
                "json",
                format!("the output is not JSON ({error}), so its schema and fields cannot hold"),
            ));
            return verdict;
        }
    };
    if let Some(schema_value) = output_schema {
        verdict.checks += 1;
        let violations = schema::validate(schema_value, &parsed);
        if !violations.is_empty() {
            let described: Vec<String> = violations
                .iter()
                .map(|v| {
                    let at = if v.path.is_empty() { "/" } else { &v.path };
                    format!("{at}: {}", v.message)
                })
                .collect();
            verdict.failures.push(Failure::new(
                "schema",
                format!("the output breaks its schema: {}", described.join("; ")),
            ));
        }
    }
    for (path, expected) in &criteria.fields {
        verdict.checks += 1;
        match crate::lookup(&parsed, path) {
            Some(found) if found == expected => {}
            Some(found) => verdict.failures.push(Failure::new(
                "field",
                format!("{path} is {found}, expected {expected}"),
            )),
            None => verdict.failures.push(Failure::new(
                "field",
                format!("{path} is missing, expected {expected}"),
            )),
        }
    }
    for expectation in &criteria.numbers {
        verdict.checks += 1;
        let path = &expectation.path;
        match crate::lookup(&parsed, path).and_then(Value::as_f64) {
            Some(found) => {
                let allowed = expectation.tolerance.max(
                    expectation
                        .relative
                        .map_or(0.0, |fraction| (fraction * expectation.value).abs()),
                );
                if (found - expectation.value).abs() > allowed {
                    verdict.failures.push(Failure::new(
                        "number",
                        format!(
                            "{path} is {found}, more than {allowed} from {}",
                            expectation.value
                        ),
                    ));
                }
            }
            None => verdict.failures.push(Failure::new(
                "number",
                format!("{path} is not a number in the output"),
            )),
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(text: &str) -> Answer<'_> {
        Answer {
            text,
            output_tokens: 10,
        }
    }

    fn checks_of(verdict: &Verdict) -> Vec<&str> {
        verdict.failures.iter().map(|f| f.check.as_str()).collect()
    }

    #[test]
    fn phrases_compare_without_case() {
        let criteria = Criteria {
            contains: vec![String::from("Hello Ana")],
            not_contains: vec![String::from("refund")],
            ..Criteria::default()
        };
        let good = check(&criteria, None, answer("hello ana, here is the fix"));
        assert!(good.passed());
        assert_eq!(good.checks, 2);
        let bad = check(&criteria, None, answer("Hi! A REFUND is on its way."));
        assert_eq!(checks_of(&bad), vec!["contains", "not_contains"]);
    }

    #[test]
    fn the_token_budget_counts_output_tokens() {
        let criteria = Criteria {
            max_output_tokens: Some(10),
            ..Criteria::default()
        };
        assert!(check(&criteria, None, answer("short")).passed());
        let over = check(
            &criteria,
            None,
            Answer {
                text: "long",
                output_tokens: 11,
            },
        );
        assert_eq!(checks_of(&over), vec!["token_budget"]);
        assert!(over.failures[0].message.contains("11 output tokens"));
    }

    #[test]
    fn schema_fields_and_numbers_read_the_json_output() {
        let schema = json!({"type": "object", "required": ["priority"],
            "properties": {"priority": {"enum": ["low", "urgent"]}}});
        let criteria = Criteria {
            fields: BTreeMap::from([(String::from("priority"), json!("urgent"))]),
            numbers: vec![NumericExpectation {
                path: String::from("total"),
                value: 100.0,
                tolerance: 0.5,
                relative: Some(0.02),
            }],
            ..Criteria::default()
        };
        let good = check(
            &criteria,
            Some(&schema),
            answer(r#" {"priority": "urgent", "total": 101.9} "#),
        );
        assert!(good.passed(), "{good:?}");
        assert_eq!(good.checks, 4);
        let bad = check(
            &criteria,
            Some(&schema),
            answer(r#"{"priority": "high", "total": 103}"#),
        );
        assert_eq!(checks_of(&bad), vec!["schema", "field", "number"]);
        let missing = check(&criteria, Some(&schema), answer(r#"{"priority": "low"}"#));
        assert_eq!(checks_of(&missing), vec!["field", "number"]);
    }

    #[test]
    fn output_that_is_not_json_fails_once_when_json_is_needed() {
        let schema = json!({"type": "object"});
        let verdict = check(
            &Criteria::default(),
            Some(&schema),
            answer("```json\n{}\n```"),
        );
        assert_eq!(checks_of(&verdict), vec!["json"]);
    }

    #[test]
    fn a_case_adds_to_the_suite() {
        let suite = Criteria {
            not_contains: vec![String::from("a")],
            max_output_tokens: Some(5),
            ..Criteria::default()
        };
        let case = Criteria {
            not_contains: vec![String::from("b")],
            contains: vec![String::from("c")],
            max_output_tokens: Some(9),
            ..Criteria::default()
        };
        let merged = suite.merged(&case);
        assert_eq!(merged.not_contains, vec!["a", "b"]);
        assert_eq!(merged.contains, vec!["c"]);
        assert_eq!(merged.max_output_tokens, Some(9));
    }
}
