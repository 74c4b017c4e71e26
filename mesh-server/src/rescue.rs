//! The one place where the inbound layers' typed errors become HTTP answers (Linkerd's
//! `HttpRescue`): each layer fails with its own error type, and [`Rescue`] answers it.
//!
//! | error | status | body |
//! | --- | --- | --- |
//! | [`authz::Denied`] | 403 (or a CUSTOM provider's status) | `RBAC: access denied` |
//! | [`rate_limit::RateLimited`] | 429, `retry-after: SECONDS` | `local_rate_limited` |
//! | [`normalize::PathRefused`] | 400 | `Bad Request: invalid request path: ...` |
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
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode};
use mesh_telemetry::MeshMetrics;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::{BoxError, authz, normalize, rate_limit};

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
        Self {
            status,
            message: message.into(),
        }
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
            let body = d.body().map_or(Cow::Borrowed("RBAC: access denied"), |b| {
                Cow::Owned(b.to_owned())
            });
            return text(d.status(), body);
        }
        if let Some(l) = e.downcast_ref::<rate_limit::RateLimited>() {
            let mut res = text(StatusCode::TOO_MANY_REQUESTS, "local_rate_limited");
            res.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(l.retry_after_secs()));
            return res;
        }
        if let Some(h) = e.downcast_ref::<HttpError>() {
            return text(h.status, h.message.clone());
        }
        if let Some(p) = e.downcast_ref::<normalize::PathRefused>() {
            return text(StatusCode::BAD_REQUEST, format!("Bad Request: {p}"));
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
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// Counts refusals in the mesh metrics (`mesh_authz_denied_total`, `mesh_rate_limited_total`).
#[derive(Debug)]
struct Observer {
    metrics: MeshMetrics,
    workload: Box<str>,
}

impl Observer {
    fn record(&self, error: &(dyn StdError + 'static)) {
        let mut cur: Option<&(dyn StdError + 'static)> = Some(error);
        while let Some(e) = cur {
            if let Some(d) = e.downcast_ref::<authz::Denied>() {
                self.metrics
                    .record_authz_denied(&self.workload, d.policy().unwrap_or("no-allow-match"));
                return;
            }
            if let Some(l) = e.downcast_ref::<rate_limit::RateLimited>() {
                let scope = match l.scope() {
                    rate_limit::Scope::Total => "total",
                    rate_limit::Scope::Identity => "identity",
                    rate_limit::Scope::Override => "override",
                };
                self.metrics.record_rate_limited(&self.workload, scope);
                return;
            }
            cur = e.source();
        }
    }
}

/// Applies [`Rescue`].
#[derive(Clone, Debug, Default)]
pub struct RescueLayer {
    observer: Option<Arc<Observer>>,
}

impl RescueLayer {
    /// The layer.
    pub fn new() -> Self {
        Self { observer: None }
    }

    /// Also counts refusals of `workload` in `metrics`.
    pub fn with_metrics(metrics: MeshMetrics, workload: &str) -> Self {
        Self {
            observer: Some(Arc::new(Observer {
                metrics,
                workload: workload.into(),
            })),
        }
    }
}

impl<S> Layer<S> for RescueLayer {
    type Service = Rescue<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Rescue {
            inner,
            broken: None,
            observer: self.observer.clone(),
        }
    }
}

/// Turns the inner stack's errors into HTTP answers; never fails.
#[derive(Debug)]
pub struct Rescue<S> {
    inner: S,
    // The inner service's readiness error, answered to the next request instead of calling it.
    broken: Option<BoxError>,
    observer: Option<Arc<Observer>>,
}

impl<S: Clone> Clone for Rescue<S> {
    fn clone(&self) -> Self {
        // A clone has not been polled: it carries no readiness outcome.
        Self {
            inner: self.inner.clone(),
            broken: None,
            observer: self.observer.clone(),
        }
    }
}

impl<S> Rescue<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            broken: None,
            observer: None,
        }
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
            return ResponseFuture {
                state: State::Answered {
                    res: Some(response_for(&*e)),
                },
            };
        }
        ResponseFuture {
            state: State::Inner {
                fut: self.inner.call(req),
                observer: self.observer.clone(),
            },
        }
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
        Inner { #[pin] fut: F, observer: Option<Arc<Observer>> },
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (fut, observer) = match self.project().state.project() {
            StateProj::Answered { res } => {
                return Poll::Ready(Ok(res.take().unwrap_or_else(|| {
                    text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
                })));
            }
            StateProj::Inner { fut, observer } => (fut, observer),
        };
        match std::task::ready!(fut.poll(cx)) {
            Ok(res) => Poll::Ready(Ok(res)),
            Err(e) => {
                let e: BoxError = e.into();
                if let Some(o) = observer {
                    o.record(&*e);
                }
                Poll::Ready(Ok(response_for(&*e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::BodyExt;
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::rate_limit::Scope;

    async fn answer(error: BoxError) -> (StatusCode, Option<String>, String) {
        let res = response_for(&*error);
        let retry = res
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        (status, retry, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn each_error_has_its_answer() {
        let denied = answer(Box::new(authz::Denied::new(Some("default/p")))).await;
        assert_eq!(
            denied,
            (StatusCode::FORBIDDEN, None, "RBAC: access denied".into())
        );
        let limited = answer(Box::new(rate_limit::RateLimited::new(
            Scope::Total,
            Duration::from_millis(1500),
        )))
        .await;
        assert_eq!(
            limited,
            (
                StatusCode::TOO_MANY_REQUESTS,
                Some("2".into()),
                "local_rate_limited".into()
            )
        );
        let own = answer(Box::new(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "Jwt is missing",
        )))
        .await;
        assert_eq!(
            own,
            (StatusCode::UNAUTHORIZED, None, "Jwt is missing".into())
        );
        let timeout = answer(Box::new(tower::timeout::error::Elapsed::new())).await;
        assert_eq!(timeout.0, StatusCode::GATEWAY_TIMEOUT);
        let other = answer("boom".into()).await;
        assert_eq!(
            (other.0, other.2.as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        );
    }

    #[derive(Debug)]
    struct Wrapper(BoxError);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapped")
        }
    }

    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.0)
        }
    }

    #[tokio::test]
    async fn wrapped_errors_are_found() {
        let wrapped = answer(Box::new(Wrapper(Box::new(authz::Denied::new(None))))).await;
        assert_eq!(wrapped.0, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn the_service_never_fails() {
        let inner = service_fn(|req: Request<()>| async move {
            if req.uri().path() == "/deny" {
                Err::<Response<Body>, BoxError>(Box::new(authz::Denied::new(None)))
            } else {
                Ok(Response::new(Body::from("fine")))
            }
        });
        let svc = RescueLayer::new().layer(inner);
        let res = svc
            .clone()
            .oneshot(Request::get("/deny").body(()).unwrap_or_default())
            .await;
        assert_eq!(res.map(|r| r.status()).ok(), Some(StatusCode::FORBIDDEN));
        let res = svc
            .oneshot(Request::get("/ok").body(()).unwrap_or_default())
            .await;
        assert_eq!(res.map(|r| r.status()).ok(), Some(StatusCode::OK));
    }

    #[tokio::test]
    async fn refusals_are_counted() {
        let metrics = MeshMetrics::new();
        let inner = service_fn(|_req: Request<()>| async {
            Err::<Response<Body>, BoxError>(Box::new(authz::Denied::new(Some(
                "default/deny-admin",
            ))))
        });
        let svc = RescueLayer::with_metrics(metrics.clone(), "service1").layer(inner);
        let _ = svc.oneshot(Request::new(())).await;
        let text = metrics.encode_prometheus();
        let line = text
            .lines()
            .find(|l| l.starts_with("mesh_authz_denied_total{"))
            .unwrap_or_default()
            .to_owned();
        assert!(
            line.contains("default/deny-admin") && line.ends_with(" 1"),
            "{text}"
        );
    }

    #[derive(Clone)]
    struct NeverReady;

    impl Service<Request<()>> for NeverReady {
        type Response = Response<Body>;
        type Error = BoxError;
        type Future = std::future::Ready<Result<Response<Body>, BoxError>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Err(Box::new(HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "closed",
            ))))
        }

        fn call(&mut self, _req: Request<()>) -> Self::Future {
            panic!("called without being ready")
        }
    }

    #[tokio::test]
    async fn readiness_errors_are_answered_without_calling() {
        let res = Rescue::new(NeverReady).oneshot(Request::new(())).await;
        assert_eq!(
            res.map(|r| r.status()).ok(),
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
    }
}
