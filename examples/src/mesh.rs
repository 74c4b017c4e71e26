//! Where the apps meet the mesh libraries: loading and watching the config folder, the outbound
//! client, the inbound layers and the admin data.
//!
//! Everything mesh-specific the apps do goes through [`MeshRuntime`], so the apps themselves
//! (`app.rs`, `gateway.rs`) know nothing about how the mesh is built.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use mesh_core::policy::{Labels, MeshConfig, ServiceEntryPolicy};

use crate::admin::{AdminSource, RequestCounter};
use crate::upstream::{PlainUpstream, Upstream, UpstreamFuture};

/// Who an app is: the `app` and `version` labels the mesh selects policies and subsets by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// The `app` label (`service1`, `gateway`...).
    pub app: String,
    /// The `version` label.
    pub version: String,
}

impl Workload {
    /// A workload named `app` at `version`.
    pub fn new(app: impl Into<String>, version: impl Into<String>) -> Self {
        Self { app: app.into(), version: version.into() }
    }

    /// Its labels: `app` and `version`.
    pub fn labels(&self) -> Labels {
        Labels::from([("app".to_owned(), self.app.clone()), ("version".to_owned(), self.version.clone())])
    }
}

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
    /// No Gateway in the config.
    #[error("no Gateway named {0:?} in the config")]
    NoGateway(String),
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
        Err(errors) => Err(StartError::Config { dir: dir.to_owned(), errors }),
    }
}

/// The address of the first endpoint a ServiceEntry lists for `host`: the endpoint port named
/// like the entry's first port, else the endpoint's first port, else the entry's port number.
pub fn first_endpoint(config: &MeshConfig, host: &str) -> Option<SocketAddr> {
    let entry = config.service_entries.iter().find(|e| e.hosts.iter().any(|h| host_matches(h, host)))?;
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

/// The mesh as the apps see it: the config in force (swapped on reload) and what is built from it.
#[derive(Clone)]
pub struct MeshRuntime {
    dir: PathBuf,
    config: Arc<ArcSwap<MeshConfig>>,
}

impl MeshRuntime {
    /// Loads `dir` and starts watching it.
    pub fn start(dir: &Path) -> Result<Self, StartError> {
        let config = load_config(dir)?;
        let rt = Self { dir: dir.to_owned(), config: Arc::new(ArcSwap::from_pointee(config)) };
        rt.spawn_watch();
        Ok(rt)
    }

    /// The folder it reads.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The config in force now.
    pub fn config(&self) -> Arc<MeshConfig> {
        self.config.load_full()
    }

    /// Re-reads the folder now: a good config is swapped in, a bad one refused (the last good one
    /// stays).
    pub fn reload(&self) -> Result<(), StartError> {
        let config = load_config(&self.dir)?;
        self.config.store(Arc::new(config));
        Ok(())
    }

    fn spawn_watch(&self) {
        // Provisional until mesh-core's watcher lands: poll the folder's files for changes.
        let rt = self.clone();
        tokio::spawn(async move {
            let mut last = folder_stamp(&rt.dir);
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                let now = folder_stamp(&rt.dir);
                if now != last {
                    last = now;
                    match rt.reload() {
                        Ok(()) => tracing::info!(dir = %rt.dir.display(), "config reloaded"),
                        Err(e) => tracing::warn!(%e, "config change refused; the last good config stays"),
                    }
                }
            }
        });
    }

    /// The outbound client of `workload`.
    pub fn client(&self, workload: &Workload) -> Arc<dyn Upstream> {
        let _ = workload;
        // Provisional until MeshClient lands: the first ServiceEntry endpoint of the host, looked
        // up in the config in force for each call.
        Arc::new(FirstEndpoint { config: self.config.clone() })
    }

    /// The outbound client of a gateway: routes by the VirtualServices bound to `gateway`.
    pub fn gateway_client(&self, workload: &Workload, gateway: &str) -> Arc<dyn Upstream> {
        let _ = workload;
        // Provisional until MeshClient lands: first matching route, first destination, first
        // endpoint.
        Arc::new(ProvisionalGateway { config: self.config.clone(), gateway: gateway.to_owned() })
    }

    /// Wraps a service's router in the inbound layers, with its admin data.
    pub fn server(&self, router: Router, workload: &Workload) -> (Router, Arc<dyn AdminSource>) {
        let counter = Arc::new(RequestCounter::new(&workload.app, &workload.version));
        let router = router.layer(axum::middleware::from_fn_with_state(counter.clone(), RequestCounter::middleware));
        (router, Arc::new(MeshAdmin { counter, config: self.config.clone() }))
    }
}

fn folder_stamp(dir: &Path) -> Vec<(PathBuf, Option<std::time::SystemTime>, u64)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let meta = e.metadata().ok();
            out.push((e.path(), meta.as_ref().and_then(|m| m.modified().ok()), meta.map_or(0, |m| m.len())));
        }
    }
    out.sort();
    out
}

struct FirstEndpoint {
    config: Arc<ArcSwap<MeshConfig>>,
}

impl Upstream for FirstEndpoint {
    fn call(&self, req: http::Request<axum::body::Body>) -> UpstreamFuture {
        let host = req.uri().host().unwrap_or_default().to_owned();
        match first_endpoint(&self.config.load(), &host) {
            Some(addr) => PlainUpstream::new(addr).call(req),
            None => Box::pin(async move { Err(format!("no endpoint for host {host}").into()) }),
        }
    }
}

struct ProvisionalGateway {
    config: Arc<ArcSwap<MeshConfig>>,
    gateway: String,
}

impl Upstream for ProvisionalGateway {
    fn call(&self, req: http::Request<axum::body::Body>) -> UpstreamFuture {
        use mesh_core::policy::RouteAction;
        let config = self.config.load();
        let path = req.uri().path().to_owned();
        let dest = config
            .virtual_services
            .iter()
            .filter(|vs| vs.gateways.iter().any(|g| *g == self.gateway))
            .flat_map(|vs| vs.http.iter())
            .find(|r| r.matches.is_empty() || r.matches.iter().any(|m| m.uri.as_ref().is_none_or(|u| u.matches(&path, m.ignore_uri_case))))
            .and_then(|r| match &r.action {
                RouteAction::Forward(ds) => ds.first().map(|d| d.destination.host.clone()),
                _ => None,
            });
        match dest.as_deref().and_then(|h| first_endpoint(&config, h).map(|a| (h.to_owned(), a))) {
            Some((host, addr)) => {
                let mut req = req;
                if let Ok(v) = http::HeaderValue::from_str(&host) {
                    req.headers_mut().insert(http::header::HOST, v);
                }
                let pq = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
                if let Ok(uri) = format!("http://{host}{pq}").parse() {
                    *req.uri_mut() = uri;
                }
                PlainUpstream::new(addr).call(req)
            }
            None => Box::pin(async move { Err(format!("no route for {path}").into()) }),
        }
    }
}

struct MeshAdmin {
    counter: Arc<RequestCounter>,
    config: Arc<ArcSwap<MeshConfig>>,
}

impl AdminSource for MeshAdmin {
    fn metrics(&self) -> String {
        self.counter.render()
    }

    fn config_dump(&self) -> String {
        format!("{:#?}\n", self.config.load())
    }
}

/// Admin data of a `--plain` app: its own request counter and the upstream address.
pub struct PlainAdmin {
    /// The request counter.
    pub counter: Arc<RequestCounter>,
    /// What it calls.
    pub upstream: Option<SocketAddr>,
}

impl AdminSource for PlainAdmin {
    fn metrics(&self) -> String {
        self.counter.render()
    }

    fn config_dump(&self) -> String {
        format!("plain mode: no mesh config; upstream {:?}\n", self.upstream)
    }
}
