//! [`HostMap`]: a map keyed by host name for per-request lookups.
//!
//! `std`'s `HashMap<String, _>` hashes the key with SipHash through the streaming `Hasher`
//! interface, a few hundred instructions for a short host. Here the host is hashed once with
//! one-shot XXH3 (fixed seed) and the map is keyed by that `u64` (passed through unchanged);
//! hosts sharing a hash sit side by side in a short list and are told apart by comparison. Hosts
//! come from config and requests: a collision costs a comparison, never a wrong answer.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Passes an already computed `u64` hash through.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed with this hasher; fold anything else in anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The hosts whose names share one hash, with their values (nearly always one).
type Bucket<V> = Vec<(Box<str>, V)>;

/// A map from host names to `V`; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct HostMap<V> {
    map: HashMap<u64, Bucket<V>, BuildHasherDefault<PassThrough>>,
    len: usize,
}

impl<V> Default for HostMap<V> {
    fn default() -> Self {
        HostMap {
            map: HashMap::default(),
            len: 0,
        }
    }
}

fn hash(host: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(host.as_bytes())
}

impl<V> HostMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `host`.
    pub fn get(&self, host: &str) -> Option<&V> {
        self.map
            .get(&hash(host))?
            .iter()
            .find(|(h, _)| &**h == host)
            .map(|(_, v)| v)
    }

    /// The value of `host`, inserted with `make` when absent.
    pub fn get_or_insert_with(&mut self, host: &str, make: impl FnOnce() -> V) -> &mut V {
        let list = self.map.entry(hash(host)).or_default();
        let i = match list.iter().position(|(h, _)| &**h == host) {
            Some(i) => i,
            None => {
                list.push((Box::from(host), make()));
                self.len += 1;
                list.len() - 1
            }
        };
        match list.get_mut(i) {
            Some((_, v)) => v,
            // invariant: `i` is a position found in, or just pushed to, `list`.
            None => unreachable!("host map index out of range"),
        }
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps only the hosts for which `keep` returns true (it may also change the value).
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut V) -> bool) {
        let mut len = 0;
        self.map.retain(|_, list| {
            list.retain_mut(|(h, v)| keep(h, v));
            len += list.len();
            !list.is_empty()
        });
        self.len = len;
    }

    /// Every value.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values().flatten().map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retain_drops_hosts_and_counts_the_rest() {
        let mut m = HostMap::new();
        for h in ["a", "b", "c"] {
            *m.get_or_insert_with(h, || 0) += 1;
        }
        m.retain(|h, _| h != "b");
        assert_eq!(m.len(), 2);
        assert!(m.get("b").is_none());
        assert_eq!(m.get("a"), Some(&1));
    }

    #[test]
    fn get_insert_and_collisions() {
        let mut m = HostMap::new();
        assert!(m.get("a").is_none());
        *m.get_or_insert_with("a", || 1) += 10;
        m.get_or_insert_with("b", || 2);
        assert_eq!(
            m.get_or_insert_with("a", || 99),
            &mut 11,
            "present: make is not called"
        );
        assert_eq!(
            (m.get("a"), m.get("b"), m.get("c"), m.len()),
            (Some(&11), Some(&2), None, 2)
        );
        // Two hosts under one hash (forced) stay apart.
        m.map.entry(hash("x")).or_default().push(("y".into(), 7));
        m.get_or_insert_with("x", || 5);
        assert_eq!(
            (m.get("x"), m.get("y")),
            (Some(&5), None),
            "y is filed under x's hash, not its own"
        );
        assert_eq!(m.values().count(), 4);
    }
}
