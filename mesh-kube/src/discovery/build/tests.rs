#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;

fn service(extra: serde_json::Value) -> Service {
    let mut s = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "service2", "namespace": "shop"},
        "spec": {"selector": {"app": "service2"}, "ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "grpc-api", "port": 81},
            {"name": "web", "port": 82, "appProtocol": "kubernetes.io/h2c"},
            {"name": "admin", "port": 83}
        ]}
    });
    mesh_core_merge(&mut s, extra);
    serde_json::from_value(s).unwrap()
}

fn mesh_core_merge(a: &mut serde_json::Value, b: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        for (k, v) in b {
            match a.get_mut(&k) {
                Some(x) if x.is_object() && v.is_object() => mesh_core_merge(x, v),
                _ => {
                    a.insert(k, v);
                }
            }
        }
    }
}

fn slice(name: &str, address_type: &str, endpoints: serde_json::Value) -> (String, EndpointSlice) {
    let s = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "shop", "labels": {"kubernetes.io/service-name": "service2"}},
        "addressType": address_type,
        "ports": [{"name": "http", "port": 8081}, {"name": "grpc-api", "port": 9090}],
        "endpoints": endpoints
    });
    (name.to_owned(), serde_json::from_value(s).unwrap())
}

fn endpoint(ip: &str, pod: &str, ready: bool) -> serde_json::Value {
    json!({"addresses": [ip], "conditions": {"ready": ready}, "targetRef": {"kind": "Pod", "name": pod, "namespace": "shop"}})
}

fn pod(name: &str, version: &str) -> (String, Pod) {
    let p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop",
            "labels": {"app": "service2", "version": version, "security.istio.io/tlsMode": "istio"}},
        "spec": {"serviceAccountName": "service2", "containers": []}
    });
    (name.to_owned(), serde_json::from_value(p).unwrap())
}

#[test]
fn ports_take_their_protocol_from_app_protocol_then_the_name() {
    let built = build(&service(json!({})), &BTreeMap::new(), &BTreeMap::new());
    let ports: Vec<(u16, &str, &str, Option<u16>)> = built
        .ports
        .iter()
        .map(|p| {
            (
                p.number,
                p.name.as_str(),
                p.protocol.as_str(),
                p.target_port,
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            (80, "http", "HTTP", Some(8080)),
            (81, "grpc-api", "GRPC", None),
            (82, "web", "HTTP2", None),
            (83, "admin", "HTTP", None)
        ]
    );
    assert_eq!(built.host(), "service2.shop.svc.cluster.local");
}

#[test]
fn endpoints_ready_once_with_pod_labels_identity_and_tls_mode() {
    let slices = BTreeMap::from([
        slice(
            "a",
            "IPv4",
            json!([
                endpoint("10.0.0.1", "p1", true),
                endpoint("10.0.0.2", "p2", false),
                endpoint("10.0.0.3", "p3", true)
            ]),
        ),
        // the same endpoint in a second slice counts once
        slice("b", "IPv4", json!([endpoint("10.0.0.1", "p1", true)])),
        slice("c", "FQDN", json!([{"addresses": ["example.com"]}])),
    ]);
    // p3 has not arrived: its endpoint waits
    let pods = BTreeMap::from([pod("p1", "v1"), pod("p2", "v2")]);
    let built = build(&service(json!({})), &slices, &pods);
    let [e] = built.endpoints.as_slice() else {
        panic!("{:?}", built.endpoints)
    };
    assert_eq!(e.ip.to_string(), "10.0.0.1");
    assert_eq!(e.labels.get("version").map(String::as_str), Some("v1"));
    assert_eq!(e.service_account.as_deref(), Some("service2"));
    assert_eq!(e.tls_mode.as_deref(), Some("istio"));
    assert_eq!(e.ports.get("http"), Some(&8081));
    assert_eq!(e.pod.as_deref(), Some("p1"));

    let mesh = built.to_service();
    assert_eq!(mesh.hosts, ["service2.shop.svc.cluster.local"]);
    assert_eq!(mesh.endpoints.len(), 1);

    // publishNotReadyAddresses: the not-ready one is in too; a Pod arriving adds its endpoint
    let pods = BTreeMap::from([pod("p1", "v1"), pod("p2", "v2"), pod("p3", "v2")]);
    let built = build(
        &service(json!({"spec": {"publishNotReadyAddresses": true}})),
        &slices,
        &pods,
    );
    let ips: Vec<String> = built.endpoints.iter().map(|e| e.ip.to_string()).collect();
    assert_eq!(ips, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
}

#[test]
fn kubernetes_hosts_and_others() {
    assert_eq!(
        service_of("service2", "shop"),
        Some(("service2".into(), "shop".into()))
    );
    assert_eq!(
        service_of("Service2.Other.svc.cluster.local", "shop"),
        Some(("service2".into(), "other".into()))
    );
    assert_eq!(service_of("api.example.com", "shop"), None);
    assert_eq!(service_of("*.shop.svc.cluster.local", "shop"), None);
}
