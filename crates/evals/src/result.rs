//! The recorded result of an eval suite run for one content id, and the publish gate's check.
//!
//! A result is stored as `evals/results/<content id>.json` in the prompt repository
//! (`docs/evals.md`): content-addressed by the prompt version's content id (body hash and
//! model configuration), carrying the suite hash it was run under, and sealed by
//! `result_hash`, the SHA-256 of its canonical JSON without that field, so an edited result
//! is detected. Results carry no time or machine, so a replayed run reproduces the committed
//! file byte for byte and CI can check it is current.

use serde_json::Value;

use crate::criteria::Failure;
use promptflag_contracts::digest::{canonical_json, sha256_hex};

/// The result file format version.
pub const SCHEMA: u32 = 1;

/// One case's outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CaseResult {
    /// The case id.
    pub id: String,
    /// Whether every check (the judge included) passed.
    pub passed: bool,
    /// Output tokens of the answer.
    pub output_tokens: u64,
    /// The judge's score, when the suite has a judge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_score: Option<f64>,
    /// The failed checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
}

/// A suite run for one prompt version.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalResult {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The content id the result is for.
    pub content_id: String,
    /// `family@version`, for people.
    pub prompt: String,
    /// The SHA-256 of the body.
    pub body_sha256: String,
    /// The model the outputs came from.
    pub model: String,
    /// The suite hash it was run under.
    pub suite_hash: String,
    /// `live` (an endpoint answered) or `replay` (recorded outputs).
    pub mode: String,
    /// Whether at least `min_pass_rate` of the cases passed.
    pub passed: bool,
    /// Cases that passed.
    pub passed_cases: u32,
    /// Cases run.
    pub total_cases: u32,
    /// The suite's bar.
    pub min_pass_rate: f64,
    /// Every case.
    pub cases: Vec<CaseResult>,
    /// SHA-256 of the canonical JSON of everything above.
    #[serde(default)]
    pub result_hash: String,
}

impl EvalResult {
    /// The hash of the result's content (everything but `result_hash`).
    pub fn content_hash(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.remove("result_hash");
        }
        sha256_hex(canonical_json(&value).as_bytes())
    }

    /// Sets `result_hash`.
    pub fn seal(&mut self) {
        self.result_hash = self.content_hash();
    }

    /// The file text: pretty JSON and a final newline.
    pub fn to_file_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Why a publish gate refuses a prompt version's eval evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No result for the content id.
    Missing,
    /// The file does not parse as a result.
    Unreadable(String),
    /// `result_hash` does not match the content: the file was edited.
    Edited,
    /// The result is for another content id (the file was renamed or copied).
    OtherContent(String),
    /// The result was recorded under other criteria.
    StaleSuite,
    /// The suite failed.
    Failed {
        /// Cases that passed.
        passed: u32,
        /// Cases run.
        total: u32,
    },
}

impl Refusal {
    /// A stable code for machines (`eval_result_missing`, `eval_result_unreadable`,
    /// `eval_result_edited`, `eval_result_other_content`, `eval_suite_changed`, `eval_failed`).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Missing => "eval_result_missing",
            Refusal::Unreadable(_) => "eval_result_unreadable",
            Refusal::Edited => "eval_result_edited",
            Refusal::OtherContent(_) => "eval_result_other_content",
            Refusal::StaleSuite => "eval_suite_changed",
            Refusal::Failed { .. } => "eval_failed",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Missing => write!(f, "has no eval result (run `promptflag evals run`)"),
            Refusal::Unreadable(why) => write!(f, "has an unreadable eval result ({why})"),
            Refusal::Edited => write!(
                f,
                "has an eval result whose result_hash does not match its content (edited by hand?)"
            ),
            Refusal::OtherContent(other) => {
                write!(f, "has an eval result file that records content {other}")
            }
            Refusal::StaleSuite => write!(
                f,
                "has an eval result recorded under other criteria (the suite changed; run the evals again)"
            ),
            Refusal::Failed { passed, total } => {
                write!(f, "failed its evals ({passed} of {total} case(s) passed)")
            }
        }
    }
}

/// The gate's check of a result file's text for a content id and the current suite hash.
pub fn check(
    text: Option<&str>,
    content_id: &str,
    suite_hash: &str,
) -> Result<EvalResult, Refusal> {
    let text = text.ok_or(Refusal::Missing)?;
    let result: EvalResult =
        serde_json::from_str(text).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    if result.content_hash() != result.result_hash {
        return Err(Refusal::Edited);
    }
    if result.content_id != content_id {
        return Err(Refusal::OtherContent(result.content_id));
    }
    if result.suite_hash != suite_hash {
        return Err(Refusal::StaleSuite);
    }
    if !result.passed {
        return Err(Refusal::Failed {
            passed: result.passed_cases,
            total: result.total_cases,
        });
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(passed: bool) -> EvalResult {
        let mut result = EvalResult {
            schema: SCHEMA,
            content_id: String::from("c1"),
            prompt: String::from("f@1.0.0"),
            body_sha256: String::from("b"),
            model: String::from("m"),
            suite_hash: String::from("s1"),
            mode: String::from("replay"),
            passed,
            passed_cases: u32::from(passed),
            total_cases: 1,
            min_pass_rate: 1.0,
            cases: vec![CaseResult {
                id: String::from("a"),
                passed,
                output_tokens: 3,
                judge_score: Some(0.9),
                failures: Vec::new(),
            }],
            result_hash: String::new(),
        };
        result.seal();
        result
    }

    #[test]
    fn a_sealed_passing_result_for_the_content_and_suite_passes() {
        let text = sealed(true).to_file_text();
        assert!(check(Some(&text), "c1", "s1").is_ok());
    }

    #[test]
    fn every_reason_to_refuse() {
        assert_eq!(check(None, "c1", "s1"), Err(Refusal::Missing));
        assert!(matches!(
            check(Some("{"), "c1", "s1"),
            Err(Refusal::Unreadable(_))
        ));
        let text = sealed(true).to_file_text();
        assert_eq!(
            check(Some(&text), "c2", "s1"),
            Err(Refusal::OtherContent(String::from("c1")))
        );
        assert_eq!(check(Some(&text), "c1", "s2"), Err(Refusal::StaleSuite));
        let edited = text.replace("\"output_tokens\": 3", "\"output_tokens\": 2");
        assert_ne!(edited, text);
        assert_eq!(check(Some(&edited), "c1", "s1"), Err(Refusal::Edited));
        let failed = sealed(false).to_file_text();
        assert_eq!(
            check(Some(&failed), "c1", "s1"),
            Err(Refusal::Failed {
                passed: 0,
                total: 1
            })
        );
        // Flipping `passed` by hand is an edit.
        let forged = failed.replace(
            "\"passed\": false,\n  \"passed_cases\"",
            "\"passed\": true,\n  \"passed_cases\"",
        );
        assert_ne!(forged, failed);
        assert_eq!(check(Some(&forged), "c1", "s1"), Err(Refusal::Edited));
    }
}
