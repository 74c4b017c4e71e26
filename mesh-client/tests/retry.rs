//! Retries against real servers: a flaky backend rescued, a different endpoint per attempt, POST
//! not repeated once it reached the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use mesh_client::random::Random;
use support::*;

fn retries_vs(attempts: u32) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: service2
spec:
  hosts:
    - service2
  http:
    - route:
        - destination:
            host: service2
      retries:
        attempts: {attempts}
        perTryTimeout: 10s
"#
    )
}

/// A backend answering 503 to a seeded random half of its requests.
async fn flaky(name: &'static str, seed: u64) -> Backend {
    let random = Arc::new(Mutex::new(Random::seeded(seed)));
    backend(name, move |_| {
        let fail = random.lock().unwrap().percent(50.0);
        Box::pin(async move {
            if fail {
                (StatusCode::SERVICE_UNAVAILABLE, "flaky".into())
            } else {
                (StatusCode::OK, "ok".into())
            }
        })
    })
    .await
}

#[tokio::test]
async fn five_retries_rescue_a_half_failing_backend() {
    let a = flaky("a", 1).await;
    let b = flaky("b", 2).await;
    let eps = [
        ("service2", a.addr, labels(&[])),
        ("service2", b.addr, labels(&[])),
    ];
    let (client, _store) = mesh(&retries_vs(5), &eps, 5);
    let n = 400;
    let mut ok = 0;
    for _ in 0..n {
        if get(&client, "http://service2/").await.0 == StatusCode::OK {
            ok += 1;
        }
    }
    // Six independent tries at 50 %: 1/64 of requests are expected to fail (98.4 % success).
    assert!(ok * 100 >= n * 97, "only {ok}/{n} succeeded");
    assert!(
        client.stats().retries.get() > (n / 2) as u64,
        "retries did the rescuing"
    );

    // The same backends without retries: about half fail, so the rescue above is the retries'.
    let (plain, _s) = mesh(&retries_vs(0), &eps, 6);
    let mut plain_ok = 0;
    for _ in 0..200 {
        if get(&plain, "http://service2/").await.0 == StatusCode::OK {
            plain_ok += 1;
        }
    }
    assert!(
        (60..=140).contains(&plain_ok),
        "without retries {plain_ok}/200 succeeded"
    );
}

#[tokio::test]
async fn alternating_503s_are_all_rescued() {
    // Exactly half of this backend's answers are 503 (every other one).
    let a = backend("a", |n| {
        Box::pin(async move {
            if n % 2 == 0 {
                (StatusCode::SERVICE_UNAVAILABLE, "x".into())
            } else {
                (StatusCode::OK, "ok".into())
            }
        })
    })
    .await;
    let (client, _store) = mesh(&retries_vs(5), &[("service2", a.addr, labels(&[]))], 7);
    let mut ok = 0;
    for _ in 0..200 {
        if get(&client, "http://service2/").await.0 == StatusCode::OK {
            ok += 1;
        }
    }
    assert!(ok >= 198, "{ok}/200");
    assert_eq!(a.hits(), 400, "each request took one 503 and one 200");
}

#[tokio::test]
async fn retry_goes_to_another_endpoint() {
    let bad = status_backend("bad", StatusCode::SERVICE_UNAVAILABLE).await;
    let good = ok_backend("good").await;
    let eps = [
        ("service2", bad.addr, labels(&[])),
        ("service2", good.addr, labels(&[])),
    ];
    let (client, _store) = mesh(&retries_vs(1), &eps, 11);
    for _ in 0..50 {
        let (status, backend, _) = get(&client, "http://service2/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(backend, "good");
    }
    assert!(
        bad.hits() <= 50,
        "the bad endpoint was never tried twice for one request"
    );
}

#[tokio::test]
async fn post_is_not_retried_after_reaching_the_server() {
    let down = status_backend("down", StatusCode::SERVICE_UNAVAILABLE).await;
    let (client, _store) = mesh(&retries_vs(3), &[("service2", down.addr, labels(&[]))], 3);
    let post = Request::post("http://service2/orders")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let resp = client.send(post).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        down.hits(),
        1,
        "a POST that reached the server is sent once"
    );
    let (status, _, flags) = get(&client, "http://service2/orders").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(flags, "URX");
    assert_eq!(down.hits(), 1 + 4, "a GET is tried 1 + 3 times");
}

#[tokio::test]
async fn connect_failure_is_retried_even_for_post() {
    // An address nobody listens on (bound then closed), beside a working one.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let good = ok_backend("good").await;
    let eps = [
        ("service2", closed, labels(&[])),
        ("service2", good.addr, labels(&[])),
    ];
    let (client, _store) = mesh(&retries_vs(2), &eps, 4);
    for _ in 0..20 {
        let post = Request::post("http://service2/orders")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        assert_eq!(client.send(post).await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(good.hits(), 20);
}
