#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mesh_core::policy::Labels;
use serde_json::{Value, json};

use super::*;
use crate::testing::{TestApiServer, mesh_types};

/// Safety bound against a hang; never an assertion on how long things take.
const BOUND: Duration = Duration::from_secs(20);

fn service(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}]}})
}

fn slice(svc: &str, ips: &[(&str, &str)]) -> Value {
    let endpoints: Vec<Value> = ips
        .iter()
        .map(|(ip, pod)| json!({"addresses": [ip], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": pod}}))
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{svc}-1"), "namespace": "default", "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}], "endpoints": endpoints})
}

fn pod(name: &str, app: &str, version: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app, "version": version}},
        "spec": {"containers": [{"name": "app", "image": "x"}]}})
}

/// The article's shape: service1 calls service2 (90/10 between v1 and v2 by a VirtualService),
/// service2's route reaches service3, and a ServiceEntry for an external host.
#[tokio::test]
async fn an_app_sees_the_config_and_the_endpoints_its_calls_reach() {
    let server = TestApiServer::start().await.unwrap();
    for t in mesh_types() {
        server.register(t);
    }
    for svc in ["service2", "service3"] {
        server.apply(service(svc)).unwrap();
    }
    server
        .apply(slice(
            "service2",
            &[("127.0.0.21", "s2v1"), ("127.0.0.22", "s2v2")],
        ))
        .unwrap();
    server
        .apply(slice("service3", &[("127.0.0.31", "s3")]))
        .unwrap();
    server.apply(pod("s2v1", "service2", "v1")).unwrap();
    server.apply(pod("s2v2", "service2", "v2")).unwrap();
    server.apply(pod("s3", "service3", "v1")).unwrap();
    server.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "service2", "namespace": "default"},
        "spec": {"host": "service2", "subsets": [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]}})).unwrap();
    server.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "service2", "namespace": "default"},
        "spec": {"hosts": ["service2"], "http": [
            {"match": [{"uri": {"prefix": "/three"}}], "route": [{"destination": {"host": "service3"}}]},
            {"route": [{"destination": {"host": "service2", "subset": "v1"}, "weight": 90},
                       {"destination": {"host": "service2", "subset": "v2"}, "weight": 10}]}]}})).unwrap();
    server.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": "external", "namespace": "default"},
        "spec": {"hosts": ["api.example.com"], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                 "resolution": "STATIC", "endpoints": [{"address": "127.0.0.99"}]}})).unwrap();

    let mesh = KubeMesh::start(
        server.client().unwrap(),
        KubeMeshOptions {
            namespace: "default".into(),
            calls: vec!["service2".into()],
            ..Default::default()
        },
    );
    assert!(!mesh.readiness().is_ready());
    tokio::time::timeout(BOUND, mesh.readiness().wait_ready())
        .await
        .unwrap();
    assert_eq!(mesh.store().load().virtual_services.len(), 1);

    let registry = mesh.registry();
    let mut rx = registry.subscribe();
    let v1 = Labels::from([("version".to_owned(), "v1".to_owned())]);
    let reached = tokio::time::timeout(BOUND, async {
        loop {
            let s2 = registry.subset("service2", Some(80), &v1).map(|s| s.len());
            let s3 = registry
                .endpoints("service3.default.svc.cluster.local", Some(80))
                .map(|s| s.len());
            let ext = registry
                .endpoints("api.example.com", Some(80))
                .map(|s| s.len());
            if (s2, s3, ext) == (Some(1), Some(1), Some(1)) {
                return;
            }
            rx.changed().await.unwrap();
        }
    })
    .await;
    assert!(reached.is_ok(), "watched: {:?}", mesh.discovery().watched());
    assert_eq!(
        mesh.discovery().watched(),
        [
            "service2.default.svc.cluster.local",
            "service3.default.svc.cluster.local"
        ]
    );
    assert!(mesh.report().refused.is_empty(), "{:?}", mesh.report());
}

/// The article's gateway: its Pod in `istio-system`, its Gateway and VirtualService in
/// `default`; it watches what the routes bound to the Gateway its labels select reach.
#[tokio::test]
async fn a_gateway_watches_the_hosts_of_the_routes_bound_to_its_gateway() {
    let server = TestApiServer::start().await.unwrap();
    for t in mesh_types() {
        server.register(t);
    }
    server.apply(service("service1")).unwrap();
    server
        .apply(slice("service1", &[("127.0.0.11", "s1")]))
        .unwrap();
    server.apply(pod("s1", "service1", "v1")).unwrap();
    server.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"istio": "ingressgateway"},
                 "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}})).unwrap();
    server.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "front", "namespace": "default"},
        "spec": {"hosts": ["*"], "gateways": ["web"],
                 "http": [{"match": [{"uri": {"prefix": "/service1"}}], "route": [{"destination": {"host": "service1"}}]}]}})).unwrap();
    let mesh = KubeMesh::start(
        server.client().unwrap(),
        KubeMeshOptions {
            namespace: "istio-system".into(),
            labels: Labels::from([("istio".to_owned(), "ingressgateway".to_owned())]),
            ..Default::default()
        },
    );
    tokio::time::timeout(BOUND, mesh.readiness().wait_ready())
        .await
        .unwrap();
    let registry = mesh.registry();
    let mut rx = registry.subscribe();
    let reached = tokio::time::timeout(BOUND, async {
        while registry
            .endpoints("service1.default.svc.cluster.local", Some(80))
            .map(|s| s.len())
            != Some(1)
        {
            rx.changed().await.unwrap();
        }
    })
    .await;
    assert!(reached.is_ok(), "watched: {:?}", mesh.discovery().watched());
    assert_eq!(
        mesh.discovery().watched(),
        ["service1.default.svc.cluster.local"]
    );
}
