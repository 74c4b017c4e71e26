//! The one place where the inbound layers' typed errors become HTTP answers (Linkerd's
//! `HttpRescue`): each layer fails with its own error type, and [`Rescue`] answers it.
//!
//! | error | status | body |
//! | --- | --- | --- |
//! | [`authz::Denied`] | 403 (or a CUSTOM provider's status) | `RBAC: access denied` |
//! | [`rate_limit::RateLimited`] | 429, `retry-after: SECONDS` | `local_rate_limited` |
//! | [`HttpError`] (any layer's own answer) | its status | its message |
//! | `tower::timeout::error::Elapsed` | 504 | `request timeout` |
//! | anything else | 500 | `internal error` (the error itself is logged, never sent) |
//!
//! Errors are also found when wrapped by another error (through `source()`). Bodies are short
//! `text/plain`, the words Envoy uses where it has them.
//!
//! ```
//! use mesh_server::rescue::RescueLayer;
//! use mesh_server::rate_limit::{RateLimitLayer, RateLimitSettings};
//! use tower::{ServiceBuilder, service_fn};
//!
//! let svc = ServiceBuilder::new()
//!     .layer(RescueLayer::new())
//!     .layer(RateLimitLayer::new(RateLimitSettings { total_rps: Some(10), ..Default::default() }))
//!     .service(service_fn(|_req: http::Request<axum::body::Body>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(axum::body::Body::empty()))
//!     }));
//! # drop(svc);
//! ```

use std::borrow::Cow;
use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::{authz, rate_limit, BoxError};

/// An error that already knows its HTTP answer: for layers that are not listed in the table
/// above, so that they too are answered here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    status: StatusCode,
    message: Cow<'static, str>,
}

impl HttpError {
    /// An answer with `status` and a short `message` (sent as the body).
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self { status, message: message.into() }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.as_u16(), self.message)
    }
}

impl StdError for HttpError {}

/// The answer for an inbound error.
pub fn response_for(error: &(dyn StdError + 'static)) -> Response<Body> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = cur {
        if let Some(d) = e.downcast_ref::<authz::Denied>() {
            let body = d.body().map_or(Cow::Borrowed("RBAC: access denied"), |b| Cow::Owned(b.to_owned()));
            return text(d.status(), body);
        }
        if let Some(l) = e.downcast_ref::<rate_limit::RateLimited>() {
            let mut res = text(StatusCode::TOO_MANY_REQUESTS, "local_rate_limited");
            res.headers_mut().insert(RETRY_AFTER, HeaderValue::from(l.retry_after_secs()));
            return res;
        }
        if let Some(h) = e.downcast_ref::<HttpError>() {
            return text(h.status, h.message.clone());
        }
        if e.is::<tower::timeout::error::Elapsed>() {
            return text(StatusCode::GATEWAY_TIMEOUT, "request timeout");
        }
        cur = e.source();
    }
    tracing::warn!(error = %error, "unexpected error in the inbound stack");
    text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

fn text(status: StatusCode, body: impl Into<Cow<'static, str>>) -> Response<Body> {
    let body = match body.into() {
        Cow::Borrowed(s) => Body::from(s),
        Cow::Owned(s) => Body::from(s),
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}

/// Applies [`Rescue`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RescueLayer(());

impl RescueLayer {
    /// The layer.
    pub fn new() -> Self {
        Self(())
    }
}

impl<S> Layer<S> for RescueLayer {
    type Service = Rescue<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Rescue::new(inner)
    }
}

/// Turns the inner stack's errors into HTTP answers; never fails.
#[derive(Debug)]
pub struct Rescue<S> {
    inner: S,
    // The inner service's readiness error, answered to the next request instead of calling it.
    broken: Option<BoxError>,
}

impl<S: Clone> Clone for Rescue<S> {
    fn clone(&self) -> Self {
        // A clone has not been polled: it carries no readiness outcome.
        Self { inner: self.inner.clone(), broken: None }
    }
}

impl<S> Rescue<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner, broken: None }
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

impl<S, B> Service<Request<B>> for Rescue<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // A service that failed readiness cannot take the request: the next request is answered
        // with that error in `call`, without calling it.
        if self.broken.is_some() {
            return Poll::Ready(Ok(()));
        }
        match self.inner.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => {
                self.broken = Some(e.into());
                Poll::Ready(Ok(()))
            }
        }
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if let Some(e) = self.broken.take() {
            return ResponseFuture { state: State::Answered { res: Some(response_for(&*e)) } };
        }
        ResponseFuture { state: State::Inner { fut: self.inner.call(req) } }
    }
}

pin_project! {
    /// Response future of [`Rescue`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Answered { res: Option<Response<Body>> },
        Inner { #[pin] fut: F },
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = match self.project().state.project() {
            StateProj::Answered { res } => {
                return Poll::Ready(Ok(res.take().unwrap_or_else(|| text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))));
            }
            StateProj::Inner { fut } => fut,
        };
        match std::task::ready!(fut.poll(cx)) {
            Ok(res) => Poll::Ready(Ok(res)),
            Err(e) => {
                let e: BoxError = e.into();
                Poll::Ready(Ok(response_for(&*e)))
            }
        }
    }
}
