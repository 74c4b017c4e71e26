//! Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
//! Balancer", NSDI 2016, section 3.4): a lookup table of prime size `M` filled by letting the
//! endpoints take turns claiming their next preferred free slot.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::{HashError, SEED, sorted_by_key};

/// The largest `tableSize` accepted (Envoy's limit).
pub const MAX_TABLE_SIZE: u64 = 5_000_011;

/// A Maglev lookup table (Istio's `consistentHash.maglev{tableSize}`, default 65537).
///
/// Each endpoint has a permutation of the slots, `(offset + j * skip) mod M`, with `offset` and
/// `skip` from two independent hashes of its key; because `M` is prime and `1 <= skip < M`, the
/// permutation visits every slot. Endpoints take turns (in key order) claiming the next slot of
/// their permutation that is still free, until the table is full. Weights follow Envoy's
/// weighted Maglev: on round `r`, an endpoint takes a turn only while
/// `count * max_weight <= weight * r`, so slots are shared in proportion to weight.
///
/// Lookups are one modulo and one load. When an endpoint leaves, its slots are redistributed
/// and a small share of other slots may change owner too (Maglev trades a little disruption
/// for a perfectly even spread); a larger table lowers that share.
///
/// ```
/// use mesh_core::hash::{hash_key, Maglev};
///
/// let table = Maglev::build(65537, &[("a", 1), ("b", 1), ("c", 1)])?;
/// assert!(table.pick(hash_key(b"some key")) < 3);
/// assert!(Maglev::build(65536, &[("a", 1)]).is_err()); // not prime
/// # Ok::<(), mesh_core::hash::HashError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Maglev {
    slots: Box<[u32]>,
    len: usize,
}

/// Per-endpoint build state.
struct Entry {
    index: u32,
    /// The next slot of the permutation to try: `offset + j * skip (mod M)`, kept incrementally.
    pos: u64,
    skip: u64,
    weight: u64,
    count: u64,
}

impl Maglev {
    /// Builds a table of `table_size` slots (a prime, at most [`MAX_TABLE_SIZE`]) over
    /// `(key, weight)` pairs.
    pub fn build<K: AsRef<[u8]>>(
        table_size: u64,
        endpoints: &[(K, u32)],
    ) -> Result<Self, HashError> {
        if !(2..=MAX_TABLE_SIZE).contains(&table_size) {
            return Err(HashError::TableSize {
                got: table_size,
                max: MAX_TABLE_SIZE,
            });
        }
        if !is_prime(table_size) {
            return Err(HashError::NotPrime(table_size));
        }
        let order = sorted_by_key(endpoints)?;
        let m = table_size;
        let mut entries: Vec<Entry> = order
            .iter()
            .filter_map(|&index| {
                let (key, weight) = endpoints.get(index as usize)?;
                let key = key.as_ref();
                let offset = xxh3_64_with_seed(key, SEED) % m;
                let skip = xxh3_64_with_seed(key, SEED ^ 1) % (m - 1) + 1;
                Some(Entry {
                    index,
                    pos: offset,
                    skip,
                    weight: u64::from(*weight),
                    count: 0,
                })
            })
            .collect();
        let max_weight = entries.iter().map(|e| e.weight).max().unwrap_or(1);

        // `m` fits in usize: it is at most MAX_TABLE_SIZE.
        let mut slots = vec![u32::MAX; m as usize];
        let mut filled = 0u64;
        let mut round = 1u64;
        // Every round the heaviest endpoint claims a slot, so at most `m` rounds run.
        'fill: while filled < m && round <= m {
            for e in &mut entries {
                if u128::from(e.count) * u128::from(max_weight)
                    > u128::from(e.weight) * u128::from(round)
                {
                    continue;
                }
                // The permutation visits every slot within `m` steps and a free slot exists
                // (filled < m), so this loop ends within `m` steps.
                for _ in 0..m {
                    let slot = e.pos;
                    // pos, skip < m: one conditional subtraction replaces a division.
                    e.pos += e.skip;
                    if e.pos >= m {
                        e.pos -= m;
                    }
                    if let Some(s) = slots.get_mut(slot as usize)
                        && *s == u32::MAX
                    {
                        *s = e.index;
                        e.count += 1;
                        filled += 1;
                        break;
                    }
                }
                if filled == m {
                    break 'fill;
                }
            }
            round += 1;
        }
        // invariant: the loop above fills every slot; never leave a sentinel behind anyway.
        let first = entries.first().map_or(0, |e| e.index);
        for s in slots.iter_mut().filter(|s| **s == u32::MAX) {
            *s = first;
        }
        tracing::trace!(
            endpoints = endpoints.len(),
            table_size = m,
            "maglev table built"
        );
        Ok(Self {
            slots: slots.into(),
            len: endpoints.len(),
        })
    }

    /// The endpoint index (into the input of `build`) that `hash` maps to.
    #[inline]
    pub fn pick(&self, hash: u64) -> usize {
        let m = self.slots.len() as u64;
        // `m` >= 2 (checked in `build`), and the modulo keeps the index in bounds.
        self.slots
            .get((hash % m.max(1)) as usize)
            .map_or(0, |&i| i as usize)
    }

    /// The table size.
    pub fn table_size(&self) -> usize {
        self.slots.len()
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a table has at least one endpoint.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Trial division: `n` is at most a few million.
pub(crate) fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d = 3u64;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}
