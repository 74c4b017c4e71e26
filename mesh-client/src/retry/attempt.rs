//! One attempt of the retry loop: the inner service's future, with the per-try timeout's
//! backstop when there is one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use tower::Service;

use super::PerTryTimeout;
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
    per_try: Option<std::time::Duration>,
) -> Attempt<S::Future>
where
    S: Service<Request<BoxBody>>,
{
    // One clock read for the deadline and its backstop.
    let deadline = per_try.map(|limit| tokio::time::Instant::now() + limit);
    if let Some(at) = deadline {
        request.extensions_mut().insert(AttemptDeadline { at });
    }
    let future = service.call(request);
    match deadline {
        None => Attempt::Plain { future },
        Some(at) => Attempt::Timed {
            future: tokio::time::timeout_at(at + BACKSTOP_SLACK, future),
        },
    }
}

pin_project_lite::pin_project! {
    /// One attempt in flight, with its per-try backstop when there is one.
    #[project = AttemptProj]
    pub(super) enum Attempt<F> {
        Plain { #[pin] future: F },
        Timed { #[pin] future: tokio::time::Timeout<F> },
    }
}

impl<F, E> Future for Attempt<F>
where
    F: Future<Output = Result<Response<BoxBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AttemptProj::Plain { future } => future.poll(cx).map_err(Into::into),
            AttemptProj::Timed { future } => match ready!(future.poll(cx)) {
                Ok(result) => Poll::Ready(result.map_err(Into::into)),
                Err(_) => Poll::Ready(Err(Box::new(PerTryTimeout(())) as BoxError)),
            },
        }
    }
}
