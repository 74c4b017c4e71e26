use http_body::Body as _;
use http_body_util::{BodyExt as _, Empty, Full, StreamBody};

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
    assert_eq!(full("xy").collect().await.unwrap().to_bytes(), "xy");
}

/// A body of the stack's own types, to find again.
struct Probe(Option<Bytes>);

impl Body for Probe {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
    }
}

#[tokio::test]
async fn a_box_body_is_found_again_and_not_boxed_twice() {
    let body = BoxBody::wrapping(Probe(Some(Bytes::from_static(b"p"))));
    assert!(body.downcast_ref::<Probe>().is_some());
    assert!(body.downcast_ref::<Full<Bytes>>().is_none());
    let again = boxed(body);
    assert!(again.downcast_ref::<Probe>().is_some(), "boxed once only");
    assert_eq!(again.collect().await.unwrap().to_bytes(), "p");
}

#[tokio::test]
async fn trailers_and_errors_come_through() {
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let frames = [
        Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"a"))),
        Ok(Frame::trailers(trailers)),
    ];
    let collected = boxed(StreamBody::new(futures_util::stream::iter(frames)))
        .collect()
        .await
        .unwrap();
    assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
    let failing = [Err::<Frame<Bytes>, BoxError>("reset".into())];
    let error = boxed(StreamBody::new(futures_util::stream::iter(failing)))
        .collect()
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "reset");
}
