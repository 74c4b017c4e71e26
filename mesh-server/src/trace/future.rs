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

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = Result<Response<RB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut result = std::task::ready!(this.inner.as_mut().poll(cx));
        let span = this.inner.as_ref().get_ref().span();
        match &mut result {
            Ok(resp) => {
                let status = resp.status().as_u16();
                record(span, "http.response.status_code", status);
                if status >= 500 {
                    record(span, "otel.status_code", "ERROR");
                }
                // A gRPC call's answer (a gRPC caller always gets one: `crate::grpc`).
                if *this.grpc && mesh_core::grpc::is_grpc(resp.headers()) {
                    match mesh_core::grpc::status_of(resp.headers()) {
                        Some(code) => {
                            record(span, "rpc.grpc.status_code", code);
                        }
                        // The status comes in the trailers: the metrics layer adds its record
                        // to this extension, recorded then.
                        None => {
                            let pending = PendingGrpcStatus::span(span.clone());
                            resp.extensions_mut().insert(pending);
                        }
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
