//! A gRPC response stream ended at its call's deadline.
//!
//! The route timeout and the caller's `grpc-timeout` bound the whole call, and a streaming
//! call's answer goes on after its head: at the deadline the rest of the stream is dropped
//! (which resets the upstream's h2 stream, so the upstream stops) and the caller's stream ends
//! with trailers `grpc-status: 4` (DEADLINE_EXCEEDED), `grpc-message: upstream request
//! timeout`. Envoy resets the downstream stream instead (a gRPC client then reads CANCELLED or
//! INTERNAL); a proxyless mesh owns the caller's body and can end it with the status gRPC
//! defines for an expired deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use mesh_core::grpc::{self, Code};
use tokio::time::{Instant, Sleep};

use crate::BoxError;
use crate::body::BoxBody;
use crate::stats::ClientStats;

/// The message of the trailers a deadline ends a stream with (Envoy's text for a timeout).
const MESSAGE: &str = "upstream request timeout";

/// `body`, ended with DEADLINE_EXCEEDED trailers if it is still streaming at `at`. A body that
/// is already over is returned as it is (a trailers-only answer, a unary reply read whole); the
/// cluster's own answer body keeps the deadline itself ([`Answer::end_at`]), with no wrapper.
///
/// [`Answer::end_at`]: crate::cluster::Answer::end_at
pub(crate) fn until(body: BoxBody, at: Instant, stats: &Arc<ClientStats>) -> BoxBody {
    if body.is_end_stream() {
        return body;
    }
    let mut deadline = Some(Deadline::new(at, stats));
    if let Some(answer) = body.downcast_ref::<crate::cluster::Answer>() {
        answer.end_at(&mut deadline);
    }
    match deadline {
        None => body,
        Some(deadline) => BoxBody::wrapping(DeadlineBody {
            inner: Some(body),
            deadline,
        }),
    }
}

/// A call's deadline over the body of its answer: what [`DeadlineBody`] and the cluster's
/// answer body keep to end the stream at the deadline.
pub(crate) struct Deadline {
    at: Instant,
    /// Made the first time the body waits: a unary reply that is whole when first polled never
    /// arms a timer.
    sleep: Option<Pin<Box<Sleep>>>,
    stats: Arc<ClientStats>,
    /// The deadline passed and the body was dropped: the trailers are next (`false` once sent).
    expired: bool,
}

impl Deadline {
    pub(crate) fn new(at: Instant, stats: &Arc<ClientStats>) -> Self {
        Self {
            at,
            sleep: None,
            stats: Arc::clone(stats),
            expired: false,
        }
    }

    /// The next frame of `inner`, which is dropped once it ended or at the deadline; the
    /// DEADLINE_EXCEEDED trailers then take the rest of the stream's place.
    pub(crate) fn poll_frame<B>(
        &mut self,
        inner: &mut Option<B>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>>
    where
        B: Body<Data = Bytes, Error = BoxError> + Unpin,
    {
        let Some(body) = inner.as_mut() else {
            if std::mem::take(&mut self.expired) {
                let mut trailers = HeaderMap::new();
                grpc::set_trailers_only(&mut trailers, Code::DeadlineExceeded, MESSAGE);
                trailers.remove(http::header::CONTENT_TYPE);
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
            return Poll::Ready(None);
        };
        if let Poll::Ready(frame) = Pin::new(body).poll_frame(cx) {
            if !matches!(&frame, Some(Ok(f)) if f.is_data()) {
                *inner = None;
            }
            return Poll::Ready(frame);
        }
        let at = self.at;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        ready!(sleep.as_mut().poll(cx));
        self.stats.timeouts.incr();
        tracing::debug!(
            timed_out = true,
            "deadline passed while the answer streamed: ending it DEADLINE_EXCEEDED"
        );
        // Dropping the upstream's body resets its stream.
        *inner = None;
        self.expired = true;
        self.poll_frame(inner, cx)
    }

    /// Whether the stream is over: `inner` ended, and no trailers are left to send.
    pub(crate) fn is_end_stream<B: Body>(&self, inner: &Option<B>) -> bool {
        match inner {
            Some(body) => body.is_end_stream(),
            None => !self.expired,
        }
    }
}

/// A body ended at its call's deadline (see [`until`]).
struct DeadlineBody {
    inner: Option<BoxBody>,
    deadline: Deadline,
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        this.deadline.poll_frame(&mut this.inner, cx)
    }

    fn is_end_stream(&self) -> bool {
        self.deadline.is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(inner) => inner.size_hint(),
            None => SizeHint::default(),
        }
    }
}
