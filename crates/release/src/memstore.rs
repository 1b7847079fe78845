//! An in-memory [`Store`] with the Worker's semantics, from the same contract rules
//! (`promptflag_contracts`: stale revisions and moved pointers are conflicts, the last 10
//! revisions are kept, rollback only to kept revisions). The control-loop tests and the in-process
//! `simulate` runs publish into it; it counts every write so a test can prove that an action
//! was not repeated.

use std::collections::BTreeMap;
use std::sync::Mutex;

use promptflag_contracts::{Meta, keys};

use crate::error::{Error, Result};
use crate::store::{EnvState, PointerMove, Progress, Store, contract_error};

#[derive(Default)]
struct Environment {
    live: Option<u64>,
    /// `meta:<env>`: the latest revision and the kept ones.
    meta: Meta,
    /// The stored revisions: the kept ones (those that fall out of `kept` are deleted, as the
    /// Worker deletes them).
    revisions: BTreeMap<u64, Vec<u8>>,
}

/// A KV store in memory.
#[derive(Default)]
pub struct MemoryStore {
    environments: Mutex<BTreeMap<String, Environment>>,
    writes: Mutex<Vec<(String, u64)>>,
}

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
        let environment = keys::environment(environment).map_err(contract_error)?;
        let environments = self.environments.lock().map_err(|_| poisoned())?;
        Ok(match environments.get(environment) {
            Some(env) => EnvState {
                live: env.live,
                latest: env.meta.latest,
                kept: env.meta.kept.clone(),
            },
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
        let environment = keys::environment(environment).map_err(contract_error)?;
        let mut environments = self.environments.lock().map_err(|_| poisoned())?;
        let env = environments.entry(environment.to_string()).or_default();
        env.meta
            .check_publish(env.live, revision, expected_live.map(Some))
            .map_err(contract_error)?;
        let (meta, dropped) = env
            .meta
            .after_publish(revision, env.live)
            .map_err(contract_error)?;
        let previous = env.live;
        env.revisions.insert(revision, bytes.to_vec());
        for old in dropped {
            env.revisions.remove(&old);
        }
        env.meta = meta;
        env.live = Some(revision);
        if let Ok(mut writes) = self.writes.lock() {
            writes.push((environment.to_string(), revision));
        }
        Ok(PointerMove { revision, previous })
    }

    fn rollback(&self, environment: &str, to: Option<u64>) -> Result<PointerMove> {
        let environment = keys::environment(environment).map_err(contract_error)?;
        let mut environments = self.environments.lock().map_err(|_| poisoned())?;
        let env = environments.entry(environment.to_string()).or_default();
        let target = env
            .meta
            .rollback_target(env.live, to)
            .map_err(contract_error)?;
        if !env.revisions.contains_key(&target) {
            return Err(Error::Invalid(format!(
                "revision_not_kept: revision {target} is no longer stored"
            )));
        }
        let previous = env.live;
        env.meta = env.meta.after_rollback(previous, to, target);
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
