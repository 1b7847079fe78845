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

/// The bodies read so far. A hash maps to a position in `bodies` rather than to the body
/// itself: core links `BTreeMap<String, usize>` already, and a map of bodies would add its own
/// copy of the B-tree code to the Wasm.
struct Bodies {
    by_hash: BTreeMap<String, usize>,
    bodies: Vec<Rc<str>>,
    bytes: usize,
}

thread_local! {
    static BODIES: RefCell<Bodies> = const {
        RefCell::new(Bodies { by_hash: BTreeMap::new(), bodies: Vec::new(), bytes: 0 })
    };
    static FALLBACK: serde_json::Map<String, serde_json::Value> = fallback::prompts();
}

/// The body named `hash` if this isolate has read it before (no KV read).
pub fn remembered(hash: &str) -> Option<Rc<str>> {
    BODIES.with(|bodies| {
        let bodies = bodies.borrow();
        let index = *bodies.by_hash.get(hash)?;
        bodies.bodies.get(index).cloned()
    })
}

/// The body named `hash`: `Ok(None)` when no source has it, `Err` when KV failed.
pub async fn body(kv: Option<&Kv>, hash: &str) -> Result<Option<Rc<str>>, String> {
    if let Some(body) = remembered(hash) {
        return Ok(Some(body));
    }
    let from_kv = match kv {
        Some(kv) => kv
            .text(&promptflag_contracts::keys::prompt_key(hash))
            .await
            .map_err(|e| e.to_string()),
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
    FALLBACK.with(|bodies| {
        bodies
            .get(hash)
            .and_then(|body| body.as_str())
            .map(Rc::from)
    })
}

fn remember(hash: &str, body: Rc<str>) {
    BODIES.with(|bodies| {
        let mut bodies = bodies.borrow_mut();
        // A hash names one body, so one kept already (two requests read it at once) stays.
        if body.len() > MEMORY_BUDGET || bodies.by_hash.contains_key(hash) {
            return;
        }
        if bodies.bytes + body.len() > MEMORY_BUDGET {
            bodies.by_hash.clear();
            bodies.bodies.clear();
            bodies.bytes = 0;
        }
        bodies.bytes += body.len();
        let index = bodies.bodies.len();
        bodies.by_hash.insert(String::from(hash), index);
        bodies.bodies.push(body);
    });
}

/// Keeps a body just written through the admin API.
pub fn remember_written(hash: &str, body: &str) {
    remember(hash, Rc::from(body));
}
