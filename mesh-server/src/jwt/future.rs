//! The response future of [`Jwt`](super::Jwt).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::Response;
use pin_project_lite::pin_project;

pin_project! {
    /// Either the inner service's future, a ready 401, or (rarely) a wait for JWKS keys followed
    /// by the inner call.
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        Inner { #[pin] fut: F },
        Reject { res: Option<Response<B>> },
        Wait { fut: BoxFuture<'static, Result<Response<B>, E>> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn inner(fut: F) -> Self {
        Self {
            kind: Kind::Inner { fut },
        }
    }

    pub(crate) fn reject(res: Response<B>) -> Self {
        Self {
            kind: Kind::Reject { res: Some(res) },
        }
    }

    pub(crate) fn wait(fut: BoxFuture<'static, Result<Response<B>, E>>) -> Self {
        Self {
            kind: Kind::Wait { fut },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { fut } => fut.poll(cx),
            #[allow(clippy::expect_used)]
            KindProj::Reject { res } => {
                // A future is not polled again after it returned Ready.
                Poll::Ready(Ok(res
                    .take()
                    .expect("jwt ResponseFuture polled after completion"))) // invariant: see above
            }
            KindProj::Wait { fut } => fut.as_mut().poll(cx),
        }
    }
}
