//! One attempt of the retry loop: the inner service's future, with the per-try timeout's
//! backstop when there is one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use tower::Service;

use super::{PerTryTimeout, Settings};
use crate::BoxError;
use crate::body::BoxBody;
use crate::context::AttemptDeadline;

/// How long after the attempt deadline the retry layer gives up on an attempt itself.
const BACKSTOP_SLACK: std::time::Duration = std::time::Duration::from_millis(10);

/// Sends one attempt.
///
/// With a per-try timeout, the attempt carries an [`AttemptDeadline`] so the cluster ends it
/// itself (and tells outlier detection, as Envoy counts per-try timeouts against the endpoint);
/// a backstop a little later covers inner services that ignore the extension.
pub(super) fn attempt<S>(
    service: &mut S,
    mut request: Request<BoxBody>,
    settings: &Settings,
) -> Attempt<S::Future>
where
    S: Service<Request<BoxBody>>,
{
    // One clock read for the deadline and its backstop.
    let deadline = settings
        .policy
        .per_try_timeout()
        .map(|limit| tokio::time::Instant::now() + limit);
    if let Some(at) = deadline {
        request.extensions_mut().insert(AttemptDeadline { at });
    }
    let future = service.call(request);
    // Boxed: only an inner service that may ignore the deadline needs it, and the timer kept
    // out of line keeps the attempt (moved with every future above it) small.
    let backstop = deadline
        .filter(|_| !settings.deadline_kept_below)
        .map(|at| Box::pin(tokio::time::sleep_until(at + BACKSTOP_SLACK)));
    Attempt { future, backstop }
}

pin_project_lite::pin_project! {
    /// One attempt: the inner service's future, and the backstop when there is one.
    pub(super) struct Attempt<F> {
        #[pin]
        future: F,
        backstop: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<F, E> Future for Attempt<F>
where
    F: Future<Output = Result<Response<BoxBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The answer first: one that is ready wins over a backstop elapsing at the same time.
        if let Poll::Ready(result) = this.future.poll(cx) {
            return Poll::Ready(result.map_err(Into::into));
        }
        match this.backstop {
            Some(backstop) => {
                ready!(backstop.as_mut().poll(cx));
                Poll::Ready(Err(Box::new(PerTryTimeout(())) as BoxError))
            }
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests;
