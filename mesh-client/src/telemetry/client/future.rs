//! Response future of the client telemetry layer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Response;
use mesh_telemetry::span::{InSpan, record};
use pin_project_lite::pin_project;

use super::{Called, Shared};
use crate::context::{Target, Upstream};
use mesh_telemetry::ResponseFlags;
use mesh_telemetry::grpc_status::{DeferredRecord, PendingGrpcStatus};
use mesh_telemetry::labels::{RequestLabels, flags_label};
use mesh_telemetry::metrics::RequestRecord;
use mesh_telemetry::trace_context::TraceContext;

/// What the future needs to record once the response head arrives.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) shared: Arc<Shared>,
    pub(crate) called: Called,
    pub(crate) start: tokio::time::Instant,
    pub(crate) request_bytes: u64,
    pub(crate) grpc: bool,
    pub(crate) ctx: TraceContext,
}

pin_project! {
    /// Response future of [`ClientTelemetry`](super::ClientTelemetry).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: InSpan<F>,
        pending: Option<Pending>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, span: tracing::Span, pending: Pending) -> Self {
        ResponseFuture {
            inner: InSpan::new(inner, span),
            pending: Some(pending),
        }
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
    RB: http_body::Body,
{
    type Output = Result<Response<RB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (mut result, deferred) = std::task::ready!(self.poll_deferred(cx));
        // Whoever owns the body's type takes the record from the extension
        // (mesh_telemetry::grpc_status::watch).
        if let (Ok(resp), Some(deferred)) = (&mut result, deferred) {
            resp.extensions_mut()
                .insert(PendingGrpcStatus::from(deferred));
        }
        Poll::Ready(result)
    }
}

/// An answer, and the record its body's end is to make (a gRPC answer whose status comes in
/// its trailers).
pub(crate) type Deferred<RB, E> = (Result<Response<RB>, E>, Option<DeferredRecord>);

impl<F, RB, E> ResponseFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
    RB: http_body::Body,
{
    /// The answer, and the record of a gRPC answer whose status comes in its trailers (to be
    /// recorded at the body's end: see mesh_telemetry::grpc_status), given to the caller
    /// instead of left in an extension. For a caller that owns the body's type and wraps it.
    pub(crate) fn poll_deferred(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Deferred<RB, E>> {
        let mut this = self.project();
        let mut result = std::task::ready!(this.inner.as_mut().poll(cx));
        let Some(p) = this.pending.take() else {
            return Poll::Ready((result, None));
        };
        let duration = p.start.elapsed();
        let (code, flags, response_bytes, peers, grpc_status, deferred) = match &mut result {
            Ok(resp) => {
                let upstream = resp.extensions().get::<Upstream>();
                let endpoint = upstream.and_then(|u| u.labels.as_ref());
                let security = upstream.and_then(|u| u.security.as_ref());
                // The split's target on an answer made on the way; the cluster's on one from
                // an endpoint.
                let destination = resp
                    .extensions()
                    .get::<Target>()
                    .map(|t| &t.destination)
                    .or_else(|| upstream.and_then(|u| u.destination.as_ref()));
                let peers = match (destination, endpoint) {
                    (Some(d), _) => {
                        p.shared
                            .peers(&d.host, d.subset.as_deref(), endpoint, security)
                    }
                    // The host's own stack (no VirtualService): the host the call named.
                    (None, Some(_)) => {
                        let called = p.called.resolve(&p.shared);
                        p.shared
                            .peers(&called.service().service, None, endpoint, security)
                    }
                    (None, None) => p.called.resolve(&p.shared),
                };
                let grpc_status = if p.grpc {
                    mesh_telemetry::grpc_status(resp.headers())
                } else {
                    None
                };
                let flags = flags_label(resp.extensions().get::<ResponseFlags>());
                let bytes = super::known_body_size(resp.headers(), resp.body());
                // On the answer's `Upstream` when it has one: no insert into the map.
                match resp.extensions_mut().get_mut::<Upstream>() {
                    Some(up) => up.client_span = Some(p.ctx),
                    None => {
                        resp.extensions_mut().insert(p.ctx);
                    }
                }
                // A gRPC answer with a body has its status in the trailers: recorded at the
                // body's end (see mesh_telemetry::grpc_status).
                let deferred = p.grpc && grpc_status.is_none() && !resp.body().is_end_stream();
                (
                    resp.status().as_u16(),
                    flags,
                    bytes,
                    peers,
                    grpc_status,
                    deferred,
                )
            }
            // No response at all: Envoy reports code 0.
            Err(_) => {
                let peers = p.called.resolve(&p.shared);
                (0, std::borrow::Cow::Borrowed("-"), 0, peers, None, false)
            }
        };
        let span = this.inner.as_ref().span().clone();
        record(&span, "http.response.status_code", code);
        if let Some(g) = grpc_status {
            record(&span, "rpc.grpc.status_code", g);
        }
        let record = RequestRecord {
            labels: RequestLabels {
                peers,
                protocol: if p.grpc { "grpc" } else { "http" },
                response_code: code,
                response_flags: flags,
                grpc_status,
            },
            duration,
            request_bytes: p.request_bytes,
            response_bytes,
        };
        if deferred && result.is_ok() {
            let deferred = DeferredRecord::new(p.shared.metrics.clone(), record, Some(span));
            return Poll::Ready((result, Some(deferred)));
        }
        p.shared.metrics.record_request(&record);
        Poll::Ready((result, None))
    }
}
