//! Per-peer cache of request series handles, so that recording a request does not look its
//! series up in the four `prometheus-client` families (a lock and a hash of the label set each).
//!
//! Every [`PeerLabels`](super::labels::PeerLabels) carries one [`SeriesCache`]: a short,
//! copy-on-write list (read lock-free through `arc-swap`) of the handles of each
//! `(protocol, response_code, response_flags, grpc_status)` combination seen for that pair of
//! peers. The handles are the very metrics the families hold (`Counter` and `Histogram` are
//! shared pointers), so what the registry exports is unchanged. A combination beyond
//! [`MAX_SERIES_PER_PEER`] is recorded through the families, uncached.

use std::borrow::Cow;
use std::fmt;
#[cfg(test)]
use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus_client::metrics::counter::Counter;

use crate::histogram::Histogram;

/// Distinct label combinations cached per pair of peers (codes × flags seen in practice are few;
/// the bound keeps a peer answering many distinct codes from growing the list without end).
pub const MAX_SERIES_PER_PEER: usize = 32;

/// The four metrics of one request series.
#[derive(Clone, Debug)]
pub(crate) struct SeriesHandles {
    pub(crate) requests: Counter,
    pub(crate) duration: Histogram,
    pub(crate) request_bytes: Histogram,
    pub(crate) response_bytes: Histogram,
}

/// What varies per request within one pair of peers, plus the registry the handles belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SeriesKey {
    /// Id of the [`MeshMetrics`](super::MeshMetrics) whose families hold the handles.
    pub(crate) registry: u64,
    pub(crate) protocol: &'static str,
    pub(crate) response_code: u16,
    pub(crate) response_flags: Cow<'static, str>,
    pub(crate) grpc_status: Option<u32>,
}

impl SeriesKey {
    fn matches(
        &self,
        registry: u64,
        protocol: &str,
        code: u16,
        flags: &str,
        grpc: Option<u32>,
    ) -> bool {
        self.response_code == code
            && self.registry == registry
            && self.grpc_status == grpc
            && self.protocol == protocol
            && self.response_flags == flags
    }
}

/// The cached series of one pair of peers; see the [module docs](self).
pub struct SeriesCache {
    entries: ArcSwap<Vec<(SeriesKey, SeriesHandles)>>,
}

impl Default for SeriesCache {
    fn default() -> Self {
        SeriesCache {
            entries: ArcSwap::from_pointee(Vec::new()),
        }
    }
}

impl fmt::Debug for SeriesCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeriesCache")
            .field("series", &self.entries.load().len())
            .finish()
    }
}

impl SeriesCache {
    /// Runs `record` with the cached handles of the combination, else with `make()`'s handles
    /// (remembered while the cache has room).
    // `&Cow`, not `&str`: the flags are cloned into the key, and a borrowed `'static` set (the
    // common case) must stay a borrow rather than become an allocation. The key's parts come
    // one by one so that a hit (every request after the first) builds no key at all.
    #[allow(clippy::ptr_arg, clippy::too_many_arguments)]
    pub(crate) fn with(
        &self,
        registry: u64,
        protocol: &'static str,
        code: u16,
        flags: &Cow<'static, str>,
        grpc: Option<u32>,
        make: impl FnOnce() -> SeriesHandles,
        record: impl FnOnce(&SeriesHandles),
    ) {
        {
            let entries = self.entries.load();
            if let Some((_, h)) = entries
                .iter()
                .find(|(k, _)| k.matches(registry, protocol, code, flags, grpc))
            {
                record(h);
                return;
            }
        }
        let handles = make();
        record(&handles);
        let key = SeriesKey {
            registry,
            protocol,
            response_code: code,
            response_flags: flags.clone(),
            grpc_status: grpc,
        };
        self.entries.rcu(|current| {
            let mut next = Vec::clone(current);
            if next.len() < MAX_SERIES_PER_PEER && !next.iter().any(|(k, _)| *k == key) {
                next.push((key.clone(), handles.clone()));
            }
            next
        });
    }

    /// How many combinations are cached.
    pub fn len(&self) -> usize {
        self.entries.load().len()
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A new id for a registry (never reused, unlike an address).
pub(crate) fn next_registry_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::labels::{PeerLabels, Reporter, ServiceLabels, WorkloadLabels};
    use crate::metrics::MeshMetrics;

    fn peers(host: &str) -> Arc<PeerLabels> {
        PeerLabels::new(
            Reporter::Source,
            WorkloadLabels::unknown(),
            WorkloadLabels::unknown(),
            ServiceLabels::from_host(host),
        )
    }

    fn count(text: &str, code: u16, flags: &str, host: &str) -> Option<u64> {
        let prefix = format!("istio_requests_total{{response_code=\"{code}\"");
        text.lines()
            .find(|l| {
                l.starts_with(&prefix)
                    && l.contains(&format!("response_flags=\"{flags}\""))
                    && l.contains(&format!("destination_service=\"{host}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    fn record(m: &MeshMetrics, p: &Arc<PeerLabels>, code: u16, flags: &'static str) {
        m.record(
            p,
            code,
            Cow::Borrowed(flags),
            Duration::from_millis(3),
            1,
            2,
        );
    }

    #[test]
    fn hits_misses_and_new_combinations() {
        let m = MeshMetrics::new();
        let p = peers("service2");
        assert!(p.series().is_empty());
        record(&m, &p, 200, "-");
        assert_eq!(p.series().len(), 1, "a miss caches the combination");
        record(&m, &p, 200, "-");
        record(&m, &p, 200, "-");
        assert_eq!(p.series().len(), 1, "hits add nothing");
        record(&m, &p, 503, "UO");
        record(&m, &p, 503, "UF");
        record(&m, &p, 200, "UO");
        assert_eq!(
            p.series().len(),
            4,
            "each code and flags combination is a series"
        );
        let t = m.encode_prometheus();
        assert_eq!(count(&t, 200, "-", "service2"), Some(3), "{t}");
        assert_eq!(count(&t, 503, "UO", "service2"), Some(1));
        assert_eq!(count(&t, 503, "UF", "service2"), Some(1));
        assert_eq!(count(&t, 200, "UO", "service2"), Some(1));
        let sum = t.lines().find(|l| {
            l.starts_with("istio_response_bytes_sum{response_code=\"200\"")
                && l.contains("response_flags=\"-\"")
        });
        assert!(sum.is_some_and(|l| l.ends_with(" 6.0")), "{sum:?}");
    }

    #[test]
    fn equal_peers_share_series_and_registries_stay_apart() {
        let (m1, m2) = (MeshMetrics::new(), MeshMetrics::new());
        let (a, b) = (peers("service3"), peers("service3"));
        record(&m1, &a, 200, "-");
        record(&m1, &b, 200, "-");
        // The same peers recorded into another registry must not reuse m1's handles.
        record(&m2, &a, 200, "-");
        assert_eq!(
            count(&m1.encode_prometheus(), 200, "-", "service3"),
            Some(2)
        );
        assert_eq!(
            count(&m2.encode_prometheus(), 200, "-", "service3"),
            Some(1)
        );
        assert_eq!(a.series().len(), 2);
    }

    #[test]
    fn the_cache_is_bounded_and_recording_goes_on_beyond_it() {
        let m = MeshMetrics::new();
        let p = peers("many");
        let extra = 5u16;
        for code in 0..(MAX_SERIES_PER_PEER as u16 + extra) {
            record(&m, &p, 200 + code, "-");
            record(&m, &p, 200 + code, "-");
        }
        assert_eq!(p.series().len(), MAX_SERIES_PER_PEER);
        let t = m.encode_prometheus();
        let last = 200 + MAX_SERIES_PER_PEER as u16 + extra - 1;
        assert_eq!(count(&t, 200, "-", "many"), Some(2));
        assert_eq!(
            count(&t, last, "-", "many"),
            Some(2),
            "uncached combinations are still counted"
        );
    }
}
