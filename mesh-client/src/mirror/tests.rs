use std::sync::Mutex;

use http::StatusCode;
use http_body_util::BodyExt;
use mesh_core::policy::Destination;

use super::*;

type Seen = Arc<Mutex<Vec<(Option<Target>, String, Option<String>, Vec<u8>)>>>;

fn primary()
-> impl Service<Request<BoxBody>, Response = Response<BoxBody>, Error = BoxError, Future: Send>
+ Clone
+ Send
+ 'static {
    tower::service_fn(|req: Request<BoxBody>| async move {
        let body = req.into_body().collect().await?.to_bytes();
        Ok::<_, BoxError>(Response::new(body::full(body)))
    })
}

/// A shadow that records each copy, then waits `delay` and answers `status` (or fails).
fn shadow(
    seen: Seen,
    delay: Duration,
    fail: bool,
) -> impl Service<Request<BoxBody>, Response = Response<BoxBody>, Error = BoxError, Future: Send>
+ Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(move |req: Request<BoxBody>| {
        let seen = seen.clone();
        async move {
            let target = req.extensions().get::<Target>().cloned();
            let authority = req
                .uri()
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let host = req
                .headers()
                .get("host")
                .map(|h| h.to_str().unwrap().to_owned());
            let body = req.into_body().collect().await?.to_bytes().to_vec();
            seen.lock().unwrap().push((target, authority, host, body));
            tokio::time::sleep(delay).await;
            if fail {
                return Err::<Response<BoxBody>, BoxError>("shadow down".into());
            }
            Ok(Response::new(body::empty()))
        }
    })
}

fn to_v2(percent: f64) -> Mirror {
    Mirror {
        destination: Destination {
            host: "service2".into(),
            subset: Some("v2".into()),
            port: None,
        },
        percent,
    }
}

fn req(body: &'static str) -> Request<BoxBody> {
    Request::post("http://service2:80/path")
        .body(body::full(body))
        .unwrap()
}

async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn copy_goes_to_mirror_destination_with_shadow_host() {
    let seen: Seen = Arc::default();
    let stats = Arc::new(ClientStats::default());
    let svc = MirrorLayer::new(
        vec![to_v2(100.0)],
        shadow(seen.clone(), Duration::ZERO, false),
    )
    .with_stats(stats.clone())
    .layer(primary());
    let resp = svc.oneshot(req("hello")).await.unwrap();
    assert_eq!(
        resp.into_body().collect().await.unwrap().to_bytes(),
        "hello",
        "primary got the whole body"
    );
    settle().await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let (target, authority, host, body) = &seen[0];
    assert_eq!(
        target.as_ref().unwrap().destination.subset.as_deref(),
        Some("v2")
    );
    assert_eq!(authority, "service2-shadow:80");
    assert_eq!(host.as_deref(), Some("service2-shadow:80"));
    assert_eq!(body, b"hello");
    assert_eq!(stats.mirrors_sent.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn slow_or_failing_shadow_never_affects_primary() {
    let seen: Seen = Arc::default();
    let stats = Arc::new(ClientStats::default());
    let svc = MirrorLayer::new(
        vec![to_v2(100.0)],
        shadow(seen.clone(), Duration::from_secs(3600), true),
    )
    .with_timeout(Duration::from_secs(5))
    .with_stats(stats.clone())
    .layer(primary());
    let start = tokio::time::Instant::now();
    let resp = svc.oneshot(req("x")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the primary did not wait for the shadow"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        stats.mirrors_failed.get(),
        1,
        "the hung copy timed out and was counted"
    );
}

#[tokio::test(start_paused = true)]
async fn in_flight_bound_drops_and_counts() {
    let seen: Seen = Arc::default();
    let stats = Arc::new(ClientStats::default());
    let layer = MirrorLayer::new(
        vec![to_v2(100.0)],
        shadow(seen.clone(), Duration::from_secs(60), false),
    )
    .with_max_in_flight(2)
    .with_stats(stats.clone());
    for _ in 0..5 {
        let resp = layer.layer(primary()).oneshot(req("x")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert_eq!(stats.mirrors_sent.get(), 2);
    assert_eq!(stats.mirrors_dropped_in_flight.get(), 3);
    tokio::time::sleep(Duration::from_secs(61)).await;
    settle().await;
    let resp = layer.layer(primary()).oneshot(req("x")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        stats.mirrors_sent.get(),
        3,
        "slots freed once the copies finished"
    );
}

#[tokio::test(start_paused = true)]
async fn large_body_skips_copy_and_zero_percent_never_copies() {
    let seen: Seen = Arc::default();
    let stats = Arc::new(ClientStats::default());
    let svc = MirrorLayer::new(
        vec![to_v2(100.0)],
        shadow(seen.clone(), Duration::ZERO, false),
    )
    .with_max_body_bytes(3)
    .with_stats(stats.clone())
    .layer(primary());
    let resp = svc.oneshot(req("too long")).await.unwrap();
    assert_eq!(
        resp.into_body().collect().await.unwrap().to_bytes(),
        "too long"
    );
    assert_eq!(stats.mirrors_skipped_body.get(), 1);

    let svc = MirrorLayer::new(
        vec![to_v2(0.0)],
        shadow(seen.clone(), Duration::ZERO, false),
    )
    .layer(primary());
    for _ in 0..50 {
        svc.clone().oneshot(req("x")).await.unwrap();
    }
    settle().await;
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn shadow_host_keeps_port() {
    assert_eq!(shadow_host("service2"), "service2-shadow");
    assert_eq!(shadow_host("service2:8080"), "service2-shadow:8080");
}
