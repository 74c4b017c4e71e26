//! Per-endpoint load: requests in flight and a peak-EWMA estimate of latency.
//!
//! Peak EWMA (as Linkerd balances, and as tower's `load::PeakEwma` describes) keeps an
//! exponentially weighted moving average of response times that jumps up at once to any slower
//! observation (the "peak") and decays back slowly. An endpoint's cost is that estimate times
//! its requests in flight plus one, so a slow or busy endpoint loses the power-of-two-choices
//! comparison. Ours stores the estimate in atomics (no lock on the pick path) and reads the
//! clock through `tokio::time`, so tests drive it with a paused clock.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Default latency assumed before an endpoint has answered (Linkerd's default).
pub const DEFAULT_RTT: Duration = Duration::from_millis(30);
/// Decay time constant of the estimate (Linkerd's default).
pub const DEFAULT_DECAY: Duration = Duration::from_secs(10);

/// Load of one endpoint: requests in flight and the latency estimate.
#[derive(Debug)]
pub(crate) struct Load {
    in_flight: AtomicU32,
    /// `f64` bits of the estimate in nanoseconds.
    rtt_ns: AtomicU64,
    /// Nanoseconds since the balancer's epoch when the estimate was last updated.
    stamp_ns: AtomicU64,
}

impl Load {
    pub(crate) fn new() -> Self {
        Self {
            in_flight: AtomicU32::new(0),
            rtt_ns: AtomicU64::new((DEFAULT_RTT.as_nanos() as f64).to_bits()),
            stamp_ns: AtomicU64::new(0),
        }
    }

    #[inline]
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn end(&self) {
        // Saturating: a stray `end` must not wrap the count.
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
    }

    /// The decayed estimate at `now_ns`.
    #[inline]
    pub(crate) fn rtt_estimate(&self, now_ns: u64) -> f64 {
        let rtt = f64::from_bits(self.rtt_ns.load(Ordering::Relaxed));
        let elapsed = now_ns.saturating_sub(self.stamp_ns.load(Ordering::Relaxed));
        rtt * decay(elapsed)
    }

    /// Peak-EWMA cost: estimate × (in flight + 1).
    #[inline]
    pub(crate) fn cost(&self, now_ns: u64) -> f64 {
        self.rtt_estimate(now_ns) * f64::from(self.in_flight().saturating_add(1))
    }

    /// Folds an observed latency into the estimate: a slower sample replaces it (peak), a faster
    /// one is averaged in with a weight that grows with the time since the last update.
    pub(crate) fn observe(&self, rtt: Duration, now_ns: u64) {
        let sample = rtt.as_nanos() as f64;
        let prev_stamp = self.stamp_ns.swap(now_ns, Ordering::Relaxed);
        let prev = f64::from_bits(self.rtt_ns.load(Ordering::Relaxed));
        let next = if sample > prev {
            sample
        } else {
            let w = decay(now_ns.saturating_sub(prev_stamp));
            prev * w + sample * (1.0 - w)
        };
        // Racing updates may lose one sample; the estimate stays a valid recent value.
        self.rtt_ns.store(next.to_bits(), Ordering::Relaxed);
    }
}

#[inline]
fn decay(elapsed_ns: u64) -> f64 {
    (-(elapsed_ns as f64) / DEFAULT_DECAY.as_nanos() as f64).exp()
}

/// Nanoseconds from `epoch` to `now` (0 if `now` is earlier).
#[inline]
pub(crate) fn nanos_since(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_up_at_once_and_decays_down() {
        let l = Load::new();
        l.observe(Duration::from_millis(500), 1);
        assert!((l.rtt_estimate(1) - 500e6).abs() < 1.0);
        // A fast sample right after barely moves it.
        l.observe(Duration::from_millis(1), 2);
        assert!(l.rtt_estimate(2) > 400e6);
        // Much later, a fast sample dominates.
        let later = 2 + Duration::from_secs(60).as_nanos() as u64;
        l.observe(Duration::from_millis(1), later);
        assert!(l.rtt_estimate(later) < 5e6);
    }

    #[test]
    fn cost_grows_with_in_flight() {
        let l = Load::new();
        let c0 = l.cost(0);
        l.begin();
        l.begin();
        assert!((l.cost(0) - 3.0 * c0).abs() < 1.0);
        l.end();
        l.end();
        l.end();
        assert_eq!(l.in_flight(), 0);
    }
}
