//! A sampled LLM-as-judge for live traffic: a configured share of calls is graded against a
//! rubric by any OpenAI-compatible endpoint, and the score goes on the call's event
//! (`judge_score`), where the collector averages it per variant into the `judge_score` metric
//! rollout policies can guard on.
//!
//! Sampling is decided by the call's `request_id` (its SHA-256 read as a fraction), not by a
//! random draw, so the same call is always either judged or not, retries included, and a rate
//! of 0.05 judges about 5 % of calls.

use promptflag_evals::judge::{self, Judgement};
use promptflag_evals::openai::{self, ChatClient};
use serde_json::json;

/// A judge's configuration.
#[derive(Debug, Clone)]
pub struct JudgeSampler {
    client: ChatClient,
    model: String,
    rubric: String,
    threshold: f64,
    rate: f64,
}

/// One judged call.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The judge's score and reason.
    pub judgement: Judgement,
    /// Whether the score reaches the threshold.
    pub passed: bool,
}

impl JudgeSampler {
    /// A judge calling `model` through `client`; `rate` and `threshold` are clamped to `[0, 1]`.
    pub fn new(
        client: ChatClient,
        model: &str,
        rubric: &str,
        threshold: f64,
        rate: f64,
    ) -> JudgeSampler {
        let unit = |value: f64| {
            if value.is_finite() {
                value.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        JudgeSampler {
            client,
            model: model.to_string(),
            rubric: rubric.to_string(),
            threshold: unit(threshold),
            rate: unit(rate),
        }
    }

    /// Whether the call with this id is in the sample.
    pub fn sampled(&self, request_id: &str) -> bool {
        judge::sampled(request_id, self.rate)
    }

    /// Grades the call when it is in the sample (`Ok(None)` when it is not); an answer without a
    /// score is `Ok(None)` too, so a confused judge never becomes a score.
    pub fn judge(
        &self,
        request_id: &str,
        input: &str,
        output: &str,
    ) -> Result<Option<Verdict>, openai::Error> {
        if !self.sampled(request_id) {
            return Ok(None);
        }
        let messages = judge::messages(&self.rubric, input, output);
        let parameters = json!({"temperature": 0});
        let empty = serde_json::Map::new();
        let completion = self.client.complete(
            &self.model,
            &messages,
            parameters.as_object().unwrap_or(&empty),
        )?;
        Ok(judge::parse(&completion.content).map(|judgement| Verdict {
            passed: judgement.score >= self.threshold,
            judgement,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptflag_testkit::http::{Response, Server};
    use std::time::Duration;

    fn sampler(url: &str, rate: f64) -> JudgeSampler {
        let client = ChatClient::new(url, None, Duration::from_secs(5));
        JudgeSampler::new(client, "judge-model", "Be accurate", 0.7, rate)
    }

    #[test]
    fn sampling_follows_the_request_id_and_the_rate() {
        let half = sampler("http://127.0.0.1:9", 0.5);
        let sampled = (0..2000)
            .filter(|i| half.sampled(&format!("request-{i}")))
            .count();
        assert!((800..1200).contains(&sampled), "{sampled}");
        assert_eq!(half.sampled("request-7"), half.sampled("request-7"));
        assert!((0..200).all(|i| !sampler("http://127.0.0.1:9", 0.0).sampled(&format!("r{i}"))));
        assert!((0..200).all(|i| sampler("http://127.0.0.1:9", 1.0).sampled(&format!("r{i}"))));
    }

    #[test]
    fn a_sampled_call_is_graded_and_compared_with_the_threshold() {
        let server = Server::start(|request| {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(body["model"], "judge-model");
            let user = body["messages"][1]["content"].as_str().unwrap().to_string();
            let score = if user.contains("wrong") { 0.2 } else { 0.9 };
            Response::json(
                200,
                json!({"choices": [{"message": {"content":
                format!("{{\"score\": {score}, \"reason\": \"r\"}}")}}]}),
            )
        });
        let judge = sampler(&server.url, 1.0);
        let good = judge
            .judge("a", "question", "right answer")
            .unwrap()
            .unwrap();
        assert!(good.passed);
        assert_eq!(good.judgement.score, 0.9);
        let bad = judge
            .judge("b", "question", "wrong answer")
            .unwrap()
            .unwrap();
        assert!(!bad.passed);
        assert_eq!(
            sampler(&server.url, 0.0).judge("a", "q", "o").unwrap(),
            None
        );
    }
}
