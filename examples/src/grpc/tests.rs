use std::sync::Arc;

use super::echo::CallRequest;
use super::echo::echo_client::EchoClient;
use super::*;
use crate::app::Faults;

fn client(state: Arc<AppState>) -> EchoClient<Router> {
    EchoClient::with_origin(app(state, None), http::Uri::from_static("http://service3"))
}

#[tokio::test]
async fn call_answers_with_the_services_identity() {
    let state = Arc::new(AppState::new("service3", "v1"));
    let mut c = client(state.clone());
    let reply = c
        .call(CallRequest {
            path: "/hello".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (reply.service.as_str(), reply.version.as_str()),
        ("service3", "v1")
    );
    assert_eq!(reply.path, "/hello");
    assert_eq!(reply.trace_id.len(), 32);
    assert!(reply.trace_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(reply.upstream.is_none());
    assert_eq!(state.requests(), 1);
}

#[tokio::test]
async fn http_requests_still_reach_the_json_handler() {
    use tower::ServiceExt;
    let router = app(Arc::new(AppState::new("service3", "v1")), None);
    let res = router
        .oneshot(
            http::Request::get("/mesh.examples.Echo/Call")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn injected_failures_carry_the_configured_status() {
    let state = Arc::new(AppState::new("service3", "v1").with_faults(Faults {
        error_rate: 0.5,
        grpc_status: 8,
        ..Faults::default()
    }));
    let mut c = client(state);
    let mut codes = Vec::new();
    for _ in 0..4 {
        let r = c.call(CallRequest { path: "/".into() }).await;
        codes.push(r.err().map(|s| s.code()));
    }
    let exhausted = Some(tonic::Code::ResourceExhausted);
    assert_eq!(codes, [None, exhausted, None, exhausted]);
}
