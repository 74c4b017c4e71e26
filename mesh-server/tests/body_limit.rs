//! The request body limit of `MeshServer`: 413 when `content-length` is over it, a body error
//! when a streamed body grows past it, and no limit unless one is set (as Istio).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::post;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use mesh_core::policy::MeshConfig;
use mesh_core::watch::ConfigSource;
use mesh_server::{MeshServer, Workload};
use tower::ServiceExt;

fn app() -> Router {
    // Reads the whole body and answers its length: a body error shows as a non-200.
    Router::new().route(
        "/",
        post(|body: Bytes| async move { body.len().to_string() }),
    )
}

fn server() -> MeshServer {
    MeshServer::new(
        Workload::new("gateway"),
        ConfigSource::fixed(MeshConfig::default()),
    )
}

fn post_with(len: usize, announce: bool) -> Request<Body> {
    let mut req = Request::post("http://gw/");
    if announce {
        req = req.header("content-length", len);
    }
    let body = if announce {
        Body::from(vec![b'x'; len])
    } else {
        // A streamed body of unknown length, in 1 KiB chunks.
        let chunks = (0..len.div_ceil(1024)).map(move |i| {
            Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 1024.min(len - i * 1024)]))
        });
        Body::from_stream(futures_util::stream::iter(chunks))
    };
    req.body(body).unwrap()
}

async fn call(mesh: &MeshServer, req: Request<Body>) -> (StatusCode, String) {
    let resp = mesh.wrap(app()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn announced_oversized_body_gets_413_at_once() {
    let mesh = server().max_request_body(4096);
    let (status, _) = call(&mesh, post_with(10_000, true)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body) = call(&mesh, post_with(4096, true)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "4096"));
}

#[tokio::test]
async fn streamed_body_growing_past_the_limit_is_refused() {
    let mesh = server().max_request_body(4096);
    let (status, _) = call(&mesh, post_with(10_000, false)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body) = call(&mesh, post_with(3000, false)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "3000"));
}

#[tokio::test]
async fn no_limit_unless_set() {
    let (status, body) = call(&server(), post_with(200_000, true)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "200000"));
}
