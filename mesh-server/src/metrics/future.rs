//! Response future of the server metrics layer.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Response;
use mesh_telemetry::ResponseFlags;
use mesh_telemetry::grpc_status::PendingGrpcStatus;
use mesh_telemetry::known_body_size;
use mesh_telemetry::labels::{PeerLabels, RequestLabels, flags_label};
use mesh_telemetry::metrics::RequestRecord;
use pin_project_lite::pin_project;

use super::Shared;

#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) shared: Arc<Shared>,
    pub(crate) peers: Arc<PeerLabels>,
    pub(crate) start: tokio::time::Instant,
    pub(crate) request_bytes: u64,
    pub(crate) grpc: bool,
}

pin_project! {
    /// Response future of [`ServerMetrics`](super::ServerMetrics).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, pending: Pending) -> Self {
        ResponseFuture {
            inner,
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
        let this = self.project();
        let mut result = std::task::ready!(this.inner.poll(cx));
        if let Some(p) = this.pending.take() {
            let (code, flags, bytes, grpc_status) = match &result {
                Ok(resp) => (
                    resp.status().as_u16(),
                    flags_label(resp.extensions().get::<ResponseFlags>()),
                    known_body_size(resp.headers(), resp.body()),
                    if p.grpc {
                        mesh_telemetry::grpc_status(resp.headers())
                    } else {
                        None
                    },
                ),
                // The connection is dropped without an answer: Envoy reports code 0.
                Err(_) => (0, Cow::Borrowed("-"), 0, None),
            };
            let record = RequestRecord {
                labels: RequestLabels {
                    peers: p.peers,
                    protocol: if p.grpc { "grpc" } else { "http" },
                    response_code: code,
                    response_flags: flags,
                    grpc_status,
                },
                duration: p.start.elapsed(),
                request_bytes: p.request_bytes,
                response_bytes: bytes,
            };
            match &mut result {
                // A gRPC answer with a body has its status in the trailers: recorded at the
                // body's end, by whoever owns the body (see mesh_telemetry::grpc_status).
                // The trace layer's extension (the span) is filled in place: no second box.
                Ok(resp) if p.grpc && grpc_status.is_none() && !resp.body().is_end_stream() => {
                    let metrics = p.shared.metrics.clone();
                    match resp.extensions_mut().get_mut::<PendingGrpcStatus>() {
                        Some(pending) => pending.record(metrics, record),
                        None => {
                            let pending = PendingGrpcStatus::new(metrics, record, None);
                            resp.extensions_mut().insert(pending);
                        }
                    }
                }
                _ => p.shared.metrics.record_request(&record),
            }
        }
        Poll::Ready(result)
    }
}
