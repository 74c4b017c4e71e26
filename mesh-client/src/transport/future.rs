//! Response future of [`Transport::send_to`](super::Transport::send_to): hyper's future or the
//! in-process answer, named (no box of its own), the answer tagged with its [`Upstream`].

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::Response;
use hyper::body::Incoming;
use mesh_core::classify::Outcome;

use crate::BoxError;
use crate::body::{self, BoxBody, BoxResponseFuture};
use crate::context::{ConnectionSecurity, Upstream};
use crate::error::ClusterError;

/// Response future of [`Transport::send_to`](super::Transport::send_to).
pub struct ResponseFuture {
    endpoint: SocketAddr,
    state: State,
    /// The request's emptied extension map, for the answer's `Upstream` (see
    /// `super::spare_extensions`).
    spare: Option<http::Extensions>,
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
            spare: None,
        }
    }

    pub(super) fn hyper(
        endpoint: SocketAddr,
        future: hyper_util::client::legacy::ResponseFuture,
        spare: Option<http::Extensions>,
    ) -> Self {
        Self {
            endpoint,
            state: State::Hyper(future),
            spare,
        }
    }

    pub(super) fn in_process(
        endpoint: SocketAddr,
        future: BoxResponseFuture,
        spare: Option<http::Extensions>,
    ) -> Self {
        Self {
            endpoint,
            state: State::InProcess(future),
            spare,
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

impl ResponseFuture {
    /// The answer with its body as the transport got it (not boxed yet): the cluster wraps it
    /// with its in-flight guard and boxes the two once.
    pub(crate) fn poll_answer(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Response<AnswerBody>, ClusterError>> {
        // Every state is `Unpin` (hyper's future and the in-process one are boxed by their
        // makers).
        let endpoint = self.endpoint;
        let response = match &mut self.state {
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
                let mut response = response.map(AnswerBody::Incoming);
                let mut upstream = Upstream::new(endpoint);
                upstream.security = security;
                tag(response.extensions_mut(), self.spare.take(), upstream);
                return Poll::Ready(Ok(response));
            }
            State::InProcess(future) => ready!(future.as_mut().poll(cx))
                .map_err(|e| ClusterError::transport(Outcome::Reset, endpoint, e))?,
        };
        let mut response = response.map(AnswerBody::Boxed);
        tag(
            response.extensions_mut(),
            self.spare.take(),
            Upstream::new(endpoint),
        );
        Poll::Ready(Ok(response))
    }
}

/// Puts `upstream` on an answer: into the request's spare map when the answer has none of its
/// own to keep (its values would otherwise be lost: a map with any is kept).
fn tag(ext: &mut http::Extensions, spare: Option<http::Extensions>, upstream: Upstream) {
    if let Some(spare) = spare
        && ext.is_empty()
    {
        *ext = spare;
    }
    ext.insert(upstream);
}

impl Future for ResponseFuture {
    type Output = Result<Response<BoxBody>, ClusterError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let answer = ready!(self.poll_answer(cx))?;
        Poll::Ready(Ok(answer.map(AnswerBody::boxed)))
    }
}

/// [`ResponseFuture`] answering with the body as the transport got it (`ResponseFuture::poll_answer`).
#[derive(Debug)]
pub(crate) struct AnswerFuture(pub(crate) ResponseFuture);

impl Future for AnswerFuture {
    type Output = Result<Response<AnswerBody>, ClusterError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_answer(cx)
    }
}

/// An answer's body as the transport got it: a connection's, or the in-process answer's.
pub(crate) enum AnswerBody {
    /// From a hyper connection.
    Incoming(Incoming),
    /// An in-process answer's (boxed by its maker).
    Boxed(BoxBody),
}

impl AnswerBody {
    /// The body boxed (a connection's once; an in-process one is boxed already).
    pub(crate) fn boxed(self) -> BoxBody {
        match self {
            AnswerBody::Incoming(b) => body::boxed(b),
            AnswerBody::Boxed(b) => b,
        }
    }
}

impl http_body::Body for AnswerBody {
    type Data = Bytes;
    type Error = BoxError;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        // Both are `Unpin`.
        match self.get_mut() {
            AnswerBody::Incoming(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            AnswerBody::Boxed(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            AnswerBody::Incoming(b) => b.is_end_stream(),
            AnswerBody::Boxed(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            AnswerBody::Incoming(b) => b.size_hint(),
            AnswerBody::Boxed(b) => b.size_hint(),
        }
    }
}
