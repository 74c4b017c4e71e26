//! A response body that holds the attempt's pool permit and in-flight count until it ends.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::Cluster;
use crate::BoxError;
use crate::body::BoxBody;
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

struct Guarded {
    inner: AnswerBody,
    guard: Option<InFlight>,
}

/// The transport's body and the guard, boxed together once.
pub(super) fn guarded(inner: AnswerBody, guard: InFlight) -> BoxBody {
    crate::body::boxed(Guarded {
        inner,
        guard: Some(guard),
    })
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
