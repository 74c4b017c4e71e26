//! Response future of the client telemetry layer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;
use tracing::Instrument;
use tracing::instrument::Instrumented;

use super::Shared;
use crate::context::{Target, Upstream};
use mesh_telemetry::ResponseFlags;
use mesh_telemetry::labels::{PeerLabels, RequestLabels, flags_label};
use mesh_telemetry::metrics::RequestRecord;
use mesh_telemetry::trace_context::TraceContext;

/// What the future needs to record once the response head arrives.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) shared: Arc<Shared>,
    pub(crate) peers: Arc<PeerLabels>,
    pub(crate) start: tokio::time::Instant,
    pub(crate) request_bytes: u64,
    pub(crate) grpc: bool,
    pub(crate) ctx: TraceContext,
}

pin_project! {
    /// Response future of [`ClientTelemetry`](super::ClientTelemetry).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        pending: Option<Pending>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, span: tracing::Span, pending: Pending) -> Self {
        ResponseFuture {
            inner: inner.instrument(span),
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
        let mut this = self.project();
        let mut result = std::task::ready!(this.inner.as_mut().poll(cx));
        let Some(p) = this.pending.take() else {
            return Poll::Ready(result);
        };
        let duration = p.start.elapsed();
        let (code, flags, response_bytes, peers, grpc_status) = match &mut result {
            Ok(resp) => {
                let upstream = resp.extensions().get::<Upstream>();
                let endpoint = upstream.and_then(|u| u.labels.as_ref());
                let security = upstream.and_then(|u| u.security.as_ref());
                let peers = match (resp.extensions().get::<Target>(), endpoint) {
                    (Some(t), _) => p.shared.peers(
                        &t.destination.host,
                        t.destination.subset.as_deref(),
                        endpoint,
                        security,
                    ),
                    // The host's own stack (no VirtualService): the host the call named.
                    (None, Some(_)) => {
                        p.shared
                            .peers(&p.peers.service().service, None, endpoint, security)
                    }
                    (None, None) => p.peers,
                };
                let grpc_status = if p.grpc {
                    mesh_telemetry::grpc_status(resp.headers())
                } else {
                    None
                };
                let flags = flags_label(resp.extensions().get::<ResponseFlags>());
                let bytes = super::known_body_size(resp.headers(), resp.body());
                resp.extensions_mut().insert(p.ctx);
                (resp.status().as_u16(), flags, bytes, peers, grpc_status)
            }
            // No response at all: Envoy reports code 0.
            Err(_) => (0, std::borrow::Cow::Borrowed("-"), 0, p.peers, None),
        };
        this.inner
            .as_ref()
            .span()
            .record("http.response.status_code", code);
        p.shared.metrics.record_request(&RequestRecord {
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
        });
        Poll::Ready(result)
    }
}
