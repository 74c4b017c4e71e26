//! The article's shadowing: users get v1's answers, every request is copied to v2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use support::*;
use tokio::sync::Semaphore;

async fn wait_for(mut done: impl FnMut() -> bool) {
    // Bounded: at most 10 s of 10 ms polls.
    for _ in 0..1_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn copies_reach_v2_with_shadow_host_and_answers_come_from_v1() {
    let v1 = ok_backend("v1").await;
    let v2 = ok_backend("v2").await;
    let yaml = format!(
        "{}\n---\n{}",
        seed("04-destinationrule-subsets.yaml"),
        seed("05-virtualservice-mirror.yaml")
    );
    let eps = [
        ("service2", v1.addr, labels(&[("version", "v1")])),
        ("service2", v2.addr, labels(&[("version", "v2")])),
    ];
    let (client, _store) = mesh(&yaml, &eps, 1);
    for _ in 0..20 {
        let (status, backend, _) = get(&client, "http://service2:80/mirror").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(backend, "v1", "users only see v1");
    }
    wait_for(|| v2.hits() == 20).await;
    assert_eq!(v1.hits(), 20);
    assert_eq!(v2.hits(), 20, "every request was copied to v2");
    let seen = v2.seen.lock().unwrap();
    assert!(
        seen.iter()
            .all(|s| s.host == "service2-shadow:80" && s.path == "/mirror"),
        "{:?}",
        seen.first()
    );
    assert_eq!(client.stats().mirrors_sent.get(), 20);
}

#[tokio::test]
async fn a_hung_shadow_never_delays_the_primary() {
    let v1 = ok_backend("v1").await;
    // v2 answers only when the test lets it: if the primary waited for the copy, it would hang.
    let gate = Arc::new(Semaphore::new(0));
    let g = gate.clone();
    let v2 = backend("v2", move |_| {
        let g = g.clone();
        Box::pin(async move {
            let _ = g.acquire().await;
            (StatusCode::OK, "late".into())
        })
    })
    .await;
    let yaml = format!(
        "{}\n---\n{}",
        seed("04-destinationrule-subsets.yaml"),
        seed("05-virtualservice-mirror.yaml")
    );
    let eps = [
        ("service2", v1.addr, labels(&[("version", "v1")])),
        ("service2", v2.addr, labels(&[("version", "v2")])),
    ];
    let (client, _store) = mesh(&yaml, &eps, 2);
    let all = async {
        for _ in 0..10 {
            assert_eq!(get(&client, "http://service2/").await.0, StatusCode::OK);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("primary requests completed while every copy hung");
    assert_eq!(v1.hits(), 10);
    gate.add_permits(100);
}

#[tokio::test]
async fn a_dead_shadow_never_fails_the_primary() {
    let v1 = ok_backend("v1").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let yaml = format!(
        "{}\n---\n{}",
        seed("04-destinationrule-subsets.yaml"),
        seed("05-virtualservice-mirror.yaml")
    );
    let eps = [
        ("service2", v1.addr, labels(&[("version", "v1")])),
        ("service2", closed, labels(&[("version", "v2")])),
    ];
    let (client, _store) = mesh(&yaml, &eps, 3);
    for _ in 0..10 {
        assert_eq!(get(&client, "http://service2/").await.0, StatusCode::OK);
    }
    let stats = client.stats().clone();
    wait_for(|| stats.mirrors_failed.get() == 10).await;
    assert_eq!(stats.mirrors_failed.get(), 10);
}
