//! The two requests the client makes of the edge: the ruleset (with ETag) and a prompt body,
//! both with the read key when one is configured.

use std::time::Duration;

use crate::error::ClientError;

/// Rulesets are at most 16 MiB (core's limit); bodies at most 1 MiB.
const MAX_RULESET_BYTES: u64 = 16 * 1024 * 1024;
const MAX_BODY_BYTES: u64 = 1024 * 1024;

pub(crate) enum Fetched {
    NotModified,
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
        /// The `X-Promptflag-Signature` header, when the edge sent one.
        signature: Option<String>,
    },
}

#[derive(Clone)]
pub(crate) struct Edge {
    agent: ureq::Agent,
    base_url: String,
    /// `Bearer <read key>`, the `Authorization` header of the edge's reads.
    authorization: Option<String>,
}

impl Edge {
    pub(crate) fn new(base_url: &str, read_key: Option<&str>, timeout: Duration) -> Edge {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build();
        Edge {
            agent: config.into(),
            base_url: base_url.trim_end_matches('/').to_string(),
            authorization: read_key.map(|key| format!("Bearer {key}")),
        }
    }

    /// A GET of the edge, with the read key when there is one.
    fn get(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let request = self.agent.get(url);
        match &self.authorization {
            Some(authorization) => request.header("Authorization", authorization),
            None => request,
        }
    }

    pub(crate) fn ruleset(&self, etag: Option<&str>) -> Result<Fetched, ClientError> {
        let url = format!("{}/v1/ruleset", self.base_url);
        let mut request = self.get(&url);
        if let Some(etag) = etag {
            request = request.header("If-None-Match", etag);
        }
        let mut response = request.call().map_err(|e| network(&url, e))?;
        match response.status().as_u16() {
            304 => Ok(Fetched::NotModified),
            200 => {
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let etag = header("etag");
                let signature = header(promptflag_contracts::signing::SIGNATURE_HEADER);
                let bytes = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_RULESET_BYTES)
                    .read_to_vec()
                    .map_err(|e| network(&url, e))?;
                Ok(Fetched::Body {
                    bytes,
                    etag,
                    signature,
                })
            }
            status => Err(ClientError::Status { url, status }),
        }
    }

    pub(crate) fn prompt_body(&self, hash: &str) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}/v1/prompts/{hash}", self.base_url);
        let mut response = self.get(&url).call().map_err(|e| network(&url, e))?;
        match response.status().as_u16() {
            200 => response
                .body_mut()
                .with_config()
                .limit(MAX_BODY_BYTES)
                .read_to_vec()
                .map_err(|e| network(&url, e)),
            status => Err(ClientError::Status { url, status }),
        }
    }

    pub(crate) fn post_json(
        &self,
        url: &str,
        body: &[u8],
        bearer: Option<&str>,
    ) -> Result<u16, ClientError> {
        let mut request = self
            .agent
            .post(url)
            .header("content-type", "application/json");
        if let Some(token) = bearer {
            request = request.header("authorization", &format!("Bearer {token}"));
        }
        let response = request.send(body).map_err(|e| network(url, e))?;
        Ok(response.status().as_u16())
    }
}

fn network(url: &str, error: ureq::Error) -> ClientError {
    ClientError::Network {
        url: url.to_string(),
        message: error.to_string(),
    }
}
