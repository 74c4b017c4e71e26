use http::{HeaderValue, Response, StatusCode};
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
