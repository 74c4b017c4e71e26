//! One attempt through a [`Cluster`]: pool limits, pick, transport, classify; as a named future
//! ([`SendFuture`]) holding the transport's future inline. Only a request that must wait in the
//! pending queue (every connection busy) boxes that wait.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use mesh_core::classify::Outcome;
use mesh_core::policy::Destination;
use tokio::time::Instant;

use super::{Cluster, body};
use crate::balance::RequestKey;
use crate::body::BoxBody;
use crate::context::{AttemptDeadline, PreviousAttempts, Target, Upstream};
use crate::error::ClusterError;
use crate::pool::Permit;
use crate::transport;

type Wait = Pin<Box<dyn Future<Output = Result<Permit, ClusterError>> + Send>>;

impl Cluster {
    /// Sends one attempt: pool limits, pick, transport, classify. An [`AttemptDeadline`]
    /// extension bounds it (pending wait included) with `Outcome::Timeout`.
    pub fn send(self: Arc<Self>, req: Request<BoxBody>) -> SendFuture {
        let deadline = req.extensions().get::<AttemptDeadline>().map(|d| d.at);
        let target = req
            .extensions()
            .get::<Target>()
            .map(|t| Arc::clone(&t.destination));
        let state = match self.pool.acquire_now() {
            Some(acquired) => match acquired.map_err(|o| self.overflow(o)) {
                Ok(permit) => self.start(req, permit, deadline),
                Err(e) => State::Done { error: Some(e) },
            },
            // Every connection busy: wait in the pending queue (boxed, off the usual path).
            None => {
                let cluster = Arc::clone(&self);
                let wait: Wait = Box::pin(async move {
                    let acquire = cluster.pool.acquire();
                    let acquired = match deadline {
                        Some(at) => tokio::time::timeout_at(at, acquire)
                            .await
                            .map_err(|e| timeout(None, e))?,
                        None => acquire.await,
                    };
                    acquired.map_err(|o| cluster.overflow(o))
                });
                State::Waiting {
                    wait,
                    req: Some(req),
                }
            }
        };
        SendFuture {
            cluster: self,
            deadline,
            target,
            state,
        }
    }

    fn overflow(&self, o: crate::pool::Overflow) -> ClusterError {
        tracing::debug!(cluster = %self.name, limit = o.limit, "overflow");
        ClusterError {
            outcome: Outcome::Overflow,
            endpoint: None,
            source: Some(Box::new(o)),
        }
    }

    /// Picks the endpoint and hands the request to the transport.
    fn start(
        self: &Arc<Self>,
        req: Request<BoxBody>,
        permit: Permit,
        deadline: Option<Instant>,
    ) -> State {
        let key = match self.balancer.hash_policy() {
            Some(p) => p.request_key(&req, self.balancer.rng()),
            None => RequestKey::None,
        };
        let avoid = req
            .extensions()
            .get::<PreviousAttempts>()
            .map_or(&[][..], |p| &p.endpoints[..]);
        let picked = self
            .pick(key.hash(), avoid)
            .and_then(|i| Some((i, self.balancer.endpoint(i)?.addr)));
        let Some((index, endpoint)) = picked else {
            return State::Done {
                error: Some(ClusterError::no_healthy_upstream()),
            };
        };
        self.balancer.begin(index);
        let in_flight = body::InFlight::new(Arc::clone(self), index, permit);
        // The clock is read only for a balancer that learns from latency (peak EWMA): the
        // default, least request, counts requests in flight and nothing else.
        let started = self.balancer.learns_latency().then(Instant::now);
        let authority = self.authorities.get(index).and_then(Option::as_ref);
        let sent = transport::AnswerFuture(self.transport.send_to(
            endpoint,
            authority,
            self.host.as_ref(),
            req,
        ));
        let sent = match deadline {
            Some(at) => Sending::Timed {
                future: tokio::time::timeout_at(at, sent),
            },
            None => Sending::Plain { future: sent },
        };
        State::Sending {
            sent,
            attempt: Some(Attempt {
                in_flight,
                index,
                endpoint,
                key,
                started,
            }),
        }
    }
}

/// What an attempt in flight keeps for its answer.
struct Attempt {
    in_flight: body::InFlight,
    index: usize,
    endpoint: SocketAddr,
    key: RequestKey,
    /// When the attempt was sent, for a balancer that learns from latency.
    started: Option<Instant>,
}

pin_project_lite::pin_project! {
    /// Response future of [`Cluster::send`].
    pub struct SendFuture {
        cluster: Arc<Cluster>,
        deadline: Option<Instant>,
        // The request's destination, named on the answer's `Upstream`.
        target: Option<Arc<Destination>>,
        #[pin]
        state: State,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State {
        Waiting { wait: Wait, req: Option<Request<BoxBody>> },
        Sending { #[pin] sent: Sending, attempt: Option<Attempt> },
        Done { error: Option<ClusterError> },
    }
}

pin_project_lite::pin_project! {
    #[project = SendingProj]
    enum Sending {
        Plain { #[pin] future: transport::AnswerFuture },
        Timed { #[pin] future: tokio::time::Timeout<transport::AnswerFuture> },
    }
}

impl fmt::Debug for SendFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("cluster::SendFuture")
            .field("cluster", &self.cluster.name)
            .finish()
    }
}

impl Future for SendFuture {
    type Output = Result<Response<BoxBody>, ClusterError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let this = self.as_mut().project();
            match this.state.project() {
                StateProj::Waiting { wait, req } => {
                    let permit = ready!(wait.as_mut().poll(cx));
                    let next = match (permit, req.take()) {
                        (Ok(permit), Some(req)) => this.cluster.start(req, permit, *this.deadline),
                        (Err(e), _) => State::Done { error: Some(e) },
                        (Ok(_), None) => State::Done { error: None },
                    };
                    self.as_mut().project().state.set(next);
                }
                StateProj::Sending { sent, attempt } => {
                    let result = match sent.project() {
                        SendingProj::Plain { future } => ready!(future.poll(cx)),
                        SendingProj::Timed { future } => {
                            ready!(future.poll(cx)).unwrap_or_else(|e| {
                                Err(timeout(attempt.as_ref().map(|a| a.endpoint), e))
                            })
                        }
                    };
                    let Some(attempt) = attempt.take() else {
                        return Poll::Ready(Err(lost()));
                    };
                    let result = this.cluster.answered(result, attempt, this.target.take());
                    self.as_mut()
                        .project()
                        .state
                        .set(State::Done { error: None });
                    return Poll::Ready(result);
                }
                StateProj::Done { error } => {
                    return Poll::Ready(Err(error.take().unwrap_or_else(lost)));
                }
            }
        }
    }
}

impl Cluster {
    /// Feeds the attempt's outcome to outlier detection and the balancer; an answer's body
    /// then holds the in-flight count until it ends.
    fn answered(
        self: &Arc<Self>,
        result: Result<Response<transport::AnswerBody>, ClusterError>,
        attempt: Attempt,
        target: Option<Arc<Destination>>,
    ) -> Result<Response<BoxBody>, ClusterError> {
        let Attempt {
            in_flight,
            index,
            endpoint,
            key,
            started,
        } = attempt;
        match result {
            Ok(mut resp) => {
                let outcome = crate::retry::outcome_of_response(&resp);
                if let Some(up) = resp.extensions_mut().get_mut::<Upstream>() {
                    up.labels = self.balancer.endpoint(index).and_then(|e| e.labels.clone());
                    up.destination = target;
                    up.outcome = Some(outcome);
                }
                self.record(index, outcome);
                if let Some(started) = started {
                    self.balancer.observe(index, started.elapsed());
                }
                let mut resp = resp.map(|b| body::guarded(b, in_flight));
                if let RequestKey::Generated { set_cookie, .. } = key {
                    resp.headers_mut()
                        .append(http::header::SET_COOKIE, set_cookie);
                }
                Ok(resp)
            }
            Err(e) => {
                tracing::debug!(cluster = %self.name, %endpoint, error = %e, "attempt failed");
                self.record(index, e.outcome);
                drop(in_flight);
                Err(e)
            }
        }
    }
}

fn lost() -> ClusterError {
    ClusterError::new(Outcome::Reset)
}

fn timeout(endpoint: Option<SocketAddr>, elapsed: tokio::time::error::Elapsed) -> ClusterError {
    ClusterError {
        outcome: Outcome::Timeout,
        endpoint,
        source: Some(Box::new(elapsed)),
    }
}

#[cfg(test)]
mod tests;
