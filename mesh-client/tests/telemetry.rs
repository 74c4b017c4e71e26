//! The client telemetry layer on top of a real `MeshClient` (route, split, cluster) calling real
//! servers on loopback: Istio source metrics with the subset as `destination_version`, response
//! flags from the stack, and trace / request-id / peer headers on the wire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use mesh_client::client::MeshClient;
use mesh_client::cluster::{Clusters, StaticEndpoints};
use mesh_client::random::Random;
use mesh_client::telemetry::{ClientTelemetryConfig, ClientTelemetryLayer};
use mesh_core::watch::ConfigStore;
use mesh_telemetry::trace_context::parse_traceparent;
use mesh_telemetry::{MeshMetrics, RequestId, TraceContext, WorkloadLabels};
use support::*;

const ROUTE_V2: &str = r#"
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
            subset: v2
"#;

fn client_with_telemetry(
    endpoints: &[(&str, std::net::SocketAddr, mesh_core::policy::Labels)],
) -> (MeshClient, MeshMetrics) {
    let store = ConfigStore::new(config(&format!("{SUBSETS}\n---\n{ROUTE_V2}")));
    let set = Arc::new(StaticEndpoints::new());
    for (host, addr, l) in endpoints {
        set.insert(host, None, *addr, 1, l.clone());
    }
    let source = store.clone();
    let clusters = Clusters::new(move || source.snapshot(), set).with_seed(1);
    let metrics = MeshMetrics::new();
    let me = WorkloadLabels::from_labels(
        "service1",
        Some("default"),
        &labels(&[("app", "service1"), ("version", "v1")]),
    );
    let layer = ClientTelemetryLayer::new(metrics.clone(), ClientTelemetryConfig::new(me));
    let client = MeshClient::builder(store, clusters)
        .random(Random::seeded(1))
        .telemetry(layer)
        .build();
    (client, metrics)
}

fn series(text: &str, code: u16) -> Vec<&str> {
    let prefix = format!("istio_requests_total{{response_code=\"{code}\"");
    text.lines().filter(|l| l.starts_with(&prefix)).collect()
}

#[tokio::test]
async fn source_metrics_and_headers_through_the_mesh_client() {
    let v2 = ok_backend("v2").await;
    let (client, metrics) =
        client_with_telemetry(&[("service2", v2.addr, labels(&[("version", "v2")]))]);

    let parent = TraceContext::new_root(true);
    let mut req = Request::get("http://service2/hello")
        .body(Full::new(Bytes::new()))
        .unwrap();
    req.extensions_mut().insert(parent.clone());
    req.extensions_mut()
        .insert(RequestId::parse(&http::HeaderValue::from_static("rid-7")).unwrap());
    let resp = client.send(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let client_span = mesh_client::context::client_span(resp.extensions())
        .cloned()
        .expect("client span context on the response");

    let seen = v2.seen.lock().unwrap().pop().unwrap();
    let tp = parse_traceparent(seen.headers["traceparent"].as_bytes()).unwrap();
    assert_eq!(tp.trace_id, parent.trace_id);
    assert_eq!(tp.span_id, client_span.span_id);
    assert_eq!(client_span.parent_span_id, Some(parent.span_id));
    assert_eq!(seen.headers["x-request-id"], "rid-7");
    assert_eq!(
        seen.headers["x-mesh-peer-metadata"],
        "workload=service1;namespace=default;app=service1;version=v1"
    );

    let text = metrics.encode_prometheus();
    let ok = series(&text, 200);
    assert_eq!(ok.len(), 1, "{text}");
    for want in [
        "reporter=\"source\"",
        "source_workload=\"service1\"",
        "destination_service=\"service2\"",
        "destination_version=\"v2\"",
        "response_flags=\"-\"",
    ] {
        assert!(ok[0].contains(want), "{want} not in {}", ok[0]);
    }
    assert!(ok[0].ends_with("} 1"), "{}", ok[0]);
}

#[tokio::test]
async fn connect_failures_are_503_uf_in_the_metrics() {
    // A port that was open a moment ago and is closed now: connection refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (client, metrics) =
        client_with_telemetry(&[("service2", closed, labels(&[("version", "v2")]))]);
    let (status, _, flags) = get(&client, "http://service2/x").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let text = metrics.encode_prometheus();
    let bad = series(&text, 503);
    assert_eq!(bad.len(), 1, "{text}");
    assert!(
        bad[0].contains(&format!("response_flags=\"{flags}\"")),
        "{flags} vs {}",
        bad[0]
    );
    assert!(flags.contains("UF"), "{flags}");
    assert!(
        bad[0].contains("destination_service=\"service2\""),
        "{}",
        bad[0]
    );
    // Answers the client makes from errors carry no `Target` today, so the subset is not known
    // here (see docs/observability.md, "Known gaps").
}
