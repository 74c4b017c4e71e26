//! [`Histogram`]: Istio's request histograms (duration and sizes, on [`ISTIO_BUCKETS`]),
//! recorded without a lock.
//!
//! `prometheus-client`'s own histogram takes a mutex on every observation (its source notes
//! "consider using atomics") and finds the bucket by a linear scan. The mesh records three
//! histograms per request on each side, from every worker thread at once, so these are plain
//! atomics instead: one add to the bucket and a compare-and-swap loop for the floating-point sum;
//! the count is the buckets' total (Envoy keeps such counts per thread and merges them at scrape
//! time; one shared atomic per counter is simpler and still lock-free). The bucket is found by binary
//! search over the fixed bounds. Written here rather than taken from a crate: the encoding
//! has to be `prometheus-client`'s (the registry the families live in), and the type is small.
//!
//! A scrape reads the counters one after the other while requests go on, so it may see an
//! observation in one counter and not yet in another. `_count` is the sum of the buckets it
//! read, so the `+Inf` bucket and `_count` always agree, as OpenMetrics requires; `_sum` may be
//! an observation or two ahead of the buckets or behind them.
//!
//! ```
//! use mesh_telemetry::histogram::Histogram;
//! use prometheus_client::registry::Registry;
//!
//! let h = Histogram::default();
//! h.observe(0.7); // 0.5 < 0.7 ≤ 1: the `le="1"` bucket
//! h.observe(12.0);
//! let mut registry = Registry::default();
//! registry.register("latency", "A latency", h.clone());
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
//! assert!(text.contains("latency_bucket{le=\"1.0\"} 1\n"), "{text}");
//! assert!(text.contains("latency_bucket{le=\"+Inf\"} 2\n"), "{text}");
//! assert!(text.contains("latency_count 2\n"), "{text}");
//! assert!(text.contains("latency_sum 12.7\n"), "{text}");
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::{MetricType, TypedMetric};

use crate::metrics::ISTIO_BUCKETS;

/// Buckets: one per bound of [`ISTIO_BUCKETS`], then `+Inf`.
const BUCKETS: usize = ISTIO_BUCKETS.len() + 1;

/// A histogram over [`ISTIO_BUCKETS`]; see the [module docs](self). Clones share the counts
/// (as `prometheus-client`'s metrics do), so a family's series and a cached handle are one.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Observations per bucket (not cumulative: the encoder adds them up).
    buckets: [AtomicU64; BUCKETS],
    /// The sum of the observations, as `f64` bits.
    sum: AtomicU64,
}

/// The bucket of `v`: the first whose bound is at least `v`; `+Inf` for anything above the
/// last bound and for NaN (where `prometheus-client` puts NaN too).
fn bucket_of(v: f64) -> usize {
    if v.is_nan() {
        return BUCKETS - 1;
    }
    ISTIO_BUCKETS.partition_point(|bound| *bound < v)
}

impl Histogram {
    /// Records one observation.
    #[inline]
    pub fn observe(&self, v: f64) {
        let inner = &*self.inner;
        // `bucket_of` returns at most `ISTIO_BUCKETS.len()`, the `+Inf` bucket: always found.
        if let Some(bucket) = inner.buckets.get(bucket_of(v)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        // `fetch_update` with a closure that always answers `Some` cannot fail.
        let _ = inner
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    /// The number of observations and their sum, as a scrape reads them.
    pub fn count_and_sum(&self) -> (u64, f64) {
        let (_, count, sum) = self.snapshot();
        (count, sum)
    }

    /// Each bucket's bound and observations (not cumulative), their total, and the sum, read
    /// one counter after the other.
    fn snapshot(&self) -> ([(f64, u64); BUCKETS], u64, f64) {
        let mut buckets = [(f64::INFINITY, 0u64); BUCKETS];
        let mut count = 0;
        for (i, (bound, n)) in buckets.iter_mut().enumerate() {
            if let Some(b) = ISTIO_BUCKETS.get(i) {
                *bound = *b;
            }
            if let Some(c) = self.inner.buckets.get(i) {
                *n = c.load(Ordering::Relaxed);
            }
            count += *n;
        }
        let sum = f64::from_bits(self.inner.sum.load(Ordering::Relaxed));
        (buckets, count, sum)
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (buckets, count, sum) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(
            sum,
            count,
            &buckets,
            None::<&HashMap<usize, Exemplar<NoLabelSet, f64>>>,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    fn text(h: &Histogram) -> String {
        let mut registry = Registry::default();
        registry.register("h", "help", h.clone());
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    /// The text `prometheus-client`'s own histogram exports for the same observations.
    fn reference(values: &[f64]) -> String {
        let h = prometheus_client::metrics::histogram::Histogram::new(ISTIO_BUCKETS);
        for v in values {
            h.observe(*v);
        }
        let mut registry = Registry::default();
        registry.register("h", "help", h);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn exports_what_prometheus_client_exports() {
        // Bounds themselves (a bound is inclusive), values between, beyond the last, zero.
        let values = [
            0.0,
            0.5,
            0.51,
            1.0,
            4.9,
            5.0,
            99.0,
            250.0,
            3_600_000.0,
            3_600_001.0,
            1e12,
            7.25,
        ];
        let h = Histogram::default();
        for v in values {
            h.observe(v);
        }
        assert_eq!(text(&h), reference(&values));
        assert_eq!(h.count_and_sum().0, values.len() as u64);
    }

    #[test]
    fn nan_goes_to_inf_as_prometheus_client_puts_it() {
        let h = Histogram::default();
        h.observe(f64::NAN);
        h.observe(2.0);
        let out = text(&h);
        assert!(out.contains("h_bucket{le=\"+Inf\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"5.0\"} 1\n"), "{out}");
        assert_eq!(h.count_and_sum().0, 2);
    }

    #[test]
    fn clones_share_counts_and_threads_lose_no_observation() {
        let h = Histogram::default();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..1_000 {
                        h.observe(f64::from(t * 1_000 + i % 7));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (count, sum) = h.count_and_sum();
        assert_eq!(count, 4_000);
        let expected: f64 = (0..4)
            .flat_map(|t| (0..1_000).map(move |i| f64::from(t * 1_000 + i % 7)))
            .sum();
        assert_eq!(sum, expected, "integers this small add up exactly in f64");
    }
}
