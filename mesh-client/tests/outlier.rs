//! Outlier detection against real servers: failing and dead endpoints are ejected, and return.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod cluster_support;

use std::time::Duration;

use cluster_support::{Backend, clusters, dead_addr, eventually, request, svc, text};
use mesh_client::context::{PreviousAttempts, Upstream};
use mesh_client::error::outcome_of;
use mesh_core::classify::Outcome;
use mesh_core::policy::{LoadBalancer, OutlierDetection, TrafficPolicy};
use tower::ServiceExt;

fn policy(base: Duration) -> TrafficPolicy {
    TrafficPolicy {
        load_balancer: LoadBalancer::RoundRobin,
        outlier_detection: Some(OutlierDetection {
            consecutive_5xx: 2,
            base_ejection_time: base,
            max_ejection_percent: 100,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn failing_endpoint_is_ejected_then_returns() {
    let good = Backend::start().await;
    let bad = Backend::start().await;
    bad.set_status(503);
    let (clusters, _set) = clusters(policy(Duration::from_millis(300)), &[good.addr, bad.addr]);

    let mut statuses = Vec::new();
    for _ in 0..10 {
        let resp = clusters.clone().oneshot(request("svc")).await.unwrap();
        statuses.push(resp.status().as_u16());
        let _ = text(resp).await;
    }
    // Round robin sends every other request to the bad one until its second 503 ejects it.
    assert_eq!(
        statuses.iter().filter(|s| **s == 503).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(bad.hits(), 2);
    let cluster = clusters.cluster(&svc()).unwrap();
    let od = cluster.outlier().unwrap();
    let health = od.health();
    let bad_health = health.iter().find(|h| h.addr == bad.addr).unwrap();
    assert!(bad_health.ejected);
    assert_eq!(
        od.metrics()
            .ejections(cluster.name(), &bad.addr.to_string(), "consecutive_5xx"),
        1
    );

    // After baseEjectionTime it is picked again (bounded wait, no timing assertion).
    bad.set_status(200);
    let back = eventually(|| !od.is_ejected(1) && !od.is_ejected(0)).await;
    assert!(back, "the ejected endpoint never returned");
    for _ in 0..4 {
        let _ = text(clusters.clone().oneshot(request("svc")).await.unwrap()).await;
    }
    assert!(bad.hits() > 2);
    assert_eq!(
        od.metrics().returns(cluster.name(), &bad.addr.to_string()),
        1
    );
}

#[tokio::test]
async fn dead_endpoint_is_ejected_and_avoided_by_retries() {
    let good = Backend::start().await;
    let dead = dead_addr().await;
    let (clusters, _set) = clusters(policy(Duration::from_secs(60)), &[dead, good.addr]);

    // A retry that already tried the dead endpoint goes to the other one.
    for _ in 0..5 {
        let mut req = request("svc");
        req.extensions_mut().insert(PreviousAttempts {
            endpoints: vec![dead],
        });
        let resp = clusters.clone().oneshot(req).await.unwrap();
        assert_eq!(
            resp.extensions().get::<Upstream>().unwrap().endpoint,
            good.addr
        );
    }

    let mut failures = 0;
    for _ in 0..10 {
        match clusters.clone().oneshot(request("svc")).await {
            Ok(resp) => assert_eq!(
                resp.extensions().get::<Upstream>().unwrap().endpoint,
                good.addr
            ),
            Err(e) => {
                assert_eq!(outcome_of(&e), Outcome::ConnectFailure);
                failures += 1;
            }
        }
    }
    assert_eq!(failures, 2, "two connect failures eject the dead endpoint");
    let cluster = clusters.cluster(&svc()).unwrap();
    assert_eq!(cluster.outlier().unwrap().ejected_count(), 1);
}

#[tokio::test]
async fn all_ejected_is_no_healthy_upstream() {
    let bad = Backend::start().await;
    bad.set_status(500);
    let (clusters, _set) = clusters(policy(Duration::from_secs(60)), &[bad.addr]);
    for _ in 0..2 {
        let resp = clusters.clone().oneshot(request("svc")).await.unwrap();
        assert_eq!(resp.status(), 500);
    }
    let err = clusters.clone().oneshot(request("svc")).await.unwrap_err();
    assert_eq!(outcome_of(&err), Outcome::NoHealthyUpstream);
    assert_eq!(Outcome::NoHealthyUpstream.response_flag(), Some("UH"));
    assert_eq!(bad.hits(), 2);
}

#[tokio::test]
async fn unknown_host_or_subset_is_no_healthy_upstream() {
    let good = Backend::start().await;
    let (clusters, _set) = clusters(policy(Duration::from_secs(1)), &[good.addr]);
    let err = clusters
        .clone()
        .oneshot(request("nowhere"))
        .await
        .unwrap_err();
    assert_eq!(outcome_of(&err), Outcome::NoHealthyUpstream);
    let mut req = request("svc");
    let target = req
        .extensions_mut()
        .get_mut::<mesh_client::context::Target>()
        .unwrap();
    std::sync::Arc::make_mut(&mut target.destination).subset = Some("v9".into());
    let err = clusters.clone().oneshot(req).await.unwrap_err();
    assert_eq!(outcome_of(&err), Outcome::NoHealthyUpstream);
    // a subset no DestinationRule defines is no cluster at all (NC), not an empty one
    let cluster_error = err
        .downcast_ref::<mesh_client::error::ClusterError>()
        .unwrap();
    assert!(cluster_error.is_no_cluster(), "{cluster_error}");
    assert!(cluster_error.to_string().contains("v9"), "{cluster_error}");
}

#[tokio::test]
async fn endpoint_changes_rebuild_the_cluster_and_keep_outlier_state() {
    let a = Backend::start().await;
    let b = Backend::start().await;
    let c = Backend::start().await;
    b.set_status(503);
    let (clusters, set) = clusters(policy(Duration::from_secs(60)), &[a.addr, b.addr]);
    for _ in 0..6 {
        let _ = text(clusters.clone().oneshot(request("svc")).await.unwrap()).await;
    }
    let before = clusters.cluster(&svc()).unwrap();
    assert_eq!(before.outlier().unwrap().ejected_count(), 1);
    set.insert("svc", None, c.addr, 1, Default::default());
    let after = clusters.cluster(&svc()).unwrap();
    assert_eq!(after.balancer().len(), 3);
    assert_eq!(
        after.outlier().unwrap().ejected_count(),
        1,
        "b stays ejected across the rebuild"
    );
    // Same generation and config: the cached cluster is reused.
    assert!(std::sync::Arc::ptr_eq(
        &after,
        &clusters.cluster(&svc()).unwrap()
    ));
}

#[tokio::test]
async fn attempt_deadline_times_out_and_counts_against_the_endpoint() {
    use mesh_client::context::AttemptDeadline;
    let stuck = Backend::start().await;
    stuck.hold(true);
    let policy = TrafficPolicy {
        outlier_detection: Some(OutlierDetection {
            consecutive_gateway_errors: 2,
            consecutive_5xx: 0,
            max_ejection_percent: 100,
            ..Default::default()
        }),
        ..Default::default()
    };
    let (clusters, _set) = clusters(policy, &[stuck.addr]);
    for _ in 0..2 {
        let mut req = request("svc");
        req.extensions_mut().insert(AttemptDeadline {
            at: tokio::time::Instant::now() + Duration::from_millis(50),
        });
        let err = clusters.clone().oneshot(req).await.unwrap_err();
        assert_eq!(outcome_of(&err), Outcome::Timeout);
    }
    let cluster = clusters.cluster(&svc()).unwrap();
    assert_eq!(
        cluster.outlier().unwrap().ejected_count(),
        1,
        "two timeouts are two gateway errors"
    );
    assert_eq!(
        cluster.balancer().in_flight(0),
        0,
        "the timed-out attempts are no longer in flight"
    );
}

/// A request body that fails part-way, as a downstream's body does when its chunked framing is
/// broken or its client goes away.
fn failing_body_request(host: &str) -> http::Request<mesh_client::body::BoxBody> {
    use bytes::Bytes;
    use http_body_util::StreamBody;
    let chunks: Vec<Result<http_body::Frame<Bytes>, mesh_client::BoxError>> = vec![
        Ok(http_body::Frame::data(Bytes::from_static(b"hello"))),
        Err("invalid chunk size line".into()),
    ];
    let body = StreamBody::new(futures_util::stream::iter(chunks));
    let mut req = request(host);
    *req.method_mut() = http::Method::POST;
    *req.body_mut() = mesh_client::body::boxed(body);
    req
}

#[tokio::test]
async fn a_downstreams_failing_body_is_never_counted_against_the_endpoint() {
    let only = Backend::start().await;
    let mut strict = policy(Duration::from_secs(60));
    if let Some(od) = strict.outlier_detection.as_mut() {
        od.consecutive_5xx = 1;
        od.consecutive_local_origin_failures = 1;
    }
    let (clusters, _set) = clusters(strict, &[only.addr]);
    for _ in 0..5 {
        let err = clusters
            .clone()
            .oneshot(failing_body_request("svc"))
            .await
            .expect_err("the request cannot be sent whole");
        assert_eq!(outcome_of(&err), Outcome::DownstreamError, "{err}");
    }
    let cluster = clusters.cluster(&svc()).unwrap();
    let od = cluster.outlier().unwrap();
    assert!(
        !od.is_ejected(0),
        "a client's broken body ejected the endpoint"
    );
    let resp = clusters.clone().oneshot(request("svc")).await.unwrap();
    assert_eq!(resp.status(), 200);
}
