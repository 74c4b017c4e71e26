//! An in-process Kubernetes API server for tests (feature `test-util`): an axum app on
//! `127.0.0.1:0`, faithful where kube-rs and kubectl depend on it.
//!
//! - Objects in memory per resource and namespace; one global resourceVersion counter bumped by
//!   every write (as etcd's revision); `409 Conflict` on a stale `metadata.resourceVersion`.
//! - GET, list (`labelSelector` with `=`, `==`, `!=`, `in`, `notin`, `k`, `!k`; `fieldSelector` on
//!   `metadata.name`/`metadata.namespace`; `limit`/`continue`), and `watch=true`: JSON lines of
//!   ADDED/MODIFIED/DELETED, BOOKMARK when `allowWatchBookmarks=true`, resumable from a
//!   resourceVersion while the bounded history holds it, an ERROR event with a 410 Status
//!   ("too old resource version") beyond it. An object that starts or stops matching a watch's
//!   selector is an ADDED or DELETED for that watch, as in Kubernetes.
//! - POST, PUT, DELETE, PATCH as a JSON merge patch (also for strategic merge patches, which
//!   kubectl sends for built-in kinds, and for server-side apply, which creates a missing object;
//!   field ownership is not tracked).
//! - Discovery: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`; no OpenAPI
//!   documents (run kubectl with `--validate=false`).
//! - Types: Namespaces, Services, Pods, ConfigMaps, Secrets, ServiceAccounts, EndpointSlices;
//!   custom resources registered by the test ([`TestApiServer::register`],
//!   [`mesh_types`]).
//! - Faults: [`TestApiServer::fail`] (a status for matching paths, n times or until cleared),
//!   [`TestApiServer::hang`], [`TestApiServer::drop_watches`], [`TestApiServer::compact`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mesh_kube::testing::{TestApiServer, mesh_types};
//!
//! let server = TestApiServer::start().await?;
//! for t in mesh_types() {
//!     server.register(t);
//! }
//! server.apply(serde_json::json!({
//!     "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
//!     "metadata": {"name": "service2", "namespace": "default"},
//!     "spec": {"hosts": ["service2"], "http": [{"route": [{"destination": {"host": "service2"}}]}]}
//! }))?;
//! let client = server.client()?; // a kube::Client for it
//! # drop(client); Ok(()) }
//! ```

mod docs;
mod http;
mod selector;
mod store;
mod watch;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, oneshot};

pub use store::ResourceType;
use store::{Event, State, WriteError};

/// Options of a [`TestApiServer`].
#[derive(Clone, Debug)]
pub struct TestServerOptions {
    /// How many events the history keeps for resuming watches (default 1000).
    pub history: usize,
    /// How often a watch with bookmarks gets one (default 200 ms).
    pub bookmark_every: Duration,
    /// A bearer token every request must carry (`None`: anything goes).
    pub token: Option<String>,
}

impl Default for TestServerOptions {
    fn default() -> Self {
        Self {
            history: 1000,
            bookmark_every: Duration::from_millis(200),
            token: None,
        }
    }
}

/// An injected failure.
#[derive(Debug)]
struct Fault {
    status: u16,
    path_contains: String,
    remaining: Option<usize>,
}

/// What the handlers share.
pub(crate) struct Shared {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<Event>>,
    faults: Mutex<Vec<Fault>>,
    hang: tokio::sync::watch::Sender<bool>,
    drops: tokio::sync::watch::Sender<u64>,
    requests: Mutex<Vec<String>>,
    /// ADDED/MODIFIED/DELETED lines sent on watches so far.
    events_sent: std::sync::atomic::AtomicU64,
    options: TestServerOptions,
    address: String,
}

impl Shared {
    fn log(&self, line: String) {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    async fn wait_while_hanging(&self) {
        let mut rx = self.hang.subscribe();
        while *rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    fn injected_failure(&self, path: &str) -> Option<u16> {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let i = faults
            .iter()
            .position(|f| path.contains(&f.path_contains))?;
        let status = faults[i].status;
        if let Some(n) = &mut faults[i].remaining {
            *n -= 1;
            if *n == 0 {
                faults.remove(i);
            }
        }
        Some(status)
    }

    /// Runs a write under the lock and publishes its event before the lock is released, so
    /// watchers see events in resourceVersion order.
    fn write(
        &self,
        f: impl FnOnce(&mut State) -> Result<(Value, Arc<Event>), WriteError>,
    ) -> Result<Value, WriteError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (object, event) = f(&mut state)?;
        let _ = self.events.send(event);
        Ok(object)
    }
}

/// The running server; dropping it stops it.
pub struct TestApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl std::fmt::Debug for TestApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApiServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Istio's and Linkerd's custom resources as Istio 1.2x serves them.
pub fn mesh_types() -> Vec<ResourceType> {
    let net = ["v1", "v1beta1", "v1alpha3"];
    let sec = ["v1", "v1beta1"];
    let mut out: Vec<ResourceType> = [
        "VirtualService",
        "DestinationRule",
        "Gateway",
        "ServiceEntry",
    ]
    .iter()
    .map(|k| ResourceType::namespaced("networking.istio.io", &net, k))
    .collect();
    out.extend(
        [
            "RequestAuthentication",
            "AuthorizationPolicy",
            "PeerAuthentication",
        ]
        .iter()
        .map(|k| ResourceType::namespaced("security.istio.io", &sec, k)),
    );
    out.push(ResourceType::namespaced(
        "authentication.istio.io",
        &["v1alpha1"],
        "Policy",
    ));
    out.push(ResourceType::namespaced(
        "policy.linkerd.io",
        &["v1alpha1"],
        "HTTPLocalRateLimitPolicy",
    ));
    out
}

impl TestApiServer {
    /// Starts a server on `127.0.0.1:0` with the default options.
    pub async fn start() -> io::Result<Self> {
        Self::start_with(TestServerOptions::default()).await
    }

    /// Starts a server on `127.0.0.1:0`.
    pub async fn start_with(options: TestServerOptions) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(options.history)),
            events: broadcast::channel(65_536).0,
            faults: Mutex::new(Vec::new()),
            hang: tokio::sync::watch::Sender::new(false),
            drops: tokio::sync::watch::Sender::new(0),
            requests: Mutex::new(Vec::new()),
            events_sent: std::sync::atomic::AtomicU64::new(0),
            options,
            address: addr.to_string(),
        });
        let app = axum::Router::new()
            .fallback(http::handle)
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "test api server stopped");
            }
        });
        Ok(Self {
            shared,
            addr,
            _stop: stop,
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves a type (a CRD installed); registering it again replaces its versions.
    pub fn register(&self, t: ResourceType) {
        self.state().register(t);
    }

    /// Stops serving a type (a CRD removed) and forgets its objects.
    pub fn unregister(&self, group: &str, plural: &str) {
        self.state().unregister(group, plural);
    }

    /// Creates `object`, or replaces it when it exists (whatever its resourceVersion); returns
    /// the resourceVersion written.
    pub fn apply(&self, object: Value) -> Result<u64, String> {
        let (t, version, ns, name) = self.identify(&object)?;
        let exists = self.state().get(&t, &(ns.clone(), name)).is_some();
        let mut object = object;
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        let ns = t.namespaced.then_some(ns);
        let written = self
            .shared
            .write(|s| {
                if exists {
                    s.replace(&t, &version, ns.as_deref(), object)
                } else {
                    s.create(&t, &version, ns.as_deref(), object)
                }
            })
            .map_err(|e| e.2)?;
        Ok(written
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|rv| rv.parse().ok())
            .unwrap_or_default())
    }

    /// Deletes the object of `apiVersion`/`kind` at `namespace`/`name`.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<(), String> {
        let t = self
            .state()
            .find_kind(api_version, kind)
            .ok_or_else(|| format!("no type {api_version} {kind}"))?;
        self.shared
            .write(|s| s.delete(&t, Some(namespace), name))
            .map(|_| ())
            .map_err(|e| e.2)
    }

    /// The stored object, as the first served version of its type shows it.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let state = self.state();
        let t = state.find_kind(api_version, kind)?;
        let ns = if t.namespaced { namespace } else { "" };
        state.get(&t, &(ns.to_owned(), name.to_owned())).cloned()
    }

    fn identify(&self, object: &Value) -> Result<(ResourceType, String, String, String), String> {
        let text = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or("");
        let api_version = text("/apiVersion");
        let t = self
            .state()
            .find_kind(api_version, text("/kind"))
            .ok_or_else(|| format!("no type {api_version} {}", text("/kind")))?;
        let version = api_version
            .rsplit('/')
            .next()
            .unwrap_or(api_version)
            .to_owned();
        let ns = match text("/metadata/namespace") {
            "" => "default",
            ns => ns,
        };
        let ns = if t.namespaced {
            ns.to_owned()
        } else {
            String::new()
        };
        let name = text("/metadata/name");
        if name.is_empty() {
            return Err("metadata.name is required".into());
        }
        Ok((t, version, ns, name.to_owned()))
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state().rv
    }

    /// Answers requests whose path contains `path_contains` with `status`, `times` times (or
    /// until [`clear_faults`](Self::clear_faults) when `None`).
    pub fn fail(&self, status: u16, path_contains: &str, times: Option<usize>) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Fault {
                status,
                path_contains: path_contains.to_owned(),
                remaining: times.filter(|n| *n > 0),
            });
    }

    /// Removes every injected failure.
    pub fn clear_faults(&self) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// While on, new requests wait without an answer (open watches keep streaming).
    pub fn hang(&self, on: bool) {
        self.shared.hang.send_replace(on);
    }

    /// Ends every open watch stream now (clients see the connection end and watch again).
    pub fn drop_watches(&self) {
        self.shared.drops.send_modify(|n| *n += 1);
    }

    /// Forgets the event history: a watch resuming from any earlier resourceVersion gets 410.
    pub fn compact(&self) {
        self.state().compact();
    }

    /// Every request so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many object events (ADDED, MODIFIED, DELETED; not bookmarks) every watch together
    /// has been sent so far: what clients receive grows with what they watch.
    pub fn watch_events_sent(&self) -> u64 {
        self.shared
            .events_sent
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A kube client for this server (bearer token from the options, over plain http).
    pub fn client(&self) -> Result<kube::Client, kube::Error> {
        let url = self
            .url()
            .parse()
            .map_err(|e: ::http::uri::InvalidUri| kube::Error::Service(Box::new(e)))?;
        let mut config = kube::Config::new(url);
        config.auth_info.token = self.shared.options.token.clone().map(|t| t.into());
        config.read_timeout = Some(Duration::from_secs(30));
        kube::Client::try_from(config)
    }

    /// Writes a kubeconfig for this server (context `test`, namespace `default`, the token from
    /// the options) to `path`, for kubectl or `$KUBECONFIG`.
    pub fn write_kubeconfig(&self, path: &Path) -> io::Result<()> {
        let token = self
            .shared
            .options
            .token
            .clone()
            .unwrap_or_else(|| "test".into());
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\nusers:\n- name: test\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\ncurrent-context: test\n",
            self.url()
        );
        std::fs::write(path, text)
    }
}

#[cfg(test)]
mod tests;
