//! Config through the Kubernetes API, end to end with the example apps in `--kube` mode: a
//! route to a subset defined later (503 `NC` until it is), `exportTo` on a VirtualService and on
//! a Service, and how long a change takes to route requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_tests::kube::{Cluster, SERVICE1, SERVICE2_V1, SERVICE2_V2, SERVICE3};
use serde_json::json;

const NS: &str = "default";

/// `exportTo`: a VirtualService in another namespace routes a caller only when it is exported to
/// the caller's namespace; a value that is no namespace is refused alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_to_scopes_a_virtual_service_by_namespace() {
    let c = Cluster::start(90).await;
    c.article(NS);
    let [_s3, _v1, _v2, s1] = c
        .start_ready(NS, [SERVICE3, SERVICE2_V1, SERVICE2_V2, SERVICE1])
        .await;
    c.subsets(NS);
    let team_vs = |export: serde_json::Value| {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "service2-v2-only", "namespace": "team-a"},
            "spec": {"hosts": ["service2.default.svc.cluster.local"], "exportTo": export,
                "http": [{"route": [{"destination": {"host": "service2.default.svc.cluster.local", "subset": "v2"}}]}]}})
    };
    // exported to team-a only: service1 in default does not see it (both versions answer)
    c.apply(team_vs(json!(["."])));
    c.config_until(s1.admin, |d| d.contains("service2-v2-only"))
        .await;
    c.until(s1.addr, "/private", "v1 still answers", |a| {
        a.upstream_version().as_deref() == Some("v1")
    })
    .await;
    // exported to default: every call goes to v2
    c.apply(team_vs(json!(["default"])));
    let start = std::time::Instant::now();
    let mut in_a_row = 0;
    while in_a_row < 20 {
        let a = c.get(s1.addr, "/exported").await;
        if a.upstream_version().as_deref() == Some("v2") {
            in_a_row += 1;
        } else {
            in_a_row = 0;
        }
        assert!(
            start.elapsed() < mesh_tests::kube::BOUND,
            "not exported: {}",
            a.body
        );
    }
    // a value that is no namespace: refused alone, the last good version stays
    c.apply(team_vs(json!(["Team_B"])));
    let dump = c.config_until(s1.admin, |d| d.contains("Team_B")).await;
    assert!(
        dump["kubernetes"]["refused"]
            .to_string()
            .contains("exportTo"),
        "{dump}"
    );
    for _ in 0..10 {
        let a = c.get(s1.addr, "/kept").await;
        assert_eq!(a.upstream_version().as_deref(), Some("v2"), "{}", a.body);
    }
    // the Service annotation: service3 exported to team-a only is not seen from default
    let service3 = |export: &str| {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "service3", "namespace": NS,
                "annotations": {"networking.istio.io/exportTo": export}},
            "spec": {"selector": {"app": "service3"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    };
    c.apply(service3("team-a"));
    c.until(s1.addr, "/hidden", "service3 hidden from default", |a| {
        a.status == 502
    })
    .await;
    c.apply(service3("team-a, default"));
    c.until(s1.addr, "/shown", "service3 exported to default", |a| {
        a.status == 200
    })
    .await;
}

/// How long a change made through the API takes to route requests (figures for
/// docs/benchmarks.md; printed, never asserted: the machine is noisy). Each step applies new
/// weights, then polls the app until an answer shows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_latency_through_the_api() {
    let c = Cluster::start(91).await;
    c.article(NS);
    let [_s3, _v1, _v2, s1] = c
        .start_ready(NS, [SERVICE3, SERVICE2_V1, SERVICE2_V2, SERVICE1])
        .await;
    c.subsets(NS);
    let mut took = Vec::new();
    for step in 0..20 {
        let (w1, w2, want) = if step % 2 == 0 {
            (0, 100, "v2")
        } else {
            (100, 0, "v1")
        };
        let start = std::time::Instant::now();
        c.split(NS, w1, w2);
        // routed by the new weights: three answers in a row from the new version
        let mut in_a_row = 0;
        while in_a_row < 3 {
            let a = c.get(s1.addr, "/latency").await;
            in_a_row = if a.upstream_version().as_deref() == Some(want) {
                in_a_row + 1
            } else {
                0
            };
            assert!(start.elapsed() < mesh_tests::kube::BOUND, "{}", a.body);
        }
        took.push(start.elapsed());
    }
    took.sort();
    println!(
        "apply latency through the API (apply → requests routed by it), 20 changes: p50 {:?}, p90 {:?}, max {:?}",
        took[10], took[18], took[19]
    );
}

/// In a cluster a route to a subset no DestinationRule defines yet applies and answers 503 `NC`
/// until the rule arrives through the API; then it routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subset_defined_later_answers_nc_until_it_arrives() {
    let c = Cluster::start(89).await;
    c.article(NS);
    let [_s3, _v2, s1] = c.start_ready(NS, [SERVICE3, SERVICE2_V2, SERVICE1]).await;
    c.subsets(NS);
    c.apply(
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "service2", "namespace": NS},
        "spec": {"hosts": ["service2"], "http": [{"route": [
            {"destination": {"host": "service2", "subset": "canary"}}]}]}}),
    );
    let dump = c.config_until(s1.admin, |d| d.contains("\"canary\"")).await;
    assert!(
        dump["kubernetes"]["refused"].as_array().unwrap().is_empty(),
        "a pending reference refuses nothing: {dump}"
    );
    assert!(
        dump["kubernetes"]["warnings"]
            .to_string()
            .contains("subset `canary`"),
        "{dump}"
    );
    let a = c.get(s1.addr, "/canary").await;
    assert_eq!(a.status, 502, "{}", a.body);
    assert_eq!(a.json()["upstream_status"], 503, "{}", a.body);
    let metrics = c.get(s1.admin, "/metrics").await.body;
    assert!(
        metrics.lines().any(|l| l.contains("istio_requests_total")
            && l.contains("reporter=\"source\"")
            && l.contains("response_flags=\"NC\"")),
        "{metrics}"
    );
    // the rule arrives: the route works
    c.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "service2", "namespace": NS},
        "spec": {"host": "service2", "subsets": [
            {"name": "v1", "labels": {"version": "v1"}}, {"name": "canary", "labels": {"version": "v2"}}]}}));
    let a = c
        .until(s1.addr, "/canary", "the subset defined", |a| {
            a.status == 200
        })
        .await;
    assert_eq!(a.upstream_version().as_deref(), Some("v2"), "{}", a.body);
}
