//! An in-memory [`Store`] with the Worker's semantics (stale revisions and moved pointers are
//! conflicts, rollback only to kept revisions). The control-loop tests and the in-process
//! `simulate` runs publish into it; it counts every write so a test can prove that an action
//! was not repeated.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::store::{EnvState, PointerMove, Progress, Store};

#[derive(Default)]
struct Environment {
    live: Option<u64>,
    latest: Option<u64>,
    revisions: BTreeMap<u64, Vec<u8>>,
}

/// A KV store in memory.
#[derive(Default)]
pub struct MemoryStore {
    environments: Mutex<BTreeMap<String, Environment>>,
    writes: Mutex<Vec<(String, u64)>>,
}

/// How many revisions stay for rollback, as the Worker keeps.
const KEEP: usize = 10;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Every ruleset write, as (environment, revision), in order.
    pub fn writes(&self) -> Vec<(String, u64)> {
        self.writes.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// The live ruleset's bytes.
    pub fn live_bytes(&self, environment: &str) -> Option<Vec<u8>> {
        let environments = self.environments.lock().ok()?;
        let env = environments.get(environment)?;
        env.revisions.get(&env.live?).cloned()
    }
}

fn poisoned() -> Error {
    Error::Invalid(String::from("the in-memory store's lock is poisoned"))
}

impl Store for MemoryStore {
    fn describe(&self) -> String {
        String::from("memory")
    }

    fn state(&self, environment: &str) -> Result<EnvState> {
        let environments = self.environments.lock().map_err(|_| poisoned())?;
        Ok(match environments.get(environment) {
            Some(env) => {
                let kept: Vec<u64> = env.revisions.keys().copied().collect();
                EnvState {
                    live: env.live,
                    latest: env.latest,
                    kept: kept[kept.len().saturating_sub(KEEP)..].to_vec(),
                }
            }
            None => EnvState::default(),
        })
    }

    fn put_prompts(&self, bodies: &[(String, Vec<u8>)], _: &dyn Progress) -> Result<usize> {
        Ok(bodies.len())
    }

    fn put_ruleset(
        &self,
        environment: &str,
        revision: u64,
        bytes: &[u8],
        expected_live: Option<u64>,
    ) -> Result<PointerMove> {
        let mut environments = self.environments.lock().map_err(|_| poisoned())?;
        let env = environments.entry(environment.to_string()).or_default();
        if env.latest.is_some_and(|latest| revision <= latest) {
            return Err(Error::Conflict {
                message: format!("stale_revision: {revision} is not above {:?}", env.latest),
            });
        }
        if expected_live.is_some() && expected_live != env.live {
            return Err(Error::Conflict {
                message: format!("conflict: live is {:?}, not {expected_live:?}", env.live),
            });
        }
        let previous = env.live;
        env.revisions.insert(revision, bytes.to_vec());
        env.latest = Some(revision);
        env.live = Some(revision);
        if let Ok(mut writes) = self.writes.lock() {
            writes.push((environment.to_string(), revision));
        }
        Ok(PointerMove { revision, previous })
    }

    fn rollback(&self, environment: &str, to: Option<u64>) -> Result<PointerMove> {
        let mut environments = self.environments.lock().map_err(|_| poisoned())?;
        let env = environments.entry(environment.to_string()).or_default();
        let kept: Vec<u64> = env.revisions.keys().copied().collect();
        let target = match to {
            Some(target) => target,
            None => {
                let live = env.live.unwrap_or(0);
                *kept.iter().rev().find(|r| **r < live).ok_or_else(|| {
                    Error::Invalid(String::from(
                        "revision_not_kept: nothing before the live revision",
                    ))
                })?
            }
        };
        if !env.revisions.contains_key(&target) {
            return Err(Error::Invalid(format!("revision_not_kept: {target}")));
        }
        let previous = env.live;
        env.live = Some(target);
        Ok(PointerMove {
            revision: target,
            previous,
        })
    }

    fn fetch_ruleset(&self, environment: &str, revision: u64) -> Result<Option<Vec<u8>>> {
        let environments = self.environments.lock().map_err(|_| poisoned())?;
        Ok(environments
            .get(environment)
            .and_then(|env| env.revisions.get(&revision).cloned()))
    }
}
