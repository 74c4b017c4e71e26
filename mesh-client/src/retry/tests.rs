use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use http::{Method, StatusCode};
use mesh_core::classify::Outcome;
use mesh_core::policy::{RetryBudget, RetryCondition, RetryOn};
use tower::ServiceExt;

use super::*;
use crate::body;
use crate::context::{PreviousAttempts, Upstream};
use crate::error::ClusterError;
use mesh_telemetry::ResponseFlags;

type Script = Arc<Mutex<VecDeque<Result<u16, Outcome>>>>;
type Seen = Arc<Mutex<Vec<(Option<PreviousAttempts>, Vec<u8>)>>>;

/// A mock cluster: answers from a script, records what each attempt saw, and tags answers with
/// an endpoint numbered by attempt.
#[derive(Clone)]
struct Mock {
    script: Script,
    seen: Seen,
    delay: Duration,
}

impl Mock {
    fn new(script: Vec<Result<u16, Outcome>>) -> Self {
        Self {
            script: Arc::new(Mutex::new(script.into())),
            seen: Arc::default(),
            delay: Duration::ZERO,
        }
    }
    fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Service<Request<BoxBody>> for Mock {
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<BoxBody>, BoxError>> + Send>,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<BoxBody>) -> Self::Future {
        let next = self.script.lock().unwrap().pop_front().unwrap_or(Ok(200));
        let seen = self.seen.clone();
        let delay = self.delay;
        Box::pin(async move {
            use http_body_util::BodyExt;
            let prev = req.extensions().get::<PreviousAttempts>().cloned();
            let body = req.into_body().collect().await?.to_bytes().to_vec();
            let n = {
                let mut s = seen.lock().unwrap();
                s.push((prev, body));
                s.len() as u16
            };
            tokio::time::sleep(delay).await;
            let endpoint = std::net::SocketAddr::from(([127, 0, 0, 1], 1000 + n));
            match next {
                Ok(status) => {
                    let mut r = Response::new(body::empty());
                    *r.status_mut() = StatusCode::from_u16(status).unwrap();
                    r.extensions_mut().insert(Upstream::new(endpoint));
                    Ok(r)
                }
                Err(outcome) => {
                    Err(Box::new(ClusterError::new(outcome).with_endpoint(endpoint)) as BoxError)
                }
            }
        })
    }
}

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::new(attempts, RetryOn::istio_default())
}

fn get() -> Request<BoxBody> {
    Request::builder()
        .uri("http://service2/")
        .body(body::full("payload"))
        .unwrap()
}

fn flags(r: &Response<BoxBody>) -> String {
    r.extensions()
        .get::<ResponseFlags>()
        .map_or("-".into(), |f| f.to_label())
}

#[tokio::test(start_paused = true)]
async fn retries_503_until_success_with_previous_attempts() {
    let mock = Mock::new(vec![Ok(503), Ok(503), Ok(200)]);
    let stats = Arc::new(ClientStats::default());
    let svc = RetryLayer::new(policy(5), Budget::unlimited())
        .with_random(Random::seeded(1))
        .with_stats(stats.clone())
        .layer(mock.clone());
    let r = svc.oneshot(get()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(mock.calls(), 3);
    let seen = mock.seen.lock().unwrap();
    assert_eq!(seen[0].0, None);
    assert_eq!(
        seen[2].0.as_ref().unwrap().endpoints.len(),
        2,
        "both failed endpoints listed"
    );
    assert!(
        seen.iter().all(|(_, b)| b == b"payload"),
        "body replayed on every attempt"
    );
    assert_eq!(stats.retries.get(), 2);
}

#[test]
fn the_replay_box_of_a_finished_call_serves_the_next_one() {
    // A thread of its own: its store of replay boxes starts empty.
    std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let mock = Mock::new(vec![Ok(503), Ok(200), Ok(503), Ok(200)]);
            let svc = RetryLayer::new(policy(2), Budget::unlimited()).layer(mock.clone());
            assert_eq!(future::spare_replays(), 0);
            let first = svc.clone().oneshot(get()).await.unwrap();
            assert_eq!(first.status(), StatusCode::OK);
            assert_eq!(future::spare_replays(), 1, "the box was kept");
            let second = svc.clone().oneshot(get()).await.unwrap();
            assert_eq!(second.status(), StatusCode::OK);
            assert_eq!(future::spare_replays(), 1, "taken again, and given back");
            assert_eq!(mock.calls(), 4);
            let seen = mock.seen.lock().unwrap();
            assert!(
                seen.iter().all(|(_, b)| b == b"payload"),
                "the reused box replayed the second call's own body"
            );
            assert_eq!(seen[3].0.as_ref().unwrap().endpoints.len(), 1, "{seen:?}");
        });
    })
    .join()
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_flag_urx() {
    let mock = Mock::new(vec![Ok(503); 10]);
    let stats = Arc::new(ClientStats::default());
    let svc = RetryLayer::new(policy(2), Budget::unlimited())
        .with_stats(stats.clone())
        .layer(mock.clone());
    let r = svc.oneshot(get()).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(flags(&r), "URX");
    assert_eq!(mock.calls(), 3);
    assert_eq!(stats.retries_exhausted.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn non_retryable_status_returns_at_once() {
    let mock = Mock::new(vec![Ok(500), Ok(200)]);
    let r = RetryLayer::new(policy(3), Budget::unlimited())
        .layer(mock.clone())
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "istio default does not retry 500"
    );
    assert_eq!(mock.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn post_retried_only_when_never_reached() {
    let post = || {
        Request::builder()
            .method(Method::POST)
            .body(body::full("x"))
            .unwrap()
    };
    let mock = Mock::new(vec![Ok(503), Ok(200)]);
    let stats = Arc::new(ClientStats::default());
    let r = RetryLayer::new(policy(3), Budget::unlimited())
        .with_stats(stats.clone())
        .layer(mock.clone())
        .oneshot(post())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(mock.calls(), 1);
    assert_eq!(stats.retries_skipped_non_idempotent.get(), 1);

    let mock = Mock::new(vec![Err(Outcome::ConnectFailure), Ok(201)]);
    let r = RetryLayer::new(policy(3), Budget::unlimited())
        .layer(mock.clone())
        .oneshot(post())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(mock.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn connect_failures_retry_and_errors_surface() {
    let mock = Mock::new(vec![Err(Outcome::ConnectFailure); 5]);
    let err = RetryLayer::new(policy(2), Budget::unlimited())
        .layer(mock.clone())
        .oneshot(get())
        .await
        .unwrap_err();
    assert_eq!(crate::error::outcome_of(&err), Outcome::ConnectFailure);
    assert_eq!(mock.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn per_try_timeout_retries_then_answers_504() {
    let mut mock = Mock::new(vec![Ok(200); 5]);
    mock.delay = Duration::from_secs(10);
    let p = RetryPolicy::new(
        2,
        RetryOn {
            conditions: vec![RetryCondition::Reset],
            status_codes: vec![],
        },
    )
    .with_per_try_timeout(Duration::from_secs(1))
    .unwrap();
    let r = RetryLayer::new(p, Budget::unlimited())
        .layer(mock.clone())
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(flags(&r), "UT,URX");
    assert_eq!(mock.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn budget_exhausted_stops_retries() {
    let budget = Budget::new(&RetryBudget {
        percent: 0.0,
        min_retry_concurrency: 1,
    });
    // Another request holds the only retry slot.
    let _held = budget.try_retry().unwrap();
    let mock = Mock::new(vec![Ok(503), Ok(200)]);
    let stats = Arc::new(ClientStats::default());
    let r = RetryLayer::new(policy(3), budget.clone())
        .with_stats(stats.clone())
        .layer(mock.clone())
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(mock.calls(), 1);
    assert_eq!(stats.retries_budget_exhausted.get(), 1);
    assert_eq!(budget.requests_in_flight(), 0, "request guard released");
}

#[tokio::test(start_paused = true)]
async fn large_bodies_are_not_retried() {
    let mock = Mock::new(vec![Ok(503), Ok(200)]);
    let stats = Arc::new(ClientStats::default());
    let svc = RetryLayer::new(policy(3), Budget::unlimited())
        .with_max_replay_bytes(4)
        .with_stats(stats.clone())
        .layer(mock.clone());
    let r = svc.oneshot(get()).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(mock.calls(), 1);
    assert_eq!(
        mock.seen.lock().unwrap()[0].1,
        b"payload",
        "the body still went through once"
    );
    assert_eq!(stats.retries_skipped_body.get(), 1);
}

#[test]
fn idempotency_follows_rfc_9110() {
    assert!(is_idempotent(&Method::PUT));
    assert!(is_idempotent(&Method::DELETE));
    assert!(!is_idempotent(&Method::POST));
    assert!(!is_idempotent(&Method::PATCH));
}

#[tokio::test(start_paused = true)]
async fn attempts_carry_their_deadline_for_the_cluster() {
    use crate::context::AttemptDeadline;
    let saw = Arc::new(Mutex::new(Vec::new()));
    let s = saw.clone();
    let inner = tower::service_fn(move |req: Request<BoxBody>| {
        s.lock()
            .unwrap()
            .push(req.extensions().get::<AttemptDeadline>().map(|d| d.at));
        async {
            // Answer as the cluster does when the deadline passes.
            Err::<Response<BoxBody>, BoxError>(Box::new(ClusterError::new(Outcome::Timeout)))
        }
    });
    let p = RetryPolicy::new(
        1,
        RetryOn {
            conditions: vec![RetryCondition::Reset],
            status_codes: vec![],
        },
    )
    .with_per_try_timeout(Duration::from_secs(2))
    .unwrap();
    let start = tokio::time::Instant::now();
    let r = RetryLayer::new(p, Budget::unlimited())
        .layer(inner)
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::GATEWAY_TIMEOUT,
        "a cluster timeout on the last try is a 504"
    );
    assert_eq!(flags(&r), "UT,URX");
    let saw = saw.lock().unwrap();
    assert_eq!(saw.len(), 2);
    assert_eq!(saw[0], Some(start + Duration::from_secs(2)));
}

fn get_empty() -> Request<BoxBody> {
    Request::get("http://service2/")
        .body(body::empty())
        .unwrap()
}

fn scripted_left(mock: &Mock) -> usize {
    mock.script.lock().unwrap().len()
}

#[tokio::test(start_paused = true)]
async fn the_first_attempt_is_sent_by_call_a_body_first_read() {
    // An empty body: `call` sends the first attempt with the ready service it was given.
    let mock = Mock::new(vec![Ok(200), Ok(200)]);
    let mut svc = RetryLayer::new(policy(2), Budget::unlimited()).layer(mock.clone());
    let future = svc.call(get_empty());
    assert_eq!(scripted_left(&mock), 1, "sent before the first poll");
    assert_eq!(future.await.unwrap().status(), StatusCode::OK);
    // A body of known size is read first: nothing is sent until the future is polled.
    let mut future = tokio_test::task::spawn(svc.call(get()));
    assert_eq!(scripted_left(&mock), 1, "not sent before the body is read");
    let polled = future.poll();
    assert!(polled.is_ready(), "the mock answers at once: {polled:?}");
    assert_eq!(scripted_left(&mock), 0);
    assert_eq!(mock.seen.lock().unwrap()[1].1, b"payload");
}

#[tokio::test(start_paused = true)]
async fn a_future_dropped_in_its_backoff_releases_the_budget_and_sends_nothing_more() {
    let budget = Budget::new(&RetryBudget::default());
    let mock = Mock::new(vec![Ok(503), Ok(200)]);
    let mut svc = RetryLayer::new(policy(2), budget.clone()).layer(mock.clone());
    let mut future = tokio_test::task::spawn(svc.call(get_empty()));
    // The first attempt answers 503: the future waits its backoff, holding a retry's share.
    assert!(future.poll().is_pending());
    assert_eq!(mock.calls(), 1);
    assert_eq!(budget.requests_in_flight(), 1);
    assert_eq!(
        budget.retries_in_flight(),
        1,
        "the retry's share is held in the backoff"
    );
    drop(future);
    assert_eq!(budget.requests_in_flight(), 0);
    assert_eq!(budget.retries_in_flight(), 0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mock.calls(), 1, "no retry after the drop");
}

#[tokio::test(start_paused = true)]
async fn a_future_dropped_during_its_attempt_drops_the_attempt() {
    let budget = Budget::new(&RetryBudget::default());
    let mut mock = Mock::new(vec![Ok(200)]);
    mock.delay = Duration::from_secs(5);
    let mut svc = RetryLayer::new(policy(2), budget.clone()).layer(mock.clone());
    let before = Arc::strong_count(&mock.seen);
    let mut future = tokio_test::task::spawn(svc.call(get_empty()));
    assert!(future.poll().is_pending());
    assert_eq!(budget.requests_in_flight(), 1);
    // The future holds the ready service and the attempt's future, each with a clone of the
    // mock's record: dropping the future drops both.
    assert_eq!(Arc::strong_count(&mock.seen), before + 2);
    drop(future);
    assert_eq!(
        Arc::strong_count(&mock.seen),
        before,
        "the attempt was dropped"
    );
    assert_eq!(budget.requests_in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_retry_waits_for_the_readiness_of_a_fresh_clone() {
    // The inner service is ready once per clone after one pending poll (a concurrency limit of
    // one, whose permit the first attempt holds until its answer is dropped).
    let mock = Mock::new(vec![Ok(503), Ok(200)]);
    let limited = tower::limit::ConcurrencyLimit::new(mock.clone(), 1);
    let svc = RetryLayer::new(policy(2), Budget::unlimited()).layer(limited);
    let r = svc.oneshot(get()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(mock.calls(), 2);
}

mod head_replay;
