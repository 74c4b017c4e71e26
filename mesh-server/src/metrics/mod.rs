//! Inbound metrics: Istio's standard request metrics with `reporter="destination"`.
//!
//! The `destination_*` labels describe this workload (built once from its name, namespace and
//! labels); the `source_*` labels come from the caller's `x-mesh-peer-metadata` header (sent by
//! the client telemetry layer, interned per distinct value) and are `unknown` without it, as
//! Istio reports callers outside the mesh. `response_flags` come from a
//! [`ResponseFlags`](mesh_telemetry::ResponseFlags) response extension set by inner layers
//! (for instance `RL` for a rate-limited request).
//!
//! Recorded when the response head is ready: the duration covers the inner service up to its
//! response head, and body sizes are those known up front (exact size hint or `content-length`;
//! a streamed body of unknown length counts 0).
//!
//! ```
//! use mesh_telemetry::{MeshMetrics, ServiceLabels, WorkloadLabels};
//! use mesh_server::metrics::{ServerMetricsConfig, ServerMetricsLayer};
//! use tower::{ServiceBuilder, service_fn};
//!
//! let metrics = MeshMetrics::new();
//! let config = ServerMetricsConfig {
//!     workload: WorkloadLabels::unknown(),
//!     service: ServiceLabels::from_host("service2"),
//! };
//! let svc = ServiceBuilder::new()
//!     .layer(ServerMetricsLayer::new(metrics.clone(), config))
//!     .service(service_fn(|_req: http::Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//!     }));
//! # drop(svc);
//! ```

mod future;

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use mesh_telemetry::labels::{PeerLabels, Reporter, ServiceLabels, WorkloadLabels};
use mesh_telemetry::metrics::MeshMetrics;
use mesh_telemetry::peer::{self, PeerCache};
use mesh_telemetry::{is_grpc, known_body_size};

use crate::context::{LocalIdentity, PeerIdentity};
use tower_layer::Layer;
use tower_service::Service;

pub use self::future::ResponseFuture;

/// Settings of the server metrics layer: who this workload is.
#[derive(Clone, Debug)]
pub struct ServerMetricsConfig {
    /// This workload (the `destination_*` workload labels).
    pub workload: WorkloadLabels,
    /// The service it serves (`destination_service*`).
    pub service: ServiceLabels,
}

impl ServerMetricsConfig {
    /// A workload named `name` with `labels`, serving the service named by its `app` label (else
    /// `name`), in `namespace` (also the service's namespace when its host does not name one).
    pub fn for_workload(
        name: &str,
        namespace: Option<&str>,
        labels: &mesh_core::policy::Labels,
    ) -> Self {
        let workload = WorkloadLabels::from_labels(name, namespace, labels);
        let host = labels.get("app").map(String::as_str).unwrap_or(name);
        let mut service = ServiceLabels::from_host(host);
        if &*service.namespace == mesh_telemetry::labels::UNKNOWN {
            service.namespace = workload.namespace.clone();
        }
        ServerMetricsConfig { workload, service }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) metrics: MeshMetrics,
    workload: WorkloadLabels,
    service: ServiceLabels,
    unknown_source: Arc<PeerLabels>,
    sources: PeerCache<Arc<PeerLabels>>,
    // Mutual TLS callers, keyed by our identity, theirs and their metadata.
    mtls_sources: PeerCache<Arc<PeerLabels>>,
}

impl Shared {
    /// The labels of `req`'s caller: over mutual TLS, with both principals as `spiffe://` URIs
    /// and `connection_security_policy="mutual_tls"`.
    fn peers_of<B>(&self, req: &Request<B>) -> Arc<PeerLabels> {
        let Some(peer) = req.extensions().get::<PeerIdentity>() else {
            return self.peers(req.headers());
        };
        let local = req
            .extensions()
            .get::<LocalIdentity>()
            .map_or(mesh_telemetry::labels::UNKNOWN, |l| &*l.0);
        let meta = req.headers().get(&peer::X_MESH_PEER_METADATA);
        let make = || {
            let mut source = meta
                .and_then(peer::decode)
                .unwrap_or_else(WorkloadLabels::unknown);
            source.principal = Arc::from(format!("spiffe://{}", peer.principal()));
            let mut destination = self.workload.clone();
            destination.principal = Arc::from(local);
            PeerLabels::with_security(
                Reporter::Destination,
                source,
                destination,
                self.service.clone(),
                true,
            )
        };
        let meta_text = meta.and_then(|m| m.to_str().ok()).unwrap_or_default();
        let key = format!("{local} {} {meta_text}", peer.principal());
        match http::HeaderValue::from_str(&key) {
            Ok(key) => self.mtls_sources.get_or_insert(&key, make),
            Err(_) => make(),
        }
    }

    fn peers(&self, headers: &http::HeaderMap) -> Arc<PeerLabels> {
        let Some(meta) = headers.get(&peer::X_MESH_PEER_METADATA) else {
            return self.unknown_source.clone();
        };
        self.sources
            .get_or_insert(meta, || match peer::decode(meta) {
                Some(source) => PeerLabels::new(
                    Reporter::Destination,
                    source,
                    self.workload.clone(),
                    self.service.clone(),
                ),
                None => self.unknown_source.clone(),
            })
    }
}

/// Layer recording inbound Istio metrics; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ServerMetricsLayer {
    shared: Arc<Shared>,
}

impl ServerMetricsLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: MeshMetrics, config: ServerMetricsConfig) -> Self {
        let unknown_source = PeerLabels::new(
            Reporter::Destination,
            WorkloadLabels::unknown(),
            config.workload.clone(),
            config.service.clone(),
        );
        ServerMetricsLayer {
            shared: Arc::new(Shared {
                metrics,
                workload: config.workload,
                service: config.service,
                unknown_source,
                sources: PeerCache::new(),
                mtls_sources: PeerCache::new(),
            }),
        }
    }
}

impl<S> Layer<S> for ServerMetricsLayer {
    type Service = ServerMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerMetrics {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Service of [`ServerMetricsLayer`].
#[derive(Clone, Debug)]
pub struct ServerMetrics<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> ServerMetrics<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, RB> Service<Request<B>> for ServerMetrics<S>
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
        let pending = future::Pending {
            shared: self.shared.clone(),
            peers: self.shared.peers_of(&req),
            start: tokio::time::Instant::now(),
            request_bytes: known_body_size(req.headers(), req.body()),
            grpc: is_grpc(req.headers()),
        };
        ResponseFuture::new(self.inner.call(req), pending)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
