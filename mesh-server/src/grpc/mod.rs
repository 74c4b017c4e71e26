//! gRPC callers get gRPC answers, and their deadline, on the inbound side.
//!
//! [`GrpcAnswers`] sits around the policy layers (inside the metrics and the trace span, so
//! those see the final answer). For a gRPC request (`content-type: application/grpc`):
//! - its `grpc-timeout` is honoured: the handler gets the deadline as a
//!   [`Deadline`](mesh_core::grpc::Deadline) extension (to send the time left on its own calls),
//!   and a call still running at the deadline is answered `DEADLINE_EXCEEDED` (4);
//! - every answer that is not gRPC and not a success (a 403 from authorization, a 401 from JWT
//!   authentication, a 429 from the rate limit, a 400 for a path that cannot be normalized, a
//!   413 for a body too large, a 404 of the application) becomes trailers-only: HTTP 200,
//!   `grpc-status` as Envoy's `httpToGrpcStatus` maps the status (403 → 7, 401 → 16, 429 → 14,
//!   400 → 13, 404 → 12; a 504 timeout → 4), the answer's short text as `grpc-message`.
//!
//! Other requests pass through untouched (one header lookup).
//!
//! ```
//! use axum::body::Body;
//! use mesh_server::grpc::GrpcAnswersLayer;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # async fn run() {
//! let denied = service_fn(|_req: http::Request<Body>| async {
//!     let mut res = http::Response::new(Body::from("RBAC: access denied"));
//!     *res.status_mut() = http::StatusCode::FORBIDDEN;
//!     Ok::<_, std::convert::Infallible>(res)
//! });
//! let svc = GrpcAnswersLayer::new().layer(denied);
//! let req = http::Request::post("/pkg.Svc/Method")
//!     .header("content-type", "application/grpc")
//!     .body(Body::empty())
//!     .unwrap();
//! let res = svc.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), 200);
//! assert_eq!(res.headers()["grpc-status"], "7");
//! assert_eq!(res.headers()["grpc-message"], "RBAC: access denied");
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use http::{Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use mesh_core::grpc::{self, Code, Deadline};
use tower_layer::Layer;
use tower_service::Service;

/// The longest answer body read to become a `grpc-message`.
const MAX_MESSAGE: u64 = 1024;

/// Applies [`GrpcAnswers`].
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcAnswersLayer(());

impl GrpcAnswersLayer {
    /// The layer.
    pub fn new() -> Self {
        Self(())
    }
}

impl<S> Layer<S> for GrpcAnswersLayer {
    type Service = GrpcAnswers<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcAnswers { inner }
    }
}

/// gRPC deadlines and answers for gRPC requests; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct GrpcAnswers<S> {
    inner: S,
}

impl<S> GrpcAnswers<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for GrpcAnswers<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if !grpc::is_grpc(req.headers()) {
            return ResponseFuture {
                inner: Inner::Plain {
                    future: self.inner.call(req),
                },
            };
        }
        let deadline = grpc::timeout_of(req.headers()).map(|t| Deadline {
            at: tokio::time::Instant::now() + t,
        });
        if let Some(d) = deadline {
            req.extensions_mut().insert(d);
        }
        // A named state machine, not a boxed `async` block: no allocation per call; only the
        // rare answer that must be rewritten (read for its text) is boxed.
        ResponseFuture {
            inner: Inner::Grpc {
                future: self.inner.call(req),
                deadline: deadline.map(|d| tokio::time::sleep_until(d.at)),
            },
        }
    }
}

type Rewriting = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

pin_project_lite::pin_project! {
    /// Response future of [`GrpcAnswers`].
    pub struct ResponseFuture<F, E> {
        #[pin]
        inner: Inner<F, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = InnerProj]
    #[project_replace = InnerReplace]
    enum Inner<F, E> {
        // Not a gRPC request: passed through.
        Plain { #[pin] future: F },
        // A gRPC call: its answer, unless the caller's deadline comes first (the answer is
        // polled first, so one ready at the deadline still wins, as `timeout_at` does).
        Grpc { #[pin] future: F, #[pin] deadline: Option<tokio::time::Sleep> },
        // An answer that is neither gRPC nor a success, being turned into a trailers-only one.
        Rewriting { future: Rewriting, _error: std::marker::PhantomData<fn() -> E> },
        Done,
    }
}

impl<F, E> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let response = match self.as_mut().project().inner.project() {
                InnerProj::Plain { future } => return future.poll(cx),
                InnerProj::Grpc { future, deadline } => {
                    if let Poll::Ready(result) = future.poll(cx) {
                        match result {
                            Ok(response) => response,
                            Err(e) => {
                                self.as_mut().project().inner.project_replace(Inner::Done);
                                return Poll::Ready(Err(e));
                            }
                        }
                    } else {
                        let Some(sleep) = deadline.as_pin_mut() else {
                            return Poll::Pending;
                        };
                        std::task::ready!(sleep.poll(cx));
                        tracing::debug!("grpc-timeout expired: answering DEADLINE_EXCEEDED");
                        // Dropping the handler's future cancels it.
                        self.as_mut().project().inner.project_replace(Inner::Done);
                        return Poll::Ready(Ok(answer(
                            Code::DeadlineExceeded,
                            "deadline exceeded",
                        )));
                    }
                }
                InnerProj::Rewriting { future, .. } => {
                    let response = std::task::ready!(future.as_mut().poll(cx));
                    self.as_mut().project().inner.project_replace(Inner::Done);
                    return Poll::Ready(Ok(response));
                }
                // Polled again after completion: stay pending rather than panic.
                InnerProj::Done => return Poll::Pending,
            };
            if passes_as_is(&response) {
                self.as_mut().project().inner.project_replace(Inner::Done);
                return Poll::Ready(Ok(response));
            }
            self.as_mut()
                .project()
                .inner
                .project_replace(Inner::Rewriting {
                    future: Box::pin(grpc_answer(response)),
                    _error: std::marker::PhantomData,
                });
        }
    }
}

/// Whether `response` goes to a gRPC caller unchanged: a gRPC answer, or a success.
fn passes_as_is(response: &Response<Body>) -> bool {
    grpc::is_grpc(response.headers())
        || grpc::status_of(response.headers()).is_some()
        || response.status().is_success()
        || response.status().is_informational()
}

fn answer(code: Code, message: &str) -> Response<Body> {
    grpc::trailers_only(code, message).map(|()| Body::empty())
}

/// `response` as a gRPC caller must get it: unchanged when it is gRPC or a success, else a
/// trailers-only answer whose message is the response's short text.
pub async fn grpc_answer(response: Response<Body>) -> Response<Body> {
    if passes_as_is(&response) {
        return response;
    }
    let status = response.status();
    let code = match status {
        StatusCode::GATEWAY_TIMEOUT => Code::DeadlineExceeded,
        s => grpc::http_to_grpc(s.as_u16()),
    };
    let (mut parts, body) = response.into_parts();
    let short = body.size_hint().upper().is_some_and(|n| n <= MAX_MESSAGE);
    let text = if short {
        match body.collect().await {
            Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim().to_owned(),
            Err(_) => String::new(),
        }
    } else {
        String::new()
    };
    let text = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    parts.status = StatusCode::OK;
    grpc::set_trailers_only(&mut parts.headers, code, &text);
    parts.headers.remove(http::header::RETRY_AFTER);
    Response::from_parts(parts, Body::empty())
}

#[cfg(test)]
mod tests;
