//! The body and response-future types used inside the client stack.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};

use crate::BoxError;

/// A boxed, type-erased HTTP body: what requests and responses carry inside the stack.
pub type BoxBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// The boxed response future of the type-erased parts of the stack (route stacks, the cluster,
/// retries, mirroring, the in-process transport): one name for one type.
pub type BoxResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<BoxBody>, BoxError>> + Send>>;

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> BoxBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> BoxBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Boxes any body whose error converts into [`BoxError`]. A body that is already over (no
/// data, no trailers: a GET's) becomes [`empty`], which costs no allocation.
pub fn boxed<B>(body: B) -> BoxBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if body.is_end_stream() {
        return empty();
    }
    body.map_err(Into::into).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use http_body::Body as _;

    use super::*;

    #[tokio::test]
    async fn boxed_keeps_data_and_ends() {
        let b = boxed(Full::new(Bytes::from_static(b"abc")));
        assert_eq!(b.size_hint().exact(), Some(3));
        assert_eq!(b.collect().await.unwrap().to_bytes(), "abc");
        let e = boxed(Full::new(Bytes::new()));
        assert!(e.is_end_stream());
        assert_eq!(e.size_hint().exact(), Some(0));
        assert!(boxed(Empty::<Bytes>::new()).is_end_stream());
    }
}
