//! Peer metadata exchange: the caller tells the callee who it is, so that the server side can
//! fill the `source_*` labels, as Istio's sidecars do with `x-envoy-peer-metadata`.
//!
//! The header is `x-mesh-peer-metadata: workload=W;namespace=N;app=A;version=V`. It is a label
//! source for metrics only, never an identity for authorization (anyone can send it).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use http::header::{HeaderName, HeaderValue};
use mesh_core::policy::Labels;

use super::labels::WorkloadLabels;

/// `x-mesh-peer-metadata`.
pub static X_MESH_PEER_METADATA: HeaderName = HeaderName::from_static("x-mesh-peer-metadata");

/// Longest metadata value read.
const MAX_LEN: usize = 512;
/// Distinct metadata values remembered (bounds memory and series cardinality).
const MAX_CACHED: usize = 1024;

fn clean(v: &str) -> Option<&str> {
    let ok = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b'=');
    ok.then_some(v)
}

/// The header value announcing `w`, or `None` when a field holds a character the format
/// cannot carry.
pub fn encode(w: &WorkloadLabels) -> Option<HeaderValue> {
    let v = format!(
        "workload={};namespace={};app={};version={}",
        clean(&w.workload)?,
        clean(&w.namespace)?,
        clean(&w.app)?,
        clean(&w.version)?
    );
    HeaderValue::from_str(&v).ok()
}

/// Parses a metadata value (`None` when malformed).
pub fn decode(value: &HeaderValue) -> Option<WorkloadLabels> {
    if value.len() > MAX_LEN {
        return None;
    }
    let s = value.to_str().ok()?;
    let mut workload = None;
    let mut namespace = None;
    let mut labels = Labels::new();
    for field in s.split(';') {
        let (k, v) = field.split_once('=')?;
        let v = clean(v)?;
        match k {
            "workload" => workload = Some(v),
            "namespace" => namespace = Some(v),
            "app" | "version" => {
                labels.insert(k.to_owned(), v.to_owned());
            }
            _ => {}
        }
    }
    Some(WorkloadLabels::from_labels(workload?, namespace, &labels))
}

/// A bounded cache from metadata header values to interned labels.
///
/// Looked up on every inbound call that carries peer metadata, so the read is lock-free (an
/// [`ArcSwap`] snapshot; a new value copies the map, at most [`MAX_CACHED`] times) and the
/// hash is foldhash's: std's SipHash took some 150 instructions for a 64-byte value, and the
/// read lock two atomic writes to a line both worker threads share. The values come from any
/// caller, so the hasher's seed is random per process (collisions cannot be aimed at) and the
/// bound caps what a flood of distinct values can cost.
#[derive(Debug, Default)]
pub struct PeerCache<T> {
    map: ArcSwap<HashMap<HeaderValue, T, foldhash::fast::RandomState>>,
}

impl<T: Clone> PeerCache<T> {
    /// An empty cache.
    pub fn new() -> Self {
        PeerCache {
            map: ArcSwap::from_pointee(HashMap::default()),
        }
    }

    /// The cached value for `key`, else `make()` (remembered while the cache has room).
    pub fn get_or_insert(&self, key: &HeaderValue, make: impl FnOnce() -> T) -> T {
        let current = self.map.load();
        if let Some(v) = current.get(key) {
            return v.clone();
        }
        let full = current.len() >= MAX_CACHED;
        drop(current);
        let v = make();
        if !full {
            self.map.rcu(|map| {
                if map.len() >= MAX_CACHED || map.contains_key(key) {
                    return Arc::clone(map);
                }
                let mut map = HashMap::clone(map);
                map.insert(key.clone(), v.clone());
                Arc::new(map)
            });
        }
        v
    }
}

/// Shared pointer alias used by the layers.
pub type Shared<T> = Arc<PeerCache<T>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let mut l = Labels::new();
        l.insert("app".into(), "service1".into());
        l.insert("version".into(), "v1".into());
        let w = WorkloadLabels::from_labels("service1", Some("default"), &l);
        let h = encode(&w).unwrap();
        assert_eq!(
            h,
            "workload=service1;namespace=default;app=service1;version=v1"
        );
        let back = decode(&h).unwrap();
        assert_eq!(back, w);
        assert!(
            decode(&HeaderValue::from_static("app=x")).is_none(),
            "workload is required"
        );
        assert!(decode(&HeaderValue::from_static("workload=a;junk")).is_none());
        assert!(decode(&HeaderValue::from_static("workload=")).is_none());
        let w = WorkloadLabels::from_labels("a;b", None, &Labels::new());
        assert!(encode(&w).is_none());
    }

    #[test]
    fn cache_makes_each_value_once() {
        let c = PeerCache::<u32>::new();
        let made = std::cell::Cell::new(0);
        let a = HeaderValue::from_static("workload=a;namespace=default");
        let b = HeaderValue::from_static("workload=b;namespace=default");
        for _ in 0..3 {
            let got = c.get_or_insert(&a, || {
                made.set(made.get() + 1);
                1
            });
            assert_eq!(got, 1);
            let got = c.get_or_insert(&b, || {
                made.set(made.get() + 1);
                2
            });
            assert_eq!(got, 2);
        }
        assert_eq!(
            made.get(),
            2,
            "each value is made once, then read from the cache"
        );
    }

    #[test]
    fn cache_is_bounded() {
        let c = PeerCache::<u32>::new();
        for i in 0..(MAX_CACHED as u32 + 10) {
            let k = HeaderValue::from_str(&i.to_string()).unwrap();
            assert_eq!(c.get_or_insert(&k, || i), i);
        }
        assert_eq!(c.map.load().len(), MAX_CACHED);
        let k = HeaderValue::from_static("0");
        assert_eq!(c.get_or_insert(&k, || 99), 0);
    }
}
