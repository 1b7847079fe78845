//! The admin API of `docs/interfaces.md`, behind `Authorization: Bearer <ADMIN_TOKEN>` (compared
//! in constant time) and off when the secret is unset:
//!
//! - `PUT /admin/v1/prompts/{sha256}`: stores a body after checking its hash.
//! - `GET /admin/v1/rulesets/{env}`: the live, latest and kept revisions.
//! - `PUT /admin/v1/rulesets/{env}[?expected_live=N]`: validates and publishes a revision
//!   (body, then `ruleset:<env>:<rev>`, then `meta:<env>`, then the pointer).
//! - `POST /admin/v1/rulesets/{env}/rollback`: points `ruleset:<env>` at a kept revision.
//!
//! KV offers no transactions. Within one isolate, ruleset writes (publish and rollback) take
//! [`WriteLock`] around their read, check and write, so two publishers racing through the same
//! isolate get one `201` and one `409`, never two `201`s for one revision. Across isolates
//! (several machines in production) KV has no compare-and-swap: publishes to one environment
//! are expected to come from one publisher at a time (the companion's control loop), and
//! `expected_live` guards the rest.

use promptflag_core::Ruleset;
use serde_json::{Value, json};

use crate::cache::{pointer_key, revision_key};
use crate::http::{bearer_token, constant_time_eq, is_sha256_hex, is_valid_name, query_param};
use crate::input::limits;
use crate::js::{BodyError, Incoming, Kv, Method, read_body, sha256_hex};
use crate::prompts::{body_key, remember_written};
use crate::reply::{Failure, Outcome, Reply};

/// Revisions kept for rollback.
pub const KEPT_REVISIONS: usize = 10;

/// `meta:<env>`: `{"latest": 9, "kept": [5, 6, 7, 8, 9]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// The highest revision ever published; a new publish must exceed it.
    pub latest: Option<u64>,
    /// The revisions kept for rollback, ascending.
    pub kept: Vec<u64>,
}

impl Meta {
    /// Reads the stored JSON (through `Value`: a derived deserializer would add its own code to
    /// the Wasm). `None` when it is not a history.
    pub fn from_json(text: &str) -> Option<Meta> {
        // From bytes, as every other JSON the Worker reads: `from_str` would link a second copy
        // of the `Value` parser.
        let Value::Object(object) = serde_json::from_slice(text.as_bytes()).ok()? else {
            return None;
        };
        let latest = match object.get("latest") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_u64()?),
        };
        let kept = match object.get("kept") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.iter().map(Value::as_u64).collect::<Option<_>>()?,
            Some(_) => return None,
        };
        Some(Meta { latest, kept })
    }

    pub fn to_json(&self) -> String {
        // Through `to_string`, which writes into bytes as every response body is written, not
        // `Value`'s `Display`, which would link a second serializer (and a pretty printer).
        // Writing a `Value` with string keys cannot fail.
        serde_json::to_string(&json!({"latest": self.latest, "kept": self.kept}))
            .unwrap_or_default()
    }
}

pub fn meta_key(environment: &str) -> String {
    format!("meta:{environment}")
}

/// Who may call: `Ok(())` for the right token; `404 admin_disabled` without a configured token;
/// `401 unauthorized` otherwise.
pub fn authorize(configured: Option<&str>, authorization: Option<&str>) -> Result<(), Failure> {
    let Some(expected) = configured.filter(|token| !token.is_empty()) else {
        return Err(Failure::api(
            404,
            "admin_disabled",
            "the admin API is off: ADMIN_TOKEN is not set",
        ));
    };
    let presented = bearer_token(authorization).unwrap_or_default();
    if constant_time_eq(expected.as_bytes(), presented.as_bytes()) {
        Ok(())
    } else {
        Err(Failure::api(
            401,
            "unauthorized",
            "a valid `Authorization: Bearer <token>` header is required",
        )
        .with_header("WWW-Authenticate", "Bearer realm=\"promptflag-admin\""))
    }
}

/// Routes an admin request (after `/admin`). Authorization comes first, so nothing about the
/// routes is revealed to a caller without the token.
pub async fn handle(
    request: &Incoming,
    path: &[&str],
    admin_token: Option<&str>,
    kv: Option<&Kv>,
) -> Outcome {
    let authorization = request.header("Authorization");
    authorize(admin_token, authorization.as_deref())?;
    let method = request.method();
    match path {
        ["v1", "prompts", hash] => {
            require(&method, Method::Put, "PUT")?;
            put_prompt(request, hash, store(kv)?).await
        }
        ["v1", "rulesets", environment] => {
            let environment = environment_name(environment)?;
            match method {
                Method::Get => status(environment, store(kv)?).await,
                Method::Put => {
                    let expected_live = expected_live(request)?;
                    publish(request, environment, expected_live, store(kv)?).await
                }
                _ => Err(Failure::method_not_allowed("GET, PUT")),
            }
        }
        ["v1", "rulesets", environment, "rollback"] => {
            let environment = environment_name(environment)?;
            require(&method, Method::Post, "POST")?;
            rollback(request, environment, store(kv)?).await
        }
        _ => Err(Failure::not_found()),
    }
}

fn require(method: &Method, wanted: Method, allow: &'static str) -> Result<(), Failure> {
    if *method == wanted {
        Ok(())
    } else {
        Err(Failure::method_not_allowed(allow))
    }
}

fn store(kv: Option<&Kv>) -> Result<&Kv, Failure> {
    kv.ok_or_else(|| Failure::unavailable("the Worker has no KV binding"))
}

fn environment_name(name: &str) -> Result<&str, Failure> {
    if is_valid_name(name) {
        Ok(name)
    } else {
        Err(Failure::bad_request(format!(
            "{name:?} is not an environment name (letters, digits, `_`, `-`, `.`)"
        )))
    }
}

fn body_failure(error: BodyError) -> Failure {
    match error {
        BodyError::TooLarge(limit) => Failure::too_large(limit),
        BodyError::Unreadable => Failure::bad_request("the request body could not be read"),
    }
}

fn kv_failure(what: &str, error: impl core::fmt::Display) -> Failure {
    Failure::unavailable(format!("KV failed while {what}: {error}"))
}

async fn put_prompt(request: &Incoming, hash: &str, kv: &Kv) -> Outcome {
    if !is_sha256_hex(hash) {
        return Err(Failure::api(
            400,
            "bad_hash",
            "a prompt is named by the SHA-256 of its body: 64 lowercase hex digits",
        ));
    }
    let body = read_body(request, limits::PROMPT_BYTES)
        .await
        .map_err(body_failure)?;
    let computed = sha256_hex(&body)
        .await
        .map_err(|e| Failure::unavailable(format!("the runtime could not hash the body: {e}")))?;
    if computed != hash {
        return Err(Failure::api(
            422,
            "hash_mismatch",
            format!("the body's SHA-256 is {computed}, not {hash}"),
        )
        .with_field("computed", Value::from(computed)));
    }
    let Ok(text) = String::from_utf8(body) else {
        return Err(Failure::api(
            422,
            "invalid_body",
            "a prompt body must be UTF-8 text",
        ));
    };
    let key = body_key(hash);
    let existing = kv
        .text(&key)
        .await
        .map_err(|e| kv_failure("reading the body", e))?;
    let created = existing.is_none();
    if created {
        put(kv, &key, &text).await?;
    }
    remember_written(hash, &text);
    Ok(Reply::json(
        if created { 201 } else { 200 },
        &json!({"hash": hash, "created": created}),
    ))
}

async fn read_state(environment: &str, kv: &Kv) -> Result<(Option<u64>, Meta), Failure> {
    let pointer = kv
        .text(&pointer_key(environment))
        .await
        .map_err(|e| kv_failure("reading the live revision", e))?;
    let live = match pointer {
        None => None,
        Some(text) => Some(text.trim().parse::<u64>().map_err(|_| {
            Failure::unavailable(format!(
                "{} holds {text:?}, not a revision",
                pointer_key(environment)
            ))
        })?),
    };
    let meta = match kv
        .text(&meta_key(environment))
        .await
        .map_err(|e| kv_failure("reading the revision history", e))?
    {
        None => Meta::default(),
        Some(text) => Meta::from_json(&text).ok_or_else(|| {
            Failure::unavailable(format!(
                "{} is not a revision history: {text:?}",
                meta_key(environment)
            ))
        })?,
    };
    Ok((live, meta))
}

async fn status(environment: &str, kv: &Kv) -> Outcome {
    let (live, meta) = read_state(environment, kv).await?;
    Ok(Reply::json(
        200,
        &json!({"environment": environment, "live": live, "latest": meta.latest, "kept": meta.kept}),
    ))
}

/// `expected_live` from the query: `Some(Some(n))`, `Some(None)` for `none` (no live revision
/// expected), `None` when absent.
fn expected_live(request: &Incoming) -> Result<Option<Option<u64>>, Failure> {
    // The raw URL, not a parsed `Url`: parsing it would link the `url` crate and its IDNA
    // tables into the Wasm for one numeric parameter.
    match query_param(request.url(), "expected_live") {
        Some(value) => parse_expected_live(value).map(Some),
        None => Ok(None),
    }
}

pub fn parse_expected_live(value: &str) -> Result<Option<u64>, Failure> {
    match value {
        "none" | "null" => Ok(None),
        number => number.parse::<u64>().map(Some).map_err(|_| {
            Failure::bad_request(format!(
                "expected_live must be a revision number or `none`, not {number:?}"
            ))
        }),
    }
}

/// The checks a publish must pass against the stored state.
pub fn check_publish(
    meta: &Meta,
    live: Option<u64>,
    revision: u64,
    expected_live: Option<Option<u64>>,
) -> Result<(), Failure> {
    let highest = meta.latest.max(live);
    if let Some(highest) = highest.filter(|highest| revision <= *highest) {
        return Err(Failure::api(
            409,
            "stale_revision",
            format!("revision {revision} is not above the latest published revision {highest}"),
        )
        .with_field("latest", Value::from(highest)));
    }
    if let Some(expected) = expected_live.filter(|expected| *expected != live) {
        return Err(Failure::api(
            409,
            "conflict",
            format!(
                "the live revision is {}, not {} as expected",
                describe(live),
                describe(expected)
            ),
        )
        .with_field("live", json!(live)));
    }
    Ok(())
}

fn describe(revision: Option<u64>) -> String {
    revision.map_or_else(|| String::from("none"), |revision| revision.to_string())
}

/// Revisions as `{:?}` writes them (`[5, 6]`), without linking `Debug` for lists.
fn list(revisions: &[u64]) -> String {
    let items: Vec<String> = revisions.iter().map(u64::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// The history after publishing `revision`, and the revisions that fall out of it.
pub fn next_meta(meta: &Meta, revision: u64) -> (Meta, Vec<u64>) {
    let mut kept = meta.kept.clone();
    kept.push(revision);
    kept.sort_unstable();
    kept.dedup();
    let excess = kept.len().saturating_sub(KEPT_REVISIONS);
    let dropped: Vec<u64> = kept.drain(..excess).collect();
    (
        Meta {
            latest: Some(meta.latest.map_or(revision, |latest| latest.max(revision))),
            kept,
        },
        dropped,
    )
}

async fn publish(
    request: &Incoming,
    environment: &str,
    expected_live: Option<Option<u64>>,
    kv: &Kv,
) -> Outcome {
    let body = read_body(request, limits::RULESET_BYTES)
        .await
        .map_err(body_failure)?;
    let ruleset = Ruleset::from_json(&body).map_err(|error| {
        Failure::api(422, "invalid_ruleset", "the ruleset does not validate")
            .with_field("problems", json!(error.problems()))
    })?;
    if ruleset.environment() != environment {
        return Err(Failure::api(
            422,
            "invalid_ruleset",
            "the ruleset is for another environment",
        )
        .with_field(
            "problems",
            json!([{"path": "environment", "code": "environment_mismatch",
                    "message": format!("the ruleset is for {:?}, published to {environment:?}",
                                       ruleset.environment())}]),
        ));
    }
    let Ok(raw) = String::from_utf8(body) else {
        return Err(Failure::api(
            422,
            "invalid_ruleset",
            "the ruleset is not UTF-8",
        ));
    };
    let revision = ruleset.revision();
    let _writing = WriteLock::acquire().await;
    let (live, meta) = read_state(environment, kv).await?;
    check_publish(&meta, live, revision, expected_live)?;

    let mut missing = Vec::new();
    for prompts in ruleset.prompts().chunks(LOOKUPS_AT_ONCE) {
        let lookups = prompts.iter().map(|prompt| async move {
            let stored = kv.text(&body_key(&prompt.hash)).await;
            (prompt.hash.as_str(), stored)
        });
        for (hash, stored) in join_all(lookups).await {
            match stored {
                Ok(Some(_)) => {}
                Ok(None) => missing.push(hash),
                Err(error) => return Err(kv_failure("checking the prompt bodies", error)),
            }
        }
    }
    if !missing.is_empty() {
        return Err(Failure::api(
            422,
            "missing_prompt",
            format!(
                "{} prompt bod{} named by the ruleset {} not stored; PUT them first",
                missing.len(),
                if missing.len() == 1 { "y" } else { "ies" },
                if missing.len() == 1 { "is" } else { "are" },
            ),
        )
        .with_field("hashes", json!(missing)));
    }

    let (next, dropped) = next_meta(&meta, revision);
    let meta_json = next.to_json();
    put(kv, &revision_key(environment, revision), &raw).await?;
    put(kv, &meta_key(environment), &meta_json).await?;
    put(kv, &pointer_key(environment), &revision.to_string()).await?;
    for old in dropped {
        // Best effort: a revision that stays behind is unreachable, not harmful.
        let _ = kv.delete(&revision_key(environment, old)).await;
    }
    Ok(Reply::json(
        201,
        &json!({"environment": environment, "revision": revision, "previous": live}),
    ))
}

async fn put(kv: &Kv, key: &str, value: &str) -> Result<(), Failure> {
    kv.put(key, value)
        .await
        .map_err(|e| kv_failure(&format!("writing {key}"), e))
}

/// The revision a rollback asks for: `{"revision": N}`, or `{}` (or nothing) for the default.
pub fn rollback_request(body: &[u8]) -> Result<Option<u64>, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let bad = || Failure::bad_request("the body must be {\"revision\": N} or {}");
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return Err(bad());
    };
    if object.keys().any(|key| key != "revision") {
        return Err(bad());
    }
    match object.get("revision") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(bad),
    }
}

/// The revision a rollback goes to: the one asked for, or the kept revision before the live one.
pub fn rollback_target(
    meta: &Meta,
    live: Option<u64>,
    requested: Option<u64>,
) -> Result<u64, Failure> {
    let target = match requested {
        Some(revision) => Some(revision).filter(|revision| meta.kept.contains(revision)),
        None => meta
            .kept
            .iter()
            .copied()
            .filter(|revision| live.is_none_or(|live| *revision < live))
            .max(),
    };
    target.ok_or_else(|| {
        let message = match requested {
            Some(revision) => format!(
                "revision {revision} is not kept; kept: {}",
                list(&meta.kept)
            ),
            None => format!(
                "no kept revision precedes the live one ({}); kept: {}",
                describe(live),
                list(&meta.kept)
            ),
        };
        Failure::api(404, "revision_not_kept", message).with_field("kept", json!(meta.kept))
    })
}

async fn rollback(request: &Incoming, environment: &str, kv: &Kv) -> Outcome {
    let body = read_body(request, limits::ROLLBACK_BYTES)
        .await
        .map_err(body_failure)?;
    let requested = rollback_request(&body)?;
    let _writing = WriteLock::acquire().await;
    let (live, meta) = read_state(environment, kv).await?;
    let target = rollback_target(&meta, live, requested)?;
    let stored = kv
        .text(&revision_key(environment, target))
        .await
        .map_err(|e| kv_failure("reading the kept revision", e))?;
    if stored.is_none() {
        return Err(Failure::api(
            404,
            "revision_not_kept",
            format!("{} is no longer stored", revision_key(environment, target)),
        )
        .with_field("kept", json!(meta.kept)));
    }
    put(kv, &pointer_key(environment), &target.to_string()).await?;
    Ok(Reply::json(
        200,
        &json!({"environment": environment, "revision": target, "previous": live}),
    ))
}

/// How many prompt bodies a publish looks up in KV at once.
const LOOKUPS_AT_ONCE: usize = 32;

/// Runs the futures together and gives their outputs in order, as `futures::future::join_all`
/// does for up to 30 futures: every wake-up polls each unfinished one, so the work grows with
/// the square of their number, and publish hands it [`LOOKUPS_AT_ONCE`] at a time. (The
/// futures crate's version switches to a queue for longer lists, which adds its own code to
/// the Wasm.)
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    use std::task::Poll;
    /// A future and, once it is ready, its output.
    type Slot<F> = (std::pin::Pin<Box<F>>, Option<<F as Future>::Output>);
    let mut slots: Vec<Slot<F>> = futures
        .into_iter()
        .map(|future| (Box::pin(future), None))
        .collect();
    std::future::poll_fn(|context| {
        let mut finished = true;
        for (future, output) in &mut slots {
            if output.is_none() {
                match future.as_mut().poll(context) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => finished = false,
                }
            }
        }
        if finished {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    slots.into_iter().filter_map(|(_, output)| output).collect()
}

/// The isolate's lock on ruleset writes: held from reading an environment's state to writing
/// the new one, so a concurrent publish or rollback in this isolate waits and then sees the
/// result. An isolate runs one thread; requests interleave only at `await`s, which is where a
/// waiter parks.
pub struct WriteLock(());

#[derive(Default)]
struct WriteLockState {
    held: bool,
    waiting: std::collections::VecDeque<std::task::Waker>,
}

std::thread_local! {
    static WRITE_LOCK: std::cell::RefCell<WriteLockState> =
        std::cell::RefCell::new(WriteLockState::default());
}

impl WriteLock {
    /// Waits until no other request of this isolate holds the lock, then holds it until dropped.
    pub async fn acquire() -> WriteLock {
        std::future::poll_fn(|context| {
            WRITE_LOCK.with_borrow_mut(|state| {
                if state.held {
                    state.waiting.push_back(context.waker().clone());
                    std::task::Poll::Pending
                } else {
                    state.held = true;
                    std::task::Poll::Ready(WriteLock(()))
                }
            })
        })
        .await
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let waiting = WRITE_LOCK.with_borrow_mut(|state| {
            state.held = false;
            core::mem::take(&mut state.waiting)
        });
        // Every waiter polls again: the first takes the lock and the rest wait again. Waking
        // them all means a waiter whose request went away cannot strand the ones behind it.
        for waker in waiting {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_lists_are_written_as_debug_writes_them() {
        for revisions in [&[][..], &[7], &[5, 6, 18_446_744_073_709_551_615]] {
            assert_eq!(list(revisions), format!("{revisions:?}"));
        }
    }

    #[test]
    fn join_all_gives_every_output_in_order() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};

        // The first future is ready only on its second poll, so the join has to come back to it.
        let mut polled = false;
        let late = std::future::poll_fn(move |context| {
            if polled {
                Poll::Ready(1)
            } else {
                polled = true;
                context.waker().wake_by_ref();
                Poll::Pending
            }
        });
        let futures: Vec<std::pin::Pin<Box<dyn Future<Output = i32>>>> = vec![
            Box::pin(late),
            Box::pin(std::future::ready(2)),
            Box::pin(std::future::ready(3)),
        ];
        let mut joined = std::pin::pin!(join_all(futures));
        let mut context = Context::from_waker(Waker::noop());
        assert!(joined.as_mut().poll(&mut context).is_pending());
        assert_eq!(
            joined.as_mut().poll(&mut context),
            Poll::Ready(vec![1, 2, 3])
        );
    }

    #[test]
    fn the_write_lock_admits_one_request_at_a_time_and_wakes_the_rest() {
        use std::future::Future;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::{Context, Poll, Wake, Waker};

        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let counted = || {
            let count = Arc::new(Count(AtomicUsize::new(0)));
            (count.clone(), Waker::from(count))
        };

        let (_, waker) = counted();
        let mut first = std::pin::pin!(WriteLock::acquire());
        let Poll::Ready(held) = first.as_mut().poll(&mut Context::from_waker(&waker)) else {
            panic!("a free lock is taken at once");
        };
        let (second_woken, second_waker) = counted();
        let mut second = std::pin::pin!(WriteLock::acquire());
        assert!(
            second
                .as_mut()
                .poll(&mut Context::from_waker(&second_waker))
                .is_pending()
        );
        let (abandoned_woken, abandoned_waker) = counted();
        {
            // A waiter whose request goes away must not strand the one behind it.
            let mut abandoned = std::pin::pin!(WriteLock::acquire());
            assert!(
                abandoned
                    .as_mut()
                    .poll(&mut Context::from_waker(&abandoned_waker))
                    .is_pending()
            );
        }
        drop(held);
        assert_eq!(second_woken.0.load(Ordering::SeqCst), 1);
        assert_eq!(abandoned_woken.0.load(Ordering::SeqCst), 1);
        let Poll::Ready(again) = second
            .as_mut()
            .poll(&mut Context::from_waker(&second_waker))
        else {
            panic!("the woken waiter takes the lock");
        };
        let (third_woken, third_waker) = counted();
        let mut third = std::pin::pin!(WriteLock::acquire());
        assert!(
            third
                .as_mut()
                .poll(&mut Context::from_waker(&third_waker))
                .is_pending()
        );
        drop(again);
        assert_eq!(third_woken.0.load(Ordering::SeqCst), 1);
        assert!(
            third
                .as_mut()
                .poll(&mut Context::from_waker(&third_waker))
                .is_ready()
        );
    }

    fn code(failure: Failure) -> (u16, String) {
        let reply = Reply::from(failure);
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        (
            reply.status,
            body["error"]["code"].as_str().unwrap().to_string(),
        )
    }

    #[test]
    fn admin_is_off_without_a_token_and_needs_the_exact_token() {
        assert_eq!(
            code(authorize(None, Some("Bearer x")).unwrap_err()),
            (404, "admin_disabled".into())
        );
        assert_eq!(
            code(authorize(Some(""), Some("Bearer ")).unwrap_err()),
            (404, "admin_disabled".into())
        );
        assert_eq!(
            code(authorize(Some("s3cret"), None).unwrap_err()),
            (401, "unauthorized".into())
        );
        assert_eq!(
            code(authorize(Some("s3cret"), Some("Bearer s3cre")).unwrap_err()),
            (401, "unauthorized".into())
        );
        assert_eq!(
            code(authorize(Some("s3cret"), Some("Basic s3cret")).unwrap_err()),
            (401, "unauthorized".into())
        );
        assert!(authorize(Some("s3cret"), Some("Bearer s3cret")).is_ok());
        let reply = Reply::from(authorize(Some("s3cret"), None).unwrap_err());
        assert!(
            reply
                .header("www-authenticate")
                .unwrap()
                .starts_with("Bearer")
        );
    }

    #[test]
    fn publishes_must_be_newer_than_anything_published() {
        let meta = Meta {
            latest: Some(9),
            kept: vec![8, 9],
        };
        assert_eq!(
            code(check_publish(&meta, Some(9), 9, None).unwrap_err()).1,
            "stale_revision"
        );
        assert_eq!(
            code(check_publish(&meta, Some(7), 8, None).unwrap_err()).1,
            "stale_revision"
        );
        // A live pointer written by hand above `latest` also counts.
        assert_eq!(
            code(check_publish(&Meta::default(), Some(4), 3, None).unwrap_err()).1,
            "stale_revision"
        );
        assert!(check_publish(&meta, Some(9), 10, None).is_ok());
        assert!(check_publish(&Meta::default(), None, 1, None).is_ok());
    }

    #[test]
    fn expected_live_guards_against_concurrent_changes() {
        let meta = Meta {
            latest: Some(9),
            kept: vec![9],
        };
        assert_eq!(
            code(check_publish(&meta, Some(9), 10, Some(Some(8))).unwrap_err()),
            (409, "conflict".into())
        );
        assert_eq!(
            code(check_publish(&meta, Some(9), 10, Some(None)).unwrap_err()).1,
            "conflict"
        );
        assert!(check_publish(&meta, Some(9), 10, Some(Some(9))).is_ok());
        assert!(check_publish(&Meta::default(), None, 1, Some(None)).is_ok());
        assert_eq!(parse_expected_live("7").unwrap(), Some(7));
        assert_eq!(parse_expected_live("none").unwrap(), None);
        assert_eq!(code(parse_expected_live("x").unwrap_err()).0, 400);
    }

    #[test]
    fn history_keeps_the_last_ten_revisions() {
        let mut meta = Meta::default();
        let mut all_dropped = Vec::new();
        for revision in 1..=12 {
            let (next, dropped) = next_meta(&meta, revision);
            meta = next;
            all_dropped.extend(dropped);
        }
        assert_eq!(meta.latest, Some(12));
        assert_eq!(meta.kept, (3..=12).collect::<Vec<_>>());
        assert_eq!(all_dropped, vec![1, 2]);
    }

    #[test]
    fn history_round_trips_and_garbage_is_refused() {
        let meta = Meta {
            latest: Some(9),
            kept: vec![8, 9],
        };
        assert_eq!(meta.to_json(), r#"{"kept":[8,9],"latest":9}"#);
        assert_eq!(Meta::from_json(&meta.to_json()), Some(meta));
        assert_eq!(Meta::default().to_json(), r#"{"kept":[],"latest":null}"#);
        assert_eq!(Meta::from_json("{}"), Some(Meta::default()));
        assert_eq!(Meta::from_json(r#"{"latest": "9"}"#), None);
        assert_eq!(Meta::from_json(r#"{"kept": [1, -2]}"#), None);
        assert_eq!(Meta::from_json("nope"), None);
    }

    #[test]
    fn rollback_requests_name_a_revision_or_nothing() {
        assert_eq!(rollback_request(b"").unwrap(), None);
        assert_eq!(rollback_request(b"{}").unwrap(), None);
        assert_eq!(rollback_request(br#"{"revision": 4}"#).unwrap(), Some(4));
        for bad in [
            &b"{"[..],
            b"[]",
            br#"{"revision": "4"}"#,
            br#"{"revision": 4, "x": 1}"#,
        ] {
            assert_eq!(
                code(rollback_request(bad).unwrap_err()),
                (400, "bad_request".into())
            );
        }
    }

    #[test]
    fn rollback_goes_to_a_kept_revision() {
        let meta = Meta {
            latest: Some(9),
            kept: vec![5, 7, 9],
        };
        assert_eq!(rollback_target(&meta, Some(9), None).unwrap(), 7);
        assert_eq!(rollback_target(&meta, Some(7), None).unwrap(), 5);
        assert_eq!(rollback_target(&meta, Some(9), Some(5)).unwrap(), 5);
        assert_eq!(
            code(rollback_target(&meta, Some(5), None).unwrap_err()),
            (404, "revision_not_kept".into())
        );
        assert_eq!(
            code(rollback_target(&meta, Some(9), Some(6)).unwrap_err()).1,
            "revision_not_kept"
        );
        assert_eq!(
            code(rollback_target(&Meta::default(), None, None).unwrap_err()).1,
            "revision_not_kept"
        );
    }
}
