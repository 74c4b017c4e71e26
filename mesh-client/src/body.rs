//! The body and response-future types used inside the client stack.
//!
//! [`BoxBody`] is a boxed, type-erased body, as `http_body_util`'s `UnsyncBoxBody` is (the same
//! size: one pointer to the body and one to its table), that the stack can also look into: the
//! answer of an attempt is the cluster's own body type, and the layers above it that end or
//! watch a gRPC answer (the call's deadline, the status in its trailers) set that up in the
//! body that is already there rather than box a wrapper of their own around it.
//!
//! ```
//! use http_body::Body as _;
//! use mesh_client::body;
//!
//! let body = body::full("hello");
//! assert_eq!(body.size_hint().exact(), Some(5));
//! assert!(body::empty().is_end_stream());
//! ```

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty, Full};

use crate::BoxError;

/// Any body of the stack, seen as [`Any`] too (to find the cluster's own answer body).
trait AnyBody: Body<Data = Bytes, Error = BoxError> + Send + 'static {
    fn as_any(&self) -> &dyn Any;
}

impl<B> AnyBody for B
where
    B: Body<Data = Bytes, Error = BoxError> + Send + 'static,
{
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A boxed, type-erased HTTP body: what requests and responses carry inside the stack (see the
/// [module docs](self)).
pub struct BoxBody(Pin<Box<dyn AnyBody>>);

impl BoxBody {
    /// Any body whose error converts into [`BoxError`], as [`boxed`] makes it.
    pub fn new<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        boxed(body)
    }

    /// A body of the stack boxed as it is (even when it says it is over, so that a layer's
    /// wrapper sees the end).
    #[inline]
    pub(crate) fn wrapping<B>(body: B) -> Self
    where
        B: Body<Data = Bytes, Error = BoxError> + Send + 'static,
    {
        BoxBody(Box::pin(body))
    }

    /// The body as a `T`, when it is one.
    pub(crate) fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.0.as_ref().get_ref().as_any().downcast_ref::<T>()
    }
}

impl Default for BoxBody {
    fn default() -> Self {
        empty()
    }
}

impl fmt::Debug for BoxBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxBody")
    }
}

impl Body for BoxBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.0.as_mut().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// The boxed response future of the type-erased parts of the stack (route stacks, the cluster,
/// retries, mirroring, the in-process transport): one name for one type.
pub type BoxResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<BoxBody>, BoxError>> + Send>>;

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> BoxBody {
    BoxBody::wrapping(Full::new(bytes.into()).map_err(|never| match never {}))
}

/// An empty body (of no size: boxed without an allocation).
pub fn empty() -> BoxBody {
    BoxBody::wrapping(Empty::<Bytes>::new().map_err(|never| match never {}))
}

/// Boxes any body whose error converts into [`BoxError`]. A body that is already over (no
/// data, no trailers: a GET's) becomes [`empty`], and a [`BoxBody`] stays as it is: neither
/// costs an allocation.
pub fn boxed<B>(body: B) -> BoxBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if body.is_end_stream() {
        return empty();
    }
    let mut body = Some(body);
    if let Some(ours) = (&mut body as &mut dyn Any)
        .downcast_mut::<Option<BoxBody>>()
        .and_then(Option::take)
    {
        return ours;
    }
    match body {
        Some(body) => BoxBody::wrapping(body.map_err(Into::into)),
        None => empty(),
    }
}

#[cfg(test)]
mod tests;
