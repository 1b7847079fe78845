//! Small HTTP and text helpers with no JavaScript in them: conditional requests, bearer tokens
//! compared in constant time, names and hashes that may appear in paths and KV keys, entity tags
//! and RFC 3339 timestamps.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// True when an `If-None-Match` header value matches `etag` (weak comparison, RFC 9110 §13.1.2:
/// `W/` prefixes are ignored; `*` matches any current representation).
pub fn if_none_match(header: Option<&str>, etag: &str) -> bool {
    let Some(header) = header else { return false };
    let wanted = strip_weak(etag.trim());
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || (!candidate.is_empty() && strip_weak(candidate) == wanted)
    })
}

fn strip_weak(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// A strong entity tag (quoted) over the parts given, each length-prefixed so that different
/// splits of the same bytes never collide. Two 64-bit xxh3 hashes with different seeds (the
/// one-shot `xxh3_64` is linked for bucketing already; the streaming and 128-bit variants would
/// add their own code to the Wasm).
pub fn etag_of(parts: &[&[u8]]) -> String {
    let mut framed = Vec::with_capacity(parts.iter().map(|part| part.len() + 8).sum());
    for part in parts {
        framed.extend_from_slice(&(part.len() as u64).to_le_bytes());
        framed.extend_from_slice(part);
    }
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for hash in [
        xxh3_64(&framed),
        xxh3_64_with_seed(&framed, 0x7072_6f6d_7074_666c),
    ] {
        for shift in (0..16).rev() {
            tag.push(char::from(HEX[((hash >> (shift * 4)) & 0xf) as usize]));
        }
    }
    tag.push('"');
    tag
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    let header = header?.trim();
    let (scheme, token) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

/// Compares a presented secret with the expected one in constant time (the contracts' rule).
pub use promptflag_contracts::authority::constant_time_eq;

/// The raw value of a query parameter of a URL (the first one of that name; no percent-decoding,
/// which the numeric parameters read here never need).
pub fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

/// A path segment with its percent-escapes decoded (`team.search%3Aranking` is the flag
/// `team.search:ranking`). A malformed escape stays as written; a decoding that is not UTF-8
/// leaves the whole segment as written (it then names no flag).
pub fn percent_decode(segment: &str) -> std::borrow::Cow<'_, str> {
    if !segment.contains('%') {
        return std::borrow::Cow::Borrowed(segment);
    }
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    match String::from_utf8(decoded) {
        Ok(text) => std::borrow::Cow::Owned(text),
        Err(_) => std::borrow::Cow::Borrowed(segment),
    }
}

/// Lowercase hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC with milliseconds
/// (`2026-11-21T10:00:00.000Z`), as JavaScript's `toISOString` writes it (core's formatter).
pub fn rfc3339_millis(epoch_millis: u64) -> String {
    promptflag_core::literal::format_rfc3339_millis(i64::try_from(epoch_millis).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_handles_lists_weak_tags_and_star() {
        assert!(if_none_match(Some("\"a\""), "\"a\""));
        assert!(if_none_match(Some("\"x\", W/\"a\""), "\"a\""));
        assert!(if_none_match(Some("*"), "\"a\""));
        assert!(!if_none_match(Some("\"b\""), "\"a\""));
        assert!(!if_none_match(None, "\"a\""));
        assert!(!if_none_match(Some(""), "\"a\""));
    }

    #[test]
    fn etags_depend_on_every_part_and_its_boundaries() {
        let one = etag_of(&[b"ab", b"c"]);
        assert_eq!(one, etag_of(&[b"ab", b"c"]));
        assert_ne!(one, etag_of(&[b"a", b"bc"]));
        assert_ne!(one, etag_of(&[b"ab", b"d"]));
        assert!(one.starts_with('"') && one.ends_with('"'));
        // The two hashes of the length-framed parts in hexadecimal, 32 digits in quotes.
        let framed = [&2u64.to_le_bytes()[..], b"ab", &1u64.to_le_bytes(), b"c"].concat();
        assert_eq!(
            one,
            format!(
                "\"{:016x}{:016x}\"",
                xxh3_64(&framed),
                xxh3_64_with_seed(&framed, 0x7072_6f6d_7074_666c)
            )
        );
    }

    #[test]
    fn bearer_tokens_are_parsed_case_insensitively() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("Basic abc")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(Some("Bearer")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret!"));
        assert!(!constant_time_eq(b"secret", b"secre"));
        assert!(!constant_time_eq(b"secret", b""));
        // A presented value that is the expected one plus NUL padding is not equal either.
        assert!(!constant_time_eq(b"ab", b"ab\0"));
    }

    #[test]
    fn query_parameters_are_found_by_name() {
        let url = "https://w.example/admin/v1/rulesets/dev?x=1&expected_live=7#frag";
        assert_eq!(query_param(url, "expected_live"), Some("7"));
        assert_eq!(query_param(url, "x"), Some("1"));
        assert_eq!(query_param(url, "y"), None);
        assert_eq!(query_param("https://w.example/a?flag", "flag"), Some(""));
        assert_eq!(query_param("https://w.example/a", "x"), None);
    }

    #[test]
    fn path_segments_are_percent_decoded() {
        assert_eq!(percent_decode("plain_key"), "plain_key");
        assert_eq!(
            percent_decode("team.search%3Aranking_v2"),
            "team.search:ranking_v2"
        );
        assert_eq!(percent_decode("a%20b%2fc"), "a b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%ff%fe"), "%ff%fe");
        assert_eq!(percent_decode("%C3%A9"), "\u{e9}");
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0x9f, 0xff]), "009fff");
    }

    #[test]
    fn timestamps_match_javascript_to_iso_string() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        // new Date(1795255200123).toISOString()
        assert_eq!(
            rfc3339_millis(1_795_255_200_123),
            "2026-11-21T10:00:00.123Z"
        );
        // A leap day: new Date(Date.UTC(2024, 1, 29, 23, 59, 59, 999)).getTime() = 1709251199999
        assert_eq!(
            rfc3339_millis(1_709_251_199_999),
            "2024-02-29T23:59:59.999Z"
        );
    }
}
