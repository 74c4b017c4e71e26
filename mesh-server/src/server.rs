//! [`MeshServer`]: the inbound stack of one workload, built from the mesh config, and [`serve`],
//! a hyper server with graceful shutdown that tells the layers who is calling.
//!
//! The stack, outermost first (the design's order):
//!
//! 1. metrics ([`crate::metrics`], when [`MeshServer::with_metrics`] is given), the server trace
//!    span ([`crate::trace`]) and the request id ([`crate::request_id`]): outermost, so that they
//!    see the final status of every answer, 403 and 429 included; then the request body limit
//!    when [`MeshServer::max_request_body`] is set (413);
//! 2. config refresh: a request takes the current config snapshot (one pointer comparison when
//!    nothing changed) and, when it changed, the workload's policies are compiled again and
//!    swapped in lock-free; requests in flight finish on what they started with;
//! 3. [`rescue`](crate::rescue): typed errors from the layers below become HTTP answers, here only;
//! 4. rate limit, **total** (cheap refusals before any token is verified);
//! 5. JWT authentication ([`crate::jwt`]: RequestAuthentication and the legacy Policy; it
//!    answers 401 itself and gives authorization the verified [`RequestAuth`](crate::authz::RequestAuth));
//! 6. rate limit, **per client** (`identity` and `overrides`: they need the identity that
//!    authentication establishes, so they sit right after it);
//! 7. [`authz`](crate::authz): CUSTOM, DENY, ALLOW;
//! 8. the user's service (an axum `Router` or any `Service<Request<Body>>`).
//!
//! ```no_run
//! use std::sync::{Arc, Mutex};
//! use axum::{Router, routing::get};
//! use mesh_core::policy::MeshConfig;
//! use mesh_server::{serve, server::ConfigSource, MeshServer, Workload};
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = Router::new().route("/", get(|| async { "hello" }));
//! let mesh = MeshServer::new(Workload::new("service1").version("v1"), ConfigSource::fixed(MeshConfig::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! serve(listener, mesh.wrap(app), async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use mesh_core::policy::{Labels, MeshConfig};
use mesh_core::watch::ConfigStore;
use tokio::net::TcpListener;
use tower::util::BoxCloneService;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

use mesh_client::telemetry::MeshMetrics;

use crate::authz::{AuthorizationLayer, AuthzEngine, ExtAuthz};
use crate::jwt::{JwksCache, JwtLayer, JwtSettings};
use crate::metrics::{ServerMetricsConfig, ServerMetricsLayer};
use crate::request_id::RequestIdLayer;
use crate::trace::{TraceConfig, TraceLayer};
use crate::rate_limit::{RateLimitLayer, RateLimitSettings, RateLimiter};
use crate::rescue::RescueLayer;
use crate::BoxError;

/// The client's address, put in request extensions by [`serve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RemoteAddr(pub SocketAddr);

/// The local (destination) address of the connection, put in request extensions by [`serve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalAddr(pub SocketAddr);

/// The workload a server runs: its service name, namespace and labels (`app`, `version`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// The service name (what an HTTPLocalRateLimitPolicy's `targetRef.name` names).
    pub service: String,
    /// The namespace (`default` unless set): policies apply from it and from `istio-system`.
    pub namespace: String,
    /// The labels selectors match (`app` is the service name unless set).
    pub labels: Labels,
}

impl Workload {
    /// A workload in `default`, labelled `app: service`.
    pub fn new(service: impl Into<String>) -> Self {
        let service = service.into();
        let mut labels = Labels::new();
        labels.insert("app".into(), service.clone());
        Self { service, namespace: "default".into(), labels }
    }

    /// Sets the `version` label.
    pub fn version(self, version: impl Into<String>) -> Self {
        self.label("version", version)
    }

    /// Sets a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }
}

/// Where the server reads the config in force: called once per request, it must be cheap and
/// lock-free (an `ArcSwap` load).
#[derive(Clone)]
pub struct ConfigSource(Arc<dyn Fn() -> Arc<MeshConfig> + Send + Sync>);

impl ConfigSource {
    /// Any function returning the current snapshot.
    pub fn from_fn(f: impl Fn() -> Arc<MeshConfig> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// A config that never changes.
    pub fn fixed(config: MeshConfig) -> Self {
        let config = Arc::new(config);
        Self::from_fn(move || config.clone())
    }

    /// A cell the caller swaps.
    pub fn swap(cell: Arc<ArcSwap<MeshConfig>>) -> Self {
        Self::from_fn(move || cell.load_full())
    }

    /// The hot-reloading store of `mesh_core::watch`.
    pub fn store(store: ConfigStore) -> Self {
        Self::from_fn(move || store.snapshot())
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<MeshConfig> {
        (self.0)()
    }
}

impl From<ConfigStore> for ConfigSource {
    fn from(store: ConfigStore) -> Self {
        Self::store(store)
    }
}

impl std::fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigSource(..)")
    }
}

/// The boxed inbound service [`MeshServer::wrap`] returns: never fails, answers `Body`.
pub type InboundService = BoxCloneService<Request<Body>, Response<Body>, Infallible>;

/// Builds the inbound stack of one workload; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct MeshServer {
    policies: Arc<Policies>,
    ext_authz: Option<Arc<dyn ExtAuthz>>,
    trusted_proxies: usize,
    metrics: Option<MeshMetrics>,
    trace: TraceConfig,
    max_request_body: Option<usize>,
}

impl MeshServer {
    /// The server of `workload`, configured from `source`.
    pub fn new(workload: Workload, source: impl Into<ConfigSource>) -> Self {
        let policies = Arc::new(Policies::new(workload, source.into()));
        match JwksCache::new() {
            Ok(cache) => policies.set_jwks_cache(cache),
            // Only a TLS backend failing to start gets here; without authentication no request
            // has a principal, so ALLOW rules on principals deny (fail closed).
            Err(error) => tracing::error!(%error, "jwt authentication unavailable: cannot build the jwks client"),
        }
        policies.refresh();
        Self {
            policies,
            ext_authz: None,
            trusted_proxies: 0,
            metrics: None,
            trace: TraceConfig::default(),
            max_request_body: None,
        }
    }

    /// Uses `cache` for JWKS documents (share one cache between servers, or inject a fetcher in
    /// tests). Call before [`wrap`](Self::wrap).
    pub fn with_jwks_cache(self, cache: JwksCache) -> Self {
        self.policies.set_jwks_cache(cache);
        self
    }

    /// Records Istio's standard metrics (and refusals) for this workload in `metrics`.
    pub fn with_metrics(mut self, metrics: MeshMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Tracing settings (sampling of traces that start here; Istio's 1% by default).
    pub fn with_trace(mut self, config: TraceConfig) -> Self {
        self.trace = config;
        self
    }

    /// The provider asked for CUSTOM authorization policies.
    pub fn with_ext_authz(mut self, ext: impl ExtAuthz) -> Self {
        self.ext_authz = Some(Arc::new(ext));
        self
    }

    /// Istio's `numTrustedProxies` for `remote.ip` (default 0).
    pub fn trusted_proxies(mut self, n: usize) -> Self {
        self.trusted_proxies = n;
        self
    }

    /// Refuses request bodies larger than `bytes` with `413 Payload Too Large`: at once when
    /// `content-length` says so, and as a body error when a streamed body grows past it.
    ///
    /// Unlimited by default, as Istio's sidecars stream bodies of any size; set it on anything
    /// exposed to untrusted clients (a gateway), as nginx's `client_max_body_size` does.
    pub fn max_request_body(mut self, bytes: usize) -> Self {
        self.max_request_body = Some(bytes);
        self
    }

    /// The workload.
    pub fn workload(&self) -> &Workload {
        &self.policies.workload
    }

    /// The compiled authorization policies in force (after the last refresh).
    pub fn authz(&self) -> Arc<AuthzEngine> {
        self.policies.authz.load_full()
    }

    /// Wraps the user's service (an axum `Router`, or any service of `Request<Body>`) in the
    /// inbound stack: metrics (when [`with_metrics`](Self::with_metrics) was given), trace span,
    /// request id, then the policy layers.
    ///
    /// JWT authentication ([`crate::jwt`]) sits between the total and the per-client rate limits;
    /// it answers its own 401s.
    pub fn wrap<S, B>(&self, service: S) -> InboundService
    where
        S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let p = &self.policies;
        let w = &p.workload;
        let user = service.map_response(|res: Response<B>| res.map(Body::new));
        let metrics = self.metrics.as_ref().map(|m| {
            ServerMetricsLayer::new(m.clone(), ServerMetricsConfig::for_workload(&w.service, Some(&w.namespace), &w.labels))
        });
        let rescue = match &self.metrics {
            Some(m) => RescueLayer::with_metrics(m.clone(), &w.service),
            None => RescueLayer::new(),
        };
        let stack = ServiceBuilder::new()
            .option_layer(metrics)
            .layer(TraceLayer::new(self.trace))
            .layer(RequestIdLayer::new())
            .option_layer(self.max_request_body.map(body_limit::layer))
            .layer(RefreshLayer { policies: p.clone() })
            .layer(rescue)
            .layer(RateLimitLayer::shared(p.total.clone()))
            .option_layer(p.jwt.load_full().map(|jwt| (*jwt).clone()))
            .layer(RateLimitLayer::shared(p.per_client.clone()))
            .layer(
                AuthorizationLayer::shared(p.authz.clone())
                    .with_shared_ext_authz(self.ext_authz.clone())
                    .trusted_proxies(self.trusted_proxies),
            )
            .service(user);
        BoxCloneService::new(stack)
    }

    /// Serves `service` wrapped in the stack on `listener` until `shutdown` completes, then
    /// finishes the requests in flight. See [`serve`].
    pub async fn serve<S, B>(
        &self,
        listener: TcpListener,
        service: S,
        shutdown: impl Future<Output = ()> + Send,
    ) -> io::Result<()>
    where
        S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        serve(listener, self.wrap(service), shutdown).await
    }
}

// === body limit ===

mod body_limit;

// === impl Policies ===

/// The workload's compiled policies, swapped lock-free when the config changes.
struct Policies {
    workload: Workload,
    source: ConfigSource,
    seen: ArcSwapOption<MeshConfig>,
    // Serialises rebuilds (never taken when the config is unchanged), so that a request holding
    // an older snapshot cannot overwrite what a newer one built.
    rebuild: Mutex<()>,
    authz: Arc<ArcSwap<AuthzEngine>>,
    total: Arc<ArcSwapOption<RateLimiter>>,
    per_client: Arc<ArcSwapOption<RateLimiter>>,
    // JWT authentication of the workload (its policies are updated on refresh too).
    jwt: ArcSwapOption<JwtLayer>,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies").field("workload", &self.workload).finish_non_exhaustive()
    }
}

impl Policies {
    fn new(workload: Workload, source: ConfigSource) -> Self {
        Self {
            workload,
            source,
            seen: ArcSwapOption::empty(),
            rebuild: Mutex::new(()),
            authz: Arc::new(ArcSwap::from_pointee(AuthzEngine::allow_all())),
            total: Arc::new(ArcSwapOption::empty()),
            per_client: Arc::new(ArcSwapOption::empty()),
            jwt: ArcSwapOption::empty(),
        }
    }

    /// Recompiles when the snapshot is not the one seen last (a pointer comparison otherwise).
    fn refresh(&self) {
        if self.is_current(&self.source.snapshot()) {
            return;
        }
        // A poisoned lock guards no data: carry on.
        let _guard = self.rebuild.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Read again under the lock: the newest snapshot wins.
        let config = self.source.snapshot();
        if self.is_current(&config) {
            return;
        }
        let w = &self.workload;
        match AuthzEngine::for_workload(&config.authorization, &w.namespace, &w.labels) {
            Ok(engine) => self.authz.store(Arc::new(engine)),
            // Only hand-built configs can fail here (the loader checks first): keep the last good.
            Err(error) => tracing::error!(%error, workload = %w.service, "authorization policies refused; keeping the previous ones"),
        }
        let mut limits = config.rate_limits.iter().filter(|p| {
            let ns = if p.origin.namespace.is_empty() { "default" } else { p.origin.namespace.as_str() };
            p.target == w.service && ns == w.namespace
        });
        let settings = limits.next().map(RateLimitSettings::from_policy).unwrap_or_default();
        if let Some(extra) = limits.next() {
            tracing::warn!(policy = %extra.origin.name, workload = %w.service, "more than one rate limit policy targets this workload; using the first");
        }
        swap_limiter(&self.total, settings.total_only());
        swap_limiter(&self.per_client, settings.per_client_only());
        if let Some(jwt) = self.jwt.load().as_deref() {
            jwt.update_from(&config);
        }
        tracing::debug!(workload = %w.service, "inbound policies refreshed");
        self.seen.store(Some(config));
    }
}

impl Policies {
    fn set_jwks_cache(&self, cache: JwksCache) {
        let config = self.source.snapshot();
        let w = &self.workload;
        let layer = JwtLayer::from_config(&config, w.labels.clone(), cache, JwtSettings::default());
        self.jwt.store(Some(Arc::new(layer)));
    }

    fn is_current(&self, config: &Arc<MeshConfig>) -> bool {
        self.seen.load().as_ref().is_some_and(|seen| Arc::ptr_eq(seen, config))
    }
}

/// Replaces the limiter only when its settings changed, so that reloads keep the buckets.
fn swap_limiter(cell: &ArcSwapOption<RateLimiter>, settings: RateLimitSettings) {
    let current = cell.load();
    let unchanged = match current.as_deref() {
        Some(l) => *l.settings() == settings,
        None => settings.is_empty(),
    };
    if !unchanged {
        cell.store((!settings.is_empty()).then(|| Arc::new(RateLimiter::new(settings))));
    }
}

// === impl Refresh ===

#[derive(Clone, Debug)]
struct RefreshLayer {
    policies: Arc<Policies>,
}

impl<S> Layer<S> for RefreshLayer {
    type Service = Refresh<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Refresh { inner, policies: self.policies.clone() }
    }
}

/// Brings the workload's policies up to date before each request.
#[derive(Clone, Debug)]
struct Refresh<S> {
    inner: S,
    policies: Arc<Policies>,
}

impl<S, B> Service<Request<B>> for Refresh<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.policies.refresh();
        self.inner.call(req)
    }
}

// === serve ===

mod serve;
pub use self::serve::serve;

#[cfg(test)]
mod tests;
