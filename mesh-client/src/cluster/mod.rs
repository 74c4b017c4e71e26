//! One cluster (a host's subset on a port) and the set of clusters the client sends to.
//!
//! A [`Cluster`] puts the lower half of the outbound path together for one endpoint set:
//! connection-pool limits ([`crate::pool`]), endpoint pick ([`crate::balance`]) skipping ejected
//! endpoints ([`crate::outlier`]) and those a retry already tried, the pooled connection
//! ([`crate::transport`]), and the classify step after each attempt: its [`Outcome`] feeds
//! outlier detection and the balancer's load figures. [`Clusters`] keys clusters by
//! `(host, subset, port)`, builds them from the mesh config and discovery, and rebuilds them when
//! either changes.
//!
//! ```no_run
//! use std::sync::Arc;
//! use mesh_client::balance::Endpoint;
//! use mesh_client::cluster::Cluster;
//! use mesh_core::policy::TrafficPolicy;
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let endpoints = vec![Endpoint::new("127.0.0.1:8081".parse()?), Endpoint::new("127.0.0.1:8082".parse()?)];
//! let cluster = Arc::new(Cluster::new("service2", endpoints, &TrafficPolicy::default(), false)?);
//! let req = http::Request::get("/").body(mesh_client::body::empty())?;
//! let resp = cluster.send(req).await?;
//! # drop(resp); Ok(()) }
//! ```

mod body;
mod endpoints;
mod send;
mod set;

pub(crate) use body::Answer;
pub use endpoints::{Discovery, StaticEndpoints};
pub use set::{Clusters, ResponseFuture};

use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderValue;
use http::uri::Authority;
use mesh_core::classify::Outcome;
use mesh_core::policy::{ConnectionPool, TrafficPolicy};

use crate::balance::{Balancer, Endpoint};
use crate::outlier::{OutlierDetector, OutlierMetrics};
use crate::pool::Pool;
use crate::tls::Planner;
use crate::transport::{Transport, TransportConfig, TransportError, endpoint_authority};

/// Why a cluster could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The transport could not be built.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// The lower half of the outbound path for one endpoint set; see the [module docs](self).
#[derive(Debug)]
pub struct Cluster {
    name: Arc<str>,
    host: Option<HeaderValue>,
    /// `ip:port` of each endpoint (same order as the balancer's), made once.
    authorities: Vec<Option<Authority>>,
    balancer: Balancer,
    outlier: Option<OutlierDetector>,
    pool: Arc<Pool>,
    pool_config: ConnectionPool,
    policy: TrafficPolicy,
    transport: Transport,
    transport_config: TransportConfig,
}

impl Cluster {
    /// A cluster named `host` over `endpoints` with `policy`; `http2` for h2c endpoints.
    pub fn new(
        host: &str,
        endpoints: Vec<Endpoint>,
        policy: &TrafficPolicy,
        http2: bool,
    ) -> Result<Self, BuildError> {
        let dest = mesh_core::policy::Destination {
            host: host.to_owned(),
            subset: None,
            port: None,
        };
        Self::build(
            host,
            &dest,
            endpoints,
            policy,
            http2,
            None,
            &OutlierMetrics::default(),
            None,
            &Planner::new(None),
        )
    }

    #[allow(clippy::too_many_arguments)] // private; one call site per constructor
    fn build(
        name: &str,
        dest: &mesh_core::policy::Destination,
        endpoints: Vec<Endpoint>,
        policy: &TrafficPolicy,
        http2: bool,
        previous: Option<&Cluster>,
        metrics: &OutlierMetrics,
        fixed_transport: Option<&Transport>,
        planner: &Planner,
    ) -> Result<Self, BuildError> {
        let host = dest.host.as_str();
        let tls = planner.table(
            policy.tls.as_ref(),
            &endpoints,
            host,
            dest.port,
            dest.subset.as_deref(),
            http2,
        );
        let addrs: Vec<SocketAddr> = endpoints.iter().map(|e| e.addr).collect();
        let balancer = if endpoints.is_empty() {
            // Nothing to hash over: an empty round robin answers "no endpoint".
            Balancer::round_robin(endpoints)
        } else {
            match Balancer::from_policy(&policy.load_balancer, endpoints.clone()) {
                Ok(b) => b,
                Err(e) => {
                    // Config validation refuses bad tables; if one gets here, stay available.
                    tracing::error!(cluster = name, error = %e, "load balancer could not be built: using least request");
                    Balancer::least_request(endpoints)
                }
            }
        };
        let outlier = policy.outlier_detection.clone().map(|od| {
            match previous.and_then(|p| p.outlier.as_ref()) {
                Some(prev) => prev.rebuilt(od, &addrs),
                None => OutlierDetector::new(od, &addrs)
                    .with_cluster_name(name)
                    .with_metrics(metrics.clone()),
            }
        });
        let pool_config = policy.connection_pool.clone();
        let pool = match previous {
            Some(p) if p.pool_config == pool_config && p.transport_config.http2 == http2 => {
                Arc::clone(&p.pool)
            }
            _ => Arc::new(Pool::new(&pool_config, http2)),
        };
        let mut transport_config = TransportConfig::from_policy(&pool_config, http2);
        transport_config.tls = Arc::new(tls);
        let transport = match (fixed_transport, previous) {
            (Some(t), _) => t.clone(),
            // Same settings: keep the warm connections.
            (None, Some(p)) if p.transport_config == transport_config => p.transport.clone(),
            _ => match Transport::new(&transport_config) {
                Ok(t) => t,
                Err(e @ TransportError::Unsupported { .. })
                    if transport_config.max_requests_per_connection > 1 =>
                {
                    tracing::warn!(cluster = name, error = %e, "unsupported setting ignored: connections are reused without a request limit");
                    Transport::new(&TransportConfig {
                        max_requests_per_connection: 0,
                        ..transport_config.clone()
                    })?
                }
                Err(e) => return Err(e.into()),
            },
        };
        Ok(Self {
            name: Arc::from(name),
            host: HeaderValue::from_str(host).ok(),
            authorities: balancer
                .endpoints()
                .iter()
                .map(|e| endpoint_authority(e.addr))
                .collect(),
            balancer,
            outlier,
            pool,
            pool_config,
            policy: policy.clone(),
            transport,
            transport_config,
        })
    }

    /// Replaces the balancer's random source (seeded, for tests).
    pub fn with_rng(mut self, rng: crate::random::Rng) -> Self {
        self.balancer = self.balancer.with_rng(rng);
        self
    }

    /// The cluster's name (`outbound|port|subset|host`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The balancer (endpoints and their load).
    pub fn balancer(&self) -> &Balancer {
        &self.balancer
    }

    /// Outlier detection, when configured.
    pub fn outlier(&self) -> Option<&OutlierDetector> {
        self.outlier.as_ref()
    }

    /// The connection-pool limits.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Picks a healthy endpoint, avoiding `avoid` where another exists.
    pub fn pick(&self, hash: Option<u64>, avoid: &[SocketAddr]) -> Option<usize> {
        let od = self.outlier.as_ref().filter(|o| o.filtering());
        let healthy = |i: usize| od.is_none_or(|o| !o.is_marked_ejected(i));
        if !avoid.is_empty() {
            let eps = self.balancer.endpoints();
            let fresh =
                |i: usize| healthy(i) && eps.get(i).is_some_and(|e| !avoid.contains(&e.addr));
            if let Some(i) = self.balancer.pick(hash, fresh) {
                return Some(i);
            }
        }
        self.balancer.pick(hash, healthy)
    }

    /// Feeds an attempt's outcome to outlier detection.
    pub fn record(&self, index: usize, outcome: Outcome) {
        if let Some(od) = &self.outlier {
            od.record(index, outcome);
        }
    }

    fn same_endpoints(&self, endpoints: &[Endpoint]) -> bool {
        self.balancer.endpoints() == endpoints
    }
}
