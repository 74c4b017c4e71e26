use std::convert::Infallible;
use std::time::Duration;

use tower::{ServiceExt, service_fn};

use super::*;

fn grpc_request(timeout: Option<&'static str>) -> Request<Body> {
    let mut b =
        Request::post("/mesh.examples.Echo/Call").header("content-type", "application/grpc");
    if let Some(t) = timeout {
        b = b.header("grpc-timeout", t);
    }
    b.body(Body::empty()).unwrap()
}

fn answering(
    status: StatusCode,
    text: &'static str,
) -> GrpcAnswers<
    impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone,
> {
    GrpcAnswers::new(service_fn(move |_req: Request<Body>| async move {
        let mut res = Response::new(Body::from(text));
        *res.status_mut() = status;
        Ok::<_, Infallible>(res)
    }))
}

#[tokio::test]
async fn mesh_refusals_map_as_envoy() {
    for (status, text, code) in [
        (StatusCode::FORBIDDEN, "RBAC: access denied", 7),
        (StatusCode::UNAUTHORIZED, "Jwt is missing", 16),
        (StatusCode::TOO_MANY_REQUESTS, "local_rate_limited", 14),
        (
            StatusCode::BAD_REQUEST,
            "Bad Request: invalid request path",
            13,
        ),
        (StatusCode::NOT_FOUND, "", 12),
        (StatusCode::GATEWAY_TIMEOUT, "request timeout", 4),
    ] {
        let res = answering(status, text)
            .oneshot(grpc_request(None))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{status}");
        assert_eq!(grpc::status_of(res.headers()), Some(code), "{status}");
        let message = res.headers()["grpc-message"].to_str().unwrap().to_owned();
        assert!(!message.is_empty());
        if !text.is_empty() {
            assert_eq!(message, text);
        }
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert!(body.is_empty());
    }
}

#[tokio::test]
async fn plain_http_and_successes_pass_through() {
    let res = answering(StatusCode::FORBIDDEN, "no")
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = answering(StatusCode::OK, "fine")
        .oneshot(grpc_request(None))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("grpc-status").is_none());
}

#[tokio::test(start_paused = true)]
async fn the_callers_deadline_is_honoured_and_handed_down() {
    let slow = GrpcAnswers::new(service_fn(|req: Request<Body>| async move {
        let left = req.extensions().get::<Deadline>().map(Deadline::left);
        assert_eq!(left, Some(Duration::from_millis(50)));
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok::<_, Infallible>(Response::new(Body::empty()))
    }));
    let res = slow.oneshot(grpc_request(Some("50m"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(grpc::status_of(res.headers()), Some(4));
}

#[tokio::test(start_paused = true)]
async fn an_answer_ready_at_the_deadline_wins_over_it() {
    // The handler's answer and the caller's deadline fall due at the same instant: the answer
    // is polled first, as `timeout_at` would.
    let on_time = GrpcAnswers::new(service_fn(|_req: Request<Body>| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok::<_, Infallible>(
            Response::builder()
                .header("content-type", "application/grpc")
                .body(Body::from("reply"))
                .unwrap(),
        )
    }));
    let res = on_time.oneshot(grpc_request(Some("50m"))).await.unwrap();
    assert_eq!(grpc::status_of(res.headers()), None, "the handler's answer");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"reply");
}

#[tokio::test(start_paused = true)]
async fn a_refusal_after_waiting_is_rewritten_and_dropping_the_call_drops_the_handler() {
    // The rewrite state after a pending handler: a 403 that came late still becomes status 7.
    let late = answering_after(StatusCode::FORBIDDEN, "RBAC: access denied");
    let res = late.oneshot(grpc_request(Some("10S"))).await.unwrap();
    assert_eq!(grpc::status_of(res.headers()), Some(7));
    assert_eq!(res.headers()["grpc-message"], "RBAC: access denied");

    // Dropped while waiting: the handler's future goes with it.
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    struct OnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let flag = dropped.clone();
    let mut svc = GrpcAnswers::new(service_fn(move |_req: Request<Body>| {
        let guard = OnDrop(flag.clone());
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }
    }));
    let mut call = Box::pin(svc.call(grpc_request(Some("10S"))));
    assert!(
        futures_util::poll!(call.as_mut()).is_pending(),
        "waits for the handler"
    );
    drop(call);
    assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
}

fn answering_after(
    status: StatusCode,
    text: &'static str,
) -> GrpcAnswers<
    impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone,
> {
    GrpcAnswers::new(service_fn(move |_req: Request<Body>| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut res = Response::new(Body::from(text));
        *res.status_mut() = status;
        Ok::<_, Infallible>(res)
    }))
}
