//! Buckets per client identity: a sharded map with a bounded number of keys.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Duration;

use super::gcra::Rate;

const SHARDS: usize = 16;

/// One shard: each client's key and its bucket's state.
type Shard = Mutex<HashMap<Box<str>, u64>>;

/// One bucket per key, each at the same rate. A shard's lock is held only for a map lookup and
/// one arithmetic update; keys are allocated once, when a client is first seen.
#[derive(Debug)]
pub(crate) struct KeyedBuckets {
    rate: Rate,
    hasher: RandomState,
    shards: Box<[Shard]>,
    per_shard: usize,
}

impl KeyedBuckets {
    /// Buckets at `rate`, remembering at most about `max_keys` clients.
    pub(crate) fn new(rate: Rate, max_keys: usize) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect();
        Self {
            rate,
            hasher: RandomState::new(),
            shards,
            per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    /// Takes a token for `key` at `now`.
    pub(crate) fn try_acquire(&self, key: &str, now: u64) -> Result<(), Duration> {
        let index = (self.hasher.hash_one(key) as usize) % self.shards.len();
        let Some(shard) = self.shards.get(index) else {
            return Ok(());
        };
        // A panic while holding the lock cannot leave the map inconsistent: recover it.
        let mut map = shard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(tat) = map.get_mut(key) {
            *tat = self.rate.take(*tat, now)?;
            return Ok(());
        }
        let tat = self.rate.take(0, now)?;
        if map.len() >= self.per_shard {
            evict(&mut map, now);
        }
        map.insert(key.into(), tat);
        Ok(())
    }

    /// How many clients are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }
}

/// Forgets idle clients (their bucket is full again, so nothing is lost); if none is idle, the
/// one that has been quiet longest.
fn evict(map: &mut HashMap<Box<str>, u64>, now: u64) {
    let before = map.len();
    map.retain(|_, tat| !Rate::is_idle(*tat, now));
    if map.len() == before
        && let Some(oldest) = map
            .iter()
            .min_by_key(|(_, tat)| **tat)
            .map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
    tracing::debug!(
        evicted = before - map.len(),
        "rate limit: forgot idle clients"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_isolated_and_bounded() {
        let k = KeyedBuckets::new(Rate::per_second(1), 32);
        assert!(k.try_acquire("a", 0).is_ok());
        assert!(k.try_acquire("a", 0).is_err());
        assert!(k.try_acquire("b", 0).is_ok());
        for i in 0..1000 {
            let _ = k.try_acquire(&format!("client-{i}"), 0);
        }
        assert!(k.len() <= 32, "{} keys kept", k.len());
    }

    #[test]
    fn idle_keys_are_evicted_first() {
        let k = KeyedBuckets::new(Rate::per_second(1), SHARDS);
        // One key per shard on average; after a second every bucket is idle and evictable.
        for i in 0..200 {
            let _ = k.try_acquire(&format!("c{i}"), 0);
        }
        assert!(k.len() <= SHARDS);
        assert!(k.try_acquire("late", 5_000_000_000).is_ok());
    }
}
