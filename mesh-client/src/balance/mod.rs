//! Load balancing over a cluster's endpoints.
//!
//! A [`Balancer`] holds one endpoint set and picks an index into it per request. The algorithms
//! are Istio's (`ROUND_ROBIN`, `RANDOM`, `LEAST_REQUEST` as power of two choices over requests in
//! flight, `PASSTHROUGH`, `consistentHash` over a ring hash or Maglev table) plus Linkerd's
//! peak-EWMA power of two choices. Each pick takes a `usable` predicate, which the cluster uses to
//! skip ejected endpoints and the endpoints a retry already tried; the fast path (the first
//! choice is usable) costs a couple of atomic operations and no allocation.
//!
//! ```
//! use mesh_client::balance::{Balancer, Endpoint};
//!
//! let endpoints = vec![
//!     Endpoint::new(([127, 0, 0, 1], 8081).into()),
//!     Endpoint::new(([127, 0, 0, 1], 8082).into()),
//! ];
//! let lb = Balancer::round_robin(endpoints);
//! let first = lb.pick(None, |_| true);
//! let second = lb.pick(None, |_| true);
//! assert_ne!(first, second);
//! // Skipping an endpoint (ejected, or tried already by a retry):
//! assert_eq!(lb.pick(None, |i| i == 1), Some(1));
//! ```
//!
//! Weights are respected by round robin, random, consistent hash and least request. Least
//! request is power of two choices while all weights are equal, as in Envoy; with unequal
//! weights it uses Envoy's effective weight `weight / (in_flight + 1)` (`active_request_bias`
//! 1.0), picking in proportion to it (Envoy walks an EDF schedule of the same weights; a
//! proportional random pick gives the same shares without a shared schedule). Peak EWMA
//! compares load only.

mod consistent_hash;
mod peak_ewma;
mod weights;

pub use consistent_hash::{HashPolicy, PickTable, RequestKey};
pub use peak_ewma::{DEFAULT_DECAY, DEFAULT_RTT};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mesh_core::policy::{ConsistentHash, Labels, LoadBalancer};
use tokio::time::Instant;

use peak_ewma::{Load, nanos_since};
use weights::WeightTable;

use crate::random::Rng;

/// One endpoint as the balancer sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Address to connect to.
    pub addr: SocketAddr,
    /// Relative weight (at least 1; 0 is read as 1).
    pub weight: u32,
    /// The endpoint's labels, when discovery knows them (shared, never copied per request): the
    /// response's [`Upstream`](crate::context::Upstream) carries them to the source-side
    /// metrics. A relabelled endpoint is a changed endpoint (its cluster is rebuilt).
    pub labels: Option<Arc<Labels>>,
    /// Istio's auto-mTLS applies to the endpoint (mesh-internal, labelled
    /// `security.istio.io/tlsMode: istio`): mutual TLS unless a DestinationRule says otherwise.
    pub auto_mtls: bool,
    /// The workload's service account: the identity its certificate must carry.
    pub service_account: Option<Arc<mesh_core::policy::ServiceAccount>>,
}

impl Endpoint {
    /// An endpoint of weight 1.
    pub fn new(addr: SocketAddr) -> Self {
        Self::weighted(addr, 1)
    }

    /// An endpoint with `weight`.
    pub fn weighted(addr: SocketAddr, weight: u32) -> Self {
        Self {
            addr,
            weight,
            labels: None,
            auto_mtls: false,
            service_account: None,
        }
    }

    /// The endpoint with its mesh identity: whether auto-mTLS applies, and its service account.
    pub fn with_identity(
        mut self,
        auto_mtls: bool,
        service_account: Option<Arc<mesh_core::policy::ServiceAccount>>,
    ) -> Self {
        self.auto_mtls = auto_mtls;
        self.service_account = service_account;
        self
    }

    /// The endpoint with its `labels`.
    pub fn with_labels(mut self, labels: Arc<Labels>) -> Self {
        self.labels = Some(labels);
        self
    }
}

/// Why a balancer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BalanceError {
    /// The consistent-hash table could not be built.
    #[error("loadBalancer.consistentHash: {0}")]
    HashTable(#[source] crate::BoxError),
}

/// Picks endpoints for requests; see the [module docs](self).
#[derive(Debug)]
pub struct Balancer {
    algorithm: Algorithm,
    endpoints: Box<[Endpoint]>,
    loads: Box<[Load]>,
    rng: Rng,
    epoch: Instant,
}

#[derive(Debug)]
enum Algorithm {
    RoundRobin {
        next: AtomicU64,
        weights: WeightTable,
    },
    Random {
        weights: WeightTable,
    },
    LeastRequest {
        /// Some endpoints' weights differ: pick by Envoy's effective weight.
        weighted: bool,
    },
    PeakEwma,
    Passthrough,
    ConsistentHash {
        policy: HashPolicy,
        weights: WeightTable,
    },
}

// === impl Balancer ===

impl Balancer {
    fn with(algorithm: Algorithm, endpoints: Vec<Endpoint>) -> Self {
        let loads = endpoints.iter().map(|_| Load::new()).collect();
        Self {
            algorithm,
            endpoints: endpoints.into(),
            loads,
            rng: Rng::default(),
            epoch: Instant::now(),
        }
    }

    /// `ROUND_ROBIN`, weighted.
    pub fn round_robin(endpoints: Vec<Endpoint>) -> Self {
        let weights = WeightTable::new(endpoints.iter().map(|e| e.weight));
        Self::with(
            Algorithm::RoundRobin {
                next: AtomicU64::new(0),
                weights,
            },
            endpoints,
        )
    }

    /// `RANDOM`, weighted.
    pub fn random(endpoints: Vec<Endpoint>) -> Self {
        let weights = WeightTable::new(endpoints.iter().map(|e| e.weight));
        Self::with(Algorithm::Random { weights }, endpoints)
    }

    /// `LEAST_REQUEST`: the less loaded of two random endpoints (fewer requests in flight).
    pub fn least_request(endpoints: Vec<Endpoint>) -> Self {
        let weight = |e: &Endpoint| e.weight.max(1);
        let weighted = endpoints
            .first()
            .is_some_and(|f| endpoints.iter().any(|e| weight(e) != weight(f)));
        Self::with(Algorithm::LeastRequest { weighted }, endpoints)
    }

    /// Peak-EWMA power of two choices: the cheaper of two random endpoints, where cost is the
    /// peak-EWMA latency estimate times requests in flight plus one.
    pub fn peak_ewma(endpoints: Vec<Endpoint>) -> Self {
        Self::with(Algorithm::PeakEwma, endpoints)
    }

    /// `PASSTHROUGH`: the first usable endpoint.
    pub fn passthrough(endpoints: Vec<Endpoint>) -> Self {
        Self::with(Algorithm::Passthrough, endpoints)
    }

    /// `consistentHash`: the endpoint the request's key maps to in a ring hash or Maglev table.
    /// Requests without a key are spread at random.
    pub fn consistent_hash(
        endpoints: Vec<Endpoint>,
        config: &ConsistentHash,
    ) -> Result<Self, BalanceError> {
        let policy = HashPolicy::new(config, &endpoints)?;
        let weights = WeightTable::new(endpoints.iter().map(|e| e.weight));
        Ok(Self::with(
            Algorithm::ConsistentHash { policy, weights },
            endpoints,
        ))
    }

    /// The balancer `config` describes.
    pub fn from_policy(
        config: &LoadBalancer,
        endpoints: Vec<Endpoint>,
    ) -> Result<Self, BalanceError> {
        Ok(match config {
            LoadBalancer::LeastRequest => Self::least_request(endpoints),
            LoadBalancer::RoundRobin => Self::round_robin(endpoints),
            LoadBalancer::Random => Self::random(endpoints),
            LoadBalancer::Passthrough => Self::passthrough(endpoints),
            LoadBalancer::PeakEwma => Self::peak_ewma(endpoints),
            LoadBalancer::ConsistentHash(ch) => Self::consistent_hash(endpoints, ch)?,
        })
    }

    /// Replaces the random source (seed it for deterministic tests).
    pub fn with_rng(mut self, rng: Rng) -> Self {
        self.rng = rng;
        self
    }

    /// The endpoints, in index order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The endpoint at `index`.
    pub fn endpoint(&self, index: usize) -> Option<&Endpoint> {
        self.endpoints.get(index)
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether there are no endpoints.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// The random source.
    pub fn rng(&self) -> &Rng {
        &self.rng
    }

    /// The consistent-hash policy, when this balancer hashes.
    pub fn hash_policy(&self) -> Option<&HashPolicy> {
        match &self.algorithm {
            Algorithm::ConsistentHash { policy, .. } => Some(policy),
            _ => None,
        }
    }

    /// Picks an endpoint index among those for which `usable` holds; `None` when none does.
    ///
    /// `hash` is the request's consistent-hash key (see [`HashPolicy::request_key`]); other
    /// algorithms ignore it.
    pub fn pick(&self, hash: Option<u64>, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let n = self.endpoints.len();
        if n == 0 {
            return None;
        }
        let first = match &self.algorithm {
            Algorithm::RoundRobin { next, weights } => {
                let x = next.fetch_add(1, Ordering::Relaxed) % weights.total();
                weights.index(x)
            }
            Algorithm::Random { weights } => weights.index(self.rng.below(weights.total())),
            Algorithm::Passthrough => 0,
            Algorithm::LeastRequest { weighted: true } => {
                return self.weighted_least_request(&usable);
            }
            Algorithm::LeastRequest { weighted: false } => {
                return self.p2c(&usable, |i| {
                    self.loads
                        .get(i)
                        .map_or(f64::INFINITY, |l| f64::from(l.in_flight()))
                });
            }
            Algorithm::PeakEwma => {
                let now = nanos_since(self.epoch, Instant::now());
                return self.p2c(&usable, |i| {
                    self.loads.get(i).map_or(f64::INFINITY, |l| l.cost(now))
                });
            }
            Algorithm::ConsistentHash { policy, weights } => match hash {
                Some(h) => {
                    let mut h = h;
                    let mut i = policy.pick(h);
                    // Deterministic fallback: rehash a few times (every replica makes the same
                    // second choice), then scan.
                    for _ in 0..8 {
                        if usable(i) {
                            return Some(i);
                        }
                        h = consistent_hash::rehash(h);
                        i = policy.pick(h);
                    }
                    i
                }
                None => weights.index(self.rng.below(weights.total())),
            },
        };
        if first < n && usable(first) {
            return Some(first);
        }
        self.scan_from(first.wrapping_add(1), &usable)
    }

    /// Envoy's least request with unequal weights: each usable endpoint's effective weight is
    /// `weight / (in_flight + 1)`; one is picked in proportion to it.
    fn weighted_least_request(&self, usable: &impl Fn(usize) -> bool) -> Option<usize> {
        let effective = |i: usize| {
            let in_flight = self.loads.get(i).map_or(0, Load::in_flight);
            f64::from(self.endpoints[i].weight.max(1)) / (f64::from(in_flight) + 1.0)
        };
        let n = self.endpoints.len();
        let total: f64 = (0..n).filter(|i| usable(*i)).map(effective).sum();
        if total <= 0.0 {
            return None;
        }
        let unit = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let mut x = unit * total;
        let mut last = None;
        for i in (0..n).filter(|i| usable(*i)) {
            let w = effective(i);
            if x < w {
                return Some(i);
            }
            x -= w;
            last = Some(i);
        }
        last // rounding: the last usable endpoint
    }

    /// Power of two choices: two distinct random candidates, the usable one of lower cost.
    fn p2c(&self, usable: &impl Fn(usize) -> bool, cost: impl Fn(usize) -> f64) -> Option<usize> {
        let n = self.endpoints.len();
        if n == 1 {
            return usable(0).then_some(0);
        }
        let a = self.rng.below(n as u64) as usize;
        let mut b = self.rng.below(n as u64 - 1) as usize;
        if b >= a {
            b += 1;
        }
        match (usable(a), usable(b)) {
            (true, true) => Some(if cost(b) < cost(a) { b } else { a }),
            (true, false) => Some(a),
            (false, true) => Some(b),
            (false, false) => self.scan_from(a.wrapping_add(1), usable),
        }
    }

    /// The first usable index at or after `start` (wrapping).
    fn scan_from(&self, start: usize, usable: &impl Fn(usize) -> bool) -> Option<usize> {
        let n = self.endpoints.len();
        (0..n).map(|k| (start % n + k) % n).find(|&i| usable(i))
    }

    /// Marks a request as started at `index` (counted in flight until [`Balancer::end`]).
    pub fn begin(&self, index: usize) {
        if let Some(l) = self.loads.get(index) {
            l.begin();
        }
    }

    /// Marks a request at `index` as finished; `latency` (time to the response) feeds the
    /// peak-EWMA estimate when known.
    pub fn end(&self, index: usize, latency: Option<Duration>) {
        if let Some(l) = self.loads.get(index) {
            if let Some(rtt) = latency {
                l.observe(rtt, nanos_since(self.epoch, Instant::now()));
            }
            l.end();
        }
    }

    /// Whether picks depend on observed latency ([`Balancer::peak_ewma`]): only then is a
    /// response's latency worth measuring and feeding to [`Balancer::observe`].
    pub fn learns_latency(&self) -> bool {
        matches!(self.algorithm, Algorithm::PeakEwma)
    }

    /// Feeds a latency observation to `index` without changing its count in flight.
    pub fn observe(&self, index: usize, latency: Duration) {
        if let Some(l) = self.loads.get(index) {
            l.observe(latency, nanos_since(self.epoch, Instant::now()));
        }
    }

    /// Requests in flight at `index`.
    pub fn in_flight(&self, index: usize) -> u32 {
        self.loads.get(index).map_or(0, Load::in_flight)
    }
}

#[cfg(test)]
mod tests;
