//! JWT claim based routing at a gateway (`headers: {"@request.auth.claims.group": ...}`): the
//! gateway's inbound JWT layer puts the verified claims in the request's extensions
//! ([`RequestClaims`]); routes match them, nested with `.`, lists by any element.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use mesh_client::client::MeshClient;
use mesh_client::cluster::{Clusters, StaticEndpoints};
use mesh_core::policy::RequestClaims;
use mesh_core::watch::ConfigStore;
use serde_json::json;
use support::*;

const ROUTES: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: by-claims
spec:
  hosts: ["*"]
  gateways: [http-gateway]
  http:
    - match:
        - uri:
            prefix: /app
          headers:
            "@request.auth.claims.group":
              exact: admin
      route:
        - destination:
            host: service2
    - match:
        - uri:
            prefix: /app
          headers:
            "@request.auth.claims.realm.tier":
              prefix: gold
          withoutHeaders:
            "@request.auth.claims.suspended":
              exact: "true"
      route:
        - destination:
            host: service3
    - match:
        - uri:
            prefix: /app
      route:
        - destination:
            host: service1
"#;

#[tokio::test]
async fn routes_match_verified_claims() {
    let (s1, s2, s3) = (
        ok_backend("service1").await,
        ok_backend("service2").await,
        ok_backend("service3").await,
    );
    let yaml = format!("{}\n---\n{ROUTES}", seed("01-gateway.yaml"));
    let store = ConfigStore::new(config(&yaml));
    let set = Arc::new(StaticEndpoints::new());
    for (h, b) in [("service1", &s1), ("service2", &s2), ("service3", &s3)] {
        set.insert(h, None, b.addr, 1, labels(&[]));
    }
    let source = store.clone();
    let gateway = MeshClient::builder(store.clone(), Clusters::new(move || source.snapshot(), set))
        .gateway("http-gateway")
        .build();
    let send = async |claims: Option<serde_json::Value>| {
        let mut req = Request::get("/app/x")
            .header("host", "mesh.example:8080")
            .body(Full::new(Bytes::new()))
            .unwrap();
        if let Some(c) = claims {
            req.extensions_mut().insert(RequestClaims(Arc::new(c)));
        }
        let resp = gateway.send(req).await.unwrap();
        resp.headers()["x-backend"].to_str().unwrap().to_owned()
    };
    assert_eq!(send(Some(json!({"group": "admin"}))).await, "service2");
    assert_eq!(
        send(Some(json!({"group": ["dev", "admin"]}))).await,
        "service2",
        "any element of a list"
    );
    assert_eq!(
        send(Some(json!({"realm": {"tier": "gold-plus"}}))).await,
        "service3",
        "nested"
    );
    assert_eq!(
        send(Some(json!({"realm": {"tier": "gold"}, "suspended": true}))).await,
        "service1",
        "withoutHeaders on a claim"
    );
    assert_eq!(send(Some(json!({"group": "dev"}))).await, "service1");
    // a header that looks like the claim is not a claim: no token, no claim match
    let req = Request::get("/app/x")
        .header("host", "mesh.example:8080")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = gateway.send(req).await.unwrap();
    assert_eq!(resp.headers()["x-backend"], "service1");
    assert_eq!(send(None).await, "service1");
}
