//! Exponential backoff with full jitter, as Envoy spaces retries.
//!
//! Before retry `n` (0-based) the wait is uniform in `[0, min(base × 2ⁿ, 10 × base))`.

use std::time::Duration;

use crate::random::Random;

/// Why a backoff cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackoffError {
    /// The base interval is zero.
    #[error("backoff: base interval must be greater than zero")]
    ZeroBase,
}

/// Jittered exponential backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// Base interval `base`, capped at ten times `base` (Envoy's default cap).
    pub fn new(base: Duration) -> Result<Self, BackoffError> {
        if base.is_zero() {
            return Err(BackoffError::ZeroBase);
        }
        Ok(Self {
            base,
            max: base.saturating_mul(10),
        })
    }

    /// The wait before retry number `retry` (0 for the first retry).
    pub fn delay(&self, retry: u32, random: &Random) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        let ceiling = self.base.saturating_mul(factor).min(self.max);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(random.below(nanos))
    }
}

impl Default for Backoff {
    /// Envoy's default: 25 ms base, 250 ms cap.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(25),
            max: Duration::from_millis(250),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        let b = Backoff::new(Duration::from_millis(25)).unwrap();
        let r = Random::seeded(3);
        for _ in 0..200 {
            assert!(b.delay(0, &r) < Duration::from_millis(25));
            assert!(b.delay(2, &r) < Duration::from_millis(100));
            assert!(b.delay(40, &r) < Duration::from_millis(250));
        }
        let max_seen = (0..500).map(|_| b.delay(10, &r)).max().unwrap();
        assert!(
            max_seen > Duration::from_millis(200),
            "jitter spans the capped range: {max_seen:?}"
        );
        assert_eq!(Backoff::new(Duration::ZERO), Err(BackoffError::ZeroBase));
    }
}
