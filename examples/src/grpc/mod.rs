//! The apps' gRPC side: `mesh.examples.Echo/Call` (`examples/proto/echo.proto`) on the listen
//! port, beside the HTTP handler.
//!
//! Requests whose content type is `application/grpc` go to the tonic service, the rest to the
//! HTTP handler, on one port (HTTP/2 with prior knowledge or HTTP/1.1, as the server accepts
//! either). `Call` answers `CallReply {service, version, path, trace_id, upstream}`: service1
//! calls service2's `Call`, service2 calls service3's, through the mesh client used as tonic's
//! transport ([`GrpcUpstream`]), forwarding the same headers as the HTTP path and the time left
//! before the caller's deadline. `--error-rate` fails that share of calls with
//! `--error-grpc-status` (a trailers-only answer), from the same sequence as the HTTP failures.
//! An upstream's gRPC status is passed back as it came (the mesh answers 14 when nothing
//! answered).

#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::unwrap_used,
    clippy::expect_used
)]
pub mod echo;
pub mod hop;
pub mod scenario;
mod service;
mod upstream;

pub use self::service::EchoService;
pub use self::upstream::{
    CallCount, GrpcUpstream, InProcess, InProcessFn, InProcessFuture, closed_loop_calls,
};

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use futures_util::future::Either;
use tower::Service;

use crate::app::AppState;

/// The gRPC service name callers address (`/mesh.examples.Echo/Call`).
pub const SERVICE: &str = echo::echo_server::SERVICE_NAME;

/// The service's whole listen port: gRPC calls to [`EchoService`], everything else to the HTTP
/// handler ([`crate::app::app`]). `upstream` is the service's gRPC client of its upstream.
pub fn app(state: Arc<AppState>, upstream: Option<GrpcUpstream>) -> Router {
    let grpc = tonic::service::Routes::new(echo::echo_server::EchoServer::new(EchoService::new(
        state.clone(),
        upstream,
    )))
    .prepare()
    .into_axum_router();
    by_content_type(crate::app::app(state), grpc)
}

/// One router sending gRPC requests (`content-type: application/grpc`) to `grpc` and the rest
/// to `http`.
pub fn by_content_type(http: Router, grpc: Router) -> Router {
    Router::new().fallback_service(ByContentType { http, grpc })
}

#[derive(Clone)]
struct ByContentType {
    http: Router,
    grpc: Router,
}

impl Service<Request> for ByContentType {
    type Response = Response;
    type Error = Infallible;
    type Future =
        Either<<Router as Service<Request>>::Future, <Router as Service<Request>>::Future>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // axum's Router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if mesh_core::grpc::is_grpc(req.headers()) {
            Either::Left(self.grpc.call(req))
        } else {
            Either::Right(self.http.call(req))
        }
    }
}

/// The gRPC guide's code examples, compiled as doc tests so that they stay true.
#[doc = include_str!("../../../docs/grpc.md")]
#[cfg(doctest)]
pub struct GrpcGuideDoctests;

#[cfg(test)]
mod tests;
