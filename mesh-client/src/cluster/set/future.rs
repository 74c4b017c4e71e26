//! [`ResponseFuture`]: the future of [`Clusters`] as a tower service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};

use super::Clusters;
use crate::BoxError;
use crate::body::{BoxBody, BoxResponseFuture};
use crate::error::ClusterError;

impl tower_service::Service<Request<BoxBody>> for Clusters {
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<BoxBody>) -> ResponseFuture {
        self.send(req)
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Clusters`]: the cluster's attempt, held inline (no box).
    pub struct ResponseFuture {
        #[pin]
        state: State,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State {
        // No cluster for the request's destination.
        Error { error: Option<ClusterError> },
        Send { #[pin] future: crate::cluster::send::SendFuture },
    }
}

impl ResponseFuture {
    /// The future of the cluster's attempt.
    pub(super) fn send(future: crate::cluster::send::SendFuture) -> Self {
        Self {
            state: State::Send { future },
        }
    }

    /// A future failing at once with `error` (no cluster for the destination).
    pub(super) fn error(error: ClusterError) -> Self {
        Self {
            state: State::Error { error: Some(error) },
        }
    }

    /// This future, boxed.
    pub fn into_boxed(self) -> BoxResponseFuture {
        Box::pin(self)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Error { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(ClusterError::no_healthy_upstream)
                .into())),
            StateProj::Send { future } => future.poll(cx).map_err(BoxError::from),
        }
    }
}
