//! The route timeout: a deadline over the whole call, retries and backoff included.
//!
//! Unlike `tower::timeout`, an expired deadline is an HTTP answer, as Envoy gives it: `504`,
//! body `upstream request timeout`, response flag `UT`. `None` means no deadline (Istio's default
//! for HTTP routes).
//!
//! A gRPC request's `grpc-timeout` is honoured as well, capped by the route's timeout when one
//! is set (Envoy's `grpc_timeout_header_max`, as Istio configures it); the deadline rides down
//! as a [`Deadline`](mesh_core::grpc::Deadline) extension, and the transport sends the time left
//! as the upstream's `grpc-timeout`. An expired one is answered like the route timeout (a gRPC
//! caller gets `DEADLINE_EXCEEDED`). For gRPC the deadline covers the whole call: an answer
//! still streaming at the deadline is ended with `DEADLINE_EXCEEDED` trailers and its upstream
//! stream reset (see `grpc::deadline`); an HTTP answer's body is not bounded once its head came.
//!
//! ```
//! use std::time::Duration;
//! use mesh_client::timeout::TimeoutLayer;
//!
//! let _layer = TimeoutLayer::new(Some(Duration::from_secs(2)));
//! ```

mod error;

pub use self::error::RouteTimeout;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Request, Response};
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use mesh_core::grpc;

use crate::body::BoxBody;
use crate::rescue::rescue;
use crate::stats::ClientStats;

/// Layer adding a whole-call deadline.
#[derive(Clone, Debug)]
pub struct TimeoutLayer {
    timeout: Option<Duration>,
    stats: Arc<ClientStats>,
}

impl TimeoutLayer {
    /// A deadline of `timeout` per call (`None`: none).
    pub fn new(timeout: Option<Duration>) -> Self {
        Self {
            timeout,
            stats: Arc::default(),
        }
    }

    /// Counts timeouts in `stats`.
    pub fn with_stats(mut self, stats: Arc<ClientStats>) -> Self {
        self.stats = stats;
        self
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout {
            inner,
            timeout: self.timeout,
            stats: self.stats.clone(),
        }
    }
}

/// Service answering `504` when `inner` takes longer than the deadline.
#[derive(Clone, Debug)]
pub struct Timeout<S> {
    inner: S,
    timeout: Option<Duration>,
    stats: Arc<ClientStats>,
}

impl<S> Timeout<S> {
    /// Wraps `inner` with a deadline of `timeout`.
    pub fn new(inner: S, timeout: Option<Duration>) -> Self {
        Self {
            inner,
            timeout,
            stats: Arc::default(),
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for Timeout<S>
where
    S: Service<Request<B>, Response = Response<BoxBody>>,
{
    type Response = Response<BoxBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // A gRPC caller's `grpc-timeout` is a deadline too, capped by the route's: the earlier
        // one wins, and the call carries it down so the upstream hears the time left.
        let is_grpc = grpc::is_grpc(request.headers());
        let grpc = is_grpc
            .then(|| grpc::timeout_of(request.headers()))
            .flatten();
        let timeout = match (self.timeout, grpc) {
            (Some(route), Some(caller)) => Some(route.min(caller)),
            (route, caller) => route.or(caller),
        };
        let mut stream_deadline = None;
        let sleep = timeout.map(|t| {
            let at = Instant::now() + t;
            if is_grpc {
                request.extensions_mut().insert(grpc::Deadline { at });
                stream_deadline = Some(at);
            }
            tokio::time::sleep_until(at)
        });
        ResponseFuture {
            inner: self.inner.call(request),
            sleep,
            stream_deadline,
            timeout,
            stats: self.stats.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`Timeout`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // Inline, not boxed: the future itself is boxed by the route stack already.
        #[pin]
        sleep: Option<Sleep>,
        // A gRPC call's deadline, which also ends a streaming answer (`grpc::deadline`).
        stream_deadline: Option<Instant>,
        timeout: Option<Duration>,
        stats: Arc<ClientStats>,
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<BoxBody>, E>>,
{
    type Output = Result<Response<BoxBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(match (result, *this.stream_deadline) {
                (Ok(response), Some(at)) => {
                    Ok(response.map(|body| crate::grpc::deadline::until(body, at, this.stats)))
                }
                (result, _) => result,
            });
        }
        if let Some(sleep) = this.sleep.as_pin_mut() {
            ready!(sleep.poll(cx));
            this.stats.timeouts.incr();
            tracing::debug!(
                timed_out = true,
                timeout_ms = this.timeout.map_or(0, |t| t.as_millis() as u64),
                "route timeout expired"
            );
            return Poll::Ready(Ok(rescue(&RouteTimeout(()))));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests;
