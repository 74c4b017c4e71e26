//! A token bucket as GCRA (the generic cell rate algorithm): one `u64` of state, the
//! "theoretical arrival time", updated with a compare-and-swap loop. It admits exactly what a
//! token bucket of `burst` tokens refilled at `rate` per second admits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// The shape of a bucket: how often a token comes back and how many may be spent at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rate {
    /// Nanoseconds between two tokens (1 s / rps).
    interval: u64,
    /// How far ahead of now the arrival time may run: `interval * (burst - 1)`.
    tolerance: u64,
}

impl Rate {
    /// `rps` requests per second with a burst of one second's worth (as Linkerd).
    pub(crate) fn per_second(rps: u32) -> Self {
        let rps = u64::from(rps.max(1));
        let interval = (NANOS_PER_SEC / rps).max(1);
        Self {
            interval,
            tolerance: interval.saturating_mul(rps - 1),
        }
    }

    /// Tries to take a token at `now` (nanoseconds since the limiter's epoch) from the bucket
    /// whose arrival time is `tat`: the new arrival time, or how long to wait.
    pub(crate) fn take(&self, tat: u64, now: u64) -> Result<u64, Duration> {
        let start = tat.max(now);
        let ahead = start - now;
        if ahead > self.tolerance {
            return Err(Duration::from_nanos(ahead - self.tolerance));
        }
        Ok(start.saturating_add(self.interval))
    }

    /// Whether a bucket with arrival time `tat` is full at `now` (it can be forgotten).
    pub(crate) fn is_idle(tat: u64, now: u64) -> bool {
        tat <= now
    }
}

/// One lock-free bucket.
#[derive(Debug)]
pub(crate) struct Bucket {
    rate: Rate,
    tat: AtomicU64,
}

impl Bucket {
    pub(crate) fn new(rate: Rate) -> Self {
        Self {
            rate,
            tat: AtomicU64::new(0),
        }
    }

    /// Takes a token at `now`, or says how long to wait for one.
    pub(crate) fn try_acquire(&self, now: u64) -> Result<(), Duration> {
        let mut current = self.tat.load(Ordering::Acquire);
        loop {
            let next = self.rate.take(current, now)?;
            match self
                .tat
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let b = Bucket::new(Rate::per_second(5));
        for _ in 0..5 {
            assert!(b.try_acquire(0).is_ok());
        }
        assert_eq!(b.try_acquire(0), Err(Duration::from_millis(200)));
        assert_eq!(b.try_acquire(100_000_000), Err(Duration::from_millis(100)));
        assert!(b.try_acquire(200_000_000).is_ok());
        assert!(b.try_acquire(200_000_000).is_err());
    }

    #[test]
    fn one_per_second() {
        let b = Bucket::new(Rate::per_second(1));
        assert!(b.try_acquire(0).is_ok());
        assert_eq!(b.try_acquire(0), Err(Duration::from_secs(1)));
        assert!(b.try_acquire(NANOS_PER_SEC).is_ok());
    }

    #[test]
    fn idle_buckets_are_full() {
        let r = Rate::per_second(10);
        let tat = r.take(0, 0).unwrap_or(u64::MAX);
        assert!(!Rate::is_idle(tat, 0));
        assert!(Rate::is_idle(tat, tat));
    }
}
