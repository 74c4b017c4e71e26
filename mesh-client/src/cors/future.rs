use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{HeaderValue, Response};
use pin_project_lite::pin_project;

use super::Rendered;

pin_project! {
    /// Response future of [`Cors`](super::Cors): a preflight answered by the layer, or the inner
    /// call with the CORS headers added to its answer.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Answered { response: Option<Response<B>> },
        Forward {
            #[pin]
            inner: F,
            decorate: Option<(Arc<Rendered>, HeaderValue)>,
        },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn answered(response: Response<B>) -> Self {
        Self {
            state: State::Answered {
                response: Some(response),
            },
        }
    }

    pub(super) fn forward(inner: F, decorate: Option<(Arc<Rendered>, HeaderValue)>) -> Self {
        Self {
            state: State::Forward { inner, decorate },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Answered { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                None => Poll::Pending, // polled after completion
            },
            StateProj::Forward { inner, decorate } => {
                let mut response = ready!(inner.poll(cx))?;
                if let Some((rendered, origin)) = decorate.take() {
                    rendered.decorate(response.headers_mut(), origin);
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}
