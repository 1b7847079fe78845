//! The request shapes of the Worker's admin API that carry revisions, parsed the same way by the
//! Worker and by the test fake of it: the `expected_live` query parameter of a publish and the
//! body of a rollback; and the shape of a ruleset problem (`422 invalid_ruleset`'s `problems`,
//! and every tool that reports a rejected ruleset).

use alloc::string::{String, ToString};

use serde_json::Value;

use crate::error::Error;
use crate::revision;

/// One problem of a ruleset, as the admin API reports it and `promptflag --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Where, as a dotted path (`flags.support.rules[0].serve.variant`), `$` for the document.
    pub path: String,
    /// A stable code (`unknown_variant`, `environment_mismatch`, …).
    pub code: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl Problem {
    /// Reads one entry of `problems`, with `$` and empty text for what is missing.
    pub fn from_json(value: &Value) -> Problem {
        let text = |key: &str| value[key].as_str().unwrap_or("").to_string();
        Problem {
            path: value["path"].as_str().unwrap_or("$").to_string(),
            code: text("code"),
            message: text("message"),
        }
    }
}

impl From<&promptflag_core::Problem> for Problem {
    fn from(problem: &promptflag_core::Problem) -> Problem {
        Problem {
            path: problem.path.clone(),
            code: problem.code.to_string(),
            message: problem.message.clone(),
        }
    }
}

/// `expected_live=N|none` of `PUT /admin/v1/rulesets/{env}`: `Some(n)`, or `None` for `none`
/// (or `null`: no live revision expected). Anything else, or a revision above the bound, is
/// [`Error::InvalidRequest`].
pub fn parse_expected_live(text: &str) -> Result<Option<u64>, Error> {
    match text {
        "none" | "null" => Ok(None),
        number => number
            .parse::<u64>()
            .ok()
            .filter(|revision| revision::check(*revision).is_ok())
            .map(Some)
            .ok_or(Error::InvalidRequest {
                reason: "expected_live must be a revision number or `none`",
            }),
    }
}

/// The body of `POST /admin/v1/rulesets/{env}/rollback`: `{"revision": N}` names the target;
/// `{}`, `{"revision": null}` or an empty body ask for the kept revision before the live one.
/// Anything else is [`Error::InvalidRequest`].
pub fn parse_rollback_request(body: &[u8]) -> Result<Option<u64>, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let bad = || Error::InvalidRequest {
        reason: "the body must be {\"revision\": N} or {}",
    };
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return Err(bad());
    };
    if object.keys().any(|key| key != "revision") {
        return Err(bad());
    }
    match object.get("revision") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .filter(|revision| *revision <= revision::MAX_REVISION)
            .map(Some)
            .ok_or_else(bad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_live_is_a_revision_or_none() {
        assert_eq!(parse_expected_live("7"), Ok(Some(7)));
        assert_eq!(parse_expected_live("none"), Ok(None));
        assert_eq!(parse_expected_live("null"), Ok(None));
        for bad in ["x", "", "-1", "9007199254740992"] {
            assert_eq!(parse_expected_live(bad).unwrap_err().code(), "bad_request");
        }
    }

    #[test]
    fn rollback_requests_name_a_revision_or_nothing() {
        assert_eq!(parse_rollback_request(b""), Ok(None));
        assert_eq!(parse_rollback_request(b" \n"), Ok(None));
        assert_eq!(parse_rollback_request(b"{}"), Ok(None));
        assert_eq!(parse_rollback_request(br#"{"revision": null}"#), Ok(None));
        assert_eq!(parse_rollback_request(br#"{"revision": 4}"#), Ok(Some(4)));
        for bad in [
            &b"{"[..],
            b"[]",
            br#"{"revision": "4"}"#,
            br#"{"revision": 4, "x": 1}"#,
            br#"{"revision": 9007199254740992}"#,
        ] {
            assert_eq!(
                parse_rollback_request(bad).unwrap_err().code(),
                "bad_request"
            );
        }
    }
}
