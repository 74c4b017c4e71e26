//! `grpc_response_status` from the trailers at the end of the body.
//!
//! A gRPC answer that carries a body has its status in the trailers, after the last message:
//! the metric layers see only the head. For such an answer a layer does not record at the head
//! but leaves a [`PendingGrpcStatus`] in the response extensions; whoever owns the concrete
//! body type (the mesh client's future, the inbound server's) takes it with [`watch`] and wraps
//! the body in [`GrpcStatusBody`], which records the request once the trailers arrive (with
//! their `grpc-status` and the body's size), or once the body ends or is dropped without them
//! (no status). A body type that can hold the [`GrpcStatusWatch`] itself (the mesh client's
//! answer body) is given that instead, and no wrapper is boxed around it. A response whose record is never taken records when it is dropped, as it would
//! have at the head. A layer that owns the body itself (the mesh client's telemetry, under
//! `MeshClient`) skips the extension: it makes the [`DeferredRecord`] and wraps the body at once;
//! so does `MeshServer`'s stack, whose own future asks its trace and metrics layers' futures for
//! the span and the record instead of reading them back from an extension.
//!
//! ```
//! use mesh_telemetry::grpc_status::{GrpcStatusBody, PendingGrpcStatus};
//! # fn doc(metrics: mesh_telemetry::MeshMetrics, record: mesh_telemetry::RequestRecord) {
//! let mut response = http::Response::new(String::from("a message"));
//! response.extensions_mut().insert(PendingGrpcStatus::new(metrics, record, None));
//! let response = match mesh_telemetry::grpc_status::watch(&mut response) {
//!     Some(pending) => response.map(|body| GrpcStatusBody::new(body, pending)),
//!     None => unreachable!(),
//! };
//! # drop(response); }
//! ```

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};

use crate::metrics::{MeshMetrics, RequestRecord};

/// A request record waiting for its gRPC status, or only a span to get it; recorded when
/// dropped.
#[derive(Debug)]
pub struct DeferredRecord {
    record: Option<(MeshMetrics, RequestRecord)>,
    span: Option<tracing::Span>,
}

impl DeferredRecord {
    /// `record`, to be recorded in `metrics` with the status the trailers bring, which `span`
    /// (the request's span, when given) gets as `rpc.grpc.status_code`. For the owner of the
    /// body, who wraps it in [`GrpcStatusBody`] at once (no extension on the way).
    pub fn new(metrics: MeshMetrics, record: RequestRecord, span: Option<tracing::Span>) -> Self {
        Self {
            record: Some((metrics, record)),
            span,
        }
    }

    /// Only `span`, to get `rpc.grpc.status_code` from the trailers: for a server that keeps no
    /// request metrics but traces.
    pub fn span_only(span: tracing::Span) -> Self {
        Self {
            record: None,
            span: Some(span),
        }
    }

    /// Records with `grpc_status` and `response_bytes` (when counted).
    fn finish(&mut self, grpc_status: Option<u32>, response_bytes: Option<u64>) {
        if let Some((metrics, mut record)) = self.record.take() {
            record.labels.grpc_status = grpc_status;
            if let Some(n) = response_bytes {
                record.response_bytes = n;
            }
            metrics.record_request(&record);
        }
        if let (Some(span), Some(code)) = (self.span.take(), grpc_status) {
            span.record("rpc.grpc.status_code", code);
        }
    }
}

impl Drop for DeferredRecord {
    fn drop(&mut self) {
        self.finish(None, None);
    }
}

/// Response extension: the record of a gRPC request whose status is still to come, or (left
/// by the trace layer for the metrics layer) only the server span that is to get the status.
///
/// One extension for both, filled in place ([`PendingGrpcStatus::record`]): a tonic answer has
/// no extensions, so each extension of its own would cost a map and a box. The record lives in
/// the extension itself (no shared cell, no lock). Extensions must be `Clone`, but a record is
/// made once: a clone carries nothing, and the original records when its body ends after
/// [`watch`] took it, or when it is dropped.
#[derive(Debug)]
pub struct PendingGrpcStatus {
    // The trace layer's part alone is a span-only record (`DeferredRecord::span_only`).
    deferred: Option<DeferredRecord>,
}

impl Clone for PendingGrpcStatus {
    fn clone(&self) -> Self {
        Self { deferred: None }
    }
}

impl From<DeferredRecord> for PendingGrpcStatus {
    fn from(deferred: DeferredRecord) -> Self {
        Self {
            deferred: Some(deferred),
        }
    }
}

impl PendingGrpcStatus {
    /// `record`, to be recorded in `metrics` with the status the trailers bring, which `span`
    /// (the request's span, when given) gets as `rpc.grpc.status_code`.
    pub fn new(metrics: MeshMetrics, record: RequestRecord, span: Option<tracing::Span>) -> Self {
        Self::from(DeferredRecord::new(metrics, record, span))
    }

    /// Only the server span that is to get the status (the trace layer's part): the metrics
    /// layer adds its record with [`PendingGrpcStatus::record`].
    pub fn span(span: tracing::Span) -> Self {
        Self::from(DeferredRecord::span_only(span))
    }

    /// Adds `record`, to be recorded in `metrics`, with the span this extension carries.
    pub fn record(&mut self, metrics: MeshMetrics, record: RequestRecord) {
        let span = self.deferred.take().and_then(|mut d| d.span.take());
        self.deferred = Some(DeferredRecord::new(metrics, record, span));
    }
}

/// Records OpenTelemetry's RPC attributes of a gRPC request on `span` (declared with
/// `rpc.system`, `rpc.service`, `rpc.method`): `grpc` and the two halves of
/// `/package.Service/Method`. Nothing on a disabled span (no subscriber takes request spans):
/// each `record` looks its field up by name, some 0.8k instructions per call and side for
/// nothing.
pub fn record_rpc(span: &tracing::Span, path: &str) {
    if span.is_disabled() {
        return;
    }
    span.record("rpc.system", "grpc");
    if let Some((service, method)) = mesh_core::grpc::service_and_method(path) {
        span.record("rpc.service", service);
        span.record("rpc.method", method);
    }
}

/// Takes the pending record (or, when no metrics layer added one, the span waiting for the
/// status) out of `response`, to wrap its body in [`GrpcStatusBody`].
pub fn watch<B>(response: &mut http::Response<B>) -> Option<DeferredRecord> {
    response
        .extensions_mut()
        .remove::<PendingGrpcStatus>()?
        .deferred
}

/// What records a gRPC call when its answer's trailers (or its end) come: the pending record
/// and the bytes counted so far. [`GrpcStatusBody`] wraps a body with one; a body type of its
/// own can hold one and show it each frame instead.
///
/// ```
/// use mesh_telemetry::grpc_status::{DeferredRecord, GrpcStatusWatch};
/// # fn doc(metrics: mesh_telemetry::MeshMetrics, record: mesh_telemetry::RequestRecord) {
/// let mut watch = GrpcStatusWatch::new(DeferredRecord::new(metrics, record, None));
/// let mut trailers = http::HeaderMap::new();
/// trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
/// // As a body's frames come: the record is made at the trailers, with status 0.
/// let frame = http_body::Frame::<bytes::Bytes>::trailers(trailers);
/// watch.observe(&Some(Ok::<_, std::convert::Infallible>(frame)));
/// # }
/// ```
#[derive(Debug)]
pub struct GrpcStatusWatch {
    pending: DeferredRecord,
    bytes: u64,
}

impl GrpcStatusWatch {
    /// A watch recording `pending` at the end of the body it is shown.
    pub fn new(pending: DeferredRecord) -> Self {
        Self { pending, bytes: 0 }
    }

    /// Takes in a frame the body yields (or its end, or its failure).
    pub fn observe<D: Buf, E>(&mut self, frame: &Option<Result<Frame<D>, E>>) {
        match frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    self.bytes += data.remaining() as u64;
                } else if let Some(trailers) = f.trailers_ref() {
                    let status = mesh_core::grpc::status_of(trailers);
                    self.pending.finish(status, Some(self.bytes));
                }
            }
            None | Some(Err(_)) => self.pending.finish(None, Some(self.bytes)),
        }
    }
}

/// A response body that records its request when its trailers (or its end) arrive.
#[derive(Debug)]
pub struct GrpcStatusBody<B> {
    inner: B,
    watch: GrpcStatusWatch,
}

impl<B> GrpcStatusBody<B> {
    /// `inner`, recording `pending` at its end.
    pub fn new(inner: B, pending: DeferredRecord) -> Self {
        Self::with_watch(inner, GrpcStatusWatch::new(pending))
    }

    /// `inner`, shown to `watch` frame by frame.
    pub fn with_watch(inner: B, watch: GrpcStatusWatch) -> Self {
        Self { inner, watch }
    }
}

impl<B: Body + Unpin> Body for GrpcStatusBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = &mut *self;
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        this.watch.observe(&frame);
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
