//! Response future of [`Transport::send_to`](super::Transport::send_to): hyper's future or the
//! in-process answer, named (no box of its own), the answer tagged with its [`Upstream`].

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use hyper::body::Incoming;
use mesh_core::classify::Outcome;

use crate::body::{self, BoxBody, BoxResponseFuture};
use crate::context::{ConnectionSecurity, Upstream};
use crate::error::ClusterError;

/// Response future of [`Transport::send_to`](super::Transport::send_to).
pub struct ResponseFuture {
    endpoint: SocketAddr,
    state: State,
}

enum State {
    /// The request could not be sent (an endpoint URI that does not parse).
    Failed(Option<ClusterError>),
    Hyper(hyper_util::client::legacy::ResponseFuture),
    InProcess(BoxResponseFuture),
}

impl ResponseFuture {
    pub(super) fn failed(endpoint: SocketAddr, error: ClusterError) -> Self {
        Self {
            endpoint,
            state: State::Failed(Some(error)),
        }
    }

    pub(super) fn hyper(
        endpoint: SocketAddr,
        future: hyper_util::client::legacy::ResponseFuture,
    ) -> Self {
        Self {
            endpoint,
            state: State::Hyper(future),
        }
    }

    pub(super) fn in_process(endpoint: SocketAddr, future: BoxResponseFuture) -> Self {
        Self {
            endpoint,
            state: State::InProcess(future),
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("transport::ResponseFuture")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<BoxBody>, ClusterError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every state is `Unpin` (hyper's future and the in-process one are boxed by their
        // makers).
        let endpoint = self.endpoint;
        let mut response = match &mut self.state {
            State::Failed(error) => {
                return Poll::Ready(Err(error.take().unwrap_or_else(|| {
                    ClusterError::transport(
                        Outcome::Reset,
                        endpoint,
                        "transport future polled after completion",
                    )
                })));
            }
            State::Hyper(future) => {
                let response: Response<Incoming> = ready!(Pin::new(future).poll(cx))
                    .map_err(|e| super::transport_error(endpoint, e))?;
                let mut response = response;
                let security = response
                    .extensions_mut()
                    .remove::<std::sync::Arc<ConnectionSecurity>>();
                let mut response = response.map(body::boxed);
                let mut upstream = Upstream::new(endpoint);
                upstream.security = security;
                response.extensions_mut().insert(upstream);
                return Poll::Ready(Ok(response));
            }
            State::InProcess(future) => ready!(future.as_mut().poll(cx))
                .map_err(|e| ClusterError::transport(Outcome::Reset, endpoint, e))?,
        };
        response.extensions_mut().insert(Upstream::new(endpoint));
        Poll::Ready(Ok(response))
    }
}
