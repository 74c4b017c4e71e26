use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::PathRefused;
use crate::BoxError;

pin_project! {
    /// Response future of [`Normalize`](super::Normalize): the inner call, or the refusal.
    pub struct NormalizeFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Called { #[pin] fut: F },
        Refused { error: PathRefused },
    }
}

impl<F> NormalizeFuture<F> {
    pub(super) fn called(fut: F) -> Self {
        Self {
            state: State::Called { fut },
        }
    }

    pub(super) fn refused(error: PathRefused) -> Self {
        Self {
            state: State::Refused { error },
        }
    }
}

impl<F, T, E> Future for NormalizeFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called { fut } => fut.poll(cx).map_err(Into::into),
            StateProj::Refused { error } => Poll::Ready(Err((*error).into())),
        }
    }
}
