//! The cluster's answer body: the transport's body, holding the attempt's pool permit and
//! in-flight count until it ends; the layers above that end or watch a gRPC answer (the call's
//! deadline, the status in its trailers) set that up in it (see [`crate::body`]), so a gRPC
//! answer is boxed once, as an HTTP one is.

use std::cell::Cell;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use mesh_telemetry::grpc_status::GrpcStatusWatch;

use super::Cluster;
use crate::BoxError;
use crate::body::BoxBody;
use crate::grpc::deadline::Deadline;
use crate::pool::Permit;
use crate::transport::AnswerBody;

/// One request in flight at an endpoint: counted by the balancer, holding pool permits.
#[derive(Debug)]
pub(super) struct InFlight {
    cluster: Arc<Cluster>,
    index: usize,
    _permit: Permit,
}

impl InFlight {
    pub(super) fn new(cluster: Arc<Cluster>, index: usize, permit: Permit) -> Self {
        Self {
            cluster,
            index,
            _permit: permit,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.cluster.balancer.end(self.index, None);
    }
}

/// The body of an attempt's answer, as the cluster gives it.
pub(crate) struct Answer {
    /// `None` once it ended, or at the deadline.
    inner: Option<AnswerBody>,
    guard: Option<InFlight>,
    /// The call's deadline (set by the route timeout through a shared reference, before the
    /// body is first polled: hence the cells; the body is polled through `&mut`).
    deadline: Cell<Option<Deadline>>,
    /// The client telemetry's record of a gRPC call, made at its trailers. Inline, it makes
    /// every answer's box some 150 bytes larger (HTTP ones too, measured at +35 instructions
    /// per hop against a box of its own); boxed, a gRPC call pays an allocation again.
    watch: Cell<Option<GrpcStatusWatch>>,
}

/// The transport's body and the guard, boxed together once; a body that is already over is
/// the empty body, and releases the guard now.
#[inline]
pub(super) fn guarded(inner: AnswerBody, guard: InFlight) -> BoxBody {
    if inner.is_end_stream() {
        return crate::body::empty();
    }
    BoxBody::wrapping(Answer {
        inner: Some(inner),
        guard: Some(guard),
        deadline: Cell::new(None),
        watch: Cell::new(None),
    })
}

impl Answer {
    /// Ends the body at the deadline in `deadline` (as [`crate::grpc::deadline::until`] would),
    /// taking it, unless the body has a deadline or a watch already: a deadline set now would
    /// act before them, where a wrapper around the body acts after them (it is then left
    /// there, for a wrapper).
    pub(crate) fn end_at(&self, deadline: &mut Option<Deadline>) {
        let (old, watch) = (self.deadline.take(), self.watch.take());
        let free = old.is_none() && watch.is_none();
        self.watch.set(watch);
        self.deadline.set(if free { deadline.take() } else { old });
    }

    /// Shows every frame to the watch in `watch` (as a `GrpcStatusBody` would), taking it,
    /// unless one watches already (it is then left there, for a wrapper).
    pub(crate) fn watch(&self, watch: &mut Option<GrpcStatusWatch>) {
        let old = self.watch.take();
        if old.is_some() {
            self.watch.set(old);
        } else {
            self.watch.set(watch.take());
        }
    }
}

impl Body for Answer {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let frame = match this.deadline.get_mut() {
            Some(deadline) => ready!(deadline.poll_frame(&mut this.inner, cx)),
            None => match this.inner.as_mut() {
                Some(inner) => ready!(Pin::new(inner).poll_frame(cx)),
                None => None,
            },
        };
        if this.inner.is_none() || matches!(frame, None | Some(Err(_))) {
            this.guard = None;
        }
        if let Some(watch) = this.watch.get_mut() {
            watch.observe(&frame);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        // Only `&self`: the deadline is looked at by taking it out of its cell and back.
        let deadline = self.deadline.take();
        let ended = match &deadline {
            Some(deadline) => deadline.is_end_stream(&self.inner),
            None => self.inner.as_ref().is_none_or(AnswerBody::is_end_stream),
        };
        self.deadline.set(deadline);
        ended
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(SizeHint::default, AnswerBody::size_hint)
    }
}
