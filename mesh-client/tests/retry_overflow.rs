//! `connectionPool.http.maxRetries` as Envoy's retry circuit breaker: retries in flight to a
//! cluster are bounded; a retry over the limit is not sent and is counted as an overflow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use http::StatusCode;
use support::*;
use tokio::sync::Notify;

const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: service2
spec:
  hosts: [service2]
  http:
  - route:
    - destination:
        host: service2
    retries:
      attempts: 3
      retryOn: 5xx
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: service2
spec:
  host: service2
  trafficPolicy:
    connectionPool:
      http:
        maxRetries: 1
"#;

#[tokio::test]
async fn retries_beyond_max_retries_are_not_sent() {
    // the first three requests fail at once; every retry hangs until released
    let release = Arc::new(Notify::new());
    let r = release.clone();
    let s2 = backend("service2", move |n| {
        let r = r.clone();
        Box::pin(async move {
            if n < 3 {
                (StatusCode::SERVICE_UNAVAILABLE, "down".to_owned())
            } else {
                r.notified().await;
                (StatusCode::OK, "ok".to_owned())
            }
        })
    })
    .await;
    let (client, _store) = mesh(CONFIG, &[("service2", s2.addr, labels(&[]))], 1);
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { get(&c, "http://service2/").await.0 })
        })
        .collect();
    // one retry holds the only permit; the two others give up with the first answer
    let mut statuses = Vec::new();
    for _ in 0..500 {
        if client.stats().retries_overflow.get() == 2 && s2.hits() == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(client.stats().retries_overflow.get(), 2);
    assert_eq!(s2.hits(), 4, "three first attempts and one retry");
    release.notify_waiters();
    for call in calls {
        statuses.push(call.await.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE
        ]
    );
    assert_eq!(client.stats().retries.get(), 1);
}
