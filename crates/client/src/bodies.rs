//! Prompt bodies by hash: a bounded least-recently-used cache whose every entry was verified
//! against the SHA-256 it is named by.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use promptflag_contracts::digest::is_sha256_hex;
pub(crate) use promptflag_contracts::digest::sha256_hex;

use crate::error::ClientError;

pub(crate) fn check_hash(hash: &str) -> Result<(), ClientError> {
    if is_sha256_hex(hash) {
        Ok(())
    } else {
        Err(ClientError::BadHash(hash.to_string()))
    }
}

/// Verifies `bytes` against `hash` and turns them into text.
pub(crate) fn verified_body(hash: &str, bytes: Vec<u8>) -> Result<Arc<str>, ClientError> {
    let actual = sha256_hex(&bytes);
    if actual != hash {
        return Err(ClientError::BodyHashMismatch {
            expected: hash.to_string(),
            actual,
        });
    }
    // The hash matched, so these are the published bytes; promptflag build only publishes UTF-8.
    Ok(Arc::from(String::from_utf8_lossy(&bytes).as_ref()))
}

/// A small LRU: a map plus a recency queue. Capacities are in the hundreds, so the linear
/// removal from the queue on a hit costs less than an intrusive list would.
pub(crate) struct BodyCache {
    capacity: usize,
    entries: HashMap<String, Arc<str>>,
    recency: VecDeque<String>,
}

impl BodyCache {
    pub(crate) fn new(capacity: usize) -> BodyCache {
        BodyCache {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            recency: VecDeque::new(),
        }
    }

    pub(crate) fn get(&mut self, hash: &str) -> Option<Arc<str>> {
        let body = self.entries.get(hash)?.clone();
        self.touch(hash);
        Some(body)
    }

    pub(crate) fn contains(&self, hash: &str) -> bool {
        self.entries.contains_key(hash)
    }

    pub(crate) fn insert(&mut self, hash: &str, body: Arc<str>) {
        if self.entries.insert(hash.to_string(), body).is_some() {
            self.touch(hash);
            return;
        }
        self.recency.push_back(hash.to_string());
        while self.entries.len() > self.capacity {
            match self.recency.pop_front() {
                Some(oldest) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn touch(&mut self, hash: &str) {
        if let Some(position) = self.recency.iter().position(|h| h == hash)
            && let Some(key) = self.recency.remove(position)
        {
            self.recency.push_back(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_body() {
        let mut cache = BodyCache::new(2);
        cache.insert("a", Arc::from("A"));
        cache.insert("b", Arc::from("B"));
        assert!(cache.get("a").is_some()); // a is now the most recent
        cache.insert("c", Arc::from("C"));
        assert!(cache.contains("a"));
        assert!(!cache.contains("b"));
        assert!(cache.contains("c"));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_body_that_does_not_match_its_hash_is_rejected() {
        let hash = sha256_hex(b"hello");
        assert_eq!(&*verified_body(&hash, b"hello".to_vec()).unwrap(), "hello");
        assert!(matches!(
            verified_body(&hash, b"hellO".to_vec()),
            Err(ClientError::BodyHashMismatch { .. })
        ));
    }
}
