use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::error::RateLimited;
use crate::BoxError;

pin_project! {
    /// Response future of [`RateLimit`](super::RateLimit).
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = Proj]
    enum State<F> {
        // Over the limit: fails at once.
        Limited { error: Option<RateLimited> },
        // Admitted: the inner service answers.
        Inner { #[pin] fut: F },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn limited(error: RateLimited) -> Self {
        Self {
            state: State::Limited { error: Some(error) },
        }
    }

    pub(super) fn inner(fut: F) -> Self {
        Self {
            state: State::Inner { fut },
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            Proj::Limited { error } => match error.take() {
                Some(e) => Poll::Ready(Err(e.into())),
                None => Poll::Ready(Err("rate limit future polled after completion".into())),
            },
            Proj::Inner { fut } => fut.poll(cx).map_err(Into::into),
        }
    }
}
