//! Who may read what: the read keys (the secret `READ_KEYS`) and the browser origins allowed to
//! call the evaluation routes (the var `CORS_ORIGINS`), parsed once per isolate, and the one
//! check every read route makes.
//!
//! As LaunchDarkly's SDK keys and Unleash Edge's tokens, a read key belongs to one Worker (one
//! environment) and is of one of two kinds:
//!
//! - `server` keys read everything: the ruleset with its segments' unit lists and the prompt
//!   bodies (`/v1/ruleset`, `/v1/prompts/{hash}`, what the native client and the npm client's
//!   local evaluation fetch), and the evaluation routes;
//! - `client` keys read only the evaluation routes (`/v1/resolve/{flag}`, OFREP), which answer
//!   with one variant and never with a segment's list.
//!
//! A key travels as `Authorization: Bearer <key>`. Several keys can be valid at once, so a key
//! is rotated by adding the new one, moving callers over, and removing the old one. A presented
//! key is compared with every configured key, each in constant time, and the loop does not stop
//! at a match, so the time taken says nothing about which key matched or how much of one did.
//!
//! `/healthz` and CORS preflights stay open. A Worker whose `READ_KEYS` is missing or invalid
//! (not the JSON shape, a key shorter than [`MINIMUM_KEY_BYTES`], a repeated name or key)
//! answers every gated route with a 503 that says what to fix, rather than serving openly.

use serde::Deserialize;

use crate::http::{bearer_token, constant_time_eq};
use crate::reply::Failure;

/// The shortest read key accepted: 32 bytes, 256 bits when the key is random bytes in hex or
/// base64, so a key cannot be guessed.
pub const MINIMUM_KEY_BYTES: usize = 32;

/// Read keys kept per Worker; more is a configuration mistake, and the bound keeps the
/// per-request comparison cheap.
pub const MAXIMUM_KEYS: usize = 32;

/// What a read key may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// The ruleset, the prompt bodies and the evaluation routes.
    Server,
    /// The evaluation routes only.
    Client,
}

/// One entry of `READ_KEYS`: `{"name", "key", "kind"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadKeyEntry {
    name: String,
    key: String,
    kind: KeyKind,
}

/// The parsed `READ_KEYS`.
#[derive(Debug, Clone)]
pub struct ReadKeys {
    keys: Vec<(KeyKind, Vec<u8>)>,
}

/// What a route needs from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing (`/healthz`, preflights, unknown paths).
    Nothing,
    /// A server key (`/v1/ruleset`, `/v1/prompts/{hash}`).
    ServerKey,
    /// Any read key (`/v1/resolve/{flag}`); `ofrep` says the refusal takes OFREP's error shape.
    AnyKey { ofrep: bool },
}

impl ReadKeys {
    /// Parses `READ_KEYS`; the error names what to fix (and the key, by name, when one key is at
    /// fault), and is what gated routes answer with.
    pub fn parse(text: Option<&str>) -> Result<ReadKeys, String> {
        let Some(text) = text.filter(|text| !text.trim().is_empty()) else {
            return Err(String::from(
                "the Worker has no read keys: set the secret READ_KEYS to a JSON array of \
                 {\"name\", \"key\", \"kind\": \"server\"|\"client\"}",
            ));
        };
        let entries: Vec<ReadKeyEntry> = serde_json::from_str(text).map_err(|error| {
            format!(
                "READ_KEYS is not a JSON array of {{\"name\", \"key\", \"kind\": \"server\"|\"client\"}}: {error}"
            )
        })?;
        if entries.is_empty() {
            return Err(String::from("READ_KEYS holds no key"));
        }
        if entries.len() > MAXIMUM_KEYS {
            return Err(format!(
                "READ_KEYS holds {} keys; at most {MAXIMUM_KEYS} are kept",
                entries.len()
            ));
        }
        let mut keys: Vec<(KeyKind, Vec<u8>)> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            if entry.key.len() < MINIMUM_KEY_BYTES {
                return Err(format!(
                    "read key {:?} is {} bytes; a read key has at least {MINIMUM_KEY_BYTES}",
                    entry.name,
                    entry.key.len()
                ));
            }
            if entry.key.chars().any(char::is_whitespace) {
                return Err(format!(
                    "read key {:?} holds white space, which no header carries",
                    entry.name
                ));
            }
            if entries[..index]
                .iter()
                .any(|other| other.name == entry.name)
            {
                return Err(format!("READ_KEYS names {:?} twice", entry.name));
            }
            if entries[..index].iter().any(|other| other.key == entry.key) {
                return Err(format!(
                    "read key {:?} repeats the key of an earlier entry",
                    entry.name
                ));
            }
            keys.push((entry.kind, entry.key.as_bytes().to_vec()));
        }
        Ok(ReadKeys { keys })
    }

    /// The kind of the configured key equal to `presented`, comparing with every key in
    /// constant time.
    pub fn kind_of(&self, presented: &[u8]) -> Option<KeyKind> {
        let mut found = None;
        for (kind, key) in &self.keys {
            // No early exit: every key is compared whatever matched before.
            if constant_time_eq(key, presented) {
                found = Some(*kind);
            }
        }
        found
    }
}

/// Checks a request's `Authorization` header against what the route needs.
pub fn authorize(
    read_keys: &Result<ReadKeys, String>,
    authorization: Option<&str>,
    needs: Needs,
) -> Result<(), Failure> {
    let ofrep = matches!(needs, Needs::AnyKey { ofrep: true });
    let refuse = |status: u16, code: &'static str, message: String| {
        if ofrep {
            Failure::ofrep(status, None, "GENERAL", message)
        } else {
            Failure::api(status, code, message)
        }
    };
    if needs == Needs::Nothing {
        return Ok(());
    }
    let keys = read_keys
        .as_ref()
        .map_err(|problem| refuse(503, "read_keys_invalid", problem.clone()))?;
    let Some(presented) = bearer_token(authorization) else {
        return Err(refuse(
            401,
            "unauthorized",
            String::from("this route needs a read key: send Authorization: Bearer <key>"),
        )
        .with_header("WWW-Authenticate", "Bearer"));
    };
    match (keys.kind_of(presented.as_bytes()), needs) {
        (None, _) => Err(refuse(
            401,
            "unauthorized",
            String::from("the read key is not one of this Worker's"),
        )
        .with_header("WWW-Authenticate", "Bearer")),
        (Some(KeyKind::Client), Needs::ServerKey) => Err(refuse(
            403,
            "server_key_required",
            String::from(
                "a client key reads the evaluation routes only; the ruleset and prompt bodies need a server key",
            ),
        )),
        (Some(_), _) => Ok(()),
    }
}

/// The parsed `CORS_ORIGINS`: the origins (`scheme://host[:port]`) whose pages may call the
/// evaluation routes. `*` allows every origin, and only when listed.
#[derive(Debug, Clone, Default)]
pub struct CorsOrigins {
    origins: Vec<String>,
}

impl CorsOrigins {
    /// Parses the comma-separated list (blank entries are skipped; a trailing `/` is dropped).
    pub fn parse(text: Option<&str>) -> CorsOrigins {
        let origins = text
            .unwrap_or_default()
            .split(',')
            .map(|origin| origin.trim().trim_end_matches('/'))
            .filter(|origin| !origin.is_empty())
            .map(String::from)
            .collect();
        CorsOrigins { origins }
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`: the origin itself
    /// when listed, `*` when `*` is listed, `None` when it is not allowed.
    pub fn allow(&self, origin: &str) -> Option<&str> {
        if self.origins.iter().any(|allowed| allowed == "*") {
            return Some("*");
        }
        self.origins
            .iter()
            .find(|allowed| allowed.eq_ignore_ascii_case(origin))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Reply;

    const SERVER: &str = "server-key-0123456789abcdef0123456789";
    const CLIENT: &str = "client-key-0123456789abcdef0123456789";

    fn keys() -> Result<ReadKeys, String> {
        ReadKeys::parse(Some(&format!(
            r#"[{{"name":"backend","key":"{SERVER}","kind":"server"}},
                {{"name":"web","key":"{CLIENT}","kind":"client"}}]"#
        )))
    }

    fn status(result: Result<(), Failure>) -> u16 {
        result.map_or_else(|failure| failure.status(), |()| 200)
    }

    #[test]
    fn server_keys_read_everything_and_client_keys_only_evaluations() {
        let keys = keys();
        let bearer = |key: &str| format!("Bearer {key}");
        let any = Needs::AnyKey { ofrep: false };
        assert_eq!(
            status(authorize(&keys, Some(&bearer(SERVER)), Needs::ServerKey)),
            200
        );
        assert_eq!(status(authorize(&keys, Some(&bearer(SERVER)), any)), 200);
        assert_eq!(status(authorize(&keys, Some(&bearer(CLIENT)), any)), 200);
        assert_eq!(
            status(authorize(&keys, Some(&bearer(CLIENT)), Needs::ServerKey)),
            403
        );
        assert_eq!(status(authorize(&keys, None, any)), 401);
        assert_eq!(status(authorize(&keys, Some(SERVER), any)), 401);
        let almost = format!("{}x", &SERVER[..SERVER.len() - 1]);
        assert_eq!(status(authorize(&keys, Some(&bearer(&almost)), any)), 401);
        assert_eq!(status(authorize(&keys, None, Needs::Nothing)), 200);
    }

    #[test]
    fn ofrep_routes_refuse_in_ofreps_shape() {
        let failure = authorize(&keys(), None, Needs::AnyKey { ofrep: true }).unwrap_err();
        let reply = Reply::from(failure);
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(reply.status, 401);
        assert_eq!(body["errorCode"], "GENERAL");
    }

    #[test]
    fn a_missing_or_invalid_configuration_is_a_503_naming_the_problem() {
        let unset = ReadKeys::parse(None);
        let failure = authorize(&unset, Some("Bearer x"), Needs::ServerKey).unwrap_err();
        assert_eq!(failure.status(), 503);
        let short = ReadKeys::parse(Some(r#"[{"name":"old","key":"short","kind":"server"}]"#));
        assert!(short.unwrap_err().contains("\"old\" is 5 bytes"));
        let twice = ReadKeys::parse(Some(&format!(
            r#"[{{"name":"a","key":"{SERVER}","kind":"server"}},{{"name":"b","key":"{SERVER}","kind":"client"}}]"#
        )));
        assert!(twice.unwrap_err().contains("\"b\" repeats"));
        assert!(ReadKeys::parse(Some(r#"{"name":"a"}"#)).is_err());
        assert!(ReadKeys::parse(Some("[]")).is_err());
        assert!(
            ReadKeys::parse(Some(&format!(
                r#"[{{"name":"a","key":"{SERVER}","kind":"admin"}}]"#
            )))
            .is_err()
        );
    }

    #[test]
    fn cors_allows_listed_origins_and_star_only_when_listed() {
        let listed =
            CorsOrigins::parse(Some("https://app.example.com, https://admin.example.com/"));
        assert_eq!(
            listed.allow("https://app.example.com"),
            Some("https://app.example.com")
        );
        assert_eq!(
            listed.allow("https://admin.example.com"),
            Some("https://admin.example.com")
        );
        assert_eq!(listed.allow("https://evil.example.com"), None);
        assert_eq!(
            CorsOrigins::parse(None).allow("https://app.example.com"),
            None
        );
        assert_eq!(
            CorsOrigins::parse(Some("*")).allow("https://any.test"),
            Some("*")
        );
    }
}
