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
//! `Service<http::Request<BoxBody>>` that reads the [`Target`] and
//! [`PreviousAttempts`](crate::context::PreviousAttempts) extensions, normally
//! [`Clusters`](crate::cluster::Clusters).
//!
//! Errors become answers here, in one place, as Envoy gives them: `503` with the response flag
//! of the failure (`UF` connect failure, `UR` reset, `UO` overflow, `UH` no healthy upstream),
//! `504 UT` for timeouts, `404 NR` when no route matches.
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
//! let client = MeshClient::builder(config, cluster).build();
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

use arc_swap::{ArcSwap, ArcSwapOption};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use mesh_core::classify::Outcome;
use mesh_core::policy::{Destination, HttpRoute, MeshConfig, RetryBudget, RetryPolicy, RouteAction, WeightedDestination};
use tokio::sync::Semaphore;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

use crate::BoxError;
use crate::body::{self, BoxBody};
use crate::context::Target;
use crate::error::outcome_of;
use crate::fault::FaultLayer;
use crate::headers::{self, HeadersLayer, local_reply};
use crate::mirror::MirrorLayer;
use crate::random::Random;
use crate::retry::budget::BudgetRegistry;
use crate::retry::{Budget, Budgets, RetryLayer};
use crate::route::{Lookup, MESH, RequestView, RouteTable, rewrite};
use crate::split::SplitLayer;
use crate::stats::ClientStats;
use crate::timeout::TimeoutLayer;

/// A lock-free source of config snapshots.
pub trait ConfigSource: Send + Sync + 'static {
    /// The current snapshot.
    fn snapshot(&self) -> Arc<MeshConfig>;
}

impl ConfigSource for ArcSwap<MeshConfig> {
    fn snapshot(&self) -> Arc<MeshConfig> {
        self.load_full()
    }
}

impl ConfigSource for mesh_core::watch::ConfigStore {
    fn snapshot(&self) -> Arc<MeshConfig> {
        mesh_core::watch::ConfigStore::snapshot(self)
    }
}

impl<T: ConfigSource> ConfigSource for Arc<T> {
    fn snapshot(&self) -> Arc<MeshConfig> {
        T::snapshot(self)
    }
}

/// A [`ConfigSource`] from a closure (e.g. `move || store.snapshot()`).
pub struct FnSource<F>(pub F);

impl<F: Fn() -> Arc<MeshConfig> + Send + Sync + 'static> ConfigSource for FnSource<F> {
    fn snapshot(&self) -> Arc<MeshConfig> {
        (self.0)()
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, BoxError>> + Send>>;

/// The type-erased service each stage ends in.
pub type BoxStack = BoxCloneSyncService<Request<BoxBody>, Response<BoxBody>, BoxError>;

/// Builds a [`MeshClient`].
pub struct Builder {
    source: Arc<dyn ConfigSource>,
    cluster: BoxStack,
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
        f.debug_struct("Builder").field("gateway", &self.gateway).finish()
    }
}

impl Builder {
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
            shared: Arc::new(Shared {
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
        f.debug_struct("MeshClient").field("gateway", &self.router.shared.gateway).finish()
    }
}

impl MeshClient {
    /// A builder reading config from `source` and sending through `cluster`.
    pub fn builder<C>(source: impl ConfigSource, cluster: C) -> Builder
    where
        C: Service<Request<BoxBody>, Response = Response<BoxBody>> + Clone + Send + Sync + 'static,
        C::Error: Into<BoxError>,
        C::Future: Send + 'static,
    {
        Builder {
            source: Arc::new(source),
            cluster: BoxCloneSyncService::new(cluster.map_err(Into::into)),
            gateway: MESH.to_owned(),
            random: Random::thread(),
            stats: Arc::default(),
            max_mirrors_in_flight: crate::mirror::DEFAULT_MAX_IN_FLIGHT,
            mirror_timeout: crate::mirror::DEFAULT_MIRROR_TIMEOUT,
            max_replay_bytes: crate::retry::replay::DEFAULT_MAX_REPLAY_BYTES,
            telemetry: None,
        }
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
        let inner = match &self.service {
            Top::Plain(router) => Inner::Plain(router.route(request)),
            Top::Telemetry(telemetry) => Inner::Telemetry(telemetry.clone().call(request)),
        };
        ResponseFuture { inner }
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

/// Response future of [`MeshClient`].
pub struct ResponseFuture {
    inner: Inner,
}

enum Inner {
    Plain(BoxFuture),
    Telemetry(crate::telemetry::client::ResponseFuture<BoxFuture>),
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("client::ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Both variants are `Unpin` (the router's future is boxed).
        match &mut self.inner {
            Inner::Plain(f) => f.as_mut().poll(cx),
            Inner::Telemetry(f) => Pin::new(f).poll(cx),
        }
    }
}

// === impl Router ===

/// Route lookup and the per-route stacks (the client without telemetry).
#[derive(Clone)]
struct Router {
    shared: Arc<Shared>,
}

struct Shared {
    source: Arc<dyn ConfigSource>,
    cluster: BoxStack,
    gateway: String,
    random: Random,
    stats: Arc<ClientStats>,
    mirror_permits: Arc<Semaphore>,
    mirror_timeout: Duration,
    max_replay_bytes: u64,
    budgets: Arc<BudgetRegistry>,
    compiled: ArcSwapOption<Compiled>,
}

struct Compiled {
    config: Arc<MeshConfig>,
    table: RouteTable<RouteStack>,
    default: BoxStack,
}

enum RouteStack {
    Forward(BoxStack),
    /// The route's `route[]` cannot be used (no destination, all weights 0).
    Broken,
    /// `redirect` or `directResponse`: answered here.
    Local,
}

impl Service<Request<BoxBody>> for Router {
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is per route: each call drives its own stack's readiness (oneshot).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BoxBody>) -> Self::Future {
        self.route(request)
    }
}

impl Router {
    /// Routes and sends `request` (the router keeps no per-call state: `&self` is enough).
    fn route(&self, request: Request<BoxBody>) -> BoxFuture {
        let compiled = self.compiled();
        let shared = &self.shared;
        let view = RequestView::new(&request);
        let (stack, request) = match compiled.table.lookup_view(&view) {
            Lookup::NoVirtualService => {
                let destination = Destination { host: view.host.clone().into_owned(), subset: None, port: Some(view.port) };
                let mut request = request;
                request.extensions_mut().insert(Target::new(destination));
                (compiled.default.clone(), request)
            }
            Lookup::NoRoute => {
                shared.stats.no_route.incr();
                tracing::debug!(host = %view.host, path = view.path, no_route = true, "no route matched");
                return ready(local_reply(StatusCode::NOT_FOUND, "", Some("NR")));
            }
            Lookup::Matched { entry, matched } => {
                let route = &entry.route;
                match (&entry.data, &route.action) {
                    (RouteStack::Local, RouteAction::Redirect(r)) => {
                        shared.stats.redirects.incr();
                        let authority = view.authority.to_owned();
                        drop(view);
                        let mut response = rewrite::redirect_response(r, &request, &authority);
                        headers::apply(&route.headers.response, response.headers_mut());
                        return ready(response);
                    }
                    (RouteStack::Local, RouteAction::DirectResponse(d)) => {
                        shared.stats.direct_responses.incr();
                        let mut response = Response::new(d.body.clone().map_or_else(body::empty, body::full));
                        *response.status_mut() = d.status;
                        headers::apply(&route.headers.response, response.headers_mut());
                        return ready(response);
                    }
                    (RouteStack::Forward(stack), _) => {
                        let stack = stack.clone();
                        let matched = matched.cloned();
                        drop(view);
                        let mut request = request;
                        if let Some(rw) = &route.rewrite {
                            rewrite::apply(rw, matched.as_ref(), &mut request);
                        }
                        (stack, request)
                    }
                    _ => {
                        return ready(local_reply(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream", Some("UH")));
                    }
                }
            }
        };
        Box::pin(Rescued { inner: stack.oneshot(request) })
    }
}

/// The budget of `d` under `config`'s DestinationRule (Istio's default budget without one).
fn budget_for(registry: &BudgetRegistry, config: &MeshConfig, d: &Destination) -> Budget {
    let settings = config
        .destinations
        .get(&d.host)
        .map(|p| p.policy_for(d.subset.as_deref(), d.port).retry_budget.clone())
        .unwrap_or_default();
    registry.get(d, &settings)
}

/// The budget shared by requests without a [`Target`].
fn no_target_budget(registry: &BudgetRegistry) -> Budget {
    registry.get(&Destination { host: String::new(), subset: None, port: None }, &RetryBudget::default())
}

pin_project_lite::pin_project! {
    /// A route stack's call, its error answered as Envoy would ([`rescue`]).
    struct Rescued<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future<Output = Result<Response<BoxBody>, BoxError>>> Future for Rescued<F> {
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match std::task::ready!(self.project().inner.poll(cx)) {
            Ok(response) => Poll::Ready(Ok(response)),
            Err(error) => Poll::Ready(Ok(rescue(&error))),
        }
    }
}

fn ready(response: Response<BoxBody>) -> Pin<Box<dyn Future<Output = Result<Response<BoxBody>, BoxError>> + Send>> {
    Box::pin(std::future::ready(Ok(response)))
}

/// An error of the stack as Envoy would answer it.
fn rescue(error: &BoxError) -> Response<BoxBody> {
    let outcome = outcome_of(error);
    tracing::debug!(%error, ?outcome, "upstream call failed");
    let (status, text) = match outcome {
        Outcome::ConnectFailure => (StatusCode::SERVICE_UNAVAILABLE, "upstream connect error or disconnect/reset before headers. reset reason: connection failure"),
        Outcome::Reset | Outcome::RefusedStream => (StatusCode::SERVICE_UNAVAILABLE, "upstream connect error or disconnect/reset before headers. reset reason: connection termination"),
        Outcome::Timeout => (StatusCode::GATEWAY_TIMEOUT, "upstream request timeout"),
        Outcome::Overflow => (StatusCode::SERVICE_UNAVAILABLE, "upstream connect error or disconnect/reset before headers. reset reason: overflow"),
        Outcome::NoHealthyUpstream => (StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream"),
        Outcome::Response { .. } => (StatusCode::SERVICE_UNAVAILABLE, "upstream error"),
    };
    local_reply(status, text, outcome.response_flag())
}

impl Router {
    fn compiled(&self) -> Arc<Compiled> {
        let config = self.shared.source.snapshot();
        if let Some(c) = self.shared.compiled.load_full().filter(|c| Arc::ptr_eq(&c.config, &config)) {
            return c;
        }
        let compiled = Arc::new(self.compile(config));
        self.shared.compiled.store(Some(compiled.clone()));
        compiled
    }

    fn compile(&self, config: Arc<MeshConfig>) -> Compiled {
        let table = RouteTable::compile(&config, &self.shared.gateway, |route| self.route_stack(route, &config));
        let default = self.default_stack(&config);
        tracing::debug!(gateway = %self.shared.gateway, virtual_services = config.virtual_services.len(), "route table compiled");
        Compiled { config, table, default }
    }

    /// Budgets resolved per request from the registry (for the default stack, whose
    /// destinations are not known in advance).
    fn budgets(&self, config: &Arc<MeshConfig>) -> Budgets {
        let registry = self.shared.budgets.clone();
        let config = config.clone();
        Budgets::resolve(move |target| match target {
            Some(target) => budget_for(&registry, &config, &target.destination),
            None => no_target_budget(&registry),
        })
    }

    /// Budgets of a route's destinations, resolved once per config snapshot (no registry lookup
    /// per request); the registry keeps their counters across reloads.
    fn route_budgets(&self, destinations: &[WeightedDestination], config: &MeshConfig) -> Budgets {
        let registry = &self.shared.budgets;
        let list = destinations.iter().map(|d| (d.destination.clone(), budget_for(registry, config, &d.destination))).collect();
        Budgets::per_destination(list, no_target_budget(registry))
    }

    fn retry_layer(&self, policy: RetryPolicy, budgets: Budgets) -> RetryLayer {
        RetryLayer::with_budgets(policy, budgets)
            .with_random(self.shared.random.clone())
            .with_stats(self.shared.stats.clone())
            .with_max_replay_bytes(self.shared.max_replay_bytes)
    }

    fn default_stack(&self, config: &Arc<MeshConfig>) -> BoxStack {
        BoxCloneSyncService::new(self.retry_layer(RetryPolicy::default(), self.budgets(config)).layer(self.shared.cluster.clone()))
    }

    fn route_stack(&self, route: &HttpRoute, config: &Arc<MeshConfig>) -> RouteStack {
        let destinations = match &route.action {
            RouteAction::Forward(d) => d.clone(),
            RouteAction::Redirect(_) | RouteAction::DirectResponse(_) => return RouteStack::Local,
        };
        let budgets = self.route_budgets(&destinations, config);
        let split = match SplitLayer::new(destinations) {
            Ok(split) => split.with_random(self.shared.random.clone()),
            Err(e) => {
                tracing::warn!(route = route.name.as_deref().unwrap_or(""), error = %e, "route cannot forward");
                return RouteStack::Broken;
            }
        };
        let shared = &self.shared;
        let mut stack: BoxStack = BoxCloneSyncService::new(split.layer(self.retry_layer(route.retries.clone(), budgets).layer(shared.cluster.clone())));
        if route.timeout.is_some() {
            stack = BoxCloneSyncService::new(TimeoutLayer::new(route.timeout).with_stats(shared.stats.clone()).layer(stack));
        }
        if !route.mirrors.is_empty() {
            let mirror = MirrorLayer::new(route.mirrors.clone(), shared.cluster.clone())
                .with_permits(shared.mirror_permits.clone())
                .with_max_body_bytes(shared.max_replay_bytes)
                .with_timeout(shared.mirror_timeout)
                .with_random(shared.random.clone())
                .with_stats(shared.stats.clone());
            stack = BoxCloneSyncService::new(mirror.layer(stack));
        }
        if let Some(fault) = &route.fault {
            let fault = FaultLayer::new(fault.clone()).with_random(shared.random.clone()).with_stats(shared.stats.clone());
            stack = BoxCloneSyncService::new(fault.layer(stack));
        }
        if !route.headers.request.is_empty() || !route.headers.response.is_empty() {
            stack = BoxCloneSyncService::new(HeadersLayer::new(route.headers.clone()).layer(stack));
        }
        RouteStack::Forward(stack)
    }
}
