//! Fault injection (`fault.delay`, `fault.abort`), as Envoy's fault filter does it.
//!
//! For each request, a delay is drawn with `delay.percent` and an abort with `abort.percent`,
//! independently. A delayed request waits `fixedDelay` first (flag `DI`); an aborted one is then
//! answered with the configured status without reaching the upstream (flag `FI`, body
//! `fault filter abort`).
//!
//! ```
//! use std::time::Duration;
//! use mesh_client::fault::FaultLayer;
//! use mesh_client::random::Random;
//! use mesh_core::policy::{Fault, FaultAbort};
//!
//! let fault = Fault {
//!     delay: None,
//!     abort: Some(FaultAbort { status: http::StatusCode::SERVICE_UNAVAILABLE, grpc_status: None, percent: 10.0 }),
//! };
//! let _layer = FaultLayer::new(fault).with_random(Random::seeded(1));
//! ```

mod error;

pub use self::error::FaultAbort;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use mesh_core::policy::Fault;
use tokio::time::Sleep;
use tower::{Layer, Service};

use crate::body::BoxBody;
use crate::random::Random;
use crate::rescue::{add_flag, rescue};
use crate::stats::ClientStats;

/// Layer injecting the faults of a route.
#[derive(Clone, Debug)]
pub struct FaultLayer {
    fault: Arc<Fault>,
    random: Random,
    stats: Arc<ClientStats>,
}

impl FaultLayer {
    /// Injects `fault`, drawing with the thread RNG.
    pub fn new(fault: Fault) -> Self {
        Self {
            fault: Arc::new(fault),
            random: Random::thread(),
            stats: Arc::default(),
        }
    }

    /// Draws with `random` instead (seeded in tests).
    pub fn with_random(mut self, random: Random) -> Self {
        self.random = random;
        self
    }

    /// Counts injected faults in `stats`.
    pub fn with_stats(mut self, stats: Arc<ClientStats>) -> Self {
        self.stats = stats;
        self
    }
}

impl<S> Layer<S> for FaultLayer {
    type Service = FaultInjection<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FaultInjection {
            inner,
            fault: self.fault.clone(),
            random: self.random.clone(),
            stats: self.stats.clone(),
        }
    }
}

/// Service injecting delays and aborts before `inner`.
#[derive(Clone, Debug)]
pub struct FaultInjection<S> {
    inner: S,
    fault: Arc<Fault>,
    random: Random,
    stats: Arc<ClientStats>,
}

impl<S> FaultInjection<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, B> Service<Request<B>> for FaultInjection<S>
where
    S: Service<Request<B>, Response = Response<BoxBody>> + Clone,
{
    type Response = Response<BoxBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let delay = self
            .fault
            .delay
            .as_ref()
            .filter(|d| self.random.percent(d.percent))
            .map(|d| d.fixed_delay);
        let abort = self
            .fault
            .abort
            .as_ref()
            .filter(|a| self.random.percent(a.percent))
            .map(|a| (a.status, a.grpc_status));
        if let Some(d) = delay {
            self.stats.faults_delayed.incr();
            tracing::debug!(
                fault_injected = "delay",
                delay_ms = d.as_millis() as u64,
                "fault delay injected"
            );
        }
        if let Some((status, _)) = abort {
            self.stats.faults_aborted.incr();
            tracing::debug!(
                fault_injected = "abort",
                status = status.as_u16(),
                "fault abort injected"
            );
        }
        let state = match (delay, abort) {
            (None, None) => State::Inner {
                future: self.inner.call(request),
            },
            (None, Some(status)) => State::Abort {
                status: Some(status),
            },
            (Some(d), abort) => {
                // The ready clone serves the request after the delay; `self` keeps a fresh clone.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                State::Delay {
                    sleep: Box::pin(tokio::time::sleep(d)),
                    pending: Some((inner, request)),
                    abort,
                }
            }
        };
        ResponseFuture {
            state,
            delayed: delay.is_some(),
        }
    }
}

/// An abort's HTTP status, and its gRPC status when `grpcStatus` is set.
type Abort = (StatusCode, Option<mesh_core::grpc::Code>);

pin_project_lite::pin_project! {
    /// Response future of [`FaultInjection`].
    pub struct ResponseFuture<S: Service<Request<B>>, B> {
        #[pin]
        state: State<S, B>,
        delayed: bool,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<S: Service<Request<B>>, B> {
        Delay { sleep: Pin<Box<Sleep>>, pending: Option<(S, Request<B>)>, abort: Option<Abort> },
        Abort { status: Option<Abort> },
        Inner { #[pin] future: S::Future },
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<BoxBody>>,
{
    type Output = Result<Response<BoxBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Delay {
                    sleep,
                    pending,
                    abort,
                } => {
                    std::task::ready!(sleep.as_mut().poll(cx));
                    let next = match (abort.take(), pending.take()) {
                        (Some(status), _) => State::Abort {
                            status: Some(status),
                        },
                        (None, Some((mut svc, req))) => State::Inner {
                            future: svc.call(req),
                        },
                        // Only reachable if polled after completion.
                        (None, None) => State::Abort {
                            status: Some((StatusCode::INTERNAL_SERVER_ERROR, None)),
                        },
                    };
                    this.state.set(next);
                }
                StateProj::Abort { status } => {
                    let (status, grpc) = status
                        .take()
                        .unwrap_or((StatusCode::INTERNAL_SERVER_ERROR, None));
                    let mut response = rescue(&FaultAbort::new(status, grpc));
                    if *this.delayed {
                        add_flag(&mut response, "DI");
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Inner { future } => {
                    let mut response = std::task::ready!(future.poll(cx))?;
                    if *this.delayed {
                        add_flag(&mut response, "DI");
                    }
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
