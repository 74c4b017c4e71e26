//! The router: route lookup per request and the per-route stacks, compiled once per config
//! snapshot.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::{Request, Response};
use mesh_core::normalize::normalize_uri;
use mesh_core::policy::{Destination, HttpRoute, MeshConfig, RetryPolicy, RouteAction};
use mesh_core::watch::SeenAt;
use tokio::sync::Semaphore;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

use super::{BoxStack, ConfigSource, SharedCluster};
use crate::BoxError;
use crate::body::{self, BoxBody, BoxResponseFuture};
use crate::context::Target;
use crate::cors::CorsLayer;
use crate::error::ClusterError;
use crate::fault::FaultLayer;
use crate::headers::{self, HeadersLayer};
use crate::mirror::MirrorLayer;
use crate::random::Random;
use crate::rescue::rescue;
use crate::retry::budget::{BudgetBatch, BudgetRegistry};
use crate::retry::{Budgets, RetryLayer};
use crate::route::{InvalidPath, NoRoute};
use crate::route::{Lookup, RequestView, RouteTable, rewrite};
use crate::split::SplitLayer;
use crate::stats::ClientStats;
use crate::timeout::TimeoutLayer;

// === impl Router ===

mod budgets;

/// Route lookup and the per-route stacks (the client without telemetry).
#[derive(Clone)]
pub(super) struct Router {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) source: ConfigSource,
    pub(super) cluster: SharedCluster,
    pub(super) gateway: String,
    pub(super) random: Random,
    pub(super) stats: Arc<ClientStats>,
    pub(super) mirror_permits: Arc<Semaphore>,
    pub(super) mirror_timeout: Duration,
    pub(super) max_replay_bytes: u64,
    pub(super) budgets: Arc<BudgetRegistry>,
    pub(super) compiled: ArcSwapOption<Compiled>,
    /// The table of the snapshot the source is about to put in force, compiled by `prepare`
    /// on the thread that swaps it (the config watcher's), not by the first request.
    pub(super) next: ArcSwapOption<Compiled>,
    /// The table in use when the last one was prepared, freed when the next one is, on the
    /// thread that prepares (a table of thousands of routes freed by the request that replaces
    /// it would stall that request's worker).
    pub(super) retired: ArcSwapOption<Compiled>,
    /// Registered (weakly) with the source; lives as long as the router.
    pub(super) _prepare: mesh_core::watch::PrepareHook,
}

impl Shared {
    /// `shared` with the hook that compiles each new snapshot's table before it is in force
    /// (when the source can tell; see [`ConfigSource::on_prepare`]).
    pub(super) fn with_prepare(
        shared: impl FnOnce(mesh_core::watch::PrepareHook) -> Self,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this: &std::sync::Weak<Self>| {
            let this = this.clone();
            let hook: mesh_core::watch::PrepareHook = Arc::new(move |config: &Arc<MeshConfig>| {
                if let Some(shared) = this.upgrade() {
                    // the table before the one in use is freed here, once the swap is done
                    if let Some(older) = shared.retired.swap(shared.compiled.load_full()) {
                        mesh_core::watch::free_after_swap(older);
                    }
                    let router = Router { shared };
                    let compiled = Arc::new(router.compile(Arc::clone(config)));
                    router.shared.next.store(Some(compiled));
                }
            });
            shared(hook)
        })
    }
}

pub(super) struct Compiled {
    pub(super) config: Arc<MeshConfig>,
    /// When `config` was last found in force (see [`ConfigSource::holds`]).
    seen: SeenAt,
    table: RouteTable<RouteStack>,
    default: StackFn,
}

/// A route's stack behind one shared call function. A call clones the concrete stack (reference
/// counts only) and boxes its future once; a `BoxCloneSyncService` would also allocate for
/// every clone, and the router needs one clone per call.
#[derive(Clone)]
struct StackFn(Arc<dyn Fn(Request<BoxBody>) -> BoxResponseFuture + Send + Sync>);

impl StackFn {
    fn new<S>(stack: S) -> Self
    where
        S: Service<Request<BoxBody>, Response = Response<BoxBody>, Error = BoxError>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        StackFn(Arc::new(move |req| Box::pin(stack.clone().oneshot(req))))
    }

    fn call(&self, request: Request<BoxBody>) -> BoxResponseFuture {
        (self.0)(request)
    }
}

/// The usual route stack, as one concrete type: route timeout, split, retry, cluster. Called
/// without a box: its future is part of the router's.
type Core = crate::timeout::Timeout<crate::split::Split<crate::retry::Retry<SharedCluster>>>;

/// The core stack's call (readiness driven per call: every layer of it is always ready).
type CoreCall = tower::util::Oneshot<Core, Request<BoxBody>>;

enum RouteStack {
    /// The core stack alone (no mirror, fault, header or CORS policy on the route).
    Core(Core),
    /// The core stack under the route's optional layers, boxed.
    Forward(StackFn),
    /// The route's `route[]` cannot be used (no destination, all weights 0).
    Broken,
    /// `redirect` or `directResponse`: answered here.
    Local,
}

impl Service<Request<BoxBody>> for Router {
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = RouteFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is per route: each call drives its own stack's readiness (oneshot).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BoxBody>) -> Self::Future {
        self.route(request)
    }
}

impl Router {
    /// Routes and sends `request` (the router keeps no per-call state: `&self` is enough). A
    /// gRPC caller gets every answer as gRPC ([`crate::grpc`]).
    pub(super) fn route(&self, request: Request<BoxBody>) -> RouteFuture {
        let grpc = mesh_core::grpc::is_grpc(request.headers());
        self.route_grpc(request, grpc)
    }

    /// [`Router::route`] for a request whose content type the caller has checked already
    /// (`grpc`: it is gRPC).
    pub(super) fn route_grpc(&self, request: Request<BoxBody>, grpc: bool) -> RouteFuture {
        let mut future = self.route_http(request);
        future.grpc = grpc;
        future
    }

    fn route_http(&self, request: Request<BoxBody>) -> RouteFuture {
        let compiled = self.compiled();
        let shared = &self.shared;
        let mut request = request;
        // VirtualService `uri` matches see the path as the callee's policies will: normalized at
        // the mesh's level (one scan of the path when it is already normal).
        let level = compiled.config.mesh.path_normalization;
        if let Err(reason) = normalize_uri(request.uri_mut(), level) {
            tracing::debug!(path = request.uri().path(), %reason, %level, "request path refused");
            return ready(rescue(&InvalidPath(reason)));
        }
        let view = RequestView::new(&request);
        let (stack, request) = match compiled.table.lookup_view(&view) {
            Lookup::NoVirtualService => {
                let destination = Destination {
                    host: view.host.clone().into_owned(),
                    subset: None,
                    port: Some(view.port),
                };
                let mut request = request;
                request.extensions_mut().insert(Target::new(destination));
                (compiled.default.clone(), request)
            }
            Lookup::NoRoute => {
                shared.stats.no_route.incr();
                tracing::debug!(host = %view.host, path = view.path, no_route = true, "no route matched");
                return ready(rescue(&NoRoute(())));
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
                        let mut response =
                            Response::new(d.body.clone().map_or_else(body::empty, body::full));
                        *response.status_mut() = d.status;
                        headers::apply(&route.headers.response, response.headers_mut());
                        return ready(response);
                    }
                    (RouteStack::Core(core), _) => {
                        let core = core.clone();
                        let matched = matched.cloned();
                        drop(view);
                        let mut request = request;
                        if let Some(rw) = &route.rewrite {
                            rewrite::apply(rw, matched.as_ref(), &mut request);
                        }
                        return RouteFuture {
                            state: RouteState::Core {
                                call: Rescued {
                                    inner: core.oneshot(request),
                                },
                            },
                            grpc: false,
                        };
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
                        return ready(rescue(&ClusterError::no_healthy_upstream()));
                    }
                }
            }
        };
        RouteFuture {
            state: RouteState::Stack {
                call: Rescued {
                    inner: stack.call(request),
                },
            },
            grpc: false,
        }
    }
}

pin_project_lite::pin_project! {
    /// Response future of the router: an answer made here, or the route stack's call. Named,
    /// not boxed, and the core stack's future is held inline (no allocation of its own).
    pub(super) struct RouteFuture {
        #[pin]
        state: RouteState,
        // A gRPC caller: every answer is made a gRPC one ([`crate::grpc::grpc_answer`]).
        grpc: bool,
    }
}

pin_project_lite::pin_project! {
    #[project = RouteStateProj]
    enum RouteState {
        Ready { response: Option<Response<BoxBody>> },
        Core { #[pin] call: Rescued<CoreCall> },
        Stack { #[pin] call: Rescued<BoxResponseFuture> },
    }
}

impl Future for RouteFuture {
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.state.project() {
            RouteStateProj::Ready { response } => match response.take() {
                Some(response) => Ok(response),
                None => Err("router future polled after completion".into()),
            },
            RouteStateProj::Core { call } => std::task::ready!(call.poll(cx)),
            RouteStateProj::Stack { call } => std::task::ready!(call.poll(cx)),
        };
        Poll::Ready(match result {
            Ok(response) if *this.grpc => Ok(crate::grpc::grpc_answer(response)),
            other => other,
        })
    }
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
            Err(error) => Poll::Ready(Ok(rescue(error.as_ref()))),
        }
    }
}

fn ready(response: Response<BoxBody>) -> RouteFuture {
    RouteFuture {
        state: RouteState::Ready {
            response: Some(response),
        },
        grpc: false,
    }
}

impl Router {
    pub(super) fn compiled(&self) -> Arc<Compiled> {
        // The usual call: the table in use is of the config in force, which `holds` tells
        // from the source's generation (the table holds its config alive), without taking a
        // snapshot.
        {
            let current = self.shared.compiled.load();
            if let Some(c) = current.as_ref()
                && self
                    .shared
                    .source
                    .holds(Arc::as_ptr(&c.config) as usize, &c.seen)
            {
                return Arc::clone(c);
            }
        }
        let config = self.shared.source.snapshot();
        if let Some(c) = self
            .shared
            .compiled
            .load_full()
            .filter(|c| Arc::ptr_eq(&c.config, &config))
        {
            return c;
        }
        if let Some(c) = self
            .shared
            .next
            .load_full()
            .filter(|c| Arc::ptr_eq(&c.config, &config))
        {
            self.shared.compiled.store(Some(Arc::clone(&c)));
            return c;
        }
        let compiled = Arc::new(self.compile(config));
        self.shared.compiled.store(Some(compiled.clone()));
        compiled
    }

    fn compile(&self, config: Arc<MeshConfig>) -> Compiled {
        // the table of the last snapshot: its stacks of unchanged routes are reused, when their
        // retry budgets' settings are unchanged too (nothing else of a stack depends on the config)
        let previous = self
            .shared
            .next
            .load_full()
            .or_else(|| self.shared.compiled.load_full());
        // the routes' budgets added to the registry in one copy of its map
        let mut budgets = self.shared.budgets.batch();
        let (table, reuse) = RouteTable::compile_reusing(
            &config,
            &self.shared.gateway,
            previous.as_deref().map(|p| &p.table),
            |route| self.route_stack(route, &config, &mut budgets),
            |route, _| {
                previous
                    .as_deref()
                    .is_some_and(|p| budgets::same_budgets(route, &p.config, &config))
            },
        );
        budgets.commit();
        let default = self.default_stack(&config);
        tracing::debug!(
            gateway = %self.shared.gateway,
            virtual_services = config.virtual_services.len(),
            routes_reused = reuse.reused,
            routes_compiled = reuse.compiled,
            "route table compiled"
        );
        Compiled {
            seen: SeenAt::new(),
            config,
            table,
            default,
        }
    }

    fn retry_layer(&self, policy: RetryPolicy, budgets: Budgets) -> RetryLayer {
        let layer = RetryLayer::with_budgets(policy, budgets)
            .with_random(self.shared.random.clone())
            .with_stats(self.shared.stats.clone())
            .with_max_replay_bytes(self.shared.max_replay_bytes);
        // The mesh's own clusters (the only ones with permits) end an attempt at its deadline.
        match self.shared.cluster.retry_permits() {
            Some(permits) => layer.with_retry_permits(permits).with_deadline_kept_below(),
            None => layer,
        }
    }

    fn default_stack(&self, config: &Arc<MeshConfig>) -> StackFn {
        // No route timeout, but a gRPC caller's `grpc-timeout` is honoured all the same.
        let timeout = TimeoutLayer::new(None).with_stats(self.shared.stats.clone());
        StackFn::new(
            timeout.layer(
                self.retry_layer(RetryPolicy::default(), self.budgets(config))
                    .layer(self.shared.cluster.clone()),
            ),
        )
    }

    fn route_stack(
        &self,
        route: &HttpRoute,
        config: &Arc<MeshConfig>,
        batch: &mut BudgetBatch<'_>,
    ) -> RouteStack {
        let destinations = match &route.action {
            RouteAction::Forward(d) => d.clone(),
            RouteAction::Redirect(_) | RouteAction::DirectResponse(_) => return RouteStack::Local,
        };
        let budgets = self.route_budgets(&destinations, config, batch);
        let split = match SplitLayer::new(destinations) {
            Ok(split) => split.with_random(self.shared.random.clone()),
            Err(e) => {
                tracing::warn!(route = route.name.as_deref().unwrap_or(""), error = %e, "route cannot forward");
                return RouteStack::Broken;
            }
        };
        let shared = &self.shared;
        // Timeout, split, retry and cluster in one concrete type, called without a box when the
        // route has no optional layer (one box per call through a shared function otherwise);
        // without a route timeout the layer only passes the call through.
        let timeout = TimeoutLayer::new(route.timeout).with_stats(shared.stats.clone());
        let retry = self.retry_layer(route.retries.clone(), budgets);
        let core = timeout.layer(split.layer(retry.layer(shared.cluster.clone())));
        let optional = !route.mirrors.is_empty()
            || route.fault.is_some()
            || !route.headers.request.is_empty()
            || !route.headers.response.is_empty()
            || route.cors.is_some();
        if !optional {
            return RouteStack::Core(core);
        }
        let mut stack: BoxStack = BoxCloneSyncService::new(core);
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
            let fault = FaultLayer::new(fault.clone())
                .with_random(shared.random.clone())
                .with_stats(shared.stats.clone());
            stack = BoxCloneSyncService::new(fault.layer(stack));
        }
        if !route.headers.request.is_empty() || !route.headers.response.is_empty() {
            stack = BoxCloneSyncService::new(HeadersLayer::new(route.headers.clone()).layer(stack));
        }
        if let Some(cors) = &route.cors {
            // outermost, as Envoy's CORS filter runs before the fault filter: a preflight is
            // answered before any other route behaviour applies
            let cors = CorsLayer::new(cors.clone()).with_stats(shared.stats.clone());
            stack = BoxCloneSyncService::new(cors.layer(stack));
        }
        RouteStack::Forward(StackFn::new(stack))
    }
}
