//! Ruleset JSON → compile → evaluate. The input is a ruleset's JSON, then optionally a NUL byte
//! and contexts, one JSON object a line. When the ruleset compiles, every flag, one unknown
//! flag and `evaluate_all` are evaluated with each context, with contexts built from the bytes
//! after the NUL, and with an empty one. Property: nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use promptflag_core::{AttributeValue, Context, Ruleset};

fuzz_target!(|data: &[u8]| {
    let (ruleset_bytes, rest) = match data.iter().position(|&byte| byte == 0) {
        Some(index) => (&data[..index], &data[index + 1..]),
        None => (data, &[][..]),
    };
    // Both entries: bytes (any, not only UTF-8) and text.
    let from_bytes = Ruleset::from_json(ruleset_bytes);
    let Ok(text) = std::str::from_utf8(ruleset_bytes) else {
        return;
    };
    let from_text = Ruleset::from_json_str(text);
    assert_eq!(from_bytes.is_ok(), from_text.is_ok());
    let Ok(ruleset) = from_text else {
        return;
    };

    let mut contexts = vec![Context::new()];
    for line in rest.split(|&byte| byte == b'\n') {
        let context = std::str::from_utf8(line).map(Context::from_json_str);
        if let Ok(Ok(context)) = context {
            contexts.push(context);
        }
    }
    // A context from raw bytes: attributes named by the flags' reads, valued from the input.
    let mut derived = Context::new().with_targeting_key(&String::from_utf8_lossy(rest));
    derived.set_now_millis(rest.get(..8).map(|bytes| {
        let mut word = [0u8; 8];
        word[..bytes.len()].copy_from_slice(bytes);
        i64::from_le_bytes(word)
    }));
    let keys: Vec<String> = ruleset.flag_keys().map(String::from).collect();
    for (index, key) in keys.iter().enumerate() {
        for name in ruleset.attributes_read(key).unwrap_or_default() {
            let byte = rest.get(index).copied().unwrap_or(0);
            let value = match byte % 6 {
                0 => AttributeValue::String(String::from_utf8_lossy(rest).into_owned()),
                1 => AttributeValue::Number(f64::from(byte) - 100.5),
                2 => AttributeValue::Integer(i64::from(byte) - 128),
                3 => AttributeValue::Bool(byte % 2 == 0),
                4 => AttributeValue::Unsupported,
                _ => AttributeValue::String(String::from(name)),
            };
            derived.set(name, value);
        }
    }
    contexts.push(derived);

    for context in &contexts {
        for key in &keys {
            let _ = ruleset.evaluate(key, context);
            let _ = ruleset.resolve_prompt(key, context);
            let _ = ruleset.flag_kind(key);
        }
        let unknown = ruleset.evaluate("\u{0}no such flag", context);
        assert!(unknown.is_error());
        let all = ruleset.evaluate_all(context);
        assert!(all.len() <= keys.len());
    }
});
