//! Circuit breaking against real servers: overflow is answered at once.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod cluster_support;

use cluster_support::{Backend, clusters, eventually, request, svc, text};
use mesh_client::error::outcome_of;
use mesh_core::classify::Outcome;
use mesh_core::policy::{ConnectionPool, TrafficPolicy};
use tower::{Service, ServiceExt};

#[tokio::test]
async fn requests_over_http2_max_requests_overflow_immediately() {
    let backend = Backend::start().await;
    backend.hold(true);
    let policy = TrafficPolicy {
        connection_pool: ConnectionPool {
            http2_max_requests: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let (mut clusters, _set) = clusters(policy, &[backend.addr]);
    let first = tokio::spawn(clusters.clone().oneshot(request("svc")));
    assert!(eventually(|| backend.hits() == 1).await);

    // The backend holds the first request: the second is refused without waiting for it.
    let err = clusters
        .ready()
        .await
        .unwrap()
        .call(request("svc"))
        .await
        .unwrap_err();
    assert_eq!(outcome_of(&err), Outcome::Overflow);
    assert_eq!(Outcome::Overflow.response_flag(), Some("UO"));
    assert!(err.to_string().contains("overflow"), "{err}");
    assert_eq!(backend.hits(), 1);

    backend.hold(false);
    let resp = first.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    let _ = text(resp).await;
    // The permit went back with the body: a new request goes through.
    let resp = clusters
        .ready()
        .await
        .unwrap()
        .call(request("svc"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn http1_pending_queue_is_bounded() {
    let backend = Backend::start().await;
    backend.hold(true);
    let policy = TrafficPolicy {
        connection_pool: ConnectionPool {
            max_connections: 1,
            http1_max_pending_requests: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let (clusters, _set) = clusters(policy, &[backend.addr]);
    let active = tokio::spawn(clusters.clone().oneshot(request("svc")));
    assert!(eventually(|| backend.hits() == 1).await);
    let queued = tokio::spawn(clusters.clone().oneshot(request("svc")));
    let cluster = clusters.cluster(&svc()).unwrap();
    assert!(eventually(|| cluster.pool().pending() == 1).await);

    let err = clusters.clone().oneshot(request("svc")).await.unwrap_err();
    assert_eq!(outcome_of(&err), Outcome::Overflow);

    backend.hold(false);
    for task in [active, queued] {
        let resp = task.await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
        let _ = text(resp).await;
    }
    assert_eq!(backend.hits(), 2);
}

#[tokio::test]
async fn retry_permits_follow_max_retries() {
    let backend = Backend::start().await;
    let policy = TrafficPolicy {
        connection_pool: ConnectionPool {
            max_retries: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    let (clusters, _set) = clusters(policy, &[backend.addr]);
    let a = clusters.retry_permit(&svc());
    let b = clusters.retry_permit(&svc());
    assert!(a.is_some() && b.is_some());
    assert!(clusters.retry_permit(&svc()).is_none());
    drop(a);
    assert!(clusters.retry_permit(&svc()).is_some());
}
