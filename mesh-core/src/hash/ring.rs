//! Ring hash ("ketama"): every endpoint owns points on a 64-bit circle; a key goes to the owner
//! of the first point at or after its hash.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::{HashError, SEED, sorted_by_key};

/// The largest `minimumRingSize` accepted, as in Envoy (8M entries).
pub const MAX_RING_SIZE: u64 = 8 * 1024 * 1024;

/// A ring-hash table (Istio's `consistentHash.ringHash{minimumRingSize}`, default 1024).
///
/// # Sizing
///
/// An endpoint of weight `w` owns `ceil(w * s)` points, where the scale `s` is the smallest
/// power of two (possibly below 1) such that `total_weight * s >= minimumRingSize`. So the ring
/// has at least `minimumRingSize` points and fewer than twice that plus one per endpoint, and
/// weights are respected in proportion.
///
/// Envoy computes its scale from the exact ratio instead. The power-of-two rounding is ours, on
/// purpose: when an endpoint joins or leaves, the scale usually stays the same, so every other
/// endpoint keeps exactly its points and **only the keys of the endpoint that left move**. (When
/// the total weight crosses a power-of-two boundary the scale changes and the survivors gain
/// points; keys then move as with Envoy's ring.)
///
/// ```
/// use mesh_core::hash::{hash_key, RingHash};
///
/// let ring = RingHash::build(1024, &[("a", 1), ("b", 1)])?;
/// assert!(ring.points() >= 1024);
/// assert!(ring.pick(hash_key(b"some key")) < 2);
/// # Ok::<(), mesh_core::hash::HashError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RingHash {
    /// Point hashes, sorted ascending.
    hashes: Box<[u64]>,
    /// The endpoint index (into the input) owning the point at the same position.
    owners: Box<[u32]>,
    len: usize,
}

impl RingHash {
    /// Builds a ring with at least `minimum_ring_size` points over `(key, weight)` pairs.
    pub fn build<K: AsRef<[u8]>>(
        minimum_ring_size: u64,
        endpoints: &[(K, u32)],
    ) -> Result<Self, HashError> {
        if minimum_ring_size == 0 || minimum_ring_size > MAX_RING_SIZE {
            return Err(HashError::RingSize {
                got: minimum_ring_size,
                max: MAX_RING_SIZE,
            });
        }
        let order = sorted_by_key(endpoints)?;
        let total: u128 = endpoints.iter().map(|(_, w)| u128::from(*w)).sum();
        let scale = Scale::for_total(total, u128::from(minimum_ring_size));

        let mut points: Vec<(u64, u32)> = Vec::new();
        for &index in &order {
            let Some((key, weight)) = endpoints.get(index as usize) else {
                continue;
            };
            let count = scale.points(*weight);
            let base = xxh3_64_with_seed(key.as_ref(), SEED);
            points.reserve(usize::try_from(count).unwrap_or(0));
            for replica in 0..count {
                points.push((xxh3_64_with_seed(&replica.to_le_bytes(), base), index));
            }
        }
        // Ties (two points with one hash) are broken by the owner's key, which does not depend
        // on the input order: the sort is over (hash, position in key order).
        let rank: Vec<u32> = {
            let mut rank = vec![0u32; endpoints.len()];
            for (r, &index) in order.iter().enumerate() {
                if let Some(slot) = rank.get_mut(index as usize) {
                    // `order` has at most u32::MAX entries (checked by `sorted_by_key`).
                    *slot = r as u32;
                }
            }
            rank
        };
        let rank_of = |i: u32| rank.get(i as usize).copied().unwrap_or(u32::MAX);
        points.sort_unstable_by_key(|&(h, owner)| (h, rank_of(owner)));
        let (hashes, owners): (Vec<u64>, Vec<u32>) = points.into_iter().unzip();
        tracing::trace!(
            endpoints = endpoints.len(),
            points = hashes.len(),
            "ring hash built"
        );
        Ok(Self {
            hashes: hashes.into(),
            owners: owners.into(),
            len: endpoints.len(),
        })
    }

    /// The endpoint index (into the input of `build`) that `hash` maps to: the owner of the
    /// first point at or after `hash`, wrapping around.
    #[inline]
    pub fn pick(&self, hash: u64) -> usize {
        let at = self.hashes.partition_point(|&h| h < hash);
        let at = if at == self.owners.len() { 0 } else { at };
        self.owners.get(at).map_or(0, |&o| o as usize)
    }

    /// Number of points on the ring.
    pub fn points(&self) -> usize {
        self.hashes.len()
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a ring has at least one endpoint.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// `s = 2^shift` (shift may be negative), computed exactly in integers.
#[derive(Clone, Copy, Debug)]
enum Scale {
    /// Multiply weights by `2^k`.
    Up(u32),
    /// Divide weights by `2^k`, rounding up.
    Down(u32),
}

impl Scale {
    /// The smallest power of two `s` with `total * s >= min`.
    fn for_total(total: u128, min: u128) -> Self {
        if total >= min {
            // Largest r with total / 2^r >= min, i.e. min << r <= total.
            let mut r = 0u32;
            while r < 64 && (min << (r + 1)) <= total {
                r += 1;
            }
            Scale::Down(r)
        } else {
            let mut k = 0u32;
            while k < 64 && (total << k) < min {
                k += 1;
            }
            Scale::Up(k)
        }
    }

    /// Points for an endpoint of `weight`.
    fn points(self, weight: u32) -> u64 {
        let w = u64::from(weight);
        match self {
            // k <= 23 here: total >= 1 and min <= 2^23, so w << k fits in u64.
            Scale::Up(k) => w << k.min(32),
            Scale::Down(r) if r >= 64 => 1,
            Scale::Down(r) => (w + (1u64 << r) - 1) >> r,
        }
    }
}
