//! Reliability: a backend killed during steady load, with retries configured.
//!
//! What it proves: no request that the retry policy and budget allow to be retried is lost when
//! one of two endpoints dies mid-load; outlier detection ejects the dead endpoint (after which no
//! request even tries it); when it is restarted on the same address it comes back after its
//! ejection time and takes traffic again.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod reliability;

use std::sync::Arc;
use std::time::Duration;

use mesh_core::policy::Destination;
use reliability::{Backend, get, service_entry};

const POLICY: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc}
spec:
  hosts: [svc]
  http:
  - route:
    - destination: {host: svc}
    timeout: 10s
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "connect-failure,refused-stream,reset,5xx"}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc}
spec:
  host: svc
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection:
      consecutive5xxErrors: 2
      interval: 1s
      baseEjectionTime: 1s
      maxEjectionPercent: 50
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_backend_loses_no_request_is_ejected_and_returns() {
    let mut a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let yaml = format!(
        "{}{POLICY}",
        service_entry("svc", &[(a.addr, "v1"), (b.addr, "v1")])
    );
    let store = mesh_core::watch::ConfigStore::new(reliability::config(&yaml));
    let registry = Arc::new(mesh_core::registry::Registry::from_config(
        &store.snapshot(),
    ));
    let source = store.clone();
    let clusters =
        mesh_client::cluster::Clusters::new(move || source.snapshot(), registry).with_seed(3);
    let client = mesh_client::client::MeshClient::builder(store.clone(), clusters.clone()).build();
    let client = Arc::new(client);

    // Steady load: 4 workers, 400 requests; endpoint `a` dies after the first 100.
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (client, sent) = (client.clone(), sent.clone());
        workers.spawn(async move {
            let mut answers = Vec::new();
            while sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 400 {
                answers.push(get(&client, "http://svc/work").await);
            }
            answers
        });
    }
    // Kill `a` once a quarter of the load has gone out.
    let killer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            while sent.load(std::sync::atomic::Ordering::SeqCst) < 100 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    killer.await.unwrap();
    a.kill();
    let mut answers = Vec::new();
    while let Some(joined) = workers.join_next().await {
        answers.extend(joined.unwrap());
    }
    let failed: Vec<_> = answers.iter().filter(|x| x.status != 200).collect();
    assert_eq!(answers.len(), 400);
    assert!(
        failed.is_empty(),
        "{} of 400 requests failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    assert!(
        client.stats().retries.get() > 0,
        "the dead endpoint was never hit: the test did not test retries"
    );

    // Outlier detection ejected `a` (the only endpoint that failed).
    let cluster = clusters
        .cluster(&Destination {
            host: "svc".into(),
            subset: None,
            port: None,
        })
        .unwrap();
    let detector = cluster.outlier().expect("outlier detection is configured");
    let health = detector.health();
    let a_health = health
        .iter()
        .find(|h| h.addr == a.addr)
        .expect("a is still registered");
    assert!(
        a_health.ejections_total >= 1,
        "a was never ejected: {health:?}"
    );
    let b_health = health.iter().find(|h| h.addr == b.addr).unwrap();
    assert_eq!(
        b_health.ejections_total, 0,
        "the healthy endpoint was ejected: {health:?}"
    );

    // Restart `a` on the same address: it comes back once its ejection time has passed.
    let a_hits_before = a.hits();
    let a2 = Backend::start_on("a", a.addr, a.behaviour.clone()).await;
    let mut back = false;
    for _ in 0..200 {
        let answer = get(&client, "http://svc/work").await;
        assert_eq!(
            answer.status, 200,
            "a request failed after the restart: {answer:?}"
        );
        if answer.backend == "a" {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "the restarted endpoint never took traffic again");
    assert!(a2.hits() > a_hits_before);
}
