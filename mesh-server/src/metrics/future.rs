//! Response future of the server metrics layer.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Response;
use mesh_telemetry::ResponseFlags;
use mesh_telemetry::grpc_status::{DeferredRecord, PendingGrpcStatus};
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

impl Pending {
    /// The record of the request answered with `result`, whether it waits for a gRPC status
    /// in the trailers (a gRPC answer with a body: recorded at the body's end), and the layer's
    /// state to record it with. `head` is the head's `grpc-status` when a layer below read it
    /// already (`None`: it is looked up here).
    fn into_record<RB: http_body::Body, E>(
        self,
        result: &Result<Response<RB>, E>,
        head: Option<Option<u32>>,
    ) -> (RequestRecord, bool, Arc<Shared>) {
        let (code, flags, bytes, grpc_status, waits) = match result {
            Ok(resp) => {
                let grpc_status = match head {
                    _ if !self.grpc => None,
                    Some(read) => read,
                    None => mesh_telemetry::grpc_status(resp.headers()),
                };
                (
                    resp.status().as_u16(),
                    flags_label(resp.extensions().get::<ResponseFlags>()),
                    known_body_size(resp.headers(), resp.body()),
                    grpc_status,
                    self.grpc && grpc_status.is_none() && !resp.body().is_end_stream(),
                )
            }
            // The connection is dropped without an answer: Envoy reports code 0.
            Err(_) => (0, Cow::Borrowed("-"), 0, None, false),
        };
        let record = RequestRecord {
            labels: RequestLabels {
                peers: self.peers,
                protocol: if self.grpc { "grpc" } else { "http" },
                response_code: code,
                response_flags: flags,
                grpc_status,
            },
            duration: self.start.elapsed(),
            request_bytes: self.request_bytes,
            response_bytes: bytes,
        };
        (record, waits, self.shared)
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
            let (record, waits, shared) = p.into_record(&result, None);
            match &mut result {
                // A gRPC answer with a body has its status in the trailers: recorded at the
                // body's end, by whoever owns the body (see mesh_telemetry::grpc_status).
                // The trace layer's extension (the span) is filled in place: no second box.
                Ok(resp) if waits => {
                    let metrics = shared.metrics.clone();
                    match resp.extensions_mut().get_mut::<PendingGrpcStatus>() {
                        Some(pending) => pending.record(metrics, record),
                        None => {
                            let pending = PendingGrpcStatus::new(metrics, record, None);
                            resp.extensions_mut().insert(pending);
                        }
                    }
                }
                _ => shared.metrics.record_request(&record),
            }
        }
        Poll::Ready(result)
    }
}

impl<F, RB, E> ResponseFuture<crate::trace::ResponseFuture<F>>
where
    F: Future<Output = Result<Response<RB>, E>>,
    RB: http_body::Body,
{
    /// The answer; the record of a gRPC answer whose status comes in its trailers (with the
    /// trace layer's span, to get the status too) goes to `deferred` instead of an extension:
    /// for [`MeshServer`](crate::server::MeshServer)'s own future, which owns the body and
    /// wraps it (a tonic answer has no extensions, so one would cost a map, its table and a
    /// box). Written for such an answer only: every other answer moves nothing more.
    #[inline]
    pub(crate) fn poll_deferred(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        deferred: &mut Option<DeferredRecord>,
    ) -> Poll<Result<Response<RB>, E>> {
        let this = self.project();
        let (mut span, mut head) = (None, None);
        let result = std::task::ready!(this.inner.poll_deferred(cx, &mut span, &mut head));
        if let Some(p) = this.pending.take() {
            let (record, waits, shared) = p.into_record(&result, head);
            if waits {
                *deferred = Some(DeferredRecord::new(shared.metrics.clone(), record, span));
            } else {
                shared.metrics.record_request(&record);
            }
        }
        Poll::Ready(result)
    }
}
