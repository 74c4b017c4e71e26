//! Where the apps meet the mesh libraries: loading and watching the config folder, the outbound
//! client, the inbound layers and the admin data.
//!
//! Everything mesh-specific the apps do goes through [`MeshRuntime`], so the apps themselves
//! (`app.rs`, `gateway.rs`) know nothing about how the mesh is built.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use mesh_core::policy::{MeshConfig, ServiceEntryPolicy};
use mesh_core::registry::{DnsOptions, Registry, StaticDiscovery};
use mesh_core::watch::ConfigStore;

use mesh_server::MeshServer;
use mesh_server::jwt::JwksCache;

use mesh_client::client::{ConfigSource, MeshClient};
use mesh_client::cluster::Clusters;
use mesh_client::outlier::OutlierMetrics;
use mesh_client::telemetry::{ClientTelemetryConfig, ClientTelemetryLayer};
use mesh_telemetry::{MeshMetrics, WorkloadLabels};

use crate::upstream::{MeshUpstream, Upstream};

mod admin;
mod workload;

pub use self::admin::{ExtraView, PlainAdmin};
pub use self::workload::{Identity, Workload};

/// An app could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config folder did not load.
    #[error("config {dir} refused:\n{errors}")]
    Config {
        /// The folder.
        dir: PathBuf,
        /// Every problem found.
        errors: mesh_core::diag::ConfigErrors,
    },
    /// No ServiceEntry endpoint for an upstream host (`--plain` needs one).
    #[error("no ServiceEntry in {dir} lists an endpoint for host {host}")]
    NoEndpoint {
        /// The folder.
        dir: PathBuf,
        /// The host.
        host: String,
    },
    /// A flag is wrong.
    #[error(transparent)]
    Flag(#[from] crate::cli::FlagError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A file of the app's own could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The JWKS fetcher could not be built.
    #[error("jwks fetcher: {0}")]
    Jwks(String),
    /// The config folder cannot be watched.
    #[error(transparent)]
    Watch(#[from] mesh_core::watch::WatchError),
    /// No Gateway in the config.
    #[error("no Gateway named {0:?} in the config")]
    NoGateway(String),
    /// `--kube`: the API server or the app's own Pod could not be read.
    #[error("kubernetes: {0}")]
    Kube(String),
    /// A Gateway server's TLS settings cannot be served (a file, a credentialName in a folder).
    #[error("{0}")]
    GatewayTls(String),
    /// `--plain --certs`: the certificate files cannot be used.
    #[error("--plain --certs: {0}")]
    PlainTls(String),
}

/// Loads a config folder, printing its warnings.
pub fn load_config(dir: &Path) -> Result<MeshConfig, StartError> {
    match mesh_core::load::load_paths(&[dir]) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                tracing::warn!(%w, "config warning");
            }
            Ok(loaded.config)
        }
        Err(errors) => Err(StartError::Config {
            dir: dir.to_owned(),
            errors,
        }),
    }
}

/// The address of the first endpoint a ServiceEntry lists for `host`: the endpoint port named
/// like the entry's first port, else the endpoint's first port, else the entry's port number.
pub fn first_endpoint(config: &MeshConfig, host: &str) -> Option<SocketAddr> {
    let entry = config
        .service_entries
        .iter()
        .find(|e| e.hosts.iter().any(|h| host_matches(h, host)))?;
    endpoint_addr(entry)
}

fn host_matches(listed: &str, host: &str) -> bool {
    listed == host || listed.split('.').next() == Some(host)
}

fn endpoint_addr(entry: &ServiceEntryPolicy) -> Option<SocketAddr> {
    let ep = entry.endpoints.first()?;
    let ip: IpAddr = ep.address.parse().ok()?;
    let svc_port = entry.ports.first();
    let port = svc_port
        .and_then(|p| ep.ports.get(&p.name).copied())
        .or_else(|| ep.ports.values().next().copied())
        .or_else(|| svc_port.map(|p| p.target_port.unwrap_or(p.number)))?;
    Some(SocketAddr::new(ip, port))
}

/// The mesh as the apps see it: the config in force (swapped on reload), the folder watcher,
/// the endpoint registry, and what is built from them.
#[derive(Clone)]
pub struct MeshRuntime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    dir: PathBuf,
    store: ConfigStore,
    registry: Arc<Registry>,
    metrics: MeshMetrics,
    /// The outlier detector's counters, registered once in `metrics` and shared by every
    /// cluster set this runtime builds.
    outlier: OutlierMetrics,
    jwks: JwksCache,
    transport: Option<mesh_client::transport::Transport>,
    tls: crate::tls::WorkloadTls,
    /// The upstream TLS handshake counters of every cluster set built (`/config_dump`
    /// `outbound_tls`: handshakes per second under load show whether connections are pooled).
    tls_stats: std::sync::Mutex<Vec<Arc<mesh_client::tls::TlsStats>>>,
    // What keeps the config and the endpoints current: the folder watcher and the registry's
    // discovery, or the Kubernetes watches (`--kube`).
    _sources: Box<dyn std::any::Any + Send + Sync>,
}

impl MeshRuntime {
    /// Loads `dir`, starts watching it, and keeps the endpoint registry following its
    /// ServiceEntries. Needs a Tokio runtime.
    pub fn start(dir: &Path) -> Result<Self, StartError> {
        Self::start_inner(dir, None, None)
    }

    /// [`MeshRuntime::start`] with the workload certificate in `certs` (Istio's file layout,
    /// watched), when given: the listen port then follows PeerAuthentication.
    pub fn start_with_certs(dir: &Path, certs: Option<&Path>) -> Result<Self, StartError> {
        Self::start_inner(dir, None, certs)
    }

    /// [`MeshRuntime::start`] whose clients send through `transport` (e.g.
    /// [`mesh_client::transport::Transport::in_process`]) instead of connecting to endpoints.
    pub fn start_with_transport(
        dir: &Path,
        transport: mesh_client::transport::Transport,
    ) -> Result<Self, StartError> {
        Self::start_inner(dir, Some(transport), None)
    }

    fn start_inner(
        dir: &Path,
        transport: Option<mesh_client::transport::Transport>,
        certs: Option<&Path>,
    ) -> Result<Self, StartError> {
        let store = ConfigStore::from_paths(&[dir]).map_err(|errors| StartError::Config {
            dir: dir.to_owned(),
            errors,
        })?;
        if let Some(status) = store.last_reload() {
            for w in &status.warnings {
                tracing::warn!(%w, "config warning");
            }
        }
        let watch = store.watch_paths(&[dir])?;
        let discovery = StaticDiscovery::from_store(&store, DnsOptions::default());
        let registry = Arc::new(Registry::new());
        let following = registry.follow(&discovery);
        Self::assemble(
            dir,
            store,
            registry,
            Box::new((watch, discovery, following)),
            certs,
            transport,
        )
    }

    /// A runtime over a config store and registry kept current by `sources` (held as long as
    /// the runtime lives), e.g. the Kubernetes watches of `--kube`; `dir` names where the config
    /// comes from in messages. With `certs`, as [`MeshRuntime::start_with_certs`].
    pub fn from_sources(
        dir: &Path,
        store: ConfigStore,
        registry: Arc<Registry>,
        sources: Box<dyn std::any::Any + Send + Sync>,
        certs: Option<&Path>,
    ) -> Result<Self, StartError> {
        Self::assemble(dir, store, registry, sources, certs, None)
    }

    /// The runtime around a config store and registry: metrics (with the outlier counters
    /// registered), the JWKS cache and the workload certificate.
    fn assemble(
        dir: &Path,
        store: ConfigStore,
        registry: Arc<Registry>,
        sources: Box<dyn std::any::Any + Send + Sync>,
        certs: Option<&Path>,
        transport: Option<mesh_client::transport::Transport>,
    ) -> Result<Self, StartError> {
        let metrics = MeshMetrics::new();
        let outlier = OutlierMetrics::default();
        metrics.with_registry(|r| outlier.register(r));
        let jwks = JwksCache::new().map_err(|e| StartError::Jwks(e.to_string()))?;
        let tls = certs.map_or_else(
            crate::tls::WorkloadTls::none,
            crate::tls::WorkloadTls::watch,
        );
        if certs.is_some() {
            tls.register_metrics(&metrics);
            tls.follow_trust_domains(&store);
        }
        let inner = RuntimeInner {
            dir: dir.to_owned(),
            store,
            registry,
            metrics,
            outlier,
            jwks,
            transport,
            tls,
            tls_stats: std::sync::Mutex::default(),
            _sources: sources,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The folder it reads.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The config store (snapshots, generation, last reload).
    pub fn store(&self) -> &ConfigStore {
        &self.inner.store
    }

    /// The endpoint registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    /// The config in force now.
    pub fn config(&self) -> Arc<MeshConfig> {
        self.inner.store.snapshot()
    }

    /// Re-reads the folder now: a good config is swapped in, a bad one refused (the last good one
    /// stays). Blocking file IO.
    pub fn reload(&self) -> Result<(), StartError> {
        self.inner
            .store
            .reload_from(&[&self.inner.dir])
            .map(|_| ())
            .map_err(|errors| StartError::Config {
                dir: self.inner.dir.clone(),
                errors,
            })
    }

    /// The metrics this app records (client and server side), in Istio's names.
    pub fn metrics(&self) -> &MeshMetrics {
        &self.inner.metrics
    }

    /// The mesh client of `workload`: routing by the VirtualServices of `gateway` (a Gateway's
    /// name), or of the mesh (calls between services) when `None`. It sees the config as its
    /// namespace does (`exportTo`).
    pub fn mesh_client(&self, workload: &Workload, gateway: Option<&str>) -> MeshClient {
        let visible = ConfigSource::visible_from(self.inner.store.clone(), &workload.namespace);
        let discovery: Arc<dyn mesh_client::cluster::Discovery> = self.inner.registry.clone();
        let mut clusters =
            Clusters::new(visible.clone(), discovery).with_metrics(self.inner.outlier.clone());
        if let Some(transport) = &self.inner.transport {
            clusters = clusters.with_transport(transport.clone());
        }
        if self.inner.tls.dir().is_some() {
            // Outbound auto-mTLS and ISTIO_MUTUAL with the same watched certificate.
            clusters = clusters.with_tls(self.inner.tls.mesh_tls().clone());
        }
        // After `with_tls`, which gives the clusters their TLS planner and its counters.
        self.inner
            .tls_stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::clone(clusters.tls_stats()));
        let telemetry = ClientTelemetryLayer::new(
            self.inner.metrics.clone(),
            ClientTelemetryConfig::new(WorkloadLabels::from_labels(
                &workload.name(),
                Some(&workload.namespace),
                &workload.labels(),
            )),
        );
        let mut builder = MeshClient::builder(visible, clusters).telemetry(telemetry);
        if let Some(gateway) = gateway {
            builder = builder.gateway(gateway);
        }
        builder.build()
    }

    /// The outbound client of `workload`, for calls between services.
    pub fn client(&self, workload: &Workload) -> Arc<dyn Upstream> {
        Arc::new(MeshUpstream(self.mesh_client(workload, None)))
    }

    /// [`MeshRuntime::client`] and the same client itself (for tonic's generated clients):
    /// one set of connections, budgets and outlier state for the HTTP and the gRPC calls.
    pub fn clients(&self, workload: &Workload) -> (Arc<dyn Upstream>, MeshClient) {
        let client = self.mesh_client(workload, None);
        (Arc::new(MeshUpstream(client.clone())), client)
    }

    /// The outbound client of a gateway: routes by the VirtualServices bound to `gateway`.
    pub fn gateway_client(&self, workload: &Workload, gateway: &str) -> Arc<dyn Upstream> {
        Arc::new(MeshUpstream(self.mesh_client(workload, Some(gateway))))
    }

    /// Wraps a service's router in [`MeshServer`]'s inbound layers, outermost first: Istio's
    /// server metrics, the trace span (W3C `traceparent` extracted), the request id, then the
    /// policies of the config in force (rate limits, JWT authentication, authorization).
    pub fn server(&self, router: Router, workload: &Workload) -> InboundStack {
        self.mesh_server(workload).wrap(router)
    }

    /// [`MeshRuntime::server`] for the gateway, the edge facing untrusted clients: request bodies
    /// over [`GATEWAY_MAX_REQUEST_BODY`] are refused with 413.
    pub fn gateway_server(&self, router: Router, workload: &Workload) -> InboundStack {
        self.mesh_server(workload)
            .max_request_body(GATEWAY_MAX_REQUEST_BODY)
            .without_inbound_request_metrics()
            .wrap(router)
    }

    fn server_workload(workload: &Workload) -> mesh_server::Workload {
        let mut server_workload = mesh_server::Workload::new(&workload.app)
            .version(&workload.version)
            .namespace(&workload.namespace);
        if let Some(name) = &workload.deployment {
            server_workload = server_workload.name(name);
        }
        for (k, v) in &workload.labels() {
            server_workload = server_workload.label(k, v);
        }
        server_workload
    }

    /// Mutual TLS on `workload`'s listen port, as PeerAuthentication says: with `--certs` the
    /// workload's certificate; without, PERMISSIVE serves plaintext and STRICT fails closed.
    /// `None` only when the TLS server cannot be built at all (logged).
    pub fn inbound_tls(&self, workload: &Workload) -> Option<mesh_server::server::InboundTls> {
        let tls = &self.inner.tls;
        match mesh_server::server::InboundTls::new(
            tls.mesh_tls(),
            &Self::server_workload(workload),
            self.inner.store.clone(),
        ) {
            Ok(inbound) => Some(inbound),
            Err(error) => {
                tracing::error!(%error, "mutual TLS unavailable: cannot build the TLS server");
                None
            }
        }
    }

    /// The workload certificate (empty without `--certs`).
    pub fn workload_tls(&self) -> &crate::tls::WorkloadTls {
        &self.inner.tls
    }

    fn mesh_server(&self, workload: &Workload) -> MeshServer {
        MeshServer::new(Self::server_workload(workload), self.inner.store.clone())
            .with_jwks_cache(self.inner.jwks.clone())
            .with_metrics(self.inner.metrics.clone())
    }
}

/// The largest request body the gateway accepts (10 MiB, nginx's `client_max_body_size` order
/// of magnitude for an API edge); services behind it stream bodies of any size, as Istio's do.
pub const GATEWAY_MAX_REQUEST_BODY: usize = 10 << 20;

/// A service wrapped in the inbound layers, ready to serve (a concrete stack: no box, cheap to clone).
pub type InboundStack = mesh_server::server::InboundService<Router>;
