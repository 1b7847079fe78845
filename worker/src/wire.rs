//! What crosses between the Worker's JavaScript entry (`worker/js/index.js`) and the Wasm: the
//! request's parts going in, as one line-separated text and the body bytes, and the whole
//! response coming back as one buffer. One call each way, instead of a call per header, per
//! property and per response part.
//!
//! The request head the entry writes (`\n` can appear in none of these, so it separates them):
//!
//! ```text
//! METHOD \n URL \n FLAGS \n AUTHORIZATION \n ORIGIN [\n IF-NONE-MATCH]
//! ```
//!
//! `FLAGS` holds `u` when the request's body could not be read. `AUTHORIZATION` and `ORIGIN` are
//! those headers' values, empty when the request has none: the read key travels in the first
//! (`Authorization: Bearer <key>`, checked by `access`), and the second decides the CORS
//! headers. The last line is there only when the request has an `If-None-Match` header.
//!
//! The packed response, integers little-endian. `serve` leaves it in the Wasm's memory, its
//! length (`u32`) before it, and returns that address; it returns 0 instead when the synchronous
//! path could not answer from memory, and the entry then calls the asynchronous one, which
//! resolves to the same format as a byte array:
//!
//! ```text
//! status: u16 | has body: u8 | header set: u8 | headers length H: u32 |
//! entity tag length T: u32 | exposures length E: u32
//! headers: H bytes, "name\nvalue\nname\nvalue…"
//! entity tag: T bytes, the `ETag` header's value (T = 0: none)
//! exposures: E bytes, "sink URL\nJSON array" (E = 0: none to send)
//! body: the rest
//! ```
//!
//! The headers are the ones that repeat from response to response (the content type, the
//! revision, the ruleset's source). The Wasm numbers each distinct set (the header set byte,
//! from 1; 0 for a set it has not numbered), and the entry builds a `Headers` object once per
//! number and keeps it, so it reads the headers' text only for a set it has not seen. The numbers
//! hold for the instance's life (the entry forgets its sets when the instance is replaced after a
//! trap). The entity tag is apart because the OFREP bulk one is new with every context.
//!
//! Nothing here calls into JavaScript, so the format is unit-tested natively.

use crate::cache::Served;
use crate::js::{BodyError, Method};
use crate::reply::Reply;

/// The bytes before the headers in a packed response.
pub const PREFIX_BYTES: usize = 16;

/// A request as the routes read it: the parts that decide the answer.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: Method,
    /// The URL's path, without query or fragment.
    pub path: &'a str,
    pub if_none_match: Option<&'a str>,
    /// The `Authorization` header, which carries the read key.
    pub authorization: Option<&'a str>,
    /// The `Origin` header (a browser's; it decides the CORS headers).
    pub origin: Option<&'a str>,
    /// The body, or why it could not be read.
    pub body: Result<&'a [u8], BodyError>,
}

impl<'a> RequestParts<'a> {
    /// Reads the head the entry wrote; `None` when it is not of that form.
    pub fn from_head(head: &'a str, path: &'a str, body: &'a [u8]) -> Option<RequestParts<'a>> {
        let mut lines = head.split('\n');
        let method = Method::from_name(lines.next()?);
        let _url = lines.next()?;
        let flags = lines.next()?;
        let present = |value: &'a str| (!value.is_empty()).then_some(value);
        let authorization = present(lines.next()?);
        let origin = present(lines.next()?);
        let if_none_match = lines.next();
        Some(RequestParts {
            method,
            path,
            if_none_match,
            authorization,
            origin,
            body: if flags.contains('u') {
                Err(BodyError::Unreadable)
            } else {
                Ok(body)
            },
        })
    }
}

/// The URL line of a request head (the second line), for its path.
pub fn url_of(head: &str) -> Option<&str> {
    head.split('\n').nth(1)
}

/// Packs a reply with the headers every response of the serving Worker carries (the revision and
/// the ruleset's source, and the CORS headers when `allow_origin` holds the
/// `Access-Control-Allow-Origin` value) and the exposures to send after it. Everything is written
/// straight into the one buffer the entry receives.
pub fn pack(
    reply: &Reply,
    served: &Served,
    allow_origin: Option<&str>,
    exposures: Option<(&str, &[u8])>,
) -> Vec<u8> {
    pack_reply(reply, Some(served), allow_origin, exposures)
}

/// Packs an answer of the admin authority: no revision or source headers, since the authority
/// serves no ruleset (and loads none, so its Wasm links no ruleset loading), no CORS headers (the
/// admin API is not for browsers) and no exposures.
pub fn pack_admin(reply: &Reply) -> Vec<u8> {
    pack_reply(reply, None, None, None)
}

fn pack_reply(
    reply: &Reply,
    served: Option<&Served>,
    allow_origin: Option<&str>,
    exposures: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut entity_tag: &str = "";
    for (name, value) in &reply.headers {
        if name.eq_ignore_ascii_case("ETag") {
            entity_tag = value;
        }
    }
    // Like the other values, an entity tag never holds a line break; it is cut there if it did.
    let entity_tag = first_line(entity_tag);
    let has_body = !(reply.body.is_empty() && matches!(reply.status, 204 | 304));
    let exposure_bytes = exposures.map_or(0, |(sink, batch)| sink.len() + 1 + batch.len());
    let mut packed = Vec::with_capacity(
        PREFIX_BYTES
            + HEADERS_ESTIMATE
            + entity_tag.len()
            + exposure_bytes
            + if has_body { reply.body.len() } else { 0 },
    );
    packed.extend_from_slice(&reply.status.to_le_bytes());
    packed.push(u8::from(has_body));
    packed.resize(PREFIX_BYTES, 0);
    let mut headers = HeaderWriter {
        packed: &mut packed,
        first: true,
    };
    if let Some(content_type) = reply.content_type {
        headers.add("Content-Type", content_type);
    }
    for (name, value) in &reply.headers {
        if !name.eq_ignore_ascii_case("ETag") {
            headers.add(name, value);
        }
    }
    if let Some(served) = served {
        let mut revision = [0u8; 20];
        let revision = match &served.loaded {
            Some(loaded) => decimal(loaded.ruleset.revision(), &mut revision),
            None => "none",
        };
        headers.add("X-Promptflag-Revision", revision);
        headers.add("X-Promptflag-Ruleset-Source", served.source.as_str());
    }
    if let Some(origin) = allow_origin {
        headers.add("Access-Control-Allow-Origin", origin);
        if origin != "*" {
            // The answer differs by origin, so a shared cache must key it by origin.
            headers.add("Vary", "Origin");
        }
        headers.add(
            "Access-Control-Expose-Headers",
            "ETag, X-Promptflag-Revision, X-Promptflag-Ruleset-Source",
        );
    }
    let header_bytes = packed.len() - PREFIX_BYTES;
    packed[3] = header_set_number(&packed[PREFIX_BYTES..]);
    packed[4..8].copy_from_slice(&length_u32(header_bytes).to_le_bytes());
    packed[8..12].copy_from_slice(&length_u32(entity_tag.len()).to_le_bytes());
    packed[12..16].copy_from_slice(&length_u32(exposure_bytes).to_le_bytes());
    packed.extend_from_slice(entity_tag.as_bytes());
    if let Some((sink, batch)) = exposures {
        packed.extend_from_slice(sink.as_bytes());
        packed.push(b'\n');
        packed.extend_from_slice(batch);
    }
    if has_body {
        packed.extend_from_slice(&reply.body);
    }
    packed
}

/// Room for the usual header set, so that writing it does not grow the buffer.
const HEADERS_ESTIMATE: usize = 192;

/// Writes `name\nvalue` pairs, `\n`-separated, at the end of the packed buffer.
struct HeaderWriter<'a> {
    packed: &'a mut Vec<u8>,
    first: bool,
}

impl HeaderWriter<'_> {
    fn add(&mut self, name: &str, value: &str) {
        if !self.first {
            self.packed.push(b'\n');
        }
        self.first = false;
        self.packed.extend_from_slice(name.as_bytes());
        self.packed.push(b'\n');
        // A value never holds a line break (the Worker writes them all); one that did would
        // shift every later header, so it is cut there instead.
        self.packed.extend_from_slice(first_line(value).as_bytes());
    }
}

/// The text before the first line break.
fn first_line(value: &str) -> &str {
    match value
        .bytes()
        .position(|byte| byte == b'\n' || byte == b'\r')
    {
        Some(end) => &value[..end],
        None => value,
    }
}

/// `number` in decimal, written into `buffer`.
pub fn decimal(mut number: u64, buffer: &mut [u8; 20]) -> &str {
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (number % 10) as u8;
        number /= 10;
        if number == 0 {
            break;
        }
    }
    std::str::from_utf8(&buffer[at..]).unwrap_or("0")
}

/// The most header sets numbered (the entry keeps a `Headers` object for each).
const HEADER_SETS_NUMBERED: usize = 255;

thread_local! {
    /// The header sets numbered so far, the set numbered `n` at `n - 1`.
    static HEADER_SETS: std::cell::RefCell<Vec<Box<[u8]>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The number of a header set, the same for the same text for the instance's life, so the entry
/// can keep the `Headers` object it built for it; 0 once [`HEADER_SETS_NUMBERED`] sets have
/// been numbered (the entry then builds that set's `Headers` each time). A few sets cover every
/// response (per route: the content type and caching, the revision, the source, and the allowed
/// origin if any: one of the few `CORS_ORIGINS` lists, or `*`, never the request's own text).
fn header_set_number(text: &[u8]) -> u8 {
    HEADER_SETS.with(|sets| {
        let mut sets = sets.borrow_mut();
        if let Some(index) = sets.iter().position(|set| **set == *text) {
            return u8::try_from(index + 1).unwrap_or(0);
        }
        if sets.len() >= HEADER_SETS_NUMBERED {
            return 0;
        }
        sets.push(Box::from(text));
        u8::try_from(sets.len()).unwrap_or(0)
    })
}

/// A length as the format's `u32`. The Worker's responses are far smaller than 4 GiB (bodies
/// are bounded by the ruleset's and the prompts' limits), so this saturates only in theory.
pub fn length_u32(length: usize) -> u32 {
    u32::try_from(length).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Source;

    fn served_without_ruleset() -> Served {
        Served {
            loaded: None,
            source: Source::Fallback,
        }
    }

    /// A packed response read back: status, whether it has a body, headers (the entity tag
    /// last, as the entry sets it), exposures, body.
    type Unpacked = (u16, bool, Vec<(String, String)>, Vec<u8>, Vec<u8>);

    /// Reads a packed response back as the entry does.
    fn unpack(packed: &[u8]) -> Unpacked {
        let length_at = |at: usize| u32::from_le_bytes(packed[at..at + 4].try_into().unwrap());
        let status = u16::from_le_bytes([packed[0], packed[1]]);
        let has_body = packed[2] == 1;
        let header_length = length_at(4) as usize;
        let tag_length = length_at(8) as usize;
        let exposure_length = length_at(12) as usize;
        let headers_text =
            std::str::from_utf8(&packed[PREFIX_BYTES..PREFIX_BYTES + header_length]).unwrap();
        let fields: Vec<&str> = headers_text.split('\n').collect();
        let mut headers: Vec<(String, String)> = fields
            .chunks(2)
            .map(|pair| (pair[0].to_string(), pair[1].to_string()))
            .collect();
        let mut at = PREFIX_BYTES + header_length;
        if tag_length > 0 {
            let tag = std::str::from_utf8(&packed[at..at + tag_length]).unwrap();
            headers.push(("ETag".to_string(), tag.to_string()));
            at += tag_length;
        }
        let exposures = packed[at..at + exposure_length].to_vec();
        (
            status,
            has_body,
            headers,
            exposures,
            packed[at + exposure_length..].to_vec(),
        )
    }

    #[test]
    fn packed_responses_carry_status_headers_exposures_and_body_in_order() {
        let reply = Reply::bytes(200, "application/json", b"{\"a\":1}".to_vec())
            .with_header("ETag", "\"abc\"");
        let packed = pack(
            &reply,
            &served_without_ruleset(),
            Some("https://app.example.com"),
            Some(("http://sink.test/v1/events", b"[{}]")),
        );
        let (status, has_body, headers, exposures, body) = unpack(&packed);
        assert_eq!(status, 200);
        assert!(has_body);
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Content-Type",
                "X-Promptflag-Revision",
                "X-Promptflag-Ruleset-Source",
                "Access-Control-Allow-Origin",
                "Vary",
                "Access-Control-Expose-Headers",
                "ETag"
            ]
        );
        assert_eq!(headers[1].1, "none");
        assert_eq!(headers[2].1, "fallback");
        assert_eq!(headers[3].1, "https://app.example.com");
        assert_eq!(headers[4].1, "Origin");
        assert_eq!(headers[6].1, "\"abc\"");
        assert_eq!(exposures, b"http://sink.test/v1/events\n[{}]");
        assert_eq!(body, b"{\"a\":1}");
    }

    #[test]
    fn admin_answers_carry_their_own_headers_and_no_revision() {
        let reply = Reply::bytes(409, "application/json", b"{\"error\":{}}".to_vec())
            .with_header("WWW-Authenticate", "Bearer");
        let (status, has_body, headers, exposures, body) = unpack(&pack_admin(&reply));
        assert_eq!(status, 409);
        assert!(has_body);
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["Content-Type", "WWW-Authenticate"]);
        assert!(exposures.is_empty());
        assert_eq!(body, b"{\"error\":{}}");
    }

    #[test]
    fn header_sets_keep_their_number_and_differ_by_text() {
        let json = |allow_origin: Option<&str>| {
            pack(
                &Reply::bytes(200, "application/json", b"{}".to_vec()),
                &served_without_ruleset(),
                allow_origin,
                None,
            )[3]
        };
        let plain = json(None);
        let with_cors = json(Some("*"));
        let with_origin = json(Some("https://app.example.com"));
        assert_ne!(plain, 0);
        assert_ne!(with_cors, 0);
        assert_ne!(with_origin, 0);
        assert_ne!(plain, with_cors);
        assert_ne!(with_origin, with_cors);
        assert_eq!(json(None), plain);
        assert_eq!(json(Some("*")), with_cors);
        assert_eq!(json(Some("https://app.example.com")), with_origin);
        // An entity tag is not part of the set.
        let tagged = pack(
            &Reply::bytes(200, "application/json", b"{}".to_vec()).with_header("ETag", "\"t\""),
            &served_without_ruleset(),
            None,
            None,
        );
        assert_eq!(tagged[3], plain);
    }

    #[test]
    fn revisions_are_written_in_decimal() {
        let mut buffer = [0u8; 20];
        assert_eq!(decimal(0, &mut buffer), "0");
        assert_eq!(decimal(7, &mut buffer), "7");
        assert_eq!(decimal(1_234_567_890, &mut buffer), "1234567890");
        assert_eq!(decimal(u64::MAX, &mut buffer), u64::MAX.to_string());
    }

    #[test]
    fn not_modified_and_no_content_replies_have_no_body() {
        for status in [204, 304] {
            let packed = pack(&Reply::empty(status), &served_without_ruleset(), None, None);
            let (read_status, has_body, headers, exposures, body) = unpack(&packed);
            assert_eq!(read_status, status);
            assert!(!has_body);
            assert_eq!(headers.len(), 2, "only the revision and source headers");
            assert!(exposures.is_empty());
            assert!(body.is_empty());
        }
        // An empty 200 still has a (zero-length) body.
        let packed = pack(
            &Reply::bytes(200, "text/plain", Vec::new()),
            &served_without_ruleset(),
            None,
            None,
        );
        assert!(unpack(&packed).1);
    }

    #[test]
    fn a_header_value_with_a_line_break_cannot_shift_the_headers_after_it() {
        let reply = Reply::empty(204)
            .with_header("Cache-Control", "no-store\nX-Evil\nyes")
            .with_header("ETag", "\"a\"\nX-Evil\nyes");
        let (_, _, headers, _, _) = unpack(&pack(&reply, &served_without_ruleset(), None, None));
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Cache-Control",
                "X-Promptflag-Revision",
                "X-Promptflag-Ruleset-Source",
                "ETag"
            ]
        );
        assert_eq!(headers[0].1, "no-store");
        assert_eq!(headers[3].1, "\"a\"");
    }

    #[test]
    fn request_heads_are_read_with_their_flags_key_origin_and_optional_if_none_match() {
        let parts = RequestParts::from_head(
            "post\nhttps://x.test/v1/ruleset?a=1\n\nBearer k\nhttps://app.test\n\"etag\"",
            "/v1/ruleset",
            b"{}",
        )
        .unwrap();
        assert_eq!(parts.method, Method::Post);
        assert_eq!(parts.authorization, Some("Bearer k"));
        assert_eq!(parts.origin, Some("https://app.test"));
        assert_eq!(parts.if_none_match, Some("\"etag\""));
        assert_eq!(parts.body, Ok(&b"{}"[..]));

        let parts = RequestParts::from_head("GET\nhttps://x.test/\nu\n\n", "/", b"").unwrap();
        assert_eq!(parts.authorization, None);
        assert_eq!(parts.origin, None);
        assert_eq!(parts.if_none_match, None);
        assert_eq!(parts.body, Err(BodyError::Unreadable));

        let parts = RequestParts::from_head("BREW\nhttps://x.test/\n\n\n\n", "/", b"").unwrap();
        assert_eq!(parts.method, Method::Other);
        assert_eq!(parts.if_none_match, Some(""));

        assert!(RequestParts::from_head("GET", "/", b"").is_none());
        assert!(RequestParts::from_head("GET\nhttps://x.test/", "/", b"").is_none());
        assert!(RequestParts::from_head("GET\nhttps://x.test/\n", "/", b"").is_none());
    }
}
