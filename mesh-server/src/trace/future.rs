//! Response future of the server trace layer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use mesh_telemetry::TraceContext;
use mesh_telemetry::grpc_status::PendingGrpcStatus;
use mesh_telemetry::span::{InSpan, record};
use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;

pin_project! {
    /// Response future of [`Trace`](super::Trace): runs the inner future inside the server span
    /// with the trace context as the task's current context, and records the status on the span.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: InSpan<TaskLocalFuture<TraceContext, F>>,
        // The request was gRPC (its content type, checked once in `call`).
        grpc: bool,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(
        inner: TaskLocalFuture<TraceContext, F>,
        span: tracing::Span,
        grpc: bool,
    ) -> Self {
        ResponseFuture {
            inner: InSpan::new(inner, span),
            grpc,
        }
    }
}

impl<F, RB, E> ResponseFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    /// The answer; the server span of a gRPC answer whose status comes in its trailers (to
    /// get `rpc.grpc.status_code` at the body's end) goes to `waiting` instead of an
    /// extension: for the metrics layer under [`MeshServer`](crate::server::MeshServer), whose
    /// future hands both to the owner of the body. The head's `grpc-status` (`Some(None)`:
    /// none), when it was read, goes to `head_status`: the metrics layer does not look it up
    /// again. Out-parameters, written for a gRPC answer only, so that every other answer moves
    /// nothing more.
    #[inline]
    pub(crate) fn poll_deferred(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        waiting: &mut Option<tracing::Span>,
        head_status: &mut Option<Option<u32>>,
    ) -> Poll<Result<Response<RB>, E>> {
        let mut this = self.project();
        let result = std::task::ready!(this.inner.as_mut().poll(cx));
        let span = this.inner.as_ref().get_ref().span();
        match &result {
            Ok(resp) => {
                let status = resp.status().as_u16();
                record(span, "http.response.status_code", status);
                if status >= 500 {
                    record(span, "otel.status_code", "ERROR");
                }
                // A gRPC call's answer (a gRPC caller always gets one: `crate::grpc`).
                if *this.grpc && mesh_core::grpc::is_grpc(resp.headers()) {
                    let status = mesh_core::grpc::status_of(resp.headers());
                    *head_status = Some(status);
                    match status {
                        Some(code) => {
                            record(span, "rpc.grpc.status_code", code);
                        }
                        // The status comes in the trailers.
                        None => *waiting = Some(span.clone()),
                    }
                }
            }
            Err(_) => {
                record(span, "otel.status_code", "ERROR");
            }
        }
        Poll::Ready(result)
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = Result<Response<RB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut waiting = None;
        let mut result = std::task::ready!(self.poll_deferred(cx, &mut waiting, &mut None));
        // The metrics layer above adds its record to this extension, recorded when the
        // trailers come (see mesh_telemetry::grpc_status).
        if let (Ok(resp), Some(span)) = (&mut result, waiting) {
            resp.extensions_mut().insert(PendingGrpcStatus::span(span));
        }
        Poll::Ready(result)
    }
}
