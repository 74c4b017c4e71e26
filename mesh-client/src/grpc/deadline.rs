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
/// is already over is returned as it is (a trailers-only answer, a unary reply read whole).
pub(crate) fn until(body: BoxBody, at: Instant, stats: &Arc<ClientStats>) -> BoxBody {
    if body.is_end_stream() {
        return body;
    }
    http_body_util::BodyExt::boxed_unsync(DeadlineBody {
        state: State::Streaming(body),
        at,
        sleep: None,
        stats: Arc::clone(stats),
    })
}

enum State {
    Streaming(BoxBody),
    /// The deadline passed: the trailers are next.
    Expired,
    Done,
}

struct DeadlineBody {
    state: State,
    at: Instant,
    /// Made the first time the body waits: a unary reply that is whole when first polled never
    /// arms a timer.
    sleep: Option<Pin<Box<Sleep>>>,
    stats: Arc<ClientStats>,
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match &mut this.state {
            State::Done => return Poll::Ready(None),
            State::Expired => {
                this.state = State::Done;
                let mut trailers = HeaderMap::new();
                grpc::set_trailers_only(&mut trailers, Code::DeadlineExceeded, MESSAGE);
                trailers.remove(http::header::CONTENT_TYPE);
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
            State::Streaming(inner) => {
                if let Poll::Ready(frame) = Pin::new(inner).poll_frame(cx) {
                    if !matches!(&frame, Some(Ok(f)) if f.is_data()) {
                        this.state = State::Done;
                    }
                    return Poll::Ready(frame);
                }
            }
        }
        let at = this.at;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        ready!(sleep.as_mut().poll(cx));
        this.stats.timeouts.incr();
        tracing::debug!(
            timed_out = true,
            "deadline passed while the answer streamed: ending it DEADLINE_EXCEEDED"
        );
        // Dropping the upstream's body resets its stream.
        this.state = State::Expired;
        self.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            State::Streaming(inner) => inner.is_end_stream(),
            State::Expired => false,
            State::Done => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Streaming(inner) => inner.size_hint(),
            _ => SizeHint::default(),
        }
    }
}
