//! The admin API of `docs/interfaces.md`, behind `Authorization: Bearer <ADMIN_TOKEN>` (compared
//! in constant time) and off when the secret is unset:
//!
//! - `PUT /admin/v1/prompts/{sha256}`: stores a body after checking its hash.
//! - `GET /admin/v1/rulesets/{env}`: the live, latest and kept revisions.
//! - `PUT /admin/v1/rulesets/{env}[?expected_live=N]`: validates and publishes a revision
//!   (body, then `ruleset:<env>:<rev>`, then `meta:<env>`, then the pointer).
//! - `POST /admin/v1/rulesets/{env}/rollback`: points `ruleset:<env>` at a kept revision.
//!
//! The KV keys, the metadata `meta:<env>`, the revision rules (bounds, stale revisions,
//! `expected_live`, rollback targets) and the request shapes are `promptflag_contracts`'; this
//! module applies them to KV and answers in the admin API's shapes.
//!
//! KV offers no transactions. Within one isolate, ruleset writes (publish and rollback) take
//! [`WriteLock`] around their read, check and write, so two publishers racing through the same
//! isolate get one `201` and one `409`, never two `201`s for one revision. Across isolates
//! (several machines in production) KV has no compare-and-swap: publishes to one environment
//! are expected to come from one publisher at a time (the companion's control loop), and
//! `expected_live` guards the rest.

use promptflag_contracts::keys::{meta_key, pointer_key, pointer_value, prompt_key, revision_key};
use promptflag_contracts::{Meta, admin, keys};
use promptflag_core::Ruleset;
use serde_json::{Value, json};

use crate::http::{bearer_token, constant_time_eq, query_param};
use crate::input::limits;
use crate::js::{BodyError, Incoming, Kv, Method, read_body, sha256_hex};
use crate::prompts::remember_written;
use crate::reply::{Failure, Outcome, Reply};

/// A contract rule's refusal as the admin API answers it (`docs/interfaces.md`).
pub fn refusal(error: promptflag_contracts::Error) -> Failure {
    use promptflag_contracts::Error as Contract;
    let message = error.to_string();
    match error {
        Contract::StaleRevision { highest, .. } => {
            Failure::api(409, "stale_revision", message).with_field("latest", Value::from(highest))
        }
        Contract::LiveMoved { live, .. } => {
            Failure::api(409, "conflict", message).with_field("live", json!(live))
        }
        Contract::RevisionNotKept { kept, .. } => {
            Failure::api(404, "revision_not_kept", message).with_field("kept", json!(kept))
        }
        Contract::RevisionOutOfRange { .. } | Contract::RevisionsExhausted { .. } => {
            Failure::api(422, "invalid_ruleset", "the ruleset does not validate").with_field(
                "problems",
                json!([{"path": "revision", "code": error.code(), "message": message}]),
            )
        }
        _ => Failure::bad_request(message),
    }
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
    keys::environment(name).map_err(refusal)
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
    if !keys::is_prompt_hash(hash) {
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
    let key = prompt_key(hash);
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
        Some(text) => Some(
            keys::parse_pointer(&text)
                .map_err(|e| Failure::unavailable(format!("{}: {e}", pointer_key(environment))))?,
        ),
    };
    let meta = match kv
        .text(&meta_key(environment))
        .await
        .map_err(|e| kv_failure("reading the revision history", e))?
    {
        None => Meta::default(),
        Some(text) => Meta::parse(text.as_bytes()).map_err(|e| {
            Failure::unavailable(format!("{} is {e}: {text:?}", meta_key(environment)))
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
    admin::parse_expected_live(value).map_err(|_| {
        Failure::bad_request(format!(
            "expected_live must be a revision number or `none`, not {value:?}"
        ))
    })
}

/// The checks a publish must pass against the stored state ([`Meta::check_publish`]).
pub fn check_publish(
    meta: &Meta,
    live: Option<u64>,
    revision: u64,
    expected_live: Option<Option<u64>>,
) -> Result<(), Failure> {
    meta.check_publish(live, revision, expected_live)
        .map_err(refusal)
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
            let stored = kv.text(&prompt_key(&prompt.hash)).await;
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

    let (next, dropped) = meta.after_publish(revision, live).map_err(refusal)?;
    put(kv, &revision_key(environment, revision), &raw).await?;
    put(kv, &meta_key(environment), &next.to_json()).await?;
    put(kv, &pointer_key(environment), &pointer_value(revision)).await?;
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
    admin::parse_rollback_request(body).map_err(refusal)
}

/// The revision a rollback goes to: the one asked for, or the revision live before the current
/// one ([`Meta::rollback_target`]).
pub fn rollback_target(
    meta: &Meta,
    live: Option<u64>,
    requested: Option<u64>,
) -> Result<u64, Failure> {
    meta.rollback_target(live, requested).map_err(refusal)
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
    let next = meta.after_rollback(live, requested, target);
    put(kv, &meta_key(environment), &next.to_json()).await?;
    put(kv, &pointer_key(environment), &pointer_value(target)).await?;
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
            undo: Vec::new(),
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
            undo: Vec::new(),
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
    fn revisions_past_the_bound_are_invalid_rulesets() {
        let meta = Meta {
            latest: Some(promptflag_contracts::revision::MAX_REVISION),
            kept: vec![promptflag_contracts::revision::MAX_REVISION],
            undo: Vec::new(),
        };
        let too_high = promptflag_contracts::revision::MAX_REVISION + 1;
        assert_eq!(
            code(check_publish(&Meta::default(), None, too_high, None).unwrap_err()),
            (422, "invalid_ruleset".into())
        );
        assert_eq!(
            code(check_publish(&meta, None, too_high, None).unwrap_err()),
            (422, "invalid_ruleset".into())
        );
        assert_eq!(
            code(refusal(meta.next_revision(None).unwrap_err())),
            (422, "invalid_ruleset".into())
        );
        assert_eq!(
            code(parse_expected_live("9007199254740992").unwrap_err()).0,
            400
        );
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
            undo: Vec::new(),
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
