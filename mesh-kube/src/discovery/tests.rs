#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_core::policy::Labels;
use mesh_core::registry::Registry;
use serde_json::{Value, json};

use super::*;
use crate::test_util::{self, BOUND};
use crate::testing::TestApiServer;

const HOST: &str = "service2.default.svc.cluster.local";

fn service(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    })
}

fn slice(ns: &str, svc: &str, endpoints: Value) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{svc}-abc"), "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": endpoints
    })
}

fn endpoint(ip: &str, pod: &str, ready: bool) -> Value {
    json!({"addresses": [ip], "conditions": {"ready": ready}, "targetRef": {"kind": "Pod", "name": pod}})
}

fn pod(ns: &str, name: &str, app: &str, version: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app, "version": version}},
        "spec": {"serviceAccountName": app, "containers": [{"name": "app", "image": "x"}]}
    })
}

fn labels(version: &str) -> Labels {
    Labels::from([("version".to_owned(), version.to_owned())])
}

/// Waits until the registry's endpoints of `host` (port 80) carrying `version` (any without)
/// are `want`.
async fn until(registry: &Registry, host: &str, version: Option<&str>, want: &[&str]) {
    let mut rx = registry.subscribe();
    let now = |r: &Registry| -> Vec<String> {
        let set = match version {
            Some(v) => r.subset(host, Some(80), &labels(v)),
            None => r.endpoints(host, Some(80)),
        };
        set.map(|s| s.iter().map(|e| e.addr.to_string()).collect())
            .unwrap_or_default()
    };
    let reached = tokio::time::timeout(BOUND, async {
        while now(registry) != want {
            rx.changed().await.unwrap();
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "{host} {version:?}: {:?}, wanted {want:?}",
        now(registry)
    );
}

#[tokio::test]
async fn subsets_follow_pod_labels_and_not_ready_endpoints_leave() {
    let server = TestApiServer::start().await.unwrap();
    server.apply(service("default", "service2")).unwrap();
    server
        .apply(slice(
            "default",
            "service2",
            json!([
                endpoint("127.0.0.2", "a", true),
                endpoint("127.0.0.3", "b", true)
            ]),
        ))
        .unwrap();
    server.apply(pod("default", "a", "service2", "v1")).unwrap();
    let readiness = Readiness::new();
    let discovery = KubeDiscovery::new(server.client().unwrap(), readiness.clone());
    let registry = Arc::new(Registry::new());
    let _following = registry.follow(&discovery);
    discovery.set_hosts(["service2"], "default");
    // readiness before the first sync
    let status = readiness.status();
    assert!(!status.is_ready());
    assert!(
        status
            .to_string()
            .contains("Service default/service2: waiting for the first sync"),
        "{status}"
    );
    test_util::ready(&readiness).await;

    // pod b has not arrived: only a, on the slice port of the service port's name
    until(&registry, HOST, None, &["127.0.0.2:8080"]).await;
    until(&registry, HOST, Some("v1"), &["127.0.0.2:8080"]).await;
    server.apply(pod("default", "b", "service2", "v2")).unwrap();
    until(&registry, HOST, Some("v2"), &["127.0.0.3:8080"]).await;
    until(
        &registry,
        "service2",
        None,
        &["127.0.0.2:8080", "127.0.0.3:8080"],
    )
    .await;

    // a relabelled between subsets
    server.apply(pod("default", "a", "service2", "v2")).unwrap();
    until(&registry, HOST, Some("v1"), &[]).await;
    until(
        &registry,
        HOST,
        Some("v2"),
        &["127.0.0.2:8080", "127.0.0.3:8080"],
    )
    .await;

    // b not ready: left out
    server
        .apply(slice(
            "default",
            "service2",
            json!([
                endpoint("127.0.0.2", "a", true),
                endpoint("127.0.0.3", "b", false)
            ]),
        ))
        .unwrap();
    until(&registry, HOST, None, &["127.0.0.2:8080"]).await;

    let detail = discovery.services();
    assert_eq!(
        detail[0].endpoints[0].service_account.as_deref(),
        Some("service2")
    );
}

#[tokio::test]
async fn only_the_hosts_reached_are_watched_and_they_stop_when_unreached() {
    let server = TestApiServer::start().await.unwrap();
    for ns in ["default", "other"] {
        for svc in ["service2", "service3"] {
            server.apply(service(ns, svc)).unwrap();
            server
                .apply(pod(ns, &format!("{svc}-pod"), svc, "v1"))
                .unwrap();
        }
    }
    server
        .apply(slice(
            "default",
            "service2",
            json!([endpoint("127.0.0.2", "service2-pod", true)]),
        ))
        .unwrap();
    server
        .apply(slice(
            "other",
            "service2",
            json!([endpoint("127.0.0.4", "service2-pod", true)]),
        ))
        .unwrap();
    server
        .apply(slice(
            "default",
            "service3",
            json!([endpoint("127.0.0.3", "service3-pod", true)]),
        ))
        .unwrap();
    let readiness = Readiness::new();
    let discovery = KubeDiscovery::new(server.client().unwrap(), readiness.clone());
    let registry = Arc::new(Registry::new());
    let _following = registry.follow(&discovery);

    // two namespaces, one service name: two hosts
    discovery.set_hosts(
        [
            "service2",
            "service2.other.svc.cluster.local",
            "api.example.com",
        ],
        "default",
    );
    until(&registry, HOST, None, &["127.0.0.2:8080"]).await;
    until(
        &registry,
        "service2.other.svc.cluster.local",
        None,
        &["127.0.0.4:8080"],
    )
    .await;
    assert_eq!(
        discovery.watched(),
        [HOST, "service2.other.svc.cluster.local"]
    );
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("/namespaces/default/endpointslices")
                && r.contains("labelSelector=kubernetes.io%2Fservice-name%3Dservice2")),
        "{requests:#?}"
    );
    assert!(
        !requests.iter().any(|r| r.contains("service3")),
        "service3 is not reached: {requests:#?}"
    );
    assert!(
        !requests.iter().any(|r| r.starts_with("GET /api/v1/pods")
            || r.starts_with("GET /apis/discovery.k8s.io/v1/endpointslices")),
        "no cluster-wide watch: {requests:#?}"
    );

    // the route set changes: service3 in, the other namespace out
    discovery.set_hosts(["service2", "service3"], "default");
    until(
        &registry,
        "service3.default.svc.cluster.local",
        None,
        &["127.0.0.3:8080"],
    )
    .await;
    assert!(
        registry
            .endpoints("service2.other.svc.cluster.local", Some(80))
            .is_none()
    );
    assert_eq!(
        discovery.watched(),
        [HOST, "service3.default.svc.cluster.local"]
    );
    test_util::ready(&readiness).await;
    assert!(
        !readiness
            .status()
            .watches
            .keys()
            .any(|k| k.contains("other/"))
    );
}

#[tokio::test]
async fn a_forbidden_endpoint_watch_is_not_ready_with_its_reason() {
    let server = TestApiServer::start().await.unwrap();
    server.apply(service("default", "service2")).unwrap();
    server.fail(403, "endpointslices", None);
    let readiness = Readiness::new();
    let discovery = KubeDiscovery::new(server.client().unwrap(), readiness.clone());
    discovery.set_hosts(["service2"], "default");
    let text = test_util::says(&readiness, "403").await;
    assert!(
        text.contains("EndpointSlices default/service2: 403 Forbidden"),
        "{text}"
    );
    server.clear_faults();
    test_util::ready(&readiness).await;
}

/// 5 000 Services and 20 000 Pods in the cluster; the app calls three of them: it holds those
/// three and receives only their events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_load_grows_with_the_calls_not_the_cluster() {
    const SERVICES: usize = 5_000;
    const PODS: usize = 4;
    let server = TestApiServer::start().await.unwrap();
    for i in 0..SERVICES {
        let svc = format!("svc-{i}");
        server.apply(service("default", &svc)).unwrap();
        let ips: Vec<(String, String)> = (0..PODS)
            .map(|j| {
                (
                    format!("10.{}.{}.{}", i / 250, i % 250, j + 1),
                    format!("{svc}-{j}"),
                )
            })
            .collect();
        let endpoints: Vec<Value> = ips
            .iter()
            .map(|(ip, pod)| endpoint(ip, pod, true))
            .collect();
        server
            .apply(slice("default", &svc, Value::Array(endpoints)))
            .unwrap();
        for (_, pod_name) in &ips {
            server.apply(pod("default", pod_name, &svc, "v1")).unwrap();
        }
    }
    let readiness = Readiness::new();
    let discovery = KubeDiscovery::new(server.client().unwrap(), readiness.clone());
    discovery.set_hosts(["svc-1", "svc-2", "svc-3"], "default");
    test_util::ready(&readiness).await;
    let mut rx = discovery.subscribe_detail();
    let held = tokio::time::timeout(BOUND, async {
        loop {
            let s = discovery.services();
            if s.len() == 3 && s.iter().all(|s| s.endpoints.len() == PODS) {
                return s;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .unwrap();
    let endpoints: usize = held.iter().map(|s| s.endpoints.len()).sum();
    assert_eq!(endpoints, 3 * PODS);

    // churn elsewhere in the cluster reaches no watch of this app
    let before = server.watch_events_sent();
    for i in 100..1_100 {
        server
            .apply(pod(
                "default",
                &format!("svc-{i}-0"),
                &format!("svc-{i}"),
                "v2",
            ))
            .unwrap();
    }
    // a change to a called service does
    server
        .apply(pod("default", "svc-2-0", "svc-2", "v2"))
        .unwrap();
    tokio::time::timeout(BOUND, async {
        loop {
            let relabelled = discovery.services().iter().any(|s| {
                s.endpoints
                    .iter()
                    .any(|e| e.labels.get("version").map(String::as_str) == Some("v2"))
            });
            if relabelled {
                return;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .unwrap();
    let received = server.watch_events_sent() - before;
    assert_eq!(
        received, 1,
        "only the called service's pod event is sent to this app"
    );
    let requests = server.requests();
    let unscoped: Vec<&String> = requests
        .iter()
        .filter(|r| {
            !["svc-1", "svc-2", "svc-3"]
                .iter()
                .any(|s| r.contains(&format!("%3D{s}")))
        })
        .collect();
    assert!(
        unscoped.is_empty(),
        "every request names a called service: {unscoped:#?}"
    );
    eprintln!(
        "cluster: {SERVICES} services, {} pods; app holds {} services, {endpoints} endpoints; {} requests; 1 001 pod updates in the cluster, {received} event sent to the app",
        SERVICES * PODS,
        held.len(),
        requests.len()
    );
}
