//! [`InboundService`]: the concrete inbound stack [`MeshServer::wrap`] returns. No box: cloning it
//! clones a few `Arc`s, and a request's future is one value, allocated nowhere.

use std::marker::PhantomData;

use pin_project_lite::pin_project;
use tower::util::Either;

use super::gate::Gate;
use super::*;
use crate::authz::Authorization;
use crate::grpc::GrpcAnswers;
use crate::jwt::Jwt;
use crate::metrics::ServerMetrics;
use crate::rate_limit::RateLimit;
use crate::request_id::RequestIdService;
use crate::rescue::Rescue;
use crate::trace::Trace;

/// Per-client rate limit, then authorization, then the user's service.
type Checked<S> = RateLimit<Authorization<IntoBody<S>>>;
/// Total rate limit, JWT authentication (when the JWKS client could be built), then [`Checked`].
type Enforced<S> = RateLimit<Either<Jwt<Checked<S>>, Checked<S>>>;
/// Errors answered, the path normalized, policies kept current, the policy layers skipped when
/// none applies.
type Guarded<S> = Rescue<Normalize<Gate<IntoBody<S>, Enforced<S>>>>;
/// Trace span, request id, gRPC answers and the optional request body limit around [`Guarded`].
type Traced<S> =
    Trace<RequestIdService<GrpcAnswers<Either<body_limit::Limited<Guarded<S>>, Guarded<S>>>>>;
/// The whole stack: metrics (when configured) around [`Traced`].
type Stack<S> = Either<ServerMetrics<Traced<S>>, Traced<S>>;

/// The inbound stack around a user's service `S`, built by [`MeshServer::wrap`]: never fails,
/// answers [`Body`]. Cheap to clone (the layers share their state through `Arc`s).
pub struct InboundService<S> {
    inner: Stack<S>,
}

impl<S: Clone> Clone for InboundService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S> std::fmt::Debug for InboundService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundService").finish_non_exhaustive()
    }
}

impl<S> InboundService<S> {
    pub(super) fn new(inner: Stack<S>) -> Self {
        Self { inner }
    }
}

impl<S, B> Service<Request<Body>> for InboundService<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = InboundFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // Each arm builds the whole future, so that the inner one can be written in place.
        match &mut self.inner {
            Either::Left(metered) => InboundFuture {
                inner: Inner::Metered {
                    future: metered.call(req),
                },
                _body: PhantomData,
            },
            Either::Right(traced) => InboundFuture {
                inner: Inner::Traced {
                    future: traced.call(req),
                },
                _body: PhantomData,
            },
        }
    }
}

pin_project! {
    /// The future of [`Stack`]'s two shapes, projected here (tower's `Either` keeps its
    /// projection to itself) so that each hands over what a gRPC answer's trailers are to
    /// complete, instead of leaving it in the response's extensions.
    #[project = InnerProj]
    enum Inner<M, T> {
        Metered { #[pin] future: M },
        Traced { #[pin] future: T },
    }
}

pin_project! {
    /// Response future of [`InboundService`] around a user's service `S` answering bodies `B`.
    pub struct InboundFuture<S, B>
    where
        S: Service<Request<Body>, Response = Response<B>>,
        S: Clone,
        S: Send,
        S: 'static,
        S::Future: Send,
        S::Future: 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes>,
        B: Send,
        B: 'static,
        B::Error: Into<BoxError>,
    {
        #[pin]
        inner: Inner<
            <ServerMetrics<Traced<S>> as Service<Request<Body>>>::Future,
            <Traced<S> as Service<Request<Body>>>::Future,
        >,
        _body: PhantomData<fn() -> B>,
    }
}

impl<S, B> Future for InboundFuture<S, B>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, Infallible>;

    #[inline]
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut deferred = None;
        let result = match self.project().inner.project() {
            InnerProj::Metered { future } => future.poll_deferred(cx, &mut deferred),
            // Without metrics only the span waits for the status.
            InnerProj::Traced { future } => {
                let mut span = None;
                let result = future.poll_deferred(cx, &mut span, &mut None);
                deferred = span.map(mesh_telemetry::grpc_status::DeferredRecord::span_only);
                result
            }
        };
        let mut response = std::task::ready!(result)?;
        // A gRPC answer's status comes in its trailers: the metrics record then.
        if let Some(pending) = deferred {
            response = response
                .map(|b| Body::new(mesh_telemetry::grpc_status::GrpcStatusBody::new(b, pending)));
        }
        Poll::Ready(Ok(response))
    }
}

// === impl IntoBody ===

/// The user's service with its answers' bodies turned into [`Body`] (the innermost layer).
#[derive(Clone, Debug)]
pub struct IntoBody<S> {
    inner: S,
}

impl<S> IntoBody<S> {
    pub(super) fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, B> Service<Request<Body>> for IntoBody<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = IntoBodyFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<Body>) -> Self::Future {
        IntoBodyFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// Response future of [`IntoBody`].
    pub struct IntoBodyFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, B, E> Future for IntoBodyFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    #[inline]
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .inner
            .poll(cx)
            .map_ok(|res| res.map(Body::new))
    }
}
