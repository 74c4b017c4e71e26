//! Injectable randomness for the layers that draw lots (split, fault, mirror, retry jitter).
//!
//! Production code uses [`Random::thread`] (the thread-local generator of `rand`); tests use
//! [`Random::seeded`], so that shares and jitter are reproducible.
//!
//! [`Rng`] is the one seedable generator of the crate: SplitMix64 over an atomic counter. Every
//! pick of the random, least-request and peak-EWMA balancers draws one or two numbers from it,
//! from many threads at once. A `Mutex<StdRng>` would serialise them; a thread-local RNG cannot
//! be seeded for tests. SplitMix64 advances one `AtomicU64` by a constant and mixes the result:
//! one `fetch_add` per draw, deterministic from its seed, and statistically good enough to spread
//! load and draw lots (it is not for secrets).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng as _;

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
            inner: Arc::new(Rng::from_seed(seed)),
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
        scale(self.next_u64(), bound)
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

/// A seedable, lock-free random source shared by the threads that pick endpoints.
#[derive(Debug)]
pub struct Rng {
    state: AtomicU64,
}

impl Rng {
    /// A source seeded with `seed`: the same seed gives the same sequence (single-threaded).
    pub fn from_seed(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    /// A source seeded from the operating system's randomness.
    pub fn from_entropy() -> Self {
        Self::from_seed(rand::random::<u64>())
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0; returns 0 for `n == 0`).
    #[inline]
    pub fn below(&self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        scale(self.next_u64(), n)
    }
}

impl Default for Rng {
    fn default() -> Self {
        Self::from_entropy()
    }
}

/// `x` (uniform over `u64`) scaled to `0..n`: Lemire's multiply-shift, no
/// division, unbiased enough for weights, jitter and load spreading.
#[inline]
fn scale(x: u64, n: u64) -> u64 {
    ((u128::from(x) * u128::from(n)) >> 64) as u64
}

impl RandomSource for Rng {
    fn next_u64(&self) -> u64 {
        Rng::next_u64(self)
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
        // The balancers draw from `Rng` directly: the same sequence, spread evenly.
        let (r, s) = (Rng::from_seed(7), Random::seeded(7));
        assert!((0..100).all(|_| r.below(10) == s.below(10)));
        let mut seen = [0u32; 4];
        let r = Rng::from_seed(1);
        for _ in 0..4000 {
            seen[r.below(4) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }
}
