//! Injectable randomness for the layers that draw lots (split, fault, mirror, retry jitter).
//!
//! Production code uses [`Random::thread`] (the thread-local generator of `rand`); tests use
//! [`Random::seeded`], a lock-free SplitMix64 sequence, so that shares and jitter are reproducible.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

/// A source of random numbers, shared by clones.
#[derive(Clone)]
pub struct Random {
    inner: Arc<dyn RandomSource>,
}

/// Something that yields uniformly distributed `u64`s from a shared reference.
pub trait RandomSource: Send + Sync + 'static {
    /// The next random value.
    fn next_u64(&self) -> u64;
}

impl Random {
    /// The thread-local generator of `rand`, seeded by the operating system.
    pub fn thread() -> Self {
        Self {
            inner: Arc::new(ThreadSource),
        }
    }

    /// A deterministic sequence from `seed` (for tests and benchmarks).
    pub fn seeded(seed: u64) -> Self {
        Self {
            inner: Arc::new(SeededSource {
                state: AtomicU64::new(seed),
            }),
        }
    }

    /// Any custom source.
    pub fn from_source(source: impl RandomSource) -> Self {
        Self {
            inner: Arc::new(source),
        }
    }

    /// A uniform `u64`.
    pub fn next_u64(&self) -> u64 {
        self.inner.next_u64()
    }

    /// A uniform value in `0..bound` (0 when `bound` is 0).
    pub fn below(&self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        // Lemire's multiply-shift: unbiased enough for weights and jitter.
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `percent / 100` (`percent` clamped to 0..=100).
    pub fn percent(&self, percent: f64) -> bool {
        if percent >= 100.0 {
            return true;
        }
        if percent.is_nan() || percent <= 0.0 {
            return false;
        }
        self.unit() * 100.0 < percent
    }
}

impl Default for Random {
    fn default() -> Self {
        Self::thread()
    }
}

impl fmt::Debug for Random {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Random")
    }
}

struct ThreadSource;

impl RandomSource for ThreadSource {
    fn next_u64(&self) -> u64 {
        rand::rng().next_u64()
    }
}

struct SeededSource {
    state: AtomicU64,
}

impl RandomSource for SeededSource {
    fn next_u64(&self) -> u64 {
        // SplitMix64: one atomic add per draw, no lock.
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_reproducible_and_bounded() {
        let a = Random::seeded(7);
        let b = Random::seeded(7);
        for _ in 0..100 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
        }
        assert_eq!(a.below(0), 0);
        assert!(!a.percent(0.0));
        assert!(a.percent(100.0));
        let hits = (0..10_000).filter(|_| a.percent(25.0)).count();
        assert!((2_200..2_800).contains(&hits), "{hits}");
    }
}
