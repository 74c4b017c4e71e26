//! Destination policies: checked DestinationRules (load balancing, connection pool, outlier
//! detection, retry budget) and their subsets.

use std::time::Duration;

use http::HeaderName;

use super::{Labels, Origin};

/// A checked DestinationRule.
#[derive(Clone, Debug, PartialEq)]
pub struct DestinationPolicy {
    /// Where it came from.
    pub origin: Origin,
    /// `host`.
    pub host: String,
    /// `trafficPolicy`, with Istio's defaults applied.
    pub traffic_policy: TrafficPolicy,
    /// `subsets[]`; each subset's policy is already merged over the rule's.
    pub subsets: Vec<Subset>,
}

impl DestinationPolicy {
    /// The named subset.
    pub fn subset(&self, name: &str) -> Option<&Subset> {
        self.subsets.iter().find(|s| s.name == name)
    }

    /// The effective traffic policy for an optional subset and port: port-level settings over
    /// the subset's over the rule's.
    pub fn policy_for(&self, subset: Option<&str>, port: Option<u16>) -> &TrafficPolicy {
        let base = subset
            .and_then(|s| self.subset(s))
            .map_or(&self.traffic_policy, |s| &s.traffic_policy);
        match port {
            Some(p) => base
                .port_level
                .iter()
                .find(|(n, _)| *n == p)
                .map_or(base, |(_, tp)| tp),
            None => base,
        }
    }
}

/// A named subset of a host's endpoints, selected by labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Subset {
    /// `name`.
    pub name: String,
    /// `labels`: an endpoint belongs when it carries all of them.
    pub labels: Labels,
    /// The subset's `trafficPolicy` merged over the rule's.
    pub traffic_policy: TrafficPolicy,
}

/// `trafficPolicy`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrafficPolicy {
    /// `loadBalancer`.
    pub load_balancer: LoadBalancer,
    /// `connectionPool`.
    pub connection_pool: ConnectionPool,
    /// `outlierDetection`; `None` when not configured (Istio ejects nothing then).
    pub outlier_detection: Option<OutlierDetection>,
    /// `retryBudget` (Istio 1.27); on by default here, see [`RetryBudget`].
    pub retry_budget: RetryBudget,
    /// `tls`; `None`: auto-mTLS decides (mutual TLS to endpoints labelled
    /// `security.istio.io/tlsMode: istio` of mesh-internal services, plaintext otherwise).
    pub tls: Option<super::ClientTls>,
    /// `portLevelSettings`, already merged over this policy.
    pub port_level: Vec<(u16, TrafficPolicy)>,
}

/// `loadBalancer`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum LoadBalancer {
    /// `LEAST_REQUEST` as power of two choices: Istio's default.
    #[default]
    LeastRequest,
    /// `ROUND_ROBIN`.
    RoundRobin,
    /// `RANDOM`.
    Random,
    /// `PASSTHROUGH`: send to the address as given (first endpoint here).
    Passthrough,
    /// Peak-EWMA latency-aware power of two choices, as Linkerd balances (not in Istio's YAML:
    /// settable from Rust).
    PeakEwma,
    /// `consistentHash`.
    ConsistentHash(ConsistentHash),
}

/// `consistentHash`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConsistentHash {
    /// What the hash is computed over.
    pub key: HashKey,
    /// The table that maps hashes to endpoints.
    pub table: HashTable,
}

/// The key of a consistent hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HashKey {
    /// `httpHeaderName`.
    Header(HeaderName),
    /// `httpCookie{name, path, ttl}`: with a `ttl` and no cookie, one is generated and set.
    Cookie {
        /// Cookie name.
        name: String,
        /// Cookie path.
        path: Option<String>,
        /// Lifetime of a generated cookie; `None` never generates one.
        ttl: Option<Duration>,
    },
    /// `useSourceIp`.
    SourceIp,
    /// `httpQueryParameterName`.
    QueryParam(String),
}

/// The consistent-hash table kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashTable {
    /// `ringHash{minimumRingSize}` (default 1024).
    Ring {
        /// Minimum number of points on the ring.
        minimum_ring_size: u64,
    },
    /// `maglev{tableSize}` (default 65537, must be prime).
    Maglev {
        /// Table size, a prime.
        table_size: u64,
    },
}

impl Default for HashTable {
    fn default() -> Self {
        HashTable::Ring {
            minimum_ring_size: 1024,
        }
    }
}

/// `connectionPool` (tcp and http), with Istio's defaults (effectively unlimited).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionPool {
    /// `tcp.maxConnections`.
    pub max_connections: u32,
    /// `tcp.connectTimeout` (10 s).
    pub connect_timeout: Duration,
    /// `tcp.idleTimeout` / `http.idleTimeout` (1 h).
    pub idle_timeout: Duration,
    /// `http.http1MaxPendingRequests`.
    pub http1_max_pending_requests: u32,
    /// `http.http2MaxRequests`: requests in flight to the destination.
    pub http2_max_requests: u32,
    /// `http.maxRequestsPerConnection` (0 = unlimited).
    pub max_requests_per_connection: u32,
    /// `http.maxRetries`: retries in flight to the destination.
    pub max_retries: u32,
}

impl Default for ConnectionPool {
    fn default() -> Self {
        Self {
            max_connections: u32::MAX,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(3600),
            http1_max_pending_requests: u32::MAX,
            http2_max_requests: u32::MAX,
            max_requests_per_connection: 0,
            max_retries: u32::MAX,
        }
    }
}

/// `outlierDetection`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OutlierDetection {
    /// `consecutive5xxErrors` (5 by default; 0 disables).
    pub consecutive_5xx: u32,
    /// `consecutiveGatewayErrors` (0 = disabled by default).
    pub consecutive_gateway_errors: u32,
    /// `consecutiveLocalOriginFailures` (5; used when split).
    pub consecutive_local_origin_failures: u32,
    /// `splitExternalLocalOriginErrors`.
    pub split_external_local_origin_errors: bool,
    /// `interval` (10 s).
    pub interval: Duration,
    /// `baseEjectionTime` (30 s), multiplied by the number of times ejected.
    pub base_ejection_time: Duration,
    /// `maxEjectionPercent` (10).
    pub max_ejection_percent: u32,
    /// `minHealthPercent` (0): below it, ejection is disabled.
    pub min_health_percent: u32,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        Self {
            consecutive_5xx: 5,
            consecutive_gateway_errors: 0,
            consecutive_local_origin_failures: 5,
            split_external_local_origin_errors: false,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 10,
            min_health_percent: 0,
        }
    }
}

/// `retryBudget`: retries in flight may be at most `percent` of requests in flight, but always
/// at least `min_retry_concurrency`. On by default (20 %, 3), as Envoy's budget defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryBudget {
    /// `percent`.
    pub percent: f64,
    /// `minRetryConcurrency`.
    pub min_retry_concurrency: u32,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            percent: 20.0,
            min_retry_concurrency: 3,
        }
    }
}
