//! [`MeshServer`]: the inbound stack of one workload, built from the mesh config, and [`serve`],
//! a hyper server with graceful shutdown that tells the layers who is calling.
//!
//! The stack, outermost first (the design's order):
//!
//! 1. metrics ([`crate::metrics`], when [`MeshServer::with_metrics`] is given), the server trace
//!    span ([`crate::trace`]) and the request id ([`crate::request_id`]): outermost, so that they
//!    see the final status of every answer, 403 and 429 included; then the request body limit
//!    when [`MeshServer::max_request_body`] is set (413), and [`grpc`](crate::grpc): a gRPC
//!    caller's `grpc-timeout` honoured, every answer below made a gRPC answer for it;
//! 2. [`rescue`](crate::rescue): typed errors from the layers below become HTTP answers, here only;
//! 3. [`normalize`](crate::normalize): the path normalized at the config's
//!    `meshConfig.pathNormalization` level (400 when it cannot be), so every decision below and
//!    the user's service see one spelling of it;
//! 4. the [`Gate`]: a request takes the current config snapshot (one pointer comparison when
//!    nothing changed) and, when it changed, the workload's policies are compiled again and
//!    swapped in lock-free; requests in flight finish on what they started with. When no rate
//!    limit, JWT rule or authorization policy applies to the workload, the request goes straight
//!    to the user's service (steps 5 to 8 cost nothing then);
//! 5. rate limit, **total** (cheap refusals before any token is verified);
//! 6. JWT authentication ([`crate::jwt`]: RequestAuthentication and the legacy Policy; it
//!    answers 401 itself and gives the layers below the verified [`Principal`](crate::context::Principal));
//! 7. rate limit, **per client** (`identity` and `overrides`: they need the identity that
//!    authentication establishes, so they sit right after it);
//! 8. [`authz`](crate::authz): CUSTOM, DENY, ALLOW;
//! 9. the user's service (an axum `Router` or any `Service<Request<Body>>`).
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
pub use mesh_core::watch::ConfigSource;
use tokio::net::TcpListener;
use tower::util::Either;
use tower::{Layer, Service};

use mesh_telemetry::MeshMetrics;

use crate::context::LocalAddr;

use crate::BoxError;
use crate::authz::{AuthorizationLayer, AuthzEngine, ExtAuthz};
use crate::grpc::GrpcAnswers;
use crate::jwt::{JwksCache, JwtLayer, JwtSettings};
use crate::metrics::{ServerMetricsConfig, ServerMetricsLayer};
use crate::normalize::Normalize;
use crate::rate_limit::{RateLimitLayer, RateLimitSettings, RateLimiter};
use crate::request_id::RequestIdLayer;
use crate::rescue::RescueLayer;
use crate::trace::{TraceConfig, TraceLayer};

/// The workload a server runs: its service name, namespace and labels (`app`, `version`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// The service name (what an HTTPLocalRateLimitPolicy's `targetRef.name` names).
    pub service: String,
    /// The namespace (`default` unless set): policies apply from it and from `istio-system`.
    pub namespace: String,
    /// The labels selectors match (`app` is the service name unless set).
    pub labels: Labels,
    /// The workload's name in metrics (`destination_workload`): in Kubernetes the owning
    /// Deployment's name. `None`: `<app>-<version>` from the labels, as a folder set-up's
    /// Deployments would be named (`service2-v1`), else the service name.
    pub name: Option<String>,
}

impl Workload {
    /// A workload in `default`, labelled `app: service`.
    pub fn new(service: impl Into<String>) -> Self {
        let service = service.into();
        let mut labels = Labels::new();
        labels.insert("app".into(), service.clone());
        Self {
            service,
            namespace: "default".into(),
            labels,
            name: None,
        }
    }

    /// Names the workload (the owning Deployment's name in Kubernetes).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The workload's name in metrics: the one given, else `<app>-<version>`, else the service.
    pub fn workload_name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => mesh_telemetry::labels::workload_name(&self.labels, &self.service).into_owned(),
        }
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

/// Builds the inbound stack of one workload; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct MeshServer {
    policies: Arc<Policies>,
    ext_authz: Option<Arc<dyn ExtAuthz>>,
    trusted_proxies: usize,
    metrics: Option<MeshMetrics>,
    // Whether requests are recorded as `reporter="destination"` (all but an ingress gateway).
    report_inbound: bool,
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
            Err(error) => {
                tracing::error!(%error, "jwt authentication unavailable: cannot build the jwks client")
            }
        }
        policies.refresh();
        Self {
            policies,
            ext_authz: None,
            trusted_proxies: 0,
            metrics: None,
            report_inbound: true,
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

    /// For an ingress gateway: its own inbound requests are not recorded in Istio's request
    /// metrics, as Istio's gateways report only as the source of the calls they make. Kiali then
    /// draws the gateway as the root of the graph instead of behind an `unknown` client node.
    /// Refusals (`mesh_*` counters) are still counted.
    pub fn without_inbound_request_metrics(mut self) -> Self {
        self.report_inbound = false;
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
    /// request id, then the policy layers. The stack is a concrete type, not a box: cloning it
    /// clones a few `Arc`s, and calling it allocates nothing of its own.
    ///
    /// JWT authentication ([`crate::jwt`]) sits between the total and the per-client rate limits;
    /// it answers its own 401s.
    pub fn wrap<S, B>(&self, service: S) -> InboundService<S>
    where
        S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let p = &self.policies;
        let w = &p.workload;
        let user = IntoBody::new(service);
        // The policy layers, innermost first.
        let checked = RateLimitLayer::shared(p.per_client.clone())
            .layer(self.authorization_layer().layer(user.clone()));
        let authn = match p.jwt.load_full() {
            Some(jwt) => Either::Left(jwt.layer(checked)),
            None => Either::Right(checked),
        };
        let enforced = RateLimitLayer::shared(p.total.clone()).layer(authn);
        let rescue = match &self.metrics {
            Some(m) => RescueLayer::with_metrics(m.clone(), &w.service),
            None => RescueLayer::new(),
        };
        let gate = Gate::new(user, enforced, p.clone());
        let guarded = rescue.layer(Normalize::shared(gate, p.path_normalization.clone()));
        let limited = match self.max_request_body {
            Some(bytes) => Either::Left(body_limit::limit(bytes, guarded)),
            None => Either::Right(guarded),
        };
        let answered = GrpcAnswers::new(limited);
        let traced = TraceLayer::new(self.trace).layer(RequestIdLayer::new().layer(answered));
        let stack = match self.metrics.as_ref().filter(|_| self.report_inbound) {
            Some(m) => {
                let config = ServerMetricsConfig::for_workload(
                    &w.workload_name(),
                    Some(&w.namespace),
                    &w.labels,
                );
                Either::Left(ServerMetricsLayer::new(m.clone(), config).layer(traced))
            }
            None => Either::Right(traced),
        };
        InboundService::new(stack)
    }

    /// The authorization layer of the workload: its shared policies, the CUSTOM provider, the
    /// trusted proxies, and the dry-run counters when metrics are recorded.
    fn authorization_layer(&self) -> AuthorizationLayer {
        let layer = AuthorizationLayer::shared(self.policies.authz.clone())
            .with_shared_ext_authz(self.ext_authz.clone())
            .trusted_proxies(self.trusted_proxies);
        match &self.metrics {
            Some(m) => layer.with_dry_run_metrics(m.clone(), &self.policies.workload.service),
            None => layer,
        }
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

// === submodules ===

mod body_limit;
mod gate;
mod inbound;

use self::gate::Policies;
pub use self::gate::{Gate, GateFuture};
pub use self::inbound::{InboundFuture, InboundService, IntoBody, IntoBodyFuture};

// === serve ===

mod serve;
mod tls;
pub use self::serve::{serve, serve_tls};
pub use self::tls::InboundTls;

#[cfg(test)]
mod tests;
