//! `corsPolicy` end to end at a gateway: a real backend on loopback, the article's gateway
//! config with a CORS policy on the `/service1` route. Preflights are answered by the mesh and
//! never reach the backend; simple requests from an allowed origin get the CORS headers; a
//! disallowed origin gets none.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::Full;
use mesh_client::client::MeshClient;
use mesh_client::cluster::{Clusters, StaticEndpoints};
use mesh_core::watch::ConfigStore;
use support::*;

const ROUTES: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: sssm-virtual-services
spec:
  hosts: ["*"]
  gateways: [http-gateway]
  http:
    - match:
        - uri:
            prefix: /service1
      route:
        - destination:
            host: service1
            port:
              number: 80
      corsPolicy:
        allowOrigins:
          - exact: https://app.example.com
          - regex: "https://.*\\.example\\.org"
        allowMethods: [GET, POST]
        allowHeaders: [authorization, content-type]
        exposeHeaders: [x-request-id]
        maxAge: 10m
        allowCredentials: true
"#;

async fn send(
    gateway: &MeshClient,
    method: Method,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap) {
    let mut req = Request::builder()
        .method(method)
        .uri("/service1/api")
        .header("host", "mesh.example:8080");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = gateway
        .send(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    (resp.status(), resp.headers().clone())
}

fn cors_headers(h: &HeaderMap) -> Vec<&str> {
    h.keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

#[tokio::test]
async fn preflights_are_answered_by_the_gateway_and_simple_requests_get_headers() {
    let s1 = ok_backend("service1").await;
    let yaml = format!("{}\n---\n{ROUTES}", seed("01-gateway.yaml"));
    let store = ConfigStore::new(config(&yaml));
    let set = Arc::new(StaticEndpoints::new());
    set.insert("service1", None, s1.addr, 1, labels(&[]));
    let source = store.clone();
    let gateway = MeshClient::builder(store.clone(), Clusters::new(move || source.snapshot(), set))
        .gateway("http-gateway")
        .build();
    let preflight = [
        ("origin", "https://app.example.com"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type"),
    ];

    // a preflight from an allowed origin: answered here, the backend never sees it
    let (status, h) = send(&gateway, Method::OPTIONS, &preflight).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(h["access-control-allow-methods"], "GET,POST");
    assert_eq!(
        h["access-control-allow-headers"],
        "authorization,content-type"
    );
    assert_eq!(h["access-control-max-age"], "600");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(h.get("x-backend").is_none());
    assert_eq!(s1.hits(), 0, "the preflight must not reach the backend");

    // a simple request from an allowed origin (by regex): forwarded, answer decorated
    let (status, h) = send(
        &gateway,
        Method::GET,
        &[("origin", "https://shop.example.org")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["x-backend"], "service1");
    assert_eq!(h["access-control-allow-origin"], "https://shop.example.org");
    assert_eq!(h["access-control-expose-headers"], "x-request-id");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(s1.hits(), 1);

    // a disallowed origin: the preflight goes on (FORWARD) and nothing gets CORS headers
    let mut evil = preflight;
    evil[0].1 = "https://evil.example";
    let (_, h) = send(&gateway, Method::OPTIONS, &evil).await;
    assert_eq!(h["x-backend"], "service1");
    assert!(cors_headers(&h).is_empty(), "{:?}", cors_headers(&h));
    let (_, h) = send(&gateway, Method::GET, &[("origin", "https://evil.example")]).await;
    assert!(cors_headers(&h).is_empty(), "{:?}", cors_headers(&h));
    assert_eq!(s1.hits(), 3);

    assert_eq!(gateway.stats().cors_preflights_answered.get(), 1);
    assert_eq!(gateway.stats().cors_origin_valid.get(), 2);
    assert_eq!(gateway.stats().cors_origin_invalid.get(), 2);
}
