//! Consistent-hash tables: ring hash (ketama, Envoy's `RING_HASH`) and Maglev.
//!
//! A consistent-hash load balancer maps a request key (a header, a cookie, the source IP...) to
//! an endpoint so that the same key keeps reaching the same endpoint, and so that when one of `N`
//! endpoints leaves only about `1/N` of the keys move. Both tables here are built once per
//! endpoint set (they are immutable, cheap to share behind an `Arc`) and answer
//! [`Table::pick`] in `O(log n)` (ring) or `O(1)` (Maglev) without allocating.
//!
//! ```
//! use mesh_core::hash::{hash_key, Table};
//! use mesh_core::policy::HashTable;
//!
//! let endpoints = [("10.0.0.1:8080", 1), ("10.0.0.2:8080", 1), ("10.0.0.3:8080", 2)];
//! let table = Table::build(&HashTable::default(), &endpoints)?;
//! let index = table.pick(hash_key(b"user-42"));
//! assert!(index < endpoints.len());
//! // Deterministic: every replica that builds the same table picks the same endpoint.
//! let again = Table::build(&HashTable::default(), &endpoints)?;
//! assert_eq!(again.pick(hash_key(b"user-42")), index);
//! # Ok::<(), mesh_core::hash::HashError>(())
//! ```
//!
//! # Why a fixed-seed xxHash and not `ahash`
//!
//! Every replica of a service builds its own table, and they must agree: a user whose
//! `version` header hashes to endpoint B in one replica must land on B in every other one,
//! after every restart, on every machine. So both the endpoints' positions and the request
//! keys are hashed with xxHash (`xxh3`, 64 bit) at the fixed seed [`SEED`]. `ahash` and std's
//! `RandomState` pick a random seed per process (on purpose, against hash flooding), which would
//! give every replica a different table. xxHash is also what Envoy uses for these tables.
//! Hash flooding is not a concern here: a client can only choose which endpoint its own
//! requests go to, which the key already lets it do.
//!
//! # Determinism
//!
//! Tables depend only on the set of `(key, weight)` pairs, not on their order: the input is
//! sorted by key before building, and [`Table::pick`] answers with an index into the slice as
//! given. Keys must be distinct.

mod maglev;
mod ring;

pub use maglev::{MAX_TABLE_SIZE, Maglev};
pub use ring::{MAX_RING_SIZE, RingHash};

use crate::policy::HashTable;

/// The fixed seed of every hash in this module (see the module docs for why it is fixed).
pub const SEED: u64 = 0x6d65_7368_2d68_6173; // "mesh-has"

/// Hashes a request key (header value, cookie, source IP bytes...) for [`Table::pick`].
#[inline]
pub fn hash_key(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(bytes, SEED)
}

/// Why a table could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// There were no endpoints to put in the table.
    #[error("endpoints: a consistent-hash table needs at least one endpoint")]
    NoEndpoints,
    /// Too many endpoints for a table's index type.
    #[error("endpoints: {0} endpoints is more than a consistent-hash table holds")]
    TooManyEndpoints(usize),
    /// An endpoint had weight 0.
    #[error("endpoints[{index}].weight: must be at least 1")]
    ZeroWeight {
        /// Position of the endpoint in the input.
        index: usize,
    },
    /// Two endpoints had the same key.
    #[error("endpoints[{index}]: duplicate endpoint key")]
    DuplicateKey {
        /// Position of the second occurrence in the input.
        index: usize,
    },
    /// `ringHash.minimumRingSize` out of range.
    #[error("ringHash.minimumRingSize: must be between 1 and {max}, got {got}")]
    RingSize {
        /// The configured size.
        got: u64,
        /// The largest accepted size.
        max: u64,
    },
    /// `maglev.tableSize` is not prime.
    #[error("maglev.tableSize: must be a prime number, got {0}")]
    NotPrime(u64),
    /// `maglev.tableSize` out of range.
    #[error("maglev.tableSize: must be between 2 and {max}, got {got}")]
    TableSize {
        /// The configured size.
        got: u64,
        /// The largest accepted size.
        max: u64,
    },
}

/// A built consistent-hash table of either kind.
#[derive(Clone, Debug)]
pub enum Table {
    /// A ring hash.
    Ring(RingHash),
    /// A Maglev table.
    Maglev(Maglev),
}

impl Table {
    /// Builds the table `kind` describes over `endpoints` (`(key, weight)` pairs; the key is
    /// any stable identity of the endpoint, e.g. its `ip:port`).
    pub fn build<K: AsRef<[u8]>>(
        kind: &HashTable,
        endpoints: &[(K, u32)],
    ) -> Result<Self, HashError> {
        match *kind {
            HashTable::Ring { minimum_ring_size } => {
                RingHash::build(minimum_ring_size, endpoints).map(Table::Ring)
            }
            HashTable::Maglev { table_size } => {
                Maglev::build(table_size, endpoints).map(Table::Maglev)
            }
        }
    }

    /// The index (into the endpoints as given to `build`) that `hash` maps to.
    #[inline]
    pub fn pick(&self, hash: u64) -> usize {
        match self {
            Table::Ring(r) => r.pick(hash),
            Table::Maglev(m) => m.pick(hash),
        }
    }

    /// Number of endpoints the table was built over.
    pub fn len(&self) -> usize {
        match self {
            Table::Ring(r) => r.len(),
            Table::Maglev(m) => m.len(),
        }
    }

    /// Always false: a table has at least one endpoint.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Checks the common input rules and returns the input's indices sorted by key.
fn sorted_by_key<K: AsRef<[u8]>>(endpoints: &[(K, u32)]) -> Result<Vec<u32>, HashError> {
    if endpoints.is_empty() {
        return Err(HashError::NoEndpoints);
    }
    if u32::try_from(endpoints.len()).is_err() {
        return Err(HashError::TooManyEndpoints(endpoints.len()));
    }
    if let Some(index) = endpoints.iter().position(|(_, w)| *w == 0) {
        return Err(HashError::ZeroWeight { index });
    }
    // The length fits in u32 (checked above), so every index does too.
    let mut order: Vec<u32> = (0..endpoints.len() as u32).collect();
    order.sort_by(|&a, &b| key_of(endpoints, a).cmp(key_of(endpoints, b)));
    for pair in order.windows(2) {
        if let [a, b] = *pair
            && key_of(endpoints, a) == key_of(endpoints, b)
        {
            return Err(HashError::DuplicateKey {
                index: a.max(b) as usize,
            });
        }
    }
    Ok(order)
}

fn key_of<K: AsRef<[u8]>>(endpoints: &[(K, u32)], i: u32) -> &[u8] {
    endpoints
        .get(i as usize)
        .map_or(&[][..], |(k, _)| k.as_ref())
}

#[cfg(test)]
mod tests;
