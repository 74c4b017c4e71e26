use std::time::Duration;

use http::StatusCode;
use mesh_core::classify::Outcome;
use mesh_core::policy::{RetryOn, RetryPolicy};
use tower::{Layer, ServiceExt};

use super::*;
use crate::body;
use crate::context::Upstream;
use crate::retry::{Budget, RetryLayer};

/// An inner service that ignores the attempt deadline: answers 200 after `delay`.
fn slow(
    delay: Duration,
) -> impl Service<
    Request<BoxBody>,
    Response = Response<BoxBody>,
    Error = BoxError,
    Future = impl Future<Output = Result<Response<BoxBody>, BoxError>> + Send,
> + Clone {
    tower::service_fn(move |_req: Request<BoxBody>| async move {
        tokio::time::sleep(delay).await;
        Ok::<_, BoxError>(Response::new(body::empty()))
    })
}

fn per_try(limit: Duration) -> RetryLayer {
    let policy = RetryPolicy::new(0, RetryOn::istio_default())
        .with_per_try_timeout(limit)
        .unwrap();
    RetryLayer::new(policy, Budget::unlimited())
}

fn get() -> Request<BoxBody> {
    Request::get("http://service2/")
        .body(body::empty())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn without_a_deadline_kept_below_the_backstop_ends_an_attempt_that_ignores_it() {
    let mut inner = slow(Duration::from_secs(10));
    let layer = per_try(Duration::from_secs(1));
    let start = tokio::time::Instant::now();
    let result = attempt(&mut inner, get(), &layer.settings).await;
    let error = result.unwrap_err();
    assert!(error.is::<PerTryTimeout>(), "{error}");
    assert_eq!(start.elapsed(), Duration::from_secs(1) + BACKSTOP_SLACK);
}

#[tokio::test(start_paused = true)]
async fn with_the_deadline_kept_below_no_backstop_is_kept_but_the_deadline_rides_along() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let record = seen.clone();
    let mut inner = tower::service_fn(move |req: Request<BoxBody>| {
        *record.lock().unwrap() = req.extensions().get::<AttemptDeadline>().copied();
        async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, BoxError>(Response::new(body::empty()))
        }
    });
    let layer = per_try(Duration::from_secs(1)).with_deadline_kept_below();
    let start = tokio::time::Instant::now();
    let future = attempt(&mut inner, get(), &layer.settings);
    assert!(future.backstop.is_none(), "no timer of the retry's own");
    // The inner service was told the deadline; it ignores it here, so the answer comes late.
    let answer = future.await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    let deadline = seen
        .lock()
        .unwrap()
        .expect("the attempt carries its deadline");
    assert_eq!(deadline.at, start + Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn an_answer_due_with_the_backstop_wins() {
    // The answer and the backstop are due at the same instant: the answer is polled first.
    let mut inner = slow(Duration::from_secs(1) + BACKSTOP_SLACK);
    let layer = per_try(Duration::from_secs(1));
    let answer = attempt(&mut inner, get(), &layer.settings).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_attempt_drops_its_inner_future_and_its_timer() {
    let alive = std::sync::Arc::new(());
    let held = alive.clone();
    let mut inner = tower::service_fn(move |_req: Request<BoxBody>| {
        let held = held.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(held);
            Ok::<_, BoxError>(Response::new(body::empty()))
        }
    });
    let layer = per_try(Duration::from_secs(1));
    // The service keeps one clone, each of its futures another.
    let before = std::sync::Arc::strong_count(&alive);
    let mut future = tokio_test::task::spawn(attempt(&mut inner, get(), &layer.settings));
    assert!(future.poll().is_pending());
    assert_eq!(std::sync::Arc::strong_count(&alive), before + 1);
    drop(future);
    assert_eq!(
        std::sync::Arc::strong_count(&alive),
        before,
        "the inner future is gone"
    );
    // Nothing is left to fire: the backstop went with the attempt.
    tokio::time::sleep(Duration::from_secs(2)).await;
}

#[tokio::test(start_paused = true)]
async fn the_retry_reads_the_clusters_classification_of_the_answer() {
    // A 200 whose cluster classified it as a 503 (the head rewritten after the cluster read
    // it): the loop goes by the cluster's outcome, so it retries; without one it reads the head.
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = calls.clone();
    let inner = tower::service_fn(move |_req: Request<BoxBody>| {
        let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let mut answer = Response::new(body::empty());
            let mut upstream = Upstream::new(([127, 0, 0, 1], 1000).into());
            if n == 0 {
                upstream.outcome = Some(Outcome::Response {
                    status: 503,
                    grpc_status: None,
                });
            }
            answer.extensions_mut().insert(upstream);
            Ok::<_, BoxError>(answer)
        }
    });
    let on_503 = RetryOn {
        conditions: vec![],
        status_codes: vec![503],
    };
    let answer = RetryLayer::new(RetryPolicy::new(2, on_503), Budget::unlimited())
        .layer(inner)
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}
