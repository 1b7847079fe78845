//! Reading an evaluation request body (`{"context": {...}}`, as OFREP and `/v1/resolve` take it)
//! into a core [`Context`], with the caller's clock for date operators.
//!
//! Nearly every request body is the same small shape: one `context` object of strings, whole
//! numbers and booleans. [`simple`] reads that shape straight into a `Context` in one pass over
//! the bytes, without building serde_json's `Value` tree first (on the Worker's hot path that
//! tree was the largest cost inside the Wasm). Anything it does not read with certainty (an
//! escape in a string, a fraction, a nested value, a repeated name, any other key, malformed
//! JSON) goes to serde_json as before, so every answer and every error message stays the same.

use promptflag_core::{AttributeValue, Context};
use serde_json::Value;

/// Request-body limits. The evaluation bodies are small; rulesets have core's own limit.
pub mod limits {
    /// An evaluation request (`{"context": ...}`).
    pub const EVALUATION_BYTES: usize = 64 * 1024;
    /// A prompt body uploaded through the admin API.
    pub const PROMPT_BYTES: usize = 1024 * 1024;
    /// A rollback request.
    pub const ROLLBACK_BYTES: usize = 4 * 1024;
    /// A ruleset uploaded through the admin API (core refuses anything larger anyway).
    pub const RULESET_BYTES: usize = promptflag_core::compile::limits::MAX_RULESET_BYTES;
}

/// Why an evaluation request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// The body is not JSON.
    NotJson(String),
    /// The body is JSON but not an object.
    NotAnObject,
    /// `context` is present and not an object.
    ContextNotAnObject,
}

impl InputError {
    pub fn message(&self) -> String {
        match self {
            InputError::NotJson(message) => {
                format!("the request body is not valid JSON: {message}")
            }
            InputError::NotAnObject => {
                String::from("the request body must be a JSON object such as {\"context\": {}}")
            }
            InputError::ContextNotAnObject => {
                String::from("`context` must be a JSON object of attributes")
            }
        }
    }
}

/// An evaluation request: the context to evaluate and its JSON (for entity tags).
#[derive(Debug, Clone)]
pub struct EvaluationInput {
    pub context: Context,
    /// The `context` object as serde_json writes it back (keys sorted, no whitespace), `{}` when
    /// absent: the same bytes for the same context however it was sent.
    pub context_json: Vec<u8>,
}

impl EvaluationInput {
    /// The targeting key as text, when present (the exposure's unit).
    pub fn targeting_key(&self) -> Option<String> {
        match self.context.get("targetingKey") {
            Some(AttributeValue::String(text)) => Some(text.clone()),
            Some(AttributeValue::Integer(number)) => Some(number.to_string()),
            _ => None,
        }
    }
}

/// Reads `{"context": {...}}`. An empty body and a missing `context` mean an empty context;
/// `"context": null` is not an object (as core reads a `null` context everywhere).
pub fn evaluation_input(body: &[u8], now_millis: u64) -> Result<EvaluationInput, InputError> {
    let now = Some(i64::try_from(now_millis).unwrap_or(i64::MAX));
    if !body.iter().all(u8::is_ascii_whitespace)
        && let Some((mut context, context_json)) = simple::read(body)
    {
        context.set_now_millis(now);
        return Ok(EvaluationInput {
            context,
            context_json,
        });
    }
    with_serde_json(body, now)
}

/// [`evaluation_input`] through serde_json's `Value`, for every body the one-pass reader leaves.
fn with_serde_json(body: &[u8], now: Option<i64>) -> Result<EvaluationInput, InputError> {
    let context_json = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(serde_json::Map::new())
    } else {
        let value: Value =
            serde_json::from_slice(body).map_err(|error| InputError::NotJson(error.to_string()))?;
        let Value::Object(mut request) = value else {
            return Err(InputError::NotAnObject);
        };
        match request.remove("context") {
            None => Value::Object(serde_json::Map::new()),
            Some(context @ Value::Object(_)) => context,
            Some(_) => return Err(InputError::ContextNotAnObject),
        }
    };
    let mut context =
        Context::from_json_value(&context_json).map_err(|_| InputError::ContextNotAnObject)?;
    context.set_now_millis(now);
    Ok(EvaluationInput {
        context,
        context_json: serde_json::to_vec(&context_json).unwrap_or_default(),
    })
}

/// The one-pass reader of the usual request shape, `{"context": {name: value, ...}}` with
/// strings, whole numbers, booleans and `null` as values (see the module's documentation).
/// `None` hands the body to serde_json; whatever it returns, serde_json would have read the
/// same context from the same bytes.
mod simple {
    use promptflag_core::{AttributeValue, Context};

    /// The most attributes read here; a larger context goes to serde_json.
    const MOST_ATTRIBUTES: usize = 32;
    /// The most digits of a whole number read here: any 18-digit number fits an `i64`.
    const MOST_DIGITS: usize = 18;

    /// One attribute as sent: its name, and its value with the value's JSON text.
    struct Attribute<'a> {
        name: &'a str,
        value: Option<AttributeValue>,
        json: &'a [u8],
    }

    /// The context and its JSON as serde_json writes it (keys sorted, no whitespace).
    pub fn read(body: &[u8]) -> Option<(Context, Vec<u8>)> {
        let mut cursor = Cursor { body, at: 0 };
        cursor.expect(b'{')?;
        let mut attributes: Vec<Attribute<'_>> = Vec::new();
        if !cursor.eat(b'}') {
            if cursor.string()? != "context" {
                return None;
            }
            cursor.expect(b':')?;
            cursor.expect(b'{')?;
            if !cursor.eat(b'}') {
                loop {
                    if attributes.len() == MOST_ATTRIBUTES {
                        return None;
                    }
                    let name = cursor.string()?;
                    cursor.expect(b':')?;
                    let start = cursor.skip_whitespace();
                    let value = cursor.value()?;
                    attributes.push(Attribute {
                        name,
                        value,
                        json: &body[start..cursor.at],
                    });
                    if cursor.eat(b'}') {
                        break;
                    }
                    cursor.expect(b',')?;
                }
            }
            cursor.expect(b'}')?;
        }
        if cursor.skip_whitespace() != body.len() {
            return None;
        }
        attributes.sort_unstable_by(|a, b| a.name.cmp(b.name));
        // serde_json keeps the last of a repeated name; that case is left to it.
        if attributes
            .windows(2)
            .any(|pair| pair[0].name == pair[1].name)
        {
            return None;
        }
        let mut json = Vec::with_capacity(
            2 + attributes
                .iter()
                .map(|attribute| attribute.name.len() + attribute.json.len() + 4)
                .sum::<usize>(),
        );
        json.push(b'{');
        let mut context = Context::new();
        for (index, attribute) in attributes.into_iter().enumerate() {
            if index > 0 {
                json.push(b',');
            }
            // A name holds no character serde_json escapes (`string` refused those), so it is
            // written back as sent; so is a value.
            json.push(b'"');
            json.extend_from_slice(attribute.name.as_bytes());
            json.extend_from_slice(b"\":");
            json.extend_from_slice(attribute.json);
            if let Some(value) = attribute.value {
                context.set(attribute.name, value);
            }
        }
        json.push(b'}');
        Some((context, json))
    }

    struct Cursor<'a> {
        body: &'a [u8],
        at: usize,
    }

    impl<'a> Cursor<'a> {
        /// Skips JSON's whitespace (serde_json's four characters) and returns the position.
        fn skip_whitespace(&mut self) -> usize {
            while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.body.get(self.at) {
                self.at += 1;
            }
            self.at
        }

        /// Takes `byte` after whitespace if it is next.
        fn eat(&mut self, byte: u8) -> bool {
            self.skip_whitespace();
            let next = self.body.get(self.at) == Some(&byte);
            if next {
                self.at += 1;
            }
            next
        }

        fn expect(&mut self, byte: u8) -> Option<()> {
            self.eat(byte).then_some(())
        }

        /// A string without escapes or control characters, as UTF-8 text.
        fn string(&mut self) -> Option<&'a str> {
            self.expect(b'"')?;
            let start = self.at;
            let length = self.body[start..]
                .iter()
                .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)?;
            self.at = start + length;
            self.expect(b'"')?;
            std::str::from_utf8(&self.body[start..start + length]).ok()
        }

        /// A value: `Some(None)` for `null` (serde_json's `Value::Null`, which a context skips),
        /// `None` for anything this reader leaves to serde_json.
        fn value(&mut self) -> Option<Option<AttributeValue>> {
            let rest = &self.body[self.at..];
            let literal = |word: &[u8], value: Option<AttributeValue>| {
                rest.starts_with(word).then_some((word.len(), value))
            };
            let (length, value) = match rest.first()? {
                b'"' => return Some(Some(AttributeValue::String(String::from(self.string()?)))),
                b't' => literal(b"true", Some(AttributeValue::Bool(true)))?,
                b'f' => literal(b"false", Some(AttributeValue::Bool(false)))?,
                b'n' => literal(b"null", None)?,
                b'0'..=b'9' => {
                    let digits = rest.iter().take_while(|byte| byte.is_ascii_digit()).count();
                    // A leading zero (other than `0` itself) and long numbers are serde_json's.
                    if digits > MOST_DIGITS || (digits > 1 && rest[0] == b'0') {
                        return None;
                    }
                    let number = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
                    (digits, Some(AttributeValue::Integer(number)))
                }
                _ => return None,
            };
            // `truex`, `12.5`, `1e3`: not a value that ends here, so serde_json decides.
            if let Some(b'.' | b'e' | b'E' | b'a'..=b'z' | b'0'..=b'9') = rest.get(length) {
                return None;
            }
            self.at += length;
            Some(value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_bodies_and_missing_contexts_are_empty_contexts() {
        for body in [&b""[..], b"  \n", b"{}", br#"{"context": {}}"#] {
            let input = evaluation_input(body, 5).unwrap();
            assert_eq!(input.context.iter().count(), 0);
            assert_eq!(input.context.now_millis(), Some(5));
            assert_eq!(input.context_json, b"{}");
        }
    }

    #[test]
    fn contexts_are_read_with_their_targeting_key() {
        let input =
            evaluation_input(br#"{"context": {"targetingKey": "u-1", "plan": "pro"}}"#, 0).unwrap();
        assert_eq!(input.targeting_key().as_deref(), Some("u-1"));
        assert_eq!(
            input.context.get("plan"),
            Some(&AttributeValue::String("pro".into()))
        );
        let numeric = evaluation_input(br#"{"context": {"targetingKey": 42}}"#, 0).unwrap();
        assert_eq!(numeric.targeting_key().as_deref(), Some("42"));
    }

    /// Bodies of the usual shape and of every shape the one-pass reader leaves to serde_json.
    const BODIES: [&str; 30] = [
        "{}",
        " { } ",
        r#"{"context":{}}"#,
        r#"{"context": {"targetingKey": "u-1", "plan": "pro", "seats": 12, "beta": true}}"#,
        r#"{ "context" : { "b" : null , "a" : false , "c" : 0 } }"#,
        "{\"context\":\t{\"z\":\"\u{e9}t\u{e9}\",\r\n\"a\":\"\"}}",
        r#"{"context": {"email": "person50@acme.test", "country": "IE"}}"#,
        r#"{"context": {"n": 123456789012345678}}"#,
        r#"{"context": {"n": 1234567890123456789}}"#,
        r#"{"context": {"n": 12345678901234567890123}}"#,
        r#"{"context": {"n": -1, "m": -0}}"#,
        r#"{"context": {"n": 1.5, "m": 1e3, "o": 2E-2}}"#,
        r#"{"context": {"n": 01}}"#,
        r#"{"context": {"s": "a\"b", "t": "\u00e9"}}"#,
        r#"{"context": {"a": 1, "a": 2}}"#,
        r#"{"context": {"list": [1, 2], "object": {"x": 1}}}"#,
        r#"{"context": {"x": "y"}, "other": 1}"#,
        r#"{"other": 1, "context": {"x": "y"}}"#,
        r#"{"context": {"x": "y"}, "context": {"x": "z"}}"#,
        r#"{"context": null}"#,
        r#"{"context": "x"}"#,
        r#"{"context": {"x": truex}}"#,
        r#"{"context": {"x": tru}}"#,
        r#"{"context": {"x": "y",}}"#,
        r#"{"context": {"x" "y"}}"#,
        r#"{"context": {"x": "y"}} x"#,
        r#"{"context": {"x": "y"}"#,
        "[1]",
        "{\"context\": {\"x\": \"a\u{1}b\"}}",
        r#"{"context": {"n": 0, "t": true, "f": false}}  "#,
    ];

    fn attributes(context: &Context) -> Vec<(String, AttributeValue)> {
        context
            .iter()
            .map(|(name, value)| (String::from(name), value.clone()))
            .collect()
    }

    #[test]
    fn the_one_pass_reader_reads_what_serde_json_reads() {
        let mut read_in_one_pass = 0;
        for body in BODIES {
            let through_serde_json = with_serde_json(body.as_bytes(), Some(7));
            let answer = evaluation_input(body.as_bytes(), 7);
            match (&answer, &through_serde_json) {
                (Ok(answer), Ok(expected)) => {
                    assert_eq!(
                        attributes(&answer.context),
                        attributes(&expected.context),
                        "{body}"
                    );
                    assert_eq!(answer.context.now_millis(), Some(7));
                    assert_eq!(answer.context_json, expected.context_json, "{body}");
                }
                _ => assert_eq!(
                    answer.as_ref().err(),
                    through_serde_json.as_ref().err(),
                    "{body}"
                ),
            }
            if let Some((context, json)) = simple::read(body.as_bytes()) {
                read_in_one_pass += 1;
                let expected = through_serde_json.unwrap();
                assert_eq!(
                    attributes(&context),
                    attributes(&expected.context),
                    "{body}"
                );
                assert_eq!(json, expected.context_json, "{body}");
            }
        }
        // The usual shapes (the first eight bodies and the last) are read without serde_json.
        assert_eq!(read_in_one_pass, 9);
    }

    #[test]
    fn bad_bodies_are_classified() {
        assert!(matches!(
            evaluation_input(b"{", 0),
            Err(InputError::NotJson(_))
        ));
        assert_eq!(
            evaluation_input(b"[1]", 0).unwrap_err(),
            InputError::NotAnObject
        );
        assert_eq!(
            evaluation_input(br#"{"context": "x"}"#, 0).unwrap_err(),
            InputError::ContextNotAnObject
        );
        assert_eq!(
            evaluation_input(br#"{"context": [1]}"#, 0).unwrap_err(),
            InputError::ContextNotAnObject
        );
        assert_eq!(
            evaluation_input(br#"{"context": null}"#, 0).unwrap_err(),
            InputError::ContextNotAnObject
        );
    }
}
