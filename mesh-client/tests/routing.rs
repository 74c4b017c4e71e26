//! Route matching end to end: the article's gateway prefixes, header rules, rewrite, redirect,
//! direct response, fault abort, and 404 NR.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use mesh_client::client::MeshClient;
use mesh_client::cluster::{Clusters, StaticEndpoints};
use mesh_core::watch::ConfigStore;
use support::*;

#[tokio::test]
async fn gateway_prefix_routes_of_the_article() {
    let s1 = ok_backend("service1").await;
    let s2 = ok_backend("service2").await;
    let yaml = format!(
        "{}\n---\n{}",
        seed("01-gateway.yaml"),
        seed("02-virtualservice-routing.yaml")
    );
    let store = ConfigStore::new(config(&yaml));
    let set = Arc::new(StaticEndpoints::new());
    set.insert("service1", None, s1.addr, 1, labels(&[]));
    set.insert("service2", None, s2.addr, 1, labels(&[]));
    let source = store.clone();
    let gateway = MeshClient::builder(store.clone(), Clusters::new(move || source.snapshot(), set))
        .gateway("http-gateway")
        .build();
    let send = |path: &'static str| {
        let gw = gateway.clone();
        async move {
            let req = Request::get(path)
                .header("host", "mesh.example:8080")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let resp = gw.send(req).await.unwrap();
            let backend = resp
                .headers()
                .get("x-backend")
                .map(|v| v.to_str().unwrap().to_owned());
            (resp.status(), backend)
        }
    };
    assert_eq!(
        send("/service1/hello").await,
        (StatusCode::OK, Some("service1".into()))
    );
    assert_eq!(
        send("/service2/x?y=1").await,
        (StatusCode::OK, Some("service2".into()))
    );
    assert_eq!(
        send("/other").await,
        (StatusCode::NOT_FOUND, None),
        "no route: 404 NR"
    );
    assert_eq!(s2.seen.lock().unwrap()[0].path, "/service2/x?y=1");
}

const RULES: &str = r#"
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: service2
spec:
  hosts:
    - service2
  http:
    - match:
        - headers:
            end-user:
              exact: jason
      rewrite:
        uri: /v2
      headers:
        request:
          set:
            x-route: jason
          remove:
            - x-secret
        response:
          add:
            x-answered-by: mesh
      route:
        - destination:
            host: service2
    - match:
        - uri:
            exact: /old
      redirect:
        uri: /new
        authority: service3
    - match:
        - uri:
            prefix: /health
      directResponse:
        status: 200
        body:
          string: healthy
    - match:
        - uri:
            prefix: /broken
      fault:
        abort:
          httpStatus: 503
          percentage:
            value: 100
      route:
        - destination:
            host: service2
    - match:
        - uri:
            prefix: /api
      route:
        - destination:
            host: service2
"#;

#[tokio::test]
async fn header_rules_rewrite_redirect_direct_and_fault() {
    let s2 = ok_backend("service2").await;
    let (client, _store) = mesh(RULES, &[("service2", s2.addr, labels(&[]))], 1);

    let req = Request::get("http://service2/api/items")
        .header("end-user", "jason")
        .header("x-secret", "s")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-answered-by"], "mesh");
    {
        let seen = s2.seen.lock().unwrap();
        assert_eq!(
            seen[0].path, "/v2",
            "whole path replaced (header match, no uri prefix)"
        );
        assert_eq!(seen[0].headers["x-route"], "jason");
        assert!(!seen[0].headers.contains_key("x-secret"));
    }

    let resp = client
        .send(
            Request::get("http://service2/old")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(resp.headers()["location"], "http://service3/new");

    let resp = client
        .send(
            Request::get("http://service2/health")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.into_body().collect().await.unwrap().to_bytes(),
        "healthy"
    );

    let (status, _, flags) = get(&client, "http://service2/broken").await;
    assert_eq!(
        (status, flags.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "FI")
    );

    let (status, _, flags) = get(&client, "http://service2/elsewhere").await;
    assert_eq!((status, flags.as_str()), (StatusCode::NOT_FOUND, "NR"));

    assert_eq!(
        s2.hits(),
        1,
        "only the forwarded request reached the server"
    );
    assert_eq!(client.stats().faults_aborted.get(), 1);
}

#[tokio::test]
async fn host_without_virtual_service_goes_to_itself() {
    let s3 = ok_backend("service3").await;
    let (client, _store) = mesh(RULES, &[("service3", s3.addr, labels(&[]))], 1);
    let (status, backend, _) = get(&client, "http://service3/anything").await;
    assert_eq!((status, backend.as_str()), (StatusCode::OK, "service3"));
    let (status, _, flags) = get(&client, "http://nowhere/").await;
    assert_eq!(
        (status, flags.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "UH"),
        "unknown host: no healthy upstream"
    );
}

/// VirtualService `uri` matches see the normalized path: `/./admin` cannot dodge a route meant
/// for `/admin`, and the upstream receives the normalized path.
#[tokio::test]
async fn uri_matches_see_the_normalized_path() {
    let admin = ok_backend("admin").await;
    let public = ok_backend("public").await;
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app}
spec:
  hosts: [app]
  http:
  - match: [{uri: {prefix: /admin}}]
    route: [{destination: {host: admin}}]
  - route: [{destination: {host: public}}]
"#;
    let (client, _store) = mesh(
        yaml,
        &[
            ("admin", admin.addr, labels(&[])),
            ("public", public.addr, labels(&[])),
        ],
        1,
    );
    for path in [
        "/admin/x",
        "/./admin/x",
        "/%61dmin/x",
        "/public/../admin/x",
        "/x\\..\\admin",
    ] {
        let (status, backend, _) = get(&client, &format!("http://app{path}")).await;
        assert_eq!(
            (status, backend.as_str()),
            (StatusCode::OK, "admin"),
            "{path}"
        );
    }
    assert_eq!(get(&client, "http://app/x").await.1, "public");
    let (status, _, flags) = get(&client, "http://app/a%00").await;
    assert_eq!((status, flags.as_str()), (StatusCode::BAD_REQUEST, "DPE"));
}
