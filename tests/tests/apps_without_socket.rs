//! Each app's `app(..)` router answers without a socket (as in axum's testing example): the
//! services' JSON contract, the upstream chain, the 502 on upstream failure, injected failures,
//! and the gateway's host check.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, Response, StatusCode};
use mesh_examples::app::{AppState, Faults, app};
use mesh_examples::upstream::{Upstream, UpstreamFuture};
use serde_json::Value;
use tower::ServiceExt;

/// An upstream that is another app's router, called in memory.
struct InMemory(axum::Router);

impl Upstream for InMemory {
    fn call(&self, req: Request<Body>) -> UpstreamFuture {
        let router = self.0.clone();
        Box::pin(async move { Ok(router.oneshot(req).await?) })
    }
}

/// An upstream that always fails to connect.
struct Down;

impl Upstream for Down {
    fn call(&self, _req: Request<Body>) -> UpstreamFuture {
        Box::pin(async { Err("connection refused".into()) })
    }
}

async fn json(res: Response<Body>) -> (StatusCode, Value) {
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("end-user", "alice")
        .body(Body::empty())
        .unwrap_or_default()
}

#[tokio::test]
async fn service_chain_answers_with_the_contract_json() {
    let s3 = app(Arc::new(AppState::new("service3", "v1")));
    let s2 = app(Arc::new(
        AppState::new("service2", "v2").with_upstream("service3", Arc::new(InMemory(s3))),
    ));
    let s1 = app(Arc::new(
        AppState::new("service1", "v1").with_upstream("service2", Arc::new(InMemory(s2))),
    ));
    let res = s1.oneshot(get("/service1/hello?x=1")).await;
    let (status, body) = json(res.unwrap_or_default()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["service"], "service1");
    assert_eq!(body["path"], "/service1/hello?x=1");
    assert_eq!(body["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(body["upstream"]["service"], "service2");
    assert_eq!(body["upstream"]["version"], "v2");
    assert_eq!(
        body["upstream"]["trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(body["upstream"]["upstream"]["service"], "service3");
    assert_eq!(body["upstream"]["upstream"]["upstream"], Value::Null);
}

#[tokio::test]
async fn upstream_failure_is_a_502_with_the_reason() {
    let s1 = app(Arc::new(
        AppState::new("service1", "v1").with_upstream("service2", Arc::new(Down)),
    ));
    let (status, body) = json(s1.oneshot(get("/x")).await.unwrap_or_default()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["service"], "service1");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("connection refused")),
        "{body}"
    );
    assert_eq!(body["upstream_status"], Value::Null);

    let failing = app(Arc::new(AppState::new("service3", "v1").with_faults(
        Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
    )));
    let s2 = app(Arc::new(
        AppState::new("service2", "v1").with_upstream("service3", Arc::new(InMemory(failing))),
    ));
    let (status, body) = json(s2.oneshot(get("/y")).await.unwrap_or_default()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["upstream_status"], 503);
}

#[tokio::test]
async fn injected_failures_follow_the_rate() {
    let state = Arc::new(AppState::new("service3", "v1").with_faults(Faults {
        error_rate: 0.25,
        status: StatusCode::INTERNAL_SERVER_ERROR,
        ..Faults::default()
    }));
    let router = app(state.clone());
    let mut failed = 0;
    for _ in 0..100 {
        let res = router.clone().oneshot(get("/")).await.unwrap_or_default();
        if res.status() == StatusCode::INTERNAL_SERVER_ERROR {
            failed += 1;
        }
    }
    assert_eq!(failed, 25);
    assert_eq!(state.requests(), 100);
}

#[tokio::test]
async fn gateway_checks_the_host_then_forwards() {
    use mesh_examples::gateway::{GatewayState, app as gateway_app};
    let s3 = app(Arc::new(AppState::new("service3", "v1")));
    let state = Arc::new(GatewayState {
        name: "shop-gateway".into(),
        hosts: vec!["shop.example.com".into()],
        redirects: Vec::new(),
        client: Arc::new(InMemory(s3)),
    });
    let gw = gateway_app(state);
    let req = |host: &str| {
        Request::get("/service3/a")
            .header("host", host)
            .body(Body::empty())
            .unwrap_or_default()
    };
    let (status, body) = json(
        gw.clone()
            .oneshot(req("shop.example.com:8080"))
            .await
            .unwrap_or_default(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["service"], "service3");
    let (status, _) = json(
        gw.oneshot(req("other.example.com"))
            .await
            .unwrap_or_default(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
