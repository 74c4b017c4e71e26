//! Discovery sources: the [`Discovery`] trait and the ServiceEntry source ([`StaticDiscovery`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::policy::{
    Labels, MeshConfig, Resolution, ServiceAccount, ServiceEntryPolicy, ServicePort,
};
use crate::watch::ConfigStore;

/// A service as a discovery source sees it: its names, ports and endpoint addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// Host names as declared (`service2`, `api.example.com`...).
    pub hosts: Vec<String>,
    /// The namespace short names are relative to (`default` when empty).
    pub namespace: String,
    /// Service ports; each endpoint's port is found through the port's name.
    pub ports: Vec<ServicePort>,
    /// The endpoints, with their own port names.
    pub endpoints: Vec<DiscoveredEndpoint>,
    /// Inside the mesh (`location: MESH_INTERNAL`, or a Kubernetes Service): auto-mTLS applies.
    pub mesh_internal: bool,
}

/// An endpoint address before port mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveredEndpoint {
    /// The IP address.
    pub ip: IpAddr,
    /// Port name to port number on this endpoint (`http: 8081`).
    pub ports: BTreeMap<String, u16>,
    /// Labels.
    pub labels: Arc<Labels>,
    /// Weight (0 is treated as 1).
    pub weight: u32,
    /// Locality.
    pub locality: Option<String>,
    /// The workload's service account (its mTLS identity), when known.
    pub service_account: Option<Arc<ServiceAccount>>,
}

/// Everything a source knows, published as one value.
pub type Services = Vec<Service>;

/// A source of endpoints: ServiceEntries here, Kubernetes EndpointSlices later.
///
/// A source publishes its whole view through a `tokio::sync::watch` channel; consumers (the
/// [`super::Registry`]) read the latest value when it changes. The trait is object-safe, and
/// async work (DNS, watching an API server) happens in the source's own task.
pub trait Discovery: Send + Sync {
    /// A receiver of the source's current view, marked changed when it changes.
    fn subscribe(&self) -> watch::Receiver<Arc<Services>>;
}

/// Resolves a DNS name to addresses; injectable so tests need no DNS server.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host`.
    fn resolve<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;
}

/// The system resolver, through `tokio::net::lookup_host`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, 0u16)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// How DNS names of ServiceEntries are resolved.
#[derive(Clone)]
pub struct DnsOptions {
    refresh: Duration,
    timeout: Duration,
    resolver: Arc<dyn Resolve>,
}

impl fmt::Debug for DnsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsOptions")
            .field("refresh", &self.refresh)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for DnsOptions {
    /// Refresh every 30 s, 5 s per lookup, the system resolver.
    fn default() -> Self {
        Self {
            refresh: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            resolver: Arc::new(SystemResolver),
        }
    }
}

impl DnsOptions {
    /// The shortest refresh interval accepted.
    pub const MIN_REFRESH: Duration = Duration::from_secs(1);
    /// The longest refresh interval accepted.
    pub const MAX_REFRESH: Duration = Duration::from_secs(3600);

    /// Sets the refresh interval, clamped to `MIN_REFRESH..=MAX_REFRESH`.
    pub fn refresh(mut self, every: Duration) -> Self {
        self.refresh = every.clamp(Self::MIN_REFRESH, Self::MAX_REFRESH);
        self
    }

    /// Sets the time limit of one lookup (at least 1 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets the resolver.
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }
}

/// Discovery from the config's ServiceEntries.
///
/// `STATIC` (and `NONE`) entries use their endpoints' IP addresses. `DNS` and `DNS_ROUND_ROBIN`
/// entries resolve their endpoints' addresses, or with no endpoints their hosts, in a
/// background task, again every refresh interval; each address found is one endpoint (both
/// resolutions behave as Envoy's `STRICT_DNS` here). A failed lookup is logged and the last good
/// addresses are kept. Dropping the source stops its task.
pub struct StaticDiscovery {
    out: Arc<watch::Sender<Arc<Services>>>,
    config: watch::Sender<Arc<Vec<ServiceEntryPolicy>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for StaticDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticDiscovery")
            .field("services", &self.out.borrow().len())
            .finish()
    }
}

impl StaticDiscovery {
    /// A source for `config`'s ServiceEntries. Static addresses are published at once; DNS
    /// names are resolved by a task on the current Tokio runtime (without a runtime, DNS
    /// entries stay without endpoints and a warning is logged).
    pub fn new(config: &MeshConfig, options: DnsOptions) -> Self {
        let entries = Arc::new(config.service_entries.clone());
        let out = Arc::new(watch::Sender::new(Arc::new(static_services(
            &entries,
            &HashMap::new(),
        ))));
        let (config_tx, config_rx) = watch::channel(entries.clone());
        let mut tasks = Vec::new();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => tasks.push(handle.spawn(run(config_rx, out.clone(), options))),
            Err(_) if !dns_names(&entries).is_empty() => {
                tracing::warn!("no tokio runtime: DNS service entries get no endpoints");
            }
            Err(_) => {}
        }
        Self {
            out,
            config: config_tx,
            tasks,
        }
    }

    /// A source that follows the config in `store`: on each reload its ServiceEntries are
    /// re-read. Needs a Tokio runtime.
    pub fn from_store(store: &ConfigStore, options: DnsOptions) -> Self {
        let mut this = Self::new(&store.load(), options);
        let mut changes = store.subscribe();
        let config = this.config.clone();
        let store = store.clone();
        this.tasks.push(tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let snapshot = store.load();
                config.send_if_modified(|current| {
                    if **current == snapshot.service_entries {
                        return false;
                    }
                    *current = Arc::new(snapshot.service_entries.clone());
                    true
                });
            }
        }));
        this
    }

    /// Replaces the ServiceEntries (on a config reload).
    pub fn set_config(&self, config: &MeshConfig) {
        let entries = Arc::new(config.service_entries.clone());
        if self.tasks.is_empty() {
            self.out
                .send_replace(Arc::new(static_services(&entries, &HashMap::new())));
        }
        self.config.send_replace(entries);
    }

    /// What the source currently publishes.
    pub fn current(&self) -> Arc<Services> {
        self.out.borrow().clone()
    }
}

impl Drop for StaticDiscovery {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Discovery for StaticDiscovery {
    fn subscribe(&self) -> watch::Receiver<Arc<Services>> {
        self.out.subscribe()
    }
}

/// Resolves, publishes, and waits for a config change or the next refresh; forever.
async fn run(
    mut config: watch::Receiver<Arc<Vec<ServiceEntryPolicy>>>,
    out: Arc<watch::Sender<Arc<Services>>>,
    options: DnsOptions,
) {
    let mut cache: HashMap<String, Vec<IpAddr>> = HashMap::new();
    loop {
        let entries = config.borrow_and_update().clone();
        let names = dns_names(&entries);
        cache.retain(|name, _| names.contains(name));
        for name in &names {
            match tokio::time::timeout(options.timeout, options.resolver.resolve(name)).await {
                Ok(Ok(mut ips)) if !ips.is_empty() => {
                    ips.sort_unstable();
                    ips.dedup();
                    cache.insert(name.clone(), ips);
                }
                Ok(Ok(_)) => {
                    tracing::warn!(host = %name, "dns lookup found no address; keeping the last good addresses")
                }
                Ok(Err(error)) => {
                    tracing::warn!(host = %name, %error, "dns lookup failed; keeping the last good addresses");
                }
                Err(_) => {
                    tracing::warn!(host = %name, timeout = ?options.timeout, "dns lookup timed out; keeping the last good addresses")
                }
            }
        }
        let services = static_services(&entries, &cache);
        out.send_if_modified(|current| {
            if **current == services {
                return false;
            }
            *current = Arc::new(services);
            true
        });
        if names.is_empty() {
            if config.changed().await.is_err() {
                return;
            }
            continue;
        }
        tokio::select! {
            changed = config.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(options.refresh) => {}
        }
    }
}

fn needs_dns(entry: &ServiceEntryPolicy) -> bool {
    matches!(
        entry.resolution,
        Resolution::Dns | Resolution::DnsRoundRobin
    )
}

/// Every name a DNS ServiceEntry needs resolved.
fn dns_names(entries: &[ServiceEntryPolicy]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in entries.iter().filter(|e| needs_dns(e)) {
        if entry.endpoints.is_empty() {
            names.extend(entry.hosts.iter().filter(|h| !h.contains('*')).cloned());
        } else {
            names.extend(
                entry
                    .endpoints
                    .iter()
                    .filter(|e| e.address.parse::<IpAddr>().is_err())
                    .map(|e| e.address.clone()),
            );
        }
    }
    names
}

/// The services of `entries`, DNS names replaced by the addresses in `resolved`.
pub(super) fn static_services(
    entries: &[ServiceEntryPolicy],
    resolved: &HashMap<String, Vec<IpAddr>>,
) -> Services {
    entries
        .iter()
        .map(|entry| {
            let mut endpoints = Vec::new();
            for ep in &entry.endpoints {
                let parsed = ep.address.parse::<IpAddr>();
                let ips: &[IpAddr] = match &parsed {
                    Ok(ip) => std::slice::from_ref(ip),
                    Err(_) if needs_dns(entry) => {
                        resolved.get(&ep.address).map_or(&[][..], Vec::as_slice)
                    }
                    Err(_) => {
                        tracing::warn!(
                            service = %entry.origin.name,
                            address = %ep.address,
                            "endpoint address is not an ip; skipped (use resolution DNS for names)"
                        );
                        &[]
                    }
                };
                let labels = Arc::new(ep.labels.clone());
                let service_account = ep.service_account.clone().map(Arc::new);
                endpoints.extend(ips.iter().map(|ip| DiscoveredEndpoint {
                    ip: *ip,
                    ports: ep.ports.clone(),
                    labels: labels.clone(),
                    weight: ep.weight,
                    locality: ep.locality.clone(),
                    service_account: service_account.clone(),
                }));
            }
            if entry.endpoints.is_empty() && needs_dns(entry) {
                let labels = Arc::new(Labels::new());
                for host in &entry.hosts {
                    for ip in resolved.get(host).map_or(&[][..], Vec::as_slice) {
                        endpoints.push(DiscoveredEndpoint {
                            ip: *ip,
                            ports: BTreeMap::new(),
                            labels: labels.clone(),
                            weight: 1,
                            locality: None,
                            service_account: None,
                        });
                    }
                }
            }
            Service {
                hosts: entry.hosts.clone(),
                namespace: entry.origin.namespace.clone(),
                ports: entry.ports.clone(),
                endpoints,
                mesh_internal: entry.mesh_internal,
            }
        })
        .collect()
}
