//! The route timeout against a real slow server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use http::StatusCode;
use support::*;

const VS: &str = r#"
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: service2
spec:
  hosts:
    - service2
  http:
    - match:
        - uri:
            prefix: /slow
      route:
        - destination:
            host: service2
      timeout: 200ms
    - route:
        - destination:
            host: service2
"#;

#[tokio::test]
async fn slow_answer_gets_504_ut_and_fast_one_passes() {
    let slow = backend("s", |n| {
        Box::pin(async move {
            if n == 0 {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            (StatusCode::OK, "ok".into())
        })
    })
    .await;
    let (client, _store) = mesh(VS, &[("service2", slow.addr, labels(&[]))], 1);
    let (status, _, flags) = get(&client, "http://service2/slow").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(flags, "UT");
    assert_eq!(client.stats().timeouts.get(), 1);
    let (status, backend, _) = get(&client, "http://service2/fast").await;
    assert_eq!((status, backend.as_str()), (StatusCode::OK, "s"));
}

const PER_TRY: &str = r#"
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
        attempts: 2
        perTryTimeout: 200ms
        retryOn: reset,connect-failure
"#;

#[tokio::test]
async fn per_try_timeout_moves_on_to_a_fast_attempt() {
    let first_slow = backend("s", |n| {
        Box::pin(async move {
            if n == 0 {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            (StatusCode::OK, "ok".into())
        })
    })
    .await;
    let (client, _store) = mesh(PER_TRY, &[("service2", first_slow.addr, labels(&[]))], 1);
    let (status, _, _) = get(&client, "http://service2/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        first_slow.hits(),
        2,
        "the slow attempt was abandoned and retried"
    );
    assert_eq!(client.stats().retries.get(), 1);
}
