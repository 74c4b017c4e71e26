use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{Request, Response};
use http_body::Body as _;
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

type Frames = tokio::sync::mpsc::Sender<Result<http_body::Frame<bytes::Bytes>, crate::BoxError>>;

/// A cluster whose one in-process answer streams the frames sent on the returned channel.
fn streaming_cluster() -> (Arc<super::Cluster>, Frames) {
    let endpoints = Arc::new(StaticEndpoints::new());
    let addr: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    endpoints.insert("service3", None, addr, 1, Default::default());
    let config = Arc::new(MeshConfig::default());
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let rx = std::sync::Mutex::new(Some(rx));
    let transport = Transport::in_process(move |_, _req| {
        let mut rx = rx.lock().unwrap().take().expect("one answer");
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let body = body::boxed(http_body_util::StreamBody::new(stream));
        Box::pin(async move { Ok(Response::new(body)) })
    });
    let clusters = Clusters::new(move || Arc::clone(&config), endpoints).with_transport(transport);
    let cluster = clusters
        .cluster(&Destination {
            host: "service3".into(),
            subset: None,
            port: None,
        })
        .unwrap();
    (cluster, tx)
}

#[tokio::test(start_paused = true)]
async fn the_answer_body_keeps_the_calls_deadline_itself() {
    let stats = Arc::new(crate::stats::ClientStats::default());
    let (cluster, tx) = streaming_cluster();
    let resp = Arc::clone(&cluster).send(get()).await.unwrap();
    let at = tokio::time::Instant::now() + std::time::Duration::from_millis(300);
    let mut body = crate::grpc::deadline::until(resp.into_body(), at, &stats);
    assert!(
        body.downcast_ref::<super::body::Answer>().is_some(),
        "no wrapper around the cluster's body"
    );
    tx.send(Ok(http_body::Frame::data("first".into())))
        .await
        .unwrap();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "first");
    assert_eq!(cluster.balancer().in_flight(0), 1, "the answer streams on");
    // At the deadline: DEADLINE_EXCEEDED, the upstream's body dropped, the endpoint released.
    let trailers = body
        .frame()
        .await
        .unwrap()
        .unwrap()
        .into_trailers()
        .unwrap();
    assert_eq!(mesh_core::grpc::status_of(&trailers), Some(4));
    assert!(body.is_end_stream());
    assert!(body.frame().await.is_none());
    assert_eq!(stats.timeouts.get(), 1);
    assert!(tx.is_closed());
    assert_eq!(cluster.balancer().in_flight(0), 0);
    // A second deadline cannot go inside the first: it wraps the body.
    let (cluster, _tx) = streaming_cluster();
    let resp = cluster.send(get()).await.unwrap();
    let once = crate::grpc::deadline::until(resp.into_body(), at, &stats);
    let twice = crate::grpc::deadline::until(once, at, &stats);
    assert!(twice.downcast_ref::<super::body::Answer>().is_none());
}

#[tokio::test(start_paused = true)]
async fn the_answer_body_records_the_status_its_deadline_ends_it_with() {
    use mesh_telemetry::{PeerLabels, Reporter, RequestLabels, ServiceLabels, WorkloadLabels};
    let metrics = mesh_telemetry::MeshMetrics::new();
    let record = mesh_telemetry::RequestRecord {
        labels: RequestLabels {
            peers: PeerLabels::new(
                Reporter::Source,
                WorkloadLabels::unknown(),
                WorkloadLabels::unknown(),
                ServiceLabels::from_host("service3"),
            ),
            protocol: "grpc",
            response_code: 200,
            response_flags: "-".into(),
            grpc_status: None,
        },
        duration: std::time::Duration::from_millis(1),
        request_bytes: 0,
        response_bytes: 0,
    };
    let stats = Arc::new(crate::stats::ClientStats::default());
    let (cluster, tx) = streaming_cluster();
    let resp = cluster.send(get()).await.unwrap();
    let at = tokio::time::Instant::now() + std::time::Duration::from_millis(300);
    // As the route timeout, then the client's telemetry, set them up: both in the one body.
    let body = crate::grpc::deadline::until(resp.into_body(), at, &stats);
    let pending = mesh_telemetry::grpc_status::DeferredRecord::new(metrics.clone(), record, None);
    let body = crate::client::watch_grpc_status(body, pending);
    assert!(body.downcast_ref::<super::body::Answer>().is_some());
    tx.send(Ok(http_body::Frame::data("first".into())))
        .await
        .unwrap();
    let collected = body.collect().await.unwrap();
    assert_eq!(
        mesh_core::grpc::status_of(collected.trailers().unwrap()),
        Some(4)
    );
    let text = metrics.encode_prometheus();
    let requests = text
        .lines()
        .find(|l| l.starts_with("istio_requests_total{"))
        .unwrap();
    assert!(
        requests.contains("grpc_response_status=\"4\""),
        "{requests}"
    );
}
