//! The LLM-as-judge: the messages that ask a model to grade an output against a rubric, and the
//! parsing of its answer into a score in `[0, 1]`.
//!
//! The judge is asked for a JSON object `{"score": <0..1>, "reason": "…"}`. Models do not
//! always comply, so the parser also takes a bare number, or the first `"score": n` it finds,
//! and clamps to `[0, 1]`; anything else is an error, which the runner reports as a failed
//! judge check rather than a guessed score.

use serde_json::{Value, json};

/// The judge's system prompt: fixed, so a rubric is the only thing that varies.
pub const SYSTEM_PROMPT: &str = "You grade the output of another model against a rubric. \
Read the rubric, the input the model was given and its output. Answer with a JSON object only: \
{\"score\": <a number from 0 to 1, where 1 fully meets the rubric>, \"reason\": \"<one sentence>\"}.";

/// The chat messages for one judgement.
pub fn messages(rubric: &str, input: &str, output: &str) -> Vec<Value> {
    vec![
        json!({"role": "system", "content": SYSTEM_PROMPT}),
        json!({"role": "user", "content": format!(
            "Rubric:\n{rubric}\n\nInput given to the model:\n\"\"\"\n{input}\n\"\"\"\n\nThe model's output:\n\"\"\"\n{output}\n\"\"\""
        )}),
    ]
}

/// Whether the call with this request id is in a judge's sample at `rate` (clamped to `[0, 1]`;
/// not finite is 0): the first 16 hex digits of the id's SHA-256, read as a fraction of
/// `u64::MAX`, fall below the rate. Deterministic, so a retry is judged exactly when the first try
/// was; the npm package computes the same choice and shared vectors keep the two equal.
pub fn sampled(request_id: &str, rate: f64) -> bool {
    let rate = if rate.is_finite() {
        rate.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let digest = promptflag_contracts::digest::sha256_hex(request_id.as_bytes());
    let prefix = u64::from_str_radix(&digest[..16], 16).unwrap_or(u64::MAX);
    (prefix as f64) / (u64::MAX as f64) < rate
}

/// A parsed judgement.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Judgement {
    /// The score in `[0, 1]`.
    pub score: f64,
    /// The judge's reason, when it gave one.
    #[serde(default)]
    pub reason: String,
}

/// Reads the judge's answer; `None` when it holds no score.
pub fn parse(answer: &str) -> Option<Judgement> {
    let trimmed = answer.trim();
    let trimmed = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .map(|rest| rest.trim_end().trim_end_matches("```").trim())
        .unwrap_or(trimmed);
    let clamp = |score: f64| score.is_finite().then(|| score.clamp(0.0, 1.0));
    if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        if let Some(score) = value.as_f64() {
            return clamp(score).map(|score| Judgement {
                score,
                reason: String::new(),
            });
        }
        if let Some(score) = value.get("score").and_then(Value::as_f64) {
            let reason = value
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            return clamp(score).map(|score| Judgement { score, reason });
        }
    }
    let after = &trimmed[trimmed.find("\"score\"")? + "\"score\"".len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    let end = after
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(after.len());
    let score = after[..end].parse::<f64>().ok()?;
    clamp(score).map(|score| Judgement {
        score,
        reason: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_requested_object_a_bare_number_and_a_fenced_answer() {
        assert_eq!(
            parse(r#"{"score": 0.8, "reason": "polite"}"#),
            Some(Judgement {
                score: 0.8,
                reason: String::from("polite")
            })
        );
        assert_eq!(parse("0.25").map(|j| j.score), Some(0.25));
        assert_eq!(
            parse("```json\n{\"score\": 1}\n```").map(|j| j.score),
            Some(1.0)
        );
        assert_eq!(
            parse("Sure! {\"score\": 0.4, oops").map(|j| j.score),
            Some(0.4)
        );
    }

    #[test]
    fn clamps_and_refuses_answers_without_a_score() {
        assert_eq!(parse("7").map(|j| j.score), Some(1.0));
        assert_eq!(parse("{\"score\": -2}").map(|j| j.score), Some(0.0));
        assert_eq!(parse("I think it is good"), None);
        assert_eq!(parse("{\"grade\": \"A\"}"), None);
    }

    #[test]
    fn the_rubric_input_and_output_reach_the_user_message() {
        let messages = messages("Be kind", "the ticket", "the reply");
        assert_eq!(messages.len(), 2);
        let user = messages[1]["content"].as_str().unwrap();
        assert!(
            user.contains("Be kind") && user.contains("the ticket") && user.contains("the reply")
        );
    }
}
