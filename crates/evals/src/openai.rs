//! A blocking client for any OpenAI-compatible chat-completions endpoint
//! (`POST {base}/chat/completions`): OpenAI, Azure OpenAI's compatible route, vLLM, Ollama,
//! LiteLLM, llama.cpp's server.
//!
//! The base URL and key come from the caller (the companion reads `PROMPTFLAG_EVAL_BASE_URL` and
//! `PROMPTFLAG_EVAL_API_KEY`). Answers are bounded: a body over [`MAX_RESPONSE_BYTES`] is an
//! error, as is a request that outlives the timeout.

use std::time::Duration;

use serde_json::{Map, Value, json};

/// The largest answer body read.
pub const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// What went wrong calling the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint could not be reached or did not answer in time.
    #[error("{url}: {message}")]
    Transport {
        /// The URL called.
        url: String,
        /// Why.
        message: String,
    },
    /// The endpoint answered with an error status.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The answer is not a chat completion.
    #[error("{url}: not a chat completion: {message}")]
    Malformed {
        /// The URL called.
        url: String,
        /// Why.
        message: String,
    },
}

/// One completion.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Completion {
    /// The first choice's message content (empty when the model only called tools).
    pub content: String,
    /// The first choice's tool calls as the endpoint returned them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<Value>,
    /// `usage.prompt_tokens`, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// `usage.completion_tokens`, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// The model that answered, as reported.
    #[serde(default)]
    pub model: String,
}

/// A chat-completions client.
#[derive(Clone)]
pub struct ChatClient {
    base_url: String,
    api_key: Option<String>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("ChatClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl ChatClient {
    /// A client for `base_url` (such as `https://api.openai.com/v1`), sending `api_key` as a
    /// bearer token when given.
    pub fn new(base_url: &str, api_key: Option<String>, timeout: Duration) -> ChatClient {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build();
        ChatClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key: api_key.filter(|key| !key.is_empty()),
            agent: config.into(),
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `messages` to `model` with the given parameters (`temperature`, `max_tokens`,
    /// `top_p`, …; `response_format: json_object` becomes OpenAI's `{"type": "json_object"}`).
    pub fn complete(
        &self,
        model: &str,
        messages: &[Value],
        parameters: &Map<String, Value>,
    ) -> Result<Completion, Error> {
        let url = format!("{}/chat/completions", self.base_url);
        let mut body = Map::new();
        for (key, value) in parameters {
            let value = match (key.as_str(), value) {
                ("response_format", Value::String(kind)) => json!({ "type": kind }),
                _ => value.clone(),
            };
            body.insert(key.clone(), value);
        }
        body.insert(String::from("model"), json!(model));
        body.insert(String::from("messages"), Value::Array(messages.to_vec()));
        let mut request = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let transport = |message: String| Error::Transport {
            url: url.clone(),
            message,
        };
        let mut response = request
            .send(Value::Object(body).to_string())
            .map_err(|e| transport(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|e| transport(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(Error::Status {
                url,
                status,
                body: text.chars().take(300).collect(),
            });
        }
        parse_completion(&text).map_err(|message| Error::Malformed { url, message })
    }
}

/// Reads a chat-completions answer.
pub fn parse_completion(text: &str) -> Result<Completion, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let message = value
        .pointer("/choices/0/message")
        .ok_or_else(|| String::from("no choices[0].message"))?;
    let content = match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(_) => return Err(String::from("choices[0].message.content is not text")),
    };
    let tool_calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(Completion {
        content,
        tool_calls,
        input_tokens: value
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64),
        output_tokens: value
            .pointer("/usage/completion_tokens")
            .and_then(Value::as_u64),
        model: value
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptflag_testkit::http::{Response, Server};
    use std::sync::{Arc, Mutex};

    #[test]
    fn sends_model_messages_parameters_and_key_and_reads_the_answer() {
        // Each request's body and Authorization header.
        type Seen = Vec<(Value, Option<String>)>;
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let record = seen.clone();
        let server = Server::start(move |request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            record
                .lock()
                .unwrap()
                .push((body, request.headers.get("authorization").cloned()));
            Response::json(
                200,
                json!({"model": "m-1", "choices": [{"message": {"role": "assistant", "content": "hi"}}],
                       "usage": {"prompt_tokens": 12, "completion_tokens": 3}}),
            )
        });
        let client = ChatClient::new(
            &format!("{}/v1/", server.url),
            Some(String::from("k")),
            Duration::from_secs(5),
        );
        let parameters = json!({"temperature": 0.2, "response_format": "json_object"});
        let completion = client
            .complete(
                "m-1",
                &[json!({"role": "user", "content": "x"})],
                parameters.as_object().unwrap(),
            )
            .unwrap();
        assert_eq!(completion.content, "hi");
        assert_eq!(completion.output_tokens, Some(3));
        assert_eq!(completion.input_tokens, Some(12));
        let seen = seen.lock().unwrap();
        let (body, auth) = &seen[0];
        assert_eq!(body["model"], "m-1");
        assert_eq!(body["temperature"], 0.2);
        assert_eq!(body["response_format"], json!({"type": "json_object"}));
        assert_eq!(auth.as_deref(), Some("Bearer k"));
    }

    #[test]
    fn error_statuses_and_malformed_answers_are_errors() {
        let server = Server::start(|request| {
            if request.path.ends_with("/bad/chat/completions") {
                Response::json(200, json!({"choices": []}))
            } else {
                Response::json(429, json!({"error": "slow down"}))
            }
        });
        let empty = Map::new();
        let limited = ChatClient::new(&server.url, None, Duration::from_secs(5));
        let error = limited.complete("m", &[], &empty).unwrap_err();
        assert!(
            matches!(error, Error::Status { status: 429, .. }),
            "{error}"
        );
        let malformed =
            ChatClient::new(&format!("{}/bad", server.url), None, Duration::from_secs(5));
        let error = malformed.complete("m", &[], &empty).unwrap_err();
        assert!(matches!(error, Error::Malformed { .. }), "{error}");
    }
}
