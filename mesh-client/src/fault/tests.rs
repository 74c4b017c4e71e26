use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mesh_core::policy::{FaultAbort, FaultDelay};
use tower::ServiceExt;

use super::*;
use crate::body;
use mesh_telemetry::ResponseFlags;

fn counting() -> (
    Arc<AtomicUsize>,
    impl Service<Request<BoxBody>, Response = Response<BoxBody>, Error = crate::BoxError, Future: Send>
    + Clone,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let svc = tower::service_fn(move |_r: Request<BoxBody>| {
        c.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, crate::BoxError>(Response::new(body::empty())) }
    });
    (calls, svc)
}

fn flags(r: &Response<BoxBody>) -> String {
    r.extensions()
        .get::<ResponseFlags>()
        .map_or("-".into(), |f| f.to_label())
}

#[tokio::test(start_paused = true)]
async fn abort_share_follows_percentage() {
    let (calls, inner) = counting();
    let fault = Fault {
        delay: None,
        abort: Some(FaultAbort {
            status: StatusCode::IM_A_TEAPOT,
            grpc_status: None,
            percent: 30.0,
        }),
    };
    let stats = Arc::new(ClientStats::default());
    let svc = FaultLayer::new(fault)
        .with_random(Random::seeded(42))
        .with_stats(stats.clone())
        .layer(inner);
    let mut aborted = 0;
    for _ in 0..2_000 {
        let r = svc
            .clone()
            .oneshot(Request::new(body::empty()))
            .await
            .unwrap();
        if r.status() == StatusCode::IM_A_TEAPOT {
            assert_eq!(flags(&r), "FI");
            aborted += 1;
        }
    }
    assert!((500..700).contains(&aborted), "{aborted}");
    assert_eq!(calls.load(Ordering::SeqCst), 2_000 - aborted);
    assert_eq!(stats.faults_aborted.get(), aborted as u64);
}

#[tokio::test(start_paused = true)]
async fn delay_waits_then_forwards() {
    let (calls, inner) = counting();
    let fault = Fault {
        delay: Some(FaultDelay {
            fixed_delay: Duration::from_secs(3),
            percent: 100.0,
        }),
        abort: None,
    };
    let svc = FaultLayer::new(fault).layer(inner);
    let start = tokio::time::Instant::now();
    let r = svc.oneshot(Request::new(body::empty())).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(flags(&r), "DI");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn delay_and_abort_together() {
    let (calls, inner) = counting();
    let fault = Fault {
        delay: Some(FaultDelay {
            fixed_delay: Duration::from_secs(1),
            percent: 100.0,
        }),
        abort: Some(FaultAbort {
            status: StatusCode::SERVICE_UNAVAILABLE,
            grpc_status: None,
            percent: 100.0,
        }),
    };
    let r = FaultLayer::new(fault)
        .layer(inner)
        .oneshot(Request::new(body::empty()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(flags(&r), "FI,DI");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
