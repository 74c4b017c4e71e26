use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::Request;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::custom::{CheckFuture, CheckResponse};
use super::error::Denied;
use crate::BoxError;

pin_project! {
    /// Response future of [`Authorization`](super::Authorization).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        // Refused before the inner service was called.
        Denied { error: Option<Denied> },
        // Waiting for the CUSTOM provider; then DENY/ALLOW's outcome applies.
        Checking {
            check: CheckFuture,
            then: Option<(S, Request<B>, Result<(), Denied>, Arc<str>)>,
        },
        // The inner service answers.
        Inner { #[pin] fut: S::Future },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(super) fn denied(error: Denied) -> Self {
        Self {
            state: State::Denied { error: Some(error) },
        }
    }

    pub(super) fn checking(
        check: CheckFuture,
        inner: S,
        req: Request<B>,
        then: Result<(), Denied>,
        policy: Arc<str>,
    ) -> Self {
        Self {
            state: State::Checking {
                check,
                then: Some((inner, req, then, policy)),
            },
        }
    }

    pub(super) fn inner(fut: S::Future) -> Self {
        Self {
            state: State::Inner { fut },
        }
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Denied { error } => {
                    let error = error.take().unwrap_or(Denied::new(None));
                    return Poll::Ready(Err(error.into()));
                }
                StateProj::Checking { check, then } => {
                    let answer = ready!(check.as_mut().poll(cx));
                    let Some((mut inner, req, sync, policy)) = then.take() else {
                        // Polled again after completion: nothing left to do but refuse.
                        return Poll::Ready(Err(Denied::new(None).into()));
                    };
                    let next = match (answer, sync) {
                        (CheckResponse::Deny { status, body }, _) => {
                            tracing::debug!(%status, %policy, "denied by custom authorization provider");
                            State::Denied {
                                error: Some(Denied {
                                    policy: Some(policy),
                                    custom: Some((status, body)),
                                }),
                            }
                        }
                        (CheckResponse::Allow, Err(denied)) => State::Denied {
                            error: Some(denied),
                        },
                        (CheckResponse::Allow, Ok(())) => State::Inner {
                            fut: inner.call(req),
                        },
                    };
                    this.state.set(next);
                }
                StateProj::Inner { fut } => return fut.poll(cx).map_err(Into::into),
            }
        }
    }
}
