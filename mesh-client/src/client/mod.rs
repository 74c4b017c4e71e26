//! [`MeshClient`]: the whole outbound path, built from the mesh config.
//!
//! Per request, the client takes one config snapshot (lock-free), finds the route, and sends the
//! request through that route's stack:
//!
//! ```text
//! route match → rewrite → headers → fault → mirror → timeout → split → retry → cluster
//! ```
//!
//! The stacks are compiled once per config snapshot (the first request after a reload compiles
//! them); requests in flight finish on the snapshot they started with. The split picks one
//! destination per request before retries, so every attempt goes to the same subset; the cluster
//! (the lower half: endpoints, balancing, outlier detection, pooled connections) is any
//! `Service<http::Request<BoxBody>>` that reads the [`Target`](crate::context::Target) and
//! [`PreviousAttempts`](crate::context::PreviousAttempts) extensions, normally
//! [`Clusters`].
//!
//! Errors become answers as Envoy gives them, all spelled in [`rescue`](crate::rescue): `503`
//! with the response flag of the failure (`UF` connect failure, `UR` reset, `UO` overflow, `UH`
//! no healthy upstream), `504 UT` for timeouts, `404 NR` when no route matches. The router
//! answers whatever error a route stack returns.
//!
//! ```
//! use std::sync::Arc;
//! use arc_swap::ArcSwap;
//! use mesh_client::client::MeshClient;
//! use mesh_core::policy::MeshConfig;
//!
//! # async fn run() -> Result<(), mesh_client::BoxError> {
//! let config = Arc::new(ArcSwap::from_pointee(MeshConfig::default()));
//! // Any cluster service; here one that answers 200 to everything.
//! let cluster = tower::service_fn(|_req: http::Request<mesh_client::body::BoxBody>| async {
//!     Ok::<_, mesh_client::BoxError>(http::Response::new(mesh_client::body::empty()))
//! });
//! let client = MeshClient::builder_with(config, cluster).build();
//! let response = client.send(http::Request::get("http://service2/hello").body(String::new())?).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::{Request, Response};
pub use mesh_core::watch::ConfigSource;
use mesh_telemetry::grpc_status::{DeferredRecord, GrpcStatusBody, GrpcStatusWatch};
use tokio::sync::Semaphore;
use tower::Layer;
use tower::Service;
use tower::util::BoxCloneSyncService;

use crate::BoxError;
use crate::body::{self, BoxBody};
use crate::cluster::Clusters;
use crate::random::Random;
use crate::retry::budget::BudgetRegistry;
use crate::route::MESH;
use crate::stats::ClientStats;

mod router;
mod shared_cluster;

use self::router::{RouteFuture, Router, Shared};
use self::shared_cluster::SharedCluster;

/// The type-erased service each stage ends in.
pub type BoxStack = BoxCloneSyncService<Request<BoxBody>, Response<BoxBody>, BoxError>;

/// Builds a [`MeshClient`].
pub struct Builder {
    source: ConfigSource,
    cluster: SharedCluster,
    gateway: String,
    random: Random,
    stats: Arc<ClientStats>,
    max_mirrors_in_flight: usize,
    mirror_timeout: Duration,
    max_replay_bytes: u64,
    telemetry: Option<crate::telemetry::ClientTelemetryLayer>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("gateway", &self.gateway)
            .finish()
    }
}

impl Builder {
    fn new(source: ConfigSource, cluster: SharedCluster) -> Self {
        Builder {
            source,
            cluster,
            gateway: MESH.to_owned(),
            random: Random::thread(),
            stats: Arc::default(),
            max_mirrors_in_flight: crate::mirror::DEFAULT_MAX_IN_FLIGHT,
            mirror_timeout: crate::mirror::DEFAULT_MIRROR_TIMEOUT,
            max_replay_bytes: crate::retry::replay::DEFAULT_MAX_REPLAY_BYTES,
            telemetry: None,
        }
    }

    /// Routes with the VirtualServices bound to `gateway` instead of [`MESH`] (the gateway app).
    pub fn gateway(mut self, gateway: impl Into<String>) -> Self {
        self.gateway = gateway.into();
        self
    }

    /// Draws splits, faults, mirrors and jitter from `random` (seeded in tests).
    pub fn random(mut self, random: Random) -> Self {
        self.random = random;
        self
    }

    /// Counts decisions into `stats` (shared with a metrics exporter).
    pub fn stats(mut self, stats: Arc<ClientStats>) -> Self {
        self.stats = stats;
        self
    }

    /// Bounds mirror copies in flight, across all routes (default 64).
    pub fn max_mirrors_in_flight(mut self, max: usize) -> Self {
        self.max_mirrors_in_flight = max;
        self
    }

    /// Deadline of each mirror copy (default 10 s).
    pub fn mirror_timeout(mut self, timeout: Duration) -> Self {
        self.mirror_timeout = timeout;
        self
    }

    /// Largest request body buffered for retries and mirrors (default 64 KiB).
    pub fn max_replay_bytes(mut self, bytes: u64) -> Self {
        self.max_replay_bytes = bytes;
        self
    }

    /// Records Istio's client metrics and propagates trace context around every call.
    pub fn telemetry(mut self, layer: crate::telemetry::ClientTelemetryLayer) -> Self {
        self.telemetry = Some(layer);
        self
    }

    /// The client.
    pub fn build(self) -> MeshClient {
        let router = Router {
            shared: Shared::with_prepare(|prepare| {
                self.source.on_prepare(&prepare);
                Shared {
                    source: self.source,
                    cluster: self.cluster,
                    gateway: self.gateway,
                    random: self.random,
                    stats: self.stats,
                    mirror_permits: Arc::new(Semaphore::new(self.max_mirrors_in_flight)),
                    mirror_timeout: self.mirror_timeout,
                    max_replay_bytes: self.max_replay_bytes,
                    budgets: Arc::new(BudgetRegistry::new()),
                    compiled: ArcSwapOption::empty(),
                    next: ArcSwapOption::empty(),
                    retired: ArcSwapOption::empty(),
                    _prepare: prepare,
                }
            }),
        };
        let service = match self.telemetry {
            Some(layer) => Top::Telemetry(layer.layer(router.clone())),
            None => Top::Plain(router.clone()),
        };
        MeshClient { service, router }
    }
}

/// The outbound client of the mesh; see the [module docs](self).
#[derive(Clone)]
pub struct MeshClient {
    service: Top,
    router: Router,
}

/// The top of the stack, unboxed: both kinds are always ready (the router drives each route
/// stack's readiness inside its own future), so a call needs no readiness wait and no clone.
#[derive(Clone)]
enum Top {
    Plain(Router),
    Telemetry(crate::telemetry::ClientTelemetry<Router>),
}

impl fmt::Debug for MeshClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshClient")
            .field("gateway", &self.router.shared.gateway)
            .finish()
    }
}

impl MeshClient {
    /// A builder reading config from `source` and sending through the mesh's cluster set
    /// (endpoints, balancing, outlier detection, pooled connections).
    pub fn builder(source: impl Into<ConfigSource>, clusters: Clusters) -> Builder {
        Builder::new(source.into(), SharedCluster::clusters(clusters))
    }

    /// A builder reading config from `source` and sending through any `cluster` service (a
    /// mock in tests and benchmarks, or a lower half of one's own) that reads the
    /// [`Target`](crate::context::Target) and
    /// [`PreviousAttempts`](crate::context::PreviousAttempts) extensions; each call drives a
    /// clone of it to readiness.
    pub fn builder_with<C>(source: impl Into<ConfigSource>, cluster: C) -> Builder
    where
        C: Service<Request<BoxBody>, Response = Response<BoxBody>> + Clone + Send + Sync + 'static,
        C::Error: Into<BoxError>,
        C::Future: Send + 'static,
    {
        Builder::new(source.into(), SharedCluster::new(cluster))
    }

    /// The decision counters.
    pub fn stats(&self) -> &Arc<ClientStats> {
        &self.router.shared.stats
    }

    /// Sends `request` through the mesh.
    pub async fn send<B>(&self, request: Request<B>) -> Result<Response<BoxBody>, BoxError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.send_owned(request).await
    }

    /// Sends `request` through the mesh; the answer's future borrows nothing from the client
    /// (for callers that must return a `'static` future without cloning the client).
    pub fn send_owned<B>(&self, request: Request<B>) -> ResponseFuture
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let request = request.map(body::boxed);
        // `Router` and `ClientTelemetry<Router>` are always ready and keep no per-call state,
        // so calling a shared reference's clone-free path is sound (see `Top`).
        // Each arm builds the whole future, so that the inner one can be written in place.
        match &self.service {
            Top::Plain(router) => ResponseFuture {
                inner: Inner::Plain {
                    future: router.route(request),
                },
            },
            // The telemetry checks whether the call is gRPC once and tells the router.
            Top::Telemetry(telemetry) => ResponseFuture {
                inner: Inner::Telemetry {
                    future: telemetry
                        .clone()
                        .call_using(request, |router, request, grpc| {
                            router.route_grpc(request, grpc)
                        }),
                },
            },
        }
    }
}

impl<B> Service<Request<B>> for MeshClient
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Always ready: see `Top`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.send_owned(request)
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`MeshClient`].
    pub struct ResponseFuture {
        #[pin]
        inner: Inner,
    }
}

pin_project_lite::pin_project! {
    #[project = InnerProj]
    enum Inner {
        Plain { #[pin] future: RouteFuture },
        Telemetry { #[pin] future: crate::telemetry::client::ResponseFuture<RouteFuture> },
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("client::ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.project() {
            InnerProj::Plain { future } => future.poll(cx),
            InnerProj::Telemetry { future } => {
                let (response, deferred) = std::task::ready!(future.poll_deferred(cx));
                let mut response = response?;
                // A gRPC answer's status comes in its trailers: the metrics record then. The
                // record comes straight from the telemetry future (no response extension).
                if let Some(pending) = deferred {
                    response = response.map(|b| watch_grpc_status(b, pending));
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

/// `body`, recording `pending` at its trailers: the cluster's answer body holds the watch
/// itself; any other body is wrapped.
pub(crate) fn watch_grpc_status(body: BoxBody, pending: DeferredRecord) -> BoxBody {
    let mut watch = Some(GrpcStatusWatch::new(pending));
    if let Some(answer) = body.downcast_ref::<crate::cluster::Answer>() {
        answer.watch(&mut watch);
    }
    match watch {
        None => body,
        Some(watch) => BoxBody::wrapping(GrpcStatusBody::with_watch(body, watch)),
    }
}

#[cfg(test)]
mod tests;
