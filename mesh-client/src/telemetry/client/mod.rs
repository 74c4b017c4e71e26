//! The outbound telemetry layer: Istio's metrics with `reporter="source"`, a client span, and
//! trace context, request id and peer metadata injected into every call.
//!
//! Put it at the top of the client stack, so that one logical call (retries and all) is one
//! series sample and one client span, as Envoy reports it.
//!
//! What it reads: the [`Target`] extension of the response (the split layer's choice, copied to
//! the response by the stack) or else of the request, else the request URI's host, for
//! `destination_service`, `destination_service_name` and, from the subset name,
//! `destination_version`; the [`ResponseFlags`](mesh_telemetry::ResponseFlags) response extension for `response_flags`.
//! What it writes: `traceparent` (+ `tracestate`, + `x-b3-*` when the trace came in B3),
//! `x-request-id` when the request carries a [`RequestId`] extension but no header,
//! `x-mesh-peer-metadata`, and the client span's [`TraceContext`] on the response (in its
//! [`Upstream`](crate::context::Upstream) extension when it has one, else an extension of its own:
//! read it with [`client_span`](crate::context::client_span)).
//!
//! ```
//! use mesh_client::telemetry::{ClientTelemetryConfig, ClientTelemetryLayer};
//! use mesh_telemetry::{MeshMetrics, WorkloadLabels};
//! use tower::{ServiceBuilder, service_fn};
//!
//! let metrics = MeshMetrics::new();
//! let config = ClientTelemetryConfig::new(WorkloadLabels::unknown());
//! let svc = ServiceBuilder::new()
//!     .layer(ClientTelemetryLayer::new(metrics.clone(), config))
//!     .service(service_fn(|_req: http::Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//!     }));
//! # drop(svc);
//! ```

mod future;

use std::sync::Arc;

use arc_swap::ArcSwap;
use std::task::{Context, Poll};

use http::header::HeaderValue;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

pub use self::future::ResponseFuture;
use crate::context::{ConnectionSecurity, Target};
use crate::hostmap::HostMap;
use mesh_core::policy::{Destination, Labels};
use mesh_telemetry::labels::{
    PeerLabels, Reporter, ServiceLabels, UNKNOWN, WorkloadLabels, workload_name,
};
use mesh_telemetry::metrics::MeshMetrics;
use mesh_telemetry::request_id::{RequestId, X_REQUEST_ID};
use mesh_telemetry::trace_context::TraceContext;
use mesh_telemetry::{current, is_grpc, known_body_size, peer, sample};

/// Distinct (host, subset) destinations whose labels are interned.
const MAX_DESTINATIONS: usize = 1024;

/// Settings of the client telemetry layer.
#[derive(Clone, Debug)]
pub struct ClientTelemetryConfig {
    /// This workload (the `source_*` labels).
    pub workload: WorkloadLabels,
    /// Sampling ratio for traces that start at this call (no parent): 0.0 to 1.0. Calls with a
    /// parent follow the parent's decision. Headers are propagated either way.
    pub sample_ratio: f64,
    /// Send `x-mesh-peer-metadata` so the callee can fill its `source_*` labels.
    pub send_peer_metadata: bool,
}

impl ClientTelemetryConfig {
    /// Defaults for `workload`: Istio's 1% sampling, peer metadata on.
    pub fn new(workload: WorkloadLabels) -> Self {
        ClientTelemetryConfig {
            workload,
            sample_ratio: mesh_telemetry::DEFAULT_SAMPLE_RATIO,
            send_peer_metadata: true,
        }
    }
}

/// One interned destination of a host: its subset, the labels of the endpoint that answered
/// (`None` before one did), and the labels of calls to it.
type DestinationEntry = (
    Option<Box<str>>,
    Option<Arc<Labels>>,
    Option<Arc<ConnectionSecurity>>,
    Arc<PeerLabels>,
);

/// Interned labels per destination host, then per subset and answering endpoint's labels.
type DestinationCache = HostMap<Vec<DestinationEntry>>;

/// Whether `entry` is the destination of `subset` answered by an endpoint with `endpoint`
/// labels (the same `Arc` nearly always: one pointer check).
fn is_entry(
    entry: &DestinationEntry,
    subset: Option<&str>,
    endpoint: Option<&Arc<Labels>>,
    security: Option<&Arc<ConnectionSecurity>>,
) -> bool {
    // The subset first: a split's destinations differ there, and comparing two label maps
    // that are not the same `Arc` costs far more.
    if entry.0.as_deref() != subset {
        return false;
    }
    let same_labels = match (&entry.1, endpoint) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
        _ => false,
    };
    let same_security = match (&entry.2, security) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
        _ => false,
    };
    same_labels && same_security
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) metrics: MeshMetrics,
    workload: WorkloadLabels,
    peer_header: Option<HeaderValue>,
    pub(crate) sample_ratio: f64,
    /// Read lock-free per request; copied on the (rare) insert of a new destination.
    destinations: ArcSwap<DestinationCache>,
}

impl Shared {
    /// Interned labels for a call to `host` (subset `subset`), answered by an endpoint with
    /// `endpoint` labels when one did: the `destination_*` workload labels are that endpoint's,
    /// as Envoy fills them from the upstream host's metadata; over mutual TLS (`security`)
    /// the principals are the handshake's and `connection_security_policy` is `mutual_tls`.
    /// Lock-free once interned.
    pub(crate) fn peers(
        &self,
        host: &str,
        subset: Option<&str>,
        endpoint: Option<&Arc<Labels>>,
        security: Option<&Arc<ConnectionSecurity>>,
    ) -> Arc<PeerLabels> {
        if let Some(found) = self
            .destinations
            .load()
            .get(host)
            .and_then(|v| v.iter().find(|e| is_entry(e, subset, endpoint, security)))
        {
            return found.3.clone();
        }
        let peers = self.destination_labels(host, subset, endpoint, security);
        self.destinations.rcu(|map| {
            let mut map = DestinationCache::clone(map);
            let entries: usize = map.values().map(Vec::len).sum();
            if entries < MAX_DESTINATIONS {
                let list = map.get_or_insert_with(host, Vec::new);
                if !list.iter().any(|e| is_entry(e, subset, endpoint, security)) {
                    list.push((
                        subset.map(Box::from),
                        endpoint.cloned(),
                        security.cloned(),
                        peers.clone(),
                    ));
                }
            }
            map
        });
        peers
    }

    /// Builds the labels of a call to `host`. A short host names a service of the caller's own
    /// namespace (as a short name resolves in Kubernetes and Istio), so that is the service's
    /// and the destination workload's namespace when the host does not say.
    fn destination_labels(
        &self,
        host: &str,
        subset: Option<&str>,
        endpoint: Option<&Arc<Labels>>,
        security: Option<&Arc<ConnectionSecurity>>,
    ) -> Arc<PeerLabels> {
        let mut service = ServiceLabels::from_host(host);
        if &*service.namespace == UNKNOWN && &*self.workload.namespace != UNKNOWN {
            service.namespace = self.workload.namespace.clone();
        }
        let dest = match endpoint {
            Some(labels) => {
                let name = workload_name(labels, UNKNOWN);
                let mut dest = WorkloadLabels::from_labels(&name, Some(&service.namespace), labels);
                if &*dest.version == UNKNOWN
                    && let Some(subset) = subset
                {
                    dest.version = Arc::from(subset);
                }
                dest
            }
            None => {
                let mut dest = WorkloadLabels::unknown();
                dest.namespace = service.namespace.clone();
                dest.canonical_service = service.name.clone();
                if let Some(subset) = subset {
                    dest.version = Arc::from(subset);
                    dest.canonical_revision = Arc::from(subset);
                }
                dest
            }
        };
        let mut dest = dest;
        let mut source = self.workload.clone();
        let mutual = security.filter(|s| s.is_mutual());
        if let Some(s) = mutual {
            if let Some(peer) = &s.peer {
                dest.principal = Arc::clone(peer);
            }
            if let Some(local) = &s.local {
                source.principal = Arc::clone(local);
            }
        }
        PeerLabels::with_security(Reporter::Source, source, dest, service, mutual.is_some())
    }
}

/// Layer adding outbound metrics and trace propagation; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ClientTelemetryLayer {
    shared: Arc<Shared>,
}

impl ClientTelemetryLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: MeshMetrics, config: ClientTelemetryConfig) -> Self {
        let peer_header = if config.send_peer_metadata {
            peer::encode(&config.workload)
        } else {
            None
        };
        ClientTelemetryLayer {
            shared: Arc::new(Shared {
                metrics,
                workload: config.workload,
                peer_header,
                sample_ratio: config.sample_ratio,
                destinations: ArcSwap::default(),
            }),
        }
    }
}

impl<S> Layer<S> for ClientTelemetryLayer {
    type Service = ClientTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientTelemetry {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Service of [`ClientTelemetryLayer`].
#[derive(Clone, Debug)]
pub struct ClientTelemetry<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> ClientTelemetry<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, RB> Service<Request<B>> for ClientTelemetry<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    B: http_body::Body,
    RB: http_body::Body,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.call_using(req, |inner, req, _grpc| inner.call(req))
    }
}

impl<S> ClientTelemetry<S> {
    /// [`Service::call`], with the inner call made by `send`, which is told whether the request
    /// is gRPC (checked once here, so the service below need not check the header again).
    pub(crate) fn call_using<B, RB>(
        &mut self,
        mut req: Request<B>,
        send: impl FnOnce(&mut S, Request<B>, bool) -> S::Future,
    ) -> ResponseFuture<S::Future>
    where
        S: Service<Request<B>, Response = Response<RB>>,
        B: http_body::Body,
        RB: http_body::Body,
    {
        let start = tokio::time::Instant::now();
        let called = Called::of(&req);
        let span = tracing::info_span!(
            target: mesh_telemetry::REQUEST_SPANS,
            "outbound",
            otel.kind = "client",
            http.request.method = %req.method(),
            server.address = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            rpc.system = tracing::field::Empty,
            rpc.service = tracing::field::Empty,
            rpc.method = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        // The host's labels are looked up for a span someone listens to; else only if the
        // answer does not name the destination it reached (see `Called`).
        if !mesh_telemetry::span::is_silent(&span) {
            let peers = called.resolve(&self.shared);
            span.record(
                "server.address",
                tracing::field::display(&*peers.service().service),
            );
        }
        let parent = current::parent_for(TraceContext::from_extensions(req.extensions()));
        let fallback = match &parent {
            Some(p) => p.child(),
            None => {
                let mut root = TraceContext::new_root(false);
                root.sampled = sample(root.trace_id, self.shared.sample_ratio);
                root
            }
        };
        let ctx = current::attach(&span, parent.as_ref(), fallback);
        ctx.inject(req.headers_mut());
        if let Some(id) = RequestId::from_extensions(req.extensions()) {
            let v = id.header_value().clone();
            // Looked up once: set only when the application did not set it.
            req.headers_mut().entry(&X_REQUEST_ID).or_insert(v);
        }
        if let Some(meta) = &self.shared.peer_header {
            req.headers_mut()
                .insert(peer::X_MESH_PEER_METADATA.clone(), meta.clone());
        }
        let request_bytes = known_body_size(req.headers(), req.body());
        let grpc = is_grpc(req.headers());
        if grpc {
            mesh_telemetry::grpc_status::record_rpc(&span, req.uri().path());
        }
        let fut = {
            // A span nobody listens to is not entered (nothing to tell anyone).
            let _enter = (!mesh_telemetry::span::is_silent(&span)).then(|| span.enter());
            send(&mut self.inner, req, grpc)
        };
        ResponseFuture::new(
            fut,
            span,
            future::Pending {
                shared: self.shared.clone(),
                called,
                start,
                request_bytes,
                grpc,
                ctx,
            },
        )
    }
}

/// The host a call named, as the telemetry future keeps it: resolved to its peer labels
/// ([`Shared::peers`]) only when they are needed, that is when the answer does not name the
/// destination it reached (the usual answer does: its split's `Target` or its cluster's
/// `Upstream`, whose labels are looked up then) or for a span someone listens to. Keeping the
/// name is a reference count (the target's destination, the URI's authority or the `Host`
/// value); the lookup it saves hashes the host and searches the cache of destinations.
#[derive(Debug)]
pub(crate) enum Called {
    /// A request already routed: its `Target`'s destination.
    Routed(Arc<Destination>),
    /// The URI's authority (its host is the name).
    Authority(http::uri::Authority),
    /// The `Host` header of a request whose URI has no authority.
    Host(HeaderValue),
    /// Neither: the `unknown` service.
    Unknown,
}

impl Called {
    fn of<B>(req: &Request<B>) -> Self {
        if let Some(t) = req.extensions().get::<Target>() {
            return Called::Routed(Arc::clone(&t.destination));
        }
        if let Some(authority) = req.uri().authority() {
            return Called::Authority(authority.clone());
        }
        match req.headers().get(http::header::HOST) {
            Some(host) => Called::Host(host.clone()),
            None => Called::Unknown,
        }
    }

    /// The named host's peer labels.
    pub(crate) fn resolve(&self, shared: &Shared) -> Arc<PeerLabels> {
        let host = match self {
            Called::Routed(d) => return shared.peers(&d.host, d.subset.as_deref(), None, None),
            Called::Authority(authority) => authority.host(),
            Called::Host(host) => host.to_str().unwrap_or(UNKNOWN),
            Called::Unknown => UNKNOWN,
        };
        shared.peers(host, None, None, None)
    }
}

#[cfg(test)]
mod tests;
