use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response};
use mesh_core::policy::RateLimitOverride;
use tower::{Layer, Service, ServiceExt};

use super::*;
use crate::context::Principal;

type Inner = tower::util::BoxCloneService<Request<()>, Response<()>, BoxError>;

fn counting() -> (Inner, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let svc = tower::service_fn(move |_req: Request<()>| {
        c.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, BoxError>(Response::new(())) }
    });
    (tower::util::BoxCloneService::new(svc), calls)
}

fn request(identity: Option<&str>) -> Request<()> {
    let mut req = Request::new(());
    if let Some(id) = identity {
        let (iss, sub) = id.rsplit_once('/').unwrap_or(("", id));
        let claims = serde_json::json!({"iss": iss, "sub": sub});
        req.extensions_mut().insert(Principal::from_claims(claims));
    }
    req
}

/// Sends one request: `Ok(())` when admitted, the refusal otherwise.
async fn send(svc: &mut RateLimit<Inner>, identity: Option<&str>) -> Result<(), RateLimited> {
    let ready = svc.ready().await.map_err(|e| panic!("not ready: {e}"))?;
    match ready.call(request(identity)).await {
        Ok(_) => Ok(()),
        Err(e) => match e.downcast::<RateLimited>() {
            Ok(limited) => Err(*limited),
            Err(other) => panic!("unexpected error {other}"),
        },
    }
}

async fn admitted(svc: &mut RateLimit<Inner>, identity: Option<&str>, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        if send(svc, identity).await.is_ok() {
            ok += 1;
        }
    }
    ok
}

fn service(settings: RateLimitSettings) -> (RateLimit<Inner>, Arc<AtomicUsize>) {
    let (inner, calls) = counting();
    (RateLimitLayer::new(settings).layer(inner), calls)
}

#[tokio::test(start_paused = true)]
async fn total_burst_then_refill() {
    let (mut svc, calls) = service(RateLimitSettings {
        total_rps: Some(10),
        ..Default::default()
    });
    assert_eq!(admitted(&mut svc, None, 15).await, 10);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        10,
        "refused requests never reach the service"
    );
    tokio::time::advance(Duration::from_millis(300)).await;
    assert_eq!(admitted(&mut svc, None, 10).await, 3);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        admitted(&mut svc, None, 20).await,
        10,
        "the bucket never holds more than its burst"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_the_wait_rounded_up() {
    let (mut svc, _) = service(RateLimitSettings {
        total_rps: Some(1),
        ..Default::default()
    });
    assert!(send(&mut svc, None).await.is_ok());
    let limited = send(&mut svc, None).await.err();
    assert_eq!(
        limited.as_ref().map(|l| l.wait()),
        Some(Duration::from_secs(1))
    );
    assert_eq!(limited.as_ref().map(|l| l.retry_after_secs()), Some(1));
    assert_eq!(limited.map(|l| l.scope()), Some(Scope::Total));
    tokio::time::advance(Duration::from_millis(400)).await;
    let limited = send(&mut svc, None).await.err();
    assert_eq!(
        limited.as_ref().map(|l| l.wait()),
        Some(Duration::from_millis(600))
    );
    assert_eq!(limited.map(|l| l.retry_after_secs()), Some(1));
    tokio::time::advance(Duration::from_millis(600)).await;
    assert!(send(&mut svc, None).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn identities_are_isolated() {
    let (mut svc, _) = service(RateLimitSettings {
        identity_rps: Some(2),
        ..Default::default()
    });
    assert_eq!(admitted(&mut svc, Some("iss/alice"), 5).await, 2);
    assert_eq!(admitted(&mut svc, Some("iss/bob"), 5).await, 2);
    assert_eq!(
        admitted(&mut svc, None, 5).await,
        2,
        "anonymous clients share one bucket"
    );
    let limited = send(&mut svc, Some("iss/alice")).await.err();
    assert_eq!(limited.map(|l| l.scope()), Some(Scope::Identity));
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(admitted(&mut svc, Some("iss/alice"), 5).await, 1);
}

#[tokio::test(start_paused = true)]
async fn overrides_replace_the_identity_limit_for_named_clients() {
    let settings = RateLimitSettings {
        total_rps: Some(100),
        identity_rps: Some(2),
        overrides: vec![RateLimitOverride {
            rps: 5,
            clients: vec!["gateway".into()],
        }],
        ..Default::default()
    };
    let (mut svc, _) = service(settings);
    assert_eq!(
        admitted(&mut svc, Some("cluster.local/ns/default/sa/gateway"), 10).await,
        5
    );
    assert_eq!(
        admitted(&mut svc, Some("https://issuer/gateway"), 10).await,
        0,
        "an override's clients share its bucket"
    );
    assert_eq!(
        admitted(&mut svc, Some("cluster.local/ns/default/sa/notgateway"), 10).await,
        2
    );
    let limited = send(&mut svc, Some("gateway")).await.err();
    assert_eq!(limited.map(|l| l.scope()), Some(Scope::Override));
}

#[tokio::test(start_paused = true)]
async fn total_limits_all_identities_together() {
    let (mut svc, _) = service(RateLimitSettings {
        total_rps: Some(3),
        identity_rps: Some(3),
        ..Default::default()
    });
    assert_eq!(admitted(&mut svc, Some("a"), 2).await, 2);
    assert_eq!(admitted(&mut svc, Some("b"), 2).await, 1);
}

#[tokio::test(start_paused = true)]
async fn swapping_the_limiter_changes_the_limit() {
    let cell = Arc::new(arc_swap::ArcSwapOption::empty());
    let (inner, _) = counting();
    let mut svc = RateLimitLayer::shared(cell.clone()).layer(inner);
    assert_eq!(
        admitted(&mut svc, None, 50).await,
        50,
        "no limiter, no limit"
    );
    cell.store(Some(Arc::new(RateLimiter::new(RateLimitSettings {
        total_rps: Some(1),
        ..Default::default()
    }))));
    assert_eq!(admitted(&mut svc, None, 5).await, 1);
}

#[test]
fn settings_split_for_before_and_after_authentication() {
    let s = RateLimitSettings {
        total_rps: Some(5),
        identity_rps: Some(1),
        ..Default::default()
    };
    assert_eq!(s.total_only().identity_rps, None);
    assert_eq!(s.total_only().total_rps, Some(5));
    assert_eq!(s.per_client_only().total_rps, None);
    assert!(!s.is_empty());
    assert!(RateLimitSettings::default().is_empty());
}
