use http::{HeaderValue, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use mesh_telemetry::ResponseFlags;

use super::*;
use crate::fault::FaultAbort;
use crate::rescue::{local_reply, rescue};
use crate::route::NoRoute;
use crate::timeout::RouteTimeout;

async fn read(r: Response<BoxBody>) -> (StatusCode, Option<u32>, String, Vec<u8>) {
    let status = r.status();
    let code = grpc::status_of(r.headers());
    let message = r
        .headers()
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, code, message, body)
}

#[tokio::test]
async fn local_replies_become_trailers_only() {
    let cases: Vec<(Response<BoxBody>, u32)> = vec![
        (rescue(&NoRoute(())), 12),
        (rescue(&RouteTimeout(())), 4),
        (
            rescue(&FaultAbort::new(StatusCode::SERVICE_UNAVAILABLE, None)),
            14,
        ),
        (
            rescue(&FaultAbort::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(Code::ResourceExhausted),
            )),
            8,
        ),
        (
            local_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "no healthy upstream",
                Some("UH"),
            ),
            14,
        ),
    ];
    for (reply, want) in cases {
        let answer = grpc_answer(reply);
        assert_eq!(answer.headers()["content-type"], "application/grpc");
        assert!(answer.extensions().get::<ResponseFlags>().is_some());
        let (status, code, message, body) = read(answer).await;
        assert_eq!((status, code), (StatusCode::OK, Some(want)));
        assert!(!message.is_empty());
        assert!(body.is_empty());
    }
}

#[tokio::test]
async fn upstream_answers_keep_their_grpc_status() {
    let mut own = Response::new(body::empty());
    own.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    own.headers_mut()
        .insert("grpc-status", HeaderValue::from_static("3"));
    let (status, code, _, _) = read(grpc_answer(own)).await;
    assert_eq!((status, code), (StatusCode::OK, Some(3)));

    let mut plain = Response::new(body::full(bytes::Bytes::from_static(b"{\"error\":1}")));
    *plain.status_mut() = StatusCode::BAD_GATEWAY;
    let (status, code, message, body) = read(grpc_answer(plain)).await;
    assert_eq!((status, code), (StatusCode::OK, Some(14)));
    assert!(message.contains("502"), "{message}");
    assert!(body.is_empty());

    let ok = Response::new(body::full(bytes::Bytes::from_static(b"hi")));
    let (status, code, _, body) = read(grpc_answer(ok)).await;
    assert_eq!(
        (status, code, body.as_slice()),
        (StatusCode::OK, None, &b"hi"[..])
    );
}

/// A streaming answer: the chunks sent on the returned channel, and no end until it closes.
fn streaming() -> (
    tokio::sync::mpsc::Sender<Result<http_body::Frame<bytes::Bytes>, crate::BoxError>>,
    BoxBody,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let body =
        http_body_util::StreamBody::new(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    (tx, crate::body::boxed(body))
}

#[tokio::test(start_paused = true)]
async fn a_deadline_ends_a_streaming_answer_with_deadline_exceeded() {
    let stats = std::sync::Arc::new(crate::stats::ClientStats::default());
    let (tx, body) = streaming();
    let at = tokio::time::Instant::now() + std::time::Duration::from_millis(300);
    let mut body = deadline::until(body, at, &stats);
    tx.send(Ok(http_body::Frame::data("first".into())))
        .await
        .unwrap();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "first");
    // Nothing more comes: at the deadline the stream ends with the status...
    let last = body.frame().await.unwrap().unwrap();
    let trailers = last.into_trailers().unwrap();
    assert_eq!(grpc::status_of(&trailers), Some(4));
    assert_eq!(trailers["grpc-message"], "upstream request timeout");
    assert!(body.is_end_stream());
    assert!(body.frame().await.is_none());
    assert_eq!(stats.timeouts.get(), 1);
    // ...and the upstream's body is dropped (which resets its h2 stream).
    assert!(tx.is_closed());
}

#[tokio::test(start_paused = true)]
async fn a_stream_over_before_its_deadline_keeps_its_own_end() {
    let stats = std::sync::Arc::new(crate::stats::ClientStats::default());
    let (tx, body) = streaming();
    let at = tokio::time::Instant::now() + std::time::Duration::from_millis(300);
    let body = deadline::until(body, at, &stats);
    let mut ok = http::HeaderMap::new();
    ok.insert("grpc-status", HeaderValue::from_static("0"));
    tx.send(Ok(http_body::Frame::data("only".into())))
        .await
        .unwrap();
    tx.send(Ok(http_body::Frame::trailers(ok))).await.unwrap();
    drop(tx);
    let collected = body.collect().await.unwrap();
    assert_eq!(grpc::status_of(collected.trailers().unwrap()), Some(0));
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(stats.timeouts.get(), 0);
    // A body already over is not wrapped at all.
    let done = deadline::until(crate::body::empty(), at, &stats);
    assert!(done.is_end_stream());
}
