//! Where clusters get their endpoints: the [`Discovery`] trait, implemented by the mesh's
//! [`mesh_core::registry::Registry`] and by [`StaticEndpoints`], a simple in-memory set for tests
//! and static setups.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use mesh_core::policy::{Labels, MeshConfig, Resolution};

use crate::balance::Endpoint;

/// A source of endpoints for clusters (the registry).
pub trait Discovery: Send + Sync + 'static {
    /// A number that changes whenever any endpoint set changes (clusters rebuild then).
    fn generation(&self) -> u64;

    /// The endpoints of `host` on service port `port` that carry all of `labels`, in a stable
    /// order.
    fn endpoints(&self, host: &str, port: Option<u16>, labels: &Labels) -> Vec<Endpoint>;
}

/// Whether two host names name the same service: equal, or the same short name where each is
/// either a short name (`reviews`) or a cluster-local FQDN (`reviews.prod.svc.cluster.local`).
pub(crate) fn same_host(a: &str, b: &str) -> bool {
    a == b || matches!((short_name(a), short_name(b)), (Some(x), Some(y)) if x == y)
}

fn short_name(host: &str) -> Option<&str> {
    if !host.contains('.') {
        return Some(host);
    }
    let stripped = host
        .strip_suffix(".svc.cluster.local")
        .or_else(|| host.strip_suffix(".svc"))?;
    stripped.split('.').next()
}

#[derive(Clone, Debug)]
struct Entry {
    port: Option<u16>,
    endpoint: Endpoint,
    labels: Labels,
}

/// In-memory endpoints by host, swapped lock-free; a [`Discovery`] for tests, static setups and
/// ServiceEntries with `STATIC` resolution.
///
/// ```
/// use mesh_client::cluster::{Discovery, StaticEndpoints};
/// use mesh_core::policy::Labels;
///
/// let set = StaticEndpoints::new();
/// let v1: Labels = [("version".to_owned(), "v1".to_owned())].into();
/// set.insert("service2", None, "127.0.0.1:8081".parse()?, 1, v1.clone());
/// set.insert("service2", None, "127.0.0.1:8082".parse()?, 1, Labels::new());
/// assert_eq!(set.endpoints("service2", None, &Labels::new()).len(), 2);
/// assert_eq!(set.endpoints("service2.default.svc.cluster.local", None, &v1).len(), 1);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug, Default)]
pub struct StaticEndpoints {
    hosts: ArcSwap<HashMap<String, Vec<Entry>>>,
    generation: AtomicU64,
}

impl StaticEndpoints {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an endpoint of `host` (for service port `port`, or any port with `None`).
    pub fn insert(
        &self,
        host: &str,
        port: Option<u16>,
        addr: SocketAddr,
        weight: u32,
        labels: Labels,
    ) {
        let entry = Entry {
            port,
            endpoint: Endpoint::weighted(addr, weight).with_labels(Arc::new(labels.clone())),
            labels,
        };
        self.hosts.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.entry(host.to_owned()).or_default().push(entry.clone());
            m
        });
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Removes every endpoint of `host` at `addr`.
    pub fn remove(&self, host: &str, addr: SocketAddr) {
        self.hosts.rcu(|m| {
            let mut m = HashMap::clone(m);
            if let Some(v) = m.get_mut(host) {
                v.retain(|e| e.endpoint.addr != addr);
            }
            m
        });
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The endpoints of every ServiceEntry with `STATIC` resolution (or `NONE`) whose endpoint
    /// addresses are IPs; each endpoint's port is its `ports[name]` for the service port's name,
    /// else the service port's `targetPort`, else its number.
    pub fn from_service_entries(config: &MeshConfig) -> Self {
        let set = Self::new();
        let mut map: HashMap<String, Vec<Entry>> = HashMap::new();
        for se in &config.service_entries {
            if !matches!(se.resolution, Resolution::Static | Resolution::None) {
                continue;
            }
            for host in &se.hosts {
                for port in &se.ports {
                    for ep in &se.endpoints {
                        let Ok(ip) = ep.address.parse::<IpAddr>() else {
                            continue;
                        };
                        let number = ep
                            .ports
                            .get(&port.name)
                            .copied()
                            .or(port.target_port)
                            .unwrap_or(port.number);
                        map.entry(host.clone()).or_default().push(Entry {
                            port: Some(port.number),
                            endpoint: Endpoint::weighted(
                                SocketAddr::new(ip, number),
                                ep.weight.max(1),
                            )
                            .with_labels(Arc::new(ep.labels.clone())),
                            labels: ep.labels.clone(),
                        });
                    }
                }
            }
        }
        set.hosts.store(Arc::new(map));
        set
    }
}

impl Discovery for StaticEndpoints {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn endpoints(&self, host: &str, port: Option<u16>, labels: &Labels) -> Vec<Endpoint> {
        let hosts = self.hosts.load();
        let entries = hosts.get(host).or_else(|| {
            hosts
                .iter()
                .find(|(h, _)| same_host(h, host))
                .map(|(_, v)| v)
        });
        let Some(entries) = entries else {
            return Vec::new();
        };
        // A port with entries of its own selects them; else the port-less entries serve it.
        let port_specific = port.is_some() && entries.iter().any(|e| e.port == port);
        let mut out: Vec<Endpoint> = entries
            .iter()
            .filter(|e| {
                if port_specific {
                    e.port == port
                } else {
                    e.port.is_none() || port.is_none() || e.port == port
                }
            })
            .filter(|e| labels.iter().all(|(k, v)| e.labels.get(k) == Some(v)))
            .map(|e| e.endpoint.clone())
            .collect();
        let mut seen = std::collections::HashSet::new();
        out.retain(|e| seen.insert(e.addr));
        out
    }
}

/// The mesh's registry (ServiceEntries, DNS, later Kubernetes) as the clusters' discovery.
impl Discovery for mesh_core::registry::Registry {
    fn generation(&self) -> u64 {
        mesh_core::registry::Registry::generation(self)
    }

    fn endpoints(&self, host: &str, port: Option<u16>, labels: &Labels) -> Vec<Endpoint> {
        self.subset(host, port, labels)
            .map(|set| {
                set.iter()
                    .map(|e| {
                        Endpoint::weighted(e.addr, e.weight)
                            .with_labels(e.labels.clone())
                            .with_identity(e.auto_mtls(), e.service_account.clone())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_match_short_and_fqdn() {
        assert!(same_host("reviews", "reviews.prod.svc.cluster.local"));
        assert!(same_host("reviews.svc.cluster.local", "reviews"));
        assert!(!same_host("reviews", "ratings"));
        assert!(!same_host("reviews", "reviews.example.com"));
    }

    #[test]
    fn ports_select_their_endpoints() {
        let set = StaticEndpoints::new();
        set.insert(
            "a",
            Some(80),
            "127.0.0.1:1".parse().unwrap(),
            1,
            Labels::new(),
        );
        set.insert(
            "a",
            Some(81),
            "127.0.0.1:2".parse().unwrap(),
            1,
            Labels::new(),
        );
        assert_eq!(set.endpoints("a", Some(81), &Labels::new()).len(), 1);
        assert_eq!(set.endpoints("a", None, &Labels::new()).len(), 2);
        let g = set.generation();
        set.remove("a", "127.0.0.1:1".parse().unwrap());
        assert!(set.generation() > g);
        assert!(set.endpoints("a", Some(80), &Labels::new()).is_empty());
    }
}
