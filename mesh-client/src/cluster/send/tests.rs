use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{Request, Response};
use http_body_util::BodyExt;
use mesh_core::policy::{Destination, MeshConfig};

use crate::body;
use crate::cluster::{Clusters, StaticEndpoints};
use crate::transport::Transport;

/// A cluster of one endpoint whose in-process answer waits for `gate` (or answers at once).
fn cluster(
    gate: Option<Arc<tokio::sync::Notify>>,
    answers: Arc<AtomicUsize>,
) -> Arc<super::Cluster> {
    let endpoints = Arc::new(StaticEndpoints::new());
    let addr: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    endpoints.insert("service3", None, addr, 1, Default::default());
    let config = Arc::new(MeshConfig::default());
    let transport = Transport::in_process(move |_, _req| {
        let gate = gate.clone();
        let answers = answers.clone();
        Box::pin(async move {
            if let Some(gate) = gate {
                gate.notified().await;
            }
            answers.fetch_add(1, Ordering::Relaxed);
            Ok(Response::new(body::full("answer")))
        })
    });
    let clusters = Clusters::new(move || Arc::clone(&config), endpoints).with_transport(transport);
    clusters
        .cluster(&Destination {
            host: "service3".into(),
            subset: None,
            port: None,
        })
        .unwrap()
}

fn get() -> Request<body::BoxBody> {
    Request::get("http://service3/")
        .body(body::empty())
        .unwrap()
}

#[tokio::test]
async fn the_body_holds_the_in_flight_count_until_it_ends() {
    let answers = Arc::new(AtomicUsize::new(0));
    let cluster = cluster(None, answers.clone());
    let resp = Arc::clone(&cluster).send(get()).await.unwrap();
    assert_eq!(answers.load(Ordering::Relaxed), 1);
    assert_eq!(
        cluster.balancer().in_flight(0),
        1,
        "the body is still unread"
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "answer");
    assert_eq!(cluster.balancer().in_flight(0), 0);
}

#[tokio::test]
async fn a_dropped_attempt_releases_its_endpoint() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let answers = Arc::new(AtomicUsize::new(0));
    let cluster = cluster(Some(gate.clone()), answers.clone());
    let mut future = tokio_test::task::spawn(Arc::clone(&cluster).send(get()));
    assert!(future.poll().is_pending(), "the answer waits for the gate");
    assert_eq!(cluster.balancer().in_flight(0), 1);
    drop(future);
    assert_eq!(cluster.balancer().in_flight(0), 0);
    gate.notify_waiters();
    assert_eq!(
        answers.load(Ordering::Relaxed),
        0,
        "the answer was never produced"
    );
}

#[test]
fn a_default_cluster_balances_without_learning_from_latency() {
    // Istio's default, least request, needs no latency: no clock read per attempt.
    let cluster = cluster(None, Arc::new(AtomicUsize::new(0)));
    assert!(!cluster.balancer().learns_latency());
}
