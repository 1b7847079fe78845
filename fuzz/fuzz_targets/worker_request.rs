//! The Worker's synchronous request path, natively: what the exported `serve` does with the
//! head and body the JavaScript entry passes (`wire::url_of`, `js::path_of`,
//! `wire::RequestParts::from_head`), then `app::answer` (the routing, body and context parsing,
//! evaluation, exposures and response packing behind `app::answer_from_memory`) with the
//! Worker's compiled-in fallback ruleset serving, exposures on and a fixed configuration. Only
//! reading the configuration and the cached ruleset from the isolate (JavaScript state) is left
//! out. The input is the head (`METHOD\nURL\nFLAGS\nAUTHORIZATION\nORIGIN[\nIF-NONE-MATCH]`), a
//! NUL byte, then the body; the configuration holds one server and one client read key (the seed
//! corpus sends them) and one allowed origin.
//! Property: nothing panics, and an answer is a well-formed packed response.
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use promptflag_worker::access::{CorsOrigins, ReadKeys};
use promptflag_worker::app::{self, Config};
use promptflag_worker::cache::{Loaded, Served, Source};
use promptflag_worker::{fallback, js, wire};

thread_local! {
    static SERVED: Served = Served {
        loaded: Some(Rc::new(Loaded::compile(fallback::ruleset_json()).unwrap())),
        source: Source::Fallback,
    };
}

fn config() -> Config {
    Config {
        environment: String::from("dev"),
        cache_ttl_millis: app::DEFAULT_CACHE_TTL_MS,
        exposure_sink: Some(String::from("https://collector.invalid/v1/events")),
        admin_credentials: None,
        environment_policy: None,
        read_keys: ReadKeys::parse(Some(
            r#"[{"name":"server","key":"fuzz-server-key-0123456789abcdef0123456789","kind":"server"},
                {"name":"client","key":"fuzz-client-key-0123456789abcdef0123456789","kind":"client"}]"#,
        )),
        cors_origins: CorsOrigins::parse(Some("https://app.example")),
        ruleset_public_key: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|&byte| byte == 0) {
        Some(index) => (&data[..index], &data[index + 1..]),
        None => (data, &[][..]),
    };
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let Some(url) = wire::url_of(head) else {
        return;
    };
    let path = js::path_of(url);
    let Some(parts) = wire::RequestParts::from_head(head, &path, body) else {
        return;
    };
    let now = 1_767_225_600_000 + u64::from(body.first().copied().unwrap_or(0));
    let Some(packed) = SERVED.with(|served| app::answer(&parts, &config(), served, now)) else {
        return;
    };
    // The packed layout (`wire`): a 16-byte prefix whose lengths fit in the buffer.
    assert!(packed.len() >= wire::PREFIX_BYTES);
    let length = |at: usize| {
        u32::from_le_bytes([packed[at], packed[at + 1], packed[at + 2], packed[at + 3]]) as usize
    };
    let parts_length = length(4) + length(8) + length(12);
    assert!(wire::PREFIX_BYTES + parts_length <= packed.len());
});
