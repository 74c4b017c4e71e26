//! A small lock-free random source: SplitMix64 over an atomic counter.
//!
//! Every pick of the random, least-request and peak-EWMA balancers draws one or two numbers, from
//! many threads at once. A `Mutex<StdRng>` would serialise them; a thread-local RNG cannot be
//! seeded for tests. SplitMix64 advances one `AtomicU64` by a constant and mixes the result: one
//! `fetch_add` per draw, deterministic from its seed, and statistically good enough to spread
//! load (it is not for secrets).

use std::sync::atomic::{AtomicU64, Ordering};

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
        // Lemire's multiply-shift: unbiased enough for load spreading, no division.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

impl Default for Rng {
    fn default() -> Self {
        Self::from_entropy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_deterministic_and_in_range() {
        let a = Rng::from_seed(7);
        let b = Rng::from_seed(7);
        for _ in 0..100 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
        }
        let mut seen = [0u32; 4];
        let r = Rng::from_seed(1);
        for _ in 0..4000 {
            seen[r.below(4) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }
}
