//! [`Clusters`]: every cluster the client sends to, keyed by `(host, subset, port)`, built from
//! the mesh config and discovery, cached, and rebuilt when either changes.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use http::Request;
use mesh_core::policy::{Destination, Labels, MeshConfig, TrafficPolicy};
use mesh_core::watch::{ConfigSource, SeenAt};

use super::endpoints::same_host;
use super::{Cluster, Discovery};

use crate::body::BoxBody;
use crate::context::Target;
use crate::error::ClusterError;
use crate::hostmap::HostMap;
use crate::outlier::OutlierMetrics;
use crate::pool::RetryPermit;
use crate::tls::{Planner, TlsStats};
use crate::transport::Transport;

mod future;
pub use future::ResponseFuture;

struct Entry {
    subset: Option<String>,
    port: Option<u16>,
    config: Arc<MeshConfig>,
    /// When `config` was last found in force (see [`ConfigSource::holds`]).
    seen: SeenAt,
    generation: u64,
    /// `None`: the destination has no endpoints (or an unknown subset) under this config.
    cluster: Option<Arc<Cluster>>,
    /// The subset asked for is defined by no DestinationRule under this config.
    undefined_subset: bool,
}

impl Entry {
    /// The cluster, or why there is none: `NC` for an undefined subset, else `UH`.
    fn cluster_or_error(&self, host: &str) -> Result<Arc<Cluster>, ClusterError> {
        match (&self.cluster, &self.subset) {
            (Some(c), _) => Ok(Arc::clone(c)),
            (None, Some(subset)) if self.undefined_subset => {
                Err(ClusterError::no_cluster(host, subset))
            }
            (None, _) => Err(ClusterError::no_healthy_upstream()),
        }
    }
}

/// The DestinationRule for `host` as the snapshot's client namespace sees it (Istio's lookup
/// order: client, service, root namespace; see [`MeshConfig::destination_in`]).
fn rule_for<'a>(
    config: &'a MeshConfig,
    host: &str,
) -> Option<&'a mesh_core::policy::DestinationPolicy> {
    config.destination(host).or_else(|| {
        // a namespace's view holds the rules of hosts in other namespaces too: no loose match
        if config.namespace.is_some() {
            return None;
        }
        config
            .destinations
            .values()
            .map(|d| &**d)
            .find(|d| same_host(&d.host, host))
    })
}

struct Shared {
    config: ConfigSource,
    discovery: Arc<dyn Discovery>,
    cache: ArcSwap<HostMap<Vec<Arc<Entry>>>>,
    /// One builder at a time; holds the config and discovery generation the cache was last
    /// pruned for.
    rebuild: Mutex<Option<(Arc<MeshConfig>, u64)>>,
    metrics: OutlierMetrics,
    seed: Option<u64>,
    transport: Option<Transport>,
    tls: Arc<Planner>,
}

/// The lower half of the client as one tower service: sends each request to one endpoint of the
/// cluster its [`Target`] names.
///
/// Reads the [`Target`] extension (host, subset, port; without one, the request URI's host and
/// port) and [`crate::context::PreviousAttempts`]; answers with the endpoint in the
/// [`crate::context::Upstream`] extension, or a [`ClusterError`] whose [`mesh_core::classify::Outcome`]
/// `crate::error::outcome_of` reads. Always ready: limits answer per request, at once.
///
/// With the mesh's hot-reloaded config and its registry:
///
/// ```
/// use std::sync::Arc;
/// use mesh_client::cluster::Clusters;
/// use mesh_core::policy::MeshConfig;
/// use mesh_core::registry::Registry;
/// use mesh_core::watch::ConfigStore;
///
/// let store = Arc::new(ConfigStore::new(MeshConfig::default()));
/// let registry = Arc::new(Registry::from_config(&store.snapshot()));
/// let config = Arc::clone(&store);
/// let clusters = Clusters::new(move || config.snapshot(), registry);
/// ```
///
/// Or with a fixed endpoint list:
///
/// ```
/// use std::sync::Arc;
/// use mesh_client::cluster::{Clusters, StaticEndpoints};
/// use mesh_core::policy::MeshConfig;
///
/// let config = Arc::new(MeshConfig::default());
/// let endpoints = Arc::new(StaticEndpoints::new());
/// endpoints.insert("service2", None, "127.0.0.1:8081".parse()?, 1, Default::default());
/// let clusters = Clusters::new(move || Arc::clone(&config), endpoints);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Clone)]
pub struct Clusters {
    shared: Arc<Shared>,
}

impl fmt::Debug for Clusters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clusters")
            .field("hosts", &self.shared.cache.load().len())
            .finish()
    }
}

impl Clusters {
    /// Clusters reading the config from `config` (read per request: a [`ConfigStore`] or
    /// `ArcSwap` cell, or a lock-free closure such as `move || store.snapshot()`) and
    /// endpoints from `discovery`.
    ///
    /// [`ConfigStore`]: mesh_core::watch::ConfigStore
    pub fn new(config: impl Into<ConfigSource>, discovery: Arc<dyn Discovery>) -> Self {
        Self::build(
            config.into(),
            discovery,
            OutlierMetrics::default(),
            None,
            None,
            Arc::new(Planner::new(None)),
        )
    }

    /// Counts outlier ejections into `metrics` (register them once with a Prometheus registry).
    pub fn with_metrics(self, metrics: OutlierMetrics) -> Self {
        Self::build(
            self.shared.config.clone(),
            Arc::clone(&self.shared.discovery),
            metrics,
            self.shared.seed,
            self.shared.transport.clone(),
            Arc::clone(&self.shared.tls),
        )
    }

    /// Seeds every cluster's random source (deterministic tests).
    pub fn with_seed(self, seed: u64) -> Self {
        Self::build(
            self.shared.config.clone(),
            Arc::clone(&self.shared.discovery),
            self.shared.metrics.clone(),
            Some(seed),
            self.shared.transport.clone(),
            Arc::clone(&self.shared.tls),
        )
    }

    /// Sends through `transport` instead of a pooled HTTP client per cluster, e.g.
    /// [`Transport::in_process`] to measure the stack without sockets.
    pub fn with_transport(self, transport: Transport) -> Self {
        Self::build(
            self.shared.config.clone(),
            Arc::clone(&self.shared.discovery),
            self.shared.metrics.clone(),
            self.shared.seed,
            Some(transport),
            Arc::clone(&self.shared.tls),
        )
    }

    /// Speaks TLS upstream with the workload's mesh settings `tls` (its certificate source,
    /// read per handshake): Istio's auto-mTLS to endpoints labelled
    /// `security.istio.io/tlsMode: istio`, and DestinationRule `ISTIO_MUTUAL`. Without it,
    /// auto-mTLS endpoints are called in plaintext (as from a workload without a sidecar) and
    /// `ISTIO_MUTUAL` fails; `SIMPLE` and `MUTUAL` work either way. See [`crate::tls`].
    pub fn with_tls(self, tls: mesh_tls::MeshTls) -> Self {
        Self::build(
            self.shared.config.clone(),
            Arc::clone(&self.shared.discovery),
            self.shared.metrics.clone(),
            self.shared.seed,
            self.shared.transport.clone(),
            Arc::new(Planner::new(Some(tls))),
        )
    }

    /// The upstream TLS handshakes of these clusters, completed and failed.
    pub fn tls_stats(&self) -> &Arc<TlsStats> {
        self.shared.tls.stats()
    }

    fn build(
        config: ConfigSource,
        discovery: Arc<dyn Discovery>,
        metrics: OutlierMetrics,
        seed: Option<u64>,
        transport: Option<Transport>,
        tls: Arc<Planner>,
    ) -> Self {
        let shared = Shared {
            config,
            discovery,
            cache: ArcSwap::default(),
            rebuild: Mutex::new(None),
            metrics,
            seed,
            transport,
            tls,
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// The cluster for `dest` under the current config and endpoints.
    pub fn cluster(&self, dest: &Destination) -> Result<Arc<Cluster>, ClusterError> {
        let generation = self.shared.discovery.generation();
        // The usual call: the entry's config is still in force (the source's generation says
        // so, without a snapshot) and its endpoints are the registry's.
        let entry = self.lookup(dest);
        if let Some(entry) = &entry
            && entry.generation == generation
            && self
                .shared
                .config
                .holds(Arc::as_ptr(&entry.config) as usize, &entry.seen)
        {
            return entry.cluster_or_error(&dest.host);
        }
        drop(entry);
        let config = self.shared.config.snapshot();
        let fresh = |e: &Entry| Arc::ptr_eq(&e.config, &config) && e.generation == generation;
        // Slow path: one builder at a time; requests for fresh clusters never wait here.
        let mut pruned_for = self
            .shared
            .rebuild
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let previous = self.lookup(dest);
        if let Some(entry) = &previous
            && fresh(entry)
        {
            return entry.cluster_or_error(&dest.host);
        }
        let prev_cluster = previous.as_ref().and_then(|e| e.cluster.as_ref());
        let host = self.resolve(&config, dest);
        let cluster = self.make(dest, &host, &config, prev_cluster);
        let undefined_subset = dest
            .subset
            .as_deref()
            .is_some_and(|name| rule_for(&config, &host).is_none_or(|r| r.subset(name).is_none()));
        let entry = Arc::new(Entry {
            seen: SeenAt::new(),
            undefined_subset,
            subset: dest.subset.clone(),
            port: dest.port,
            config,
            generation,
            cluster,
        });
        // The first rebuild after the config or the endpoints changed drops the clusters of
        // hosts that have no endpoint any more (their pools and outlier state would otherwise
        // stay forever); a host that comes back gets a new cluster.
        let prune = !pruned_for
            .as_ref()
            .is_some_and(|(c, g)| Arc::ptr_eq(c, &entry.config) && *g == generation);
        if prune {
            *pruned_for = Some((Arc::clone(&entry.config), generation));
        }
        let discovery = &self.shared.discovery;
        let no_labels = Labels::new();
        self.shared.cache.rcu(|map| {
            let mut map = HostMap::clone(map);
            if prune {
                map.retain(|host, list| {
                    list.retain(|e| !discovery.endpoints(host, e.port, &no_labels).is_empty());
                    !list.is_empty()
                });
            }
            let list = map.get_or_insert_with(&dest.host, Vec::new);
            list.retain(|e| !(e.subset == dest.subset && e.port == dest.port));
            list.push(Arc::clone(&entry));
            map
        });
        entry.cluster_or_error(&dest.host)
    }

    /// Number of hosts with a cached cluster (diagnostics; pruned as hosts disappear).
    pub fn cached_hosts(&self) -> usize {
        self.shared.cache.load().len()
    }

    fn lookup(&self, dest: &Destination) -> Option<Arc<Entry>> {
        let map = self.shared.cache.load();
        map.get(&dest.host)?
            .iter()
            .find(|e| e.port == dest.port && e.subset.as_deref() == dest.subset.as_deref())
            .cloned()
    }

    /// The host `dest` names for this client: a short host (`service2`) is the service of that
    /// name in the client's namespace (`service2.<ns>.svc.cluster.local`, when the config is a
    /// namespace's view and discovery knows it), else the host as written.
    fn resolve<'d>(&self, config: &MeshConfig, dest: &'d Destination) -> Cow<'d, str> {
        if let Some(ns) = &config.namespace
            && !dest.host.contains('.')
        {
            let local = mesh_core::load::canonical_host(&dest.host, ns);
            let known = !self
                .shared
                .discovery
                .endpoints(&local, dest.port, &Labels::new())
                .is_empty();
            if known {
                return Cow::Owned(local);
            }
        }
        Cow::Borrowed(&dest.host)
    }

    /// Builds the cluster (`None`: nothing to send to), reusing `previous` where unchanged.
    fn make(
        &self,
        dest: &Destination,
        host: &str,
        config: &MeshConfig,
        previous: Option<&Arc<Cluster>>,
    ) -> Option<Arc<Cluster>> {
        // `host`: `dest.host` resolved for this client ([`Clusters::resolve`])
        let rule = rule_for(config, host);
        let labels: Labels = match (&dest.subset, rule) {
            (None, _) => Labels::new(),
            (Some(name), Some(rule)) => match rule.subset(name) {
                Some(s) => s.labels.clone(),
                None => {
                    tracing::warn!(host = %dest.host, subset = %name, "unknown subset: no cluster found (NC)");
                    return None;
                }
            },
            (Some(name), None) => {
                tracing::warn!(host = %dest.host, subset = %name, "subset without a DestinationRule: no cluster found (NC)");
                return None;
            }
        };
        let default_policy = TrafficPolicy::default();
        let policy = rule.map_or(&default_policy, |r| {
            r.policy_for(dest.subset.as_deref(), dest.port)
        });
        let mut endpoints = self.shared.discovery.endpoints(host, dest.port, &labels);
        // One entry per address (hash tables need distinct keys; weights of duplicates are not summed).
        let mut seen = std::collections::HashSet::new();
        endpoints.retain(|e| seen.insert(e.addr));
        if endpoints.is_empty() {
            tracing::debug!(host = %dest.host, subset = ?dest.subset, port = ?dest.port, "no endpoints");
            return None;
        }
        let http2 = is_http2(config, &dest.host, dest.port);
        if let Some(prev) = previous
            && prev.same_endpoints(&endpoints)
            && prev.policy == *policy
            && prev.transport_config.http2 == http2
        {
            // (The TLS plan follows from the endpoints and the policy: unchanged too.)
            // Nothing changed for this cluster (another host's rule or endpoints did): keep it,
            // with its outlier state, load figures and connections.
            return Some(Arc::clone(prev));
        }
        let name = format!(
            "outbound|{}|{}|{}",
            dest.port.map_or_else(String::new, |p| p.to_string()),
            dest.subset.as_deref().unwrap_or(""),
            dest.host
        );
        match Cluster::build(
            &name,
            dest,
            endpoints,
            policy,
            http2,
            previous.map(|p| &**p),
            &self.shared.metrics,
            self.shared.transport.as_ref(),
            &self.shared.tls,
        ) {
            Ok(c) => {
                let c = match self.shared.seed {
                    Some(seed) => c.with_rng(crate::random::Rng::from_seed(seed)),
                    None => c,
                };
                Some(Arc::new(c))
            }
            Err(e) => {
                tracing::error!(cluster = %name, error = %e, "cluster could not be built");
                None
            }
        }
    }

    /// A permit for one retry to `dest` (`maxRetries` in flight), or `None` when the limit is
    /// reached: the retry layer asks before each retry and holds the permit during it.
    pub fn retry_permit(&self, dest: &Destination) -> Option<RetryPermit> {
        match self.cluster(dest) {
            Ok(c) => c.pool().retry_permit(),
            // Nothing to retry against: the retry itself will fail with no healthy upstream.
            Err(_) => Some(RetryPermit::unlimited()),
        }
    }

    /// Sends `req` to the cluster its [`Target`] names.
    pub fn send(&self, req: Request<BoxBody>) -> ResponseFuture {
        let cluster = match req.extensions().get::<Target>() {
            Some(t) => self.cluster(&t.destination),
            None => destination_from_uri(&req).and_then(|d| self.cluster(&d)),
        };
        match cluster {
            Ok(cluster) => ResponseFuture::send(cluster.send(req)),
            Err(error) => ResponseFuture::error(error),
        }
    }
}

fn destination_from_uri<B>(req: &Request<B>) -> Result<Destination, ClusterError> {
    let host = req
        .uri()
        .host()
        .ok_or_else(ClusterError::no_healthy_upstream)?;
    Ok(Destination {
        host: host.to_owned(),
        subset: None,
        port: req.uri().port_u16(),
    })
}

fn is_http2(config: &MeshConfig, host: &str, port: Option<u16>) -> bool {
    config
        .service_entries
        .iter()
        .filter(|se| se.hosts.iter().any(|h| same_host(h, host)))
        .flat_map(|se| se.ports.iter())
        .find(|p| port.is_none_or(|n| n == p.number))
        .is_some_and(|p| matches!(p.protocol.as_str(), "HTTP2" | "GRPC" | "GRPC-WEB"))
}
