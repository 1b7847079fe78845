//! Prompt bodies by SHA-256: from the isolate's memory, the compiled-in fallback, or KV
//! (`prompt:<sha256>`). Bodies are immutable, so a body once read is kept without a TTL, up to a
//! memory budget.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::js::Kv;

use crate::fallback;

/// Bytes of bodies kept per isolate; past it the memory cache starts over.
const MEMORY_BUDGET: usize = 8 * 1024 * 1024;

struct Bodies {
    by_hash: BTreeMap<String, Rc<str>>,
    bytes: usize,
}

thread_local! {
    static BODIES: RefCell<Bodies> = const {
        RefCell::new(Bodies { by_hash: BTreeMap::new(), bytes: 0 })
    };
    static FALLBACK: BTreeMap<String, String> = fallback::prompts();
}

/// The KV key of a body.
pub fn body_key(hash: &str) -> String {
    format!("prompt:{hash}")
}

/// The body named `hash`: `Ok(None)` when no source has it, `Err` when KV failed.
pub async fn body(kv: Option<&Kv>, hash: &str) -> Result<Option<Rc<str>>, String> {
    if let Some(body) = BODIES.with(|bodies| bodies.borrow().by_hash.get(hash).cloned()) {
        return Ok(Some(body));
    }
    let from_kv = match kv {
        Some(kv) => kv.text(&body_key(hash)).await.map_err(|e| e.to_string()),
        None => Ok(None),
    };
    let found = match from_kv {
        Ok(Some(text)) => Some(Rc::<str>::from(text)),
        Ok(None) => fallback_body(hash),
        // KV failed: the fallback may still have it; if not, the caller reports the failure.
        Err(error) => Some(fallback_body(hash).ok_or(error)?),
    };
    if let Some(body) = &found {
        remember(hash, Rc::clone(body));
    }
    Ok(found)
}

fn fallback_body(hash: &str) -> Option<Rc<str>> {
    FALLBACK.with(|bodies| bodies.get(hash).map(|body| Rc::from(body.as_str())))
}

fn remember(hash: &str, body: Rc<str>) {
    BODIES.with(|bodies| {
        let mut bodies = bodies.borrow_mut();
        if body.len() > MEMORY_BUDGET {
            return;
        }
        if bodies.bytes + body.len() > MEMORY_BUDGET {
            bodies.by_hash.clear();
            bodies.bytes = 0;
        }
        bodies.bytes += body.len();
        bodies.by_hash.insert(String::from(hash), body);
    });
}

/// Keeps a body just written through the admin API.
pub fn remember_written(hash: &str, body: &str) {
    remember(hash, Rc::from(body));
}
