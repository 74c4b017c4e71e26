//! HTTP/2 clients at the gateway: an h2c (prior knowledge) client is served, whatever the
//! upstream speaks. Before, every HTTP/2 request was answered 503 "Connection is HTTP/1, but
//! request requires HTTP/2": the downstream's version was sent to an HTTP/1.1 upstream.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mesh_tests::{Lab, LabOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_client_is_served_by_the_gateway() {
    let lab = Lab::start("routing", LabOptions::default())
        .await
        .expect("lab starts");
    let h2 = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Empty<Bytes>>();
    for path in ["/service1/h2", "/service2/h2"] {
        let uri = format!("http://{}{path}", lab.gateway.addr);
        let req = http::Request::get(uri).body(Empty::new()).unwrap();
        let res = h2.request(req).await.expect("an answer over HTTP/2");
        assert_eq!(res.version(), http::Version::HTTP_2);
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{path}: {status} {body:?}: {e}"));
        assert_eq!(status, 200, "{path}: {json}");
        assert!(json["service"].is_string(), "{path}: {json}");
    }
    lab.stop().await;
}
