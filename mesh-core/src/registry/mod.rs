//! Discovery: a registry of endpoints (addresses with labels) per host and port.
//!
//! Sources of endpoints implement [`Discovery`]: [`StaticDiscovery`] reads the config's
//! ServiceEntries (static addresses, and DNS names resolved periodically); a Kubernetes
//! EndpointSlice source can implement the same trait later. A [`Registry`] turns what the
//! sources publish into per-`(host, port)` [`EndpointSet`]s, kept in an [`ArcSwap`] so that the
//! request path reads them without locks, and notifies subscribers when they change.
//!
//! ```
//! use mesh_core::policy::{Labels, MeshConfig, Origin, Resolution, ServiceEntryPolicy, ServicePort, WorkloadEndpoint};
//! use mesh_core::registry::Registry;
//!
//! let endpoint = |ip: &str, version: &str| WorkloadEndpoint {
//!     address: ip.into(),
//!     ports: [("http".to_owned(), 8081)].into(),
//!     labels: Labels::from([("version".into(), version.into())]),
//!     weight: 1,
//!     locality: None,
//!     service_account: None,
//! };
//! let mut config = MeshConfig::default();
//! config.service_entries.push(ServiceEntryPolicy {
//!     origin: Origin { namespace: "default".into(), ..Origin::default() },
//!     hosts: vec!["service2".into()],
//!     ports: vec![ServicePort { number: 80, name: "http".into(), protocol: "HTTP".into(), target_port: None }],
//!     resolution: Resolution::Static,
//!     endpoints: vec![endpoint("127.0.0.1", "v1"), endpoint("127.0.0.2", "v2")],
//!     mesh_internal: true,
//! });
//! let registry = Registry::from_config(&config);
//! // Short name and FQDN are the same host; port 80 maps to each endpoint's `http` port.
//! let all = registry.endpoints("service2.default.svc.cluster.local", Some(80)).unwrap();
//! assert_eq!(all.len(), 2);
//! assert_eq!(all[0].addr.to_string(), "127.0.0.1:8081");
//! let v2 = registry.subset("service2", None, &Labels::from([("version".into(), "v2".into())])).unwrap();
//! assert_eq!(v2.len(), 1);
//! ```

mod discovery;
mod names;

pub use discovery::{
    DiscoveredEndpoint, Discovery, DnsOptions, Resolve, Service, Services, StaticDiscovery,
    SystemResolver,
};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::hash::{HashError, Table};
use crate::policy::{HashTable, Labels, MeshConfig, ServiceAccount, ServicePort};

/// One address of a host, with what balancers and subsets need to know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Labels (`version: v1`...), shared between the sets the endpoint belongs to.
    pub labels: Arc<Labels>,
    /// Load-balancing weight (at least 1).
    pub weight: u32,
    /// `region/zone/subzone`, when known.
    pub locality: Option<String>,
    /// The workload's service account: the identity its certificate must carry.
    pub service_account: Option<Arc<ServiceAccount>>,
    /// The endpoint's service is inside the mesh (`location: MESH_INTERNAL`).
    pub mesh_internal: bool,
}

impl Endpoint {
    /// Whether Istio's auto-mTLS applies: a mesh-internal endpoint labelled
    /// `security.istio.io/tlsMode: istio` (a DestinationRule `tls` may still override it).
    pub fn auto_mtls(&self) -> bool {
        self.mesh_internal
            && self
                .labels
                .get(crate::policy::TLS_MODE_LABEL)
                .is_some_and(|v| v == "istio")
    }

    /// Whether the endpoint carries every one of `labels` (a subset's selector).
    pub fn has_labels(&self, labels: &Labels) -> bool {
        labels.iter().all(|(k, v)| self.labels.get(k) == Some(v))
    }
}

/// Monotonic source of set generations, unique in the process.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

fn next_generation() -> u64 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// The endpoints of one host and port: an immutable, cheaply cloned list with a generation.
///
/// The generation changes whenever the list does (and only then), so a balancer can keep
/// per-set state (a hash table, counters) and rebuild it only when the generation it cached
/// differs. A subset carries the generation of the set it was cut from.
#[derive(Clone, Debug)]
pub struct EndpointSet {
    generation: u64,
    endpoints: Arc<[Endpoint]>,
}

impl EndpointSet {
    /// A set with a fresh generation.
    pub fn new(endpoints: impl Into<Arc<[Endpoint]>>) -> Self {
        Self {
            generation: next_generation(),
            endpoints: endpoints.into(),
        }
    }

    /// The generation: equal generations mean equal endpoint lists.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The endpoints, as a shared slice.
    pub fn shared(&self) -> &Arc<[Endpoint]> {
        &self.endpoints
    }

    /// The endpoints carrying every one of `labels`.
    pub fn subset(&self, labels: &Labels) -> EndpointSet {
        if labels.is_empty() {
            return self.clone();
        }
        let endpoints: Arc<[Endpoint]> = self
            .endpoints
            .iter()
            .filter(|e| e.has_labels(labels))
            .cloned()
            .collect();
        EndpointSet {
            generation: self.generation,
            endpoints,
        }
    }

    /// A consistent-hash table over the set, keyed by each endpoint's `ip:port`; the table's
    /// indices are indices into this set.
    pub fn hash_table(&self, kind: &HashTable) -> Result<Table, HashError> {
        let keys: Vec<(String, u32)> = self
            .endpoints
            .iter()
            .map(|e| (e.addr.to_string(), e.weight))
            .collect();
        Table::build(kind, &keys)
    }
}

impl Deref for EndpointSet {
    type Target = [Endpoint];

    fn deref(&self) -> &[Endpoint] {
        &self.endpoints
    }
}

/// One host's ports and their endpoint sets.
#[derive(Debug)]
struct HostEntry {
    ports: Vec<ServicePort>,
    sets: Vec<(u16, EndpointSet)>,
}

/// What the registry serves: every name of every host, to its entry.
#[derive(Debug, Default)]
struct Snapshot {
    generation: u64,
    hosts: HashMap<String, Arc<HostEntry>>,
}

/// Endpoints per host and port, read lock-free, rebuilt when discovery publishes.
#[derive(Debug)]
pub struct Registry {
    snapshot: ArcSwap<Snapshot>,
    changes: watch::Sender<u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            changes: watch::Sender::new(0),
        }
    }

    /// A registry holding the config's ServiceEntries that need no DNS (static addresses).
    /// Use [`StaticDiscovery`] with [`Registry::follow`] to have DNS names resolved too.
    pub fn from_config(config: &MeshConfig) -> Self {
        let registry = Self::new();
        registry.update(&discovery::static_services(
            &config.service_entries,
            &HashMap::new(),
        ));
        registry
    }

    /// Rebuilds the registry from what a discovery source published. Sets whose endpoints did
    /// not change keep their generation.
    pub fn update(&self, services: &Services) {
        let old = self.snapshot.load();
        let mut hosts: HashMap<String, Arc<HostEntry>> = HashMap::new();
        let mut aliases: Vec<(String, Arc<HostEntry>)> = Vec::new();
        for service in services.iter() {
            let canonical = names::canonical_names(service);
            let Some(first) = canonical.first() else {
                continue;
            };
            let previous = old.hosts.get(first);
            let entry = Arc::new(build_entry(service, previous.map(|e| &**e)));
            for name in canonical {
                if hosts.contains_key(&name) {
                    tracing::warn!(host = %name, "host defined by more than one service; the first one is used");
                    continue;
                }
                hosts.insert(name, entry.clone());
            }
            aliases.extend(
                names::short_names(service)
                    .into_iter()
                    .map(|a| (a, entry.clone())),
            );
        }
        // Short names never shadow a name some service declared in full.
        for (alias, entry) in aliases {
            hosts.entry(alias).or_insert(entry);
        }
        let generation = old.generation + 1;
        self.snapshot
            .store(Arc::new(Snapshot { generation, hosts }));
        self.changes.send_replace(generation);
        tracing::debug!(generation, services = services.len(), "registry updated");
    }

    /// The endpoints of `host` (short name or FQDN) for destination `port`. With no port, the
    /// host's only port is used. `None` when the host is unknown, the port is not one of the
    /// host's, or no port is given and the host has several.
    pub fn endpoints(&self, host: &str, port: Option<u16>) -> Option<EndpointSet> {
        let snapshot = self.snapshot.load();
        let entry = lookup(&snapshot.hosts, host)?;
        let port = match port {
            Some(p) => p,
            None => match entry.ports.as_slice() {
                [only] => only.number,
                _ => return None,
            },
        };
        entry
            .sets
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, set)| set.clone())
    }

    /// The endpoints of `host` and `port` that carry every one of `labels` (a DestinationRule
    /// subset's selector).
    pub fn subset(&self, host: &str, port: Option<u16>, labels: &Labels) -> Option<EndpointSet> {
        self.endpoints(host, port).map(|set| set.subset(labels))
    }

    /// The ports declared for `host`.
    pub fn ports(&self, host: &str) -> Option<Vec<ServicePort>> {
        let snapshot = self.snapshot.load();
        lookup(&snapshot.hosts, host).map(|e| e.ports.clone())
    }

    /// Whether `host` is known.
    pub fn contains(&self, host: &str) -> bool {
        lookup(&self.snapshot.load().hosts, host).is_some()
    }

    /// The registry's generation: it grows by one on each update.
    pub fn generation(&self) -> u64 {
        self.snapshot.load().generation
    }

    /// A receiver of the registry's generation, marked changed on every update: clients rebuild
    /// their per-host state when it fires.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Keeps the registry updated from `discovery` until the returned handle is dropped.
    /// Needs a Tokio runtime.
    pub fn follow(self: &Arc<Self>, discovery: &dyn Discovery) -> Following {
        let mut rx = discovery.subscribe();
        let registry = Arc::clone(self);
        registry.update(&rx.borrow_and_update());
        let task = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let services = Arc::clone(&rx.borrow_and_update());
                registry.update(&services);
            }
        });
        Following { task }
    }
}

impl Registry {
    /// A registry that follows the ServiceEntries of the config in `store` (reloads included),
    /// resolving DNS entries with `options`. Keep the returned driver alive as long as the
    /// registry should stay current. Needs a Tokio runtime.
    pub fn from_store(
        store: &crate::watch::ConfigStore,
        options: DnsOptions,
    ) -> (Arc<Registry>, RegistryDriver) {
        let registry = Arc::new(Registry::new());
        let discovery = StaticDiscovery::from_store(store, options);
        let following = registry.follow(&discovery);
        (
            registry,
            RegistryDriver {
                _following: following,
                _discovery: discovery,
            },
        )
    }
}

/// Keeps a registry made by [`Registry::from_store`] current; dropping it stops the updates.
#[derive(Debug)]
pub struct RegistryDriver {
    _following: Following,
    _discovery: StaticDiscovery,
}

/// Keeps a registry following a discovery source; dropping it stops following.
#[derive(Debug)]
pub struct Following {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Following {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lookup<'a>(
    hosts: &'a HashMap<String, Arc<HostEntry>>,
    host: &str,
) -> Option<&'a Arc<HostEntry>> {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        hosts.get(&host.to_ascii_lowercase())
    } else {
        hosts.get(host)
    }
}

/// Builds a host's sets, keeping the previous set (and generation) for a port whose endpoints
/// did not change.
fn build_entry(service: &Service, previous: Option<&HostEntry>) -> HostEntry {
    let sets = service
        .ports
        .iter()
        .map(|port| {
            let endpoints: Vec<Endpoint> = service
                .endpoints
                .iter()
                .map(|e| Endpoint {
                    addr: SocketAddr::new(e.ip, target_port(port, e)),
                    labels: e.labels.clone(),
                    weight: e.weight.max(1),
                    locality: e.locality.clone(),
                    service_account: e.service_account.clone(),
                    mesh_internal: service.mesh_internal,
                })
                .collect();
            let kept = previous
                .and_then(|p| p.sets.iter().find(|(n, _)| *n == port.number))
                .filter(|(_, set)| *set.endpoints == endpoints[..])
                .map(|(_, set)| set.clone());
            (
                port.number,
                kept.unwrap_or_else(|| EndpointSet::new(endpoints)),
            )
        })
        .collect();
    HostEntry {
        ports: service.ports.clone(),
        sets,
    }
}

/// Istio's port mapping: the endpoint's port of the same name, else the service port's
/// `targetPort`, else the service port's number.
fn target_port(port: &ServicePort, endpoint: &DiscoveredEndpoint) -> u16 {
    endpoint
        .ports
        .get(&port.name)
        .copied()
        .or(port.target_port)
        .unwrap_or(port.number)
}

#[cfg(test)]
mod tests;
