//! Inbound tracing: the incoming trace context (W3C `traceparent`/`tracestate`, else B3 `b3`,
//! else `x-b3-*`) is extracted, a server span is started as its child, and the span's
//! [`TraceContext`] is handed to the application.
//!
//! The application reaches the context three ways: the request extensions
//! ([`TraceContext::from_extensions`]: the trace context rides in the
//! [`RequestContext`](mesh_telemetry::RequestContext) extension with the request id),
//! [`current()`](mesh_telemetry::current::current) while the handler's future runs (a
//! task-local), and the current `tracing` span (an OpenTelemetry span when `otel::init_tracing`
//! installed an exporter). The client telemetry layer uses the latter two by itself, so a handler
//! that calls a downstream service through the mesh client continues the same trace.
//!
//! An invalid `traceparent` is ignored (a new trace starts), as the W3C spec asks. A trace that
//! starts here is sampled at [`TraceConfig::sample_ratio`] (Istio's 1% by default); with an
//! OpenTelemetry exporter the SDK's sampler decides instead (see `docs/observability.md`).
//!
//! ```
//! use mesh_server::trace::{TraceLayer, TraceConfig};
//! use mesh_telemetry::TraceContext;
//! use tower::{ServiceBuilder, service_fn};
//!
//! let svc = ServiceBuilder::new()
//!     .layer(TraceLayer::new(TraceConfig::default()))
//!     .service(service_fn(|req: http::Request<String>| async move {
//!         let trace_id = TraceContext::from_extensions(req.extensions()).map(|c| c.trace_id_hex());
//!         Ok::<_, std::convert::Infallible>(http::Response::new(trace_id.unwrap_or_default()))
//!     }));
//! # drop(svc);
//! ```

mod future;

use std::task::{Context, Poll};

use http::{Request, Response};
use mesh_telemetry::current;
use mesh_telemetry::sample;
use mesh_telemetry::trace_context::{TraceContext, extract};
use tower_layer::Layer;
use tower_service::Service;

pub use self::future::ResponseFuture;

/// Settings of the server trace layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceConfig {
    /// Sampling ratio (0.0 to 1.0) for traces that start at this server (no incoming parent).
    pub sample_ratio: f64,
}

impl Default for TraceConfig {
    /// Istio's default: 1%.
    fn default() -> Self {
        TraceConfig {
            sample_ratio: mesh_telemetry::DEFAULT_SAMPLE_RATIO,
        }
    }
}

/// Layer starting a server span per request; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceLayer {
    config: TraceConfig,
}

impl TraceLayer {
    /// A layer with `config`.
    pub fn new(config: TraceConfig) -> Self {
        TraceLayer { config }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Trace {
            inner,
            config: self.config,
        }
    }
}

/// Service of [`TraceLayer`].
#[derive(Clone, Debug)]
pub struct Trace<S> {
    inner: S,
    config: TraceConfig,
}

impl<S> Trace<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, config: TraceConfig) -> Self {
        Trace { inner, config }
    }

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

/// The server span's context for a request with `headers`: a child of the incoming parent, or a
/// new root sampled at `sample_ratio` (or by a B3 sampling-only header).
pub fn server_context(
    headers: &http::HeaderMap,
    sample_ratio: f64,
) -> (Option<TraceContext>, TraceContext) {
    let e = extract(headers);
    let parent = e.parent.map(|p| TraceContext {
        trace_id: p.trace_id,
        span_id: p.span_id,
        parent_span_id: None,
        sampled: p.sampled,
        trace_state: e.trace_state.clone(),
        propagation: e.propagation,
    });
    let ctx = match &parent {
        Some(p) => p.child(),
        None => {
            let mut root = TraceContext::new_root(false);
            root.sampled = e
                .sampled_hint
                .unwrap_or_else(|| sample(root.trace_id, sample_ratio));
            root.propagation = e.propagation;
            root
        }
    };
    (parent, ctx)
}

impl<S, B, RB> Service<Request<B>> for Trace<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let (parent, fallback) = server_context(req.headers(), self.config.sample_ratio);
        let span = tracing::info_span!(
            target: mesh_telemetry::REQUEST_SPANS,
            "inbound",
            otel.kind = "server",
            http.request.method = %req.method(),
            url.path = %req.uri().path(),
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            request_id = tracing::field::Empty,
            rpc.system = tracing::field::Empty,
            rpc.service = tracing::field::Empty,
            rpc.method = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        // Checked once: the answer's gRPC status is read only for a gRPC call.
        let grpc = mesh_core::grpc::is_grpc(req.headers());
        if grpc {
            mesh_telemetry::grpc_status::record_rpc(&span, req.uri().path());
        }
        let ctx = current::attach(&span, parent.as_ref(), fallback);
        // One extension per request for the trace context and the request id.
        mesh_telemetry::RequestContext::entry(req.extensions_mut()).trace = Some(ctx.clone());
        let fut = {
            // A span nobody listens to is not entered (nothing to tell anyone).
            let _enter = (!mesh_telemetry::span::is_silent(&span)).then(|| span.enter());
            current::scope(ctx, self.inner.call(req))
        };
        ResponseFuture::new(fut, span, grpc)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
