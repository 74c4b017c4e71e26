//! MeshClient as a whole: hot reload between requests, tower::Service use, telemetry on top.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use support::*;
use tower::{Service, ServiceExt};

fn route_to(subset: &str) -> String {
    format!(
        r#"{SUBSETS}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: service2
spec:
  hosts: [service2]
  http:
    - route:
        - destination:
            host: service2
            subset: {subset}
"#
    )
}

#[tokio::test]
async fn reload_applies_to_the_next_request() {
    let v1 = ok_backend("v1").await;
    let v2 = ok_backend("v2").await;
    let eps = [
        ("service2", v1.addr, labels(&[("version", "v1")])),
        ("service2", v2.addr, labels(&[("version", "v2")])),
    ];
    let (client, store) = mesh(&route_to("v1"), &eps, 1);
    assert_eq!(get(&client, "http://service2/").await.1, "v1");
    store.store(config(&route_to("v2")));
    assert_eq!(get(&client, "http://service2/").await.1, "v2");
    assert_eq!((v1.hits(), v2.hits()), (1, 1));
}

#[tokio::test]
async fn usable_as_a_tower_service_with_any_body() {
    let v1 = ok_backend("v1").await;
    let (client, _store) = mesh(
        &route_to("v1"),
        &[("service2", v1.addr, labels(&[("version", "v1")]))],
        1,
    );
    let mut svc = client.clone();
    let req = Request::post("http://service2/echo")
        .body(Full::new(Bytes::from_static(b"hi")))
        .unwrap();
    let resp = ServiceExt::<Request<Full<Bytes>>>::ready(&mut svc)
        .await
        .unwrap()
        .call(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let req = Request::get("http://service2/s")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    assert_eq!(client.oneshot(req).await.unwrap().status(), StatusCode::OK);
    assert_eq!(v1.seen.lock().unwrap()[0].body, "hi");
}

#[tokio::test]
async fn reqwest_requests_go_through_the_mesh() {
    let v1 = ok_backend("v1").await;
    let (client, _store) = mesh(
        &route_to("v1"),
        &[("service2", v1.addr, labels(&[("version", "v1")]))],
        1,
    );
    let mesh = mesh_client::reqwest::MeshReqwest::new(client);
    let mut request = reqwest::Request::new(
        reqwest::Method::PUT,
        "http://service2/items/1".parse().unwrap(),
    );
    *request.body_mut() = Some(reqwest::Body::from("payload"));
    request
        .headers_mut()
        .insert("x-caller", http::HeaderValue::from_static("reqwest"));
    let response = mesh.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-backend"], "v1");
    assert_eq!(response.text().await.unwrap(), "v1:ok");
    let seen = v1.seen.lock().unwrap();
    assert_eq!(
        (
            seen[0].method.as_str(),
            seen[0].path.as_str(),
            &seen[0].body[..]
        ),
        ("PUT", "/items/1", &b"payload"[..])
    );
    assert_eq!(seen[0].headers["x-caller"], "reqwest");
}

#[tokio::test]
async fn telemetry_layer_on_top_records_and_propagates() {
    use std::sync::Arc;

    use mesh_client::client::MeshClient;
    use mesh_client::cluster::{Clusters, StaticEndpoints};
    use mesh_client::stats::ClientStats;
    use mesh_client::telemetry::{ClientTelemetryConfig, ClientTelemetryLayer};
    use mesh_core::watch::ConfigStore;
    use mesh_telemetry::{MeshMetrics, WorkloadLabels};

    let flaky = backend("v1", |n| {
        Box::pin(async move {
            if n == 0 {
                (StatusCode::SERVICE_UNAVAILABLE, "x".into())
            } else {
                (StatusCode::OK, "ok".into())
            }
        })
    })
    .await;
    let store = ConfigStore::new(config(&route_to("v1")));
    let set = Arc::new(StaticEndpoints::new());
    set.insert(
        "service2",
        None,
        flaky.addr,
        1,
        labels(&[("version", "v1")]),
    );
    let source = store.clone();
    let metrics = MeshMetrics::new();
    let mut telemetry = ClientTelemetryConfig::new(WorkloadLabels::unknown());
    telemetry.sample_ratio = 1.0;
    let client = MeshClient::builder(store, Clusters::new(move || source.snapshot(), set))
        .stats(Arc::new(ClientStats::with_metrics(metrics.clone())))
        .telemetry(ClientTelemetryLayer::new(metrics.clone(), telemetry))
        .build();
    assert_eq!(get(&client, "http://service2/").await.0, StatusCode::OK);
    let seen = flaky.seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one retry");
    assert!(
        seen.iter().all(|s| s.headers.contains_key("traceparent")),
        "trace context injected on every attempt"
    );
    let text = metrics.encode_prometheus();
    assert!(text.contains("istio_requests_total"), "{text}");
    assert_eq!(client.stats().retries.get(), 1);
}
