//! promptflag-testkit: the fakes the companion's test suites share, so each is written once: a
//! minimal HTTP/1.1 server on 127.0.0.1 ([`http`]), a fake of the Worker's admin API
//! ([`fake_worker`]) and a fake of the Cloudflare KV REST API ([`fake_kv`]). The fakes keep the
//! KV rules through `promptflag-contracts`, like the Worker; the Store contract suite holds
//! them to the real Worker's behaviour.
//!
//! This is test code: it states its assumptions with `unwrap` and panics on a broken test set-up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod fake_kv;
pub mod fake_worker;
pub mod http;
