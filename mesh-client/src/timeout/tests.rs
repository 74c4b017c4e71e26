use http::StatusCode;

use super::*;
use crate::body;
use http_body_util::BodyExt;
use mesh_telemetry::ResponseFlags;
use tower::ServiceExt;

fn slow(
    delay: Duration,
) -> impl Service<Request<BoxBody>, Response = Response<BoxBody>, Error = crate::BoxError, Future: Send>
+ Clone {
    tower::service_fn(move |_req: Request<BoxBody>| async move {
        tokio::time::sleep(delay).await;
        Ok::<_, crate::BoxError>(Response::new(body::full("ok")))
    })
}

#[tokio::test(start_paused = true)]
async fn expired_deadline_answers_504_ut() {
    let stats = Arc::new(ClientStats::default());
    let svc = TimeoutLayer::new(Some(Duration::from_millis(100)))
        .with_stats(stats.clone())
        .layer(slow(Duration::from_secs(5)));
    let resp = svc.oneshot(Request::new(body::empty())).await.unwrap();
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        resp.extensions().get::<ResponseFlags>().unwrap().to_label(),
        "UT"
    );
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&text[..], b"upstream request timeout");
    assert_eq!(stats.timeouts.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn fast_answer_passes_and_none_never_expires() {
    let svc =
        TimeoutLayer::new(Some(Duration::from_secs(1))).layer(slow(Duration::from_millis(10)));
    assert_eq!(
        svc.oneshot(Request::new(body::empty()))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let svc = TimeoutLayer::new(None).layer(slow(Duration::from_secs(3600)));
    assert_eq!(
        svc.oneshot(Request::new(body::empty()))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn a_grpc_timeout_is_capped_by_the_route_and_handed_down() {
    use mesh_core::grpc::Deadline;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let record = seen.clone();
    let inner = tower::service_fn(move |req: http::Request<crate::body::BoxBody>| {
        let left = req.extensions().get::<Deadline>().map(Deadline::left);
        *record.lock().unwrap() = left;
        async move {
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            Ok::<_, crate::BoxError>(http::Response::new(crate::body::empty()))
        }
    });
    let svc = TimeoutLayer::new(Some(std::time::Duration::from_millis(200))).layer(inner);
    let req = http::Request::post("http://service2/pkg.Svc/M")
        .header("content-type", "application/grpc")
        .header("grpc-timeout", "5S")
        .body(crate::body::empty())
        .unwrap();
    let res = tower::ServiceExt::oneshot(svc, req).await.unwrap();
    assert_eq!(res.status(), http::StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        res.extensions()
            .get::<crate::rescue::LocalReply>()
            .and_then(|l| l.grpc),
        Some(mesh_core::grpc::Code::DeadlineExceeded)
    );
    assert_eq!(
        *seen.lock().unwrap(),
        Some(std::time::Duration::from_millis(200))
    );
}
