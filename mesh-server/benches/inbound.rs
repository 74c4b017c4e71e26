//! The whole inbound stack per request ([`MeshServer::wrap`] around an always-ready service, with
//! Istio metrics, a forwarded trace context and request id, as service3 sees them): with no policy
//! for the workload (the common case, which should cost little more than telemetry), and with a
//! rate limit that never refuses (every policy layer on the path).
//!
//! `cargo bench -p mesh-server --bench inbound -- --warm-up-time 1 --measurement-time 2`

use std::convert::Infallible;

use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{HeaderValue, Request, Response};
use mesh_core::policy::{MeshConfig, Origin, RateLimitPolicy};
use mesh_core::watch::ConfigSource;
use mesh_server::{MeshServer, Workload};
use mesh_telemetry::MeshMetrics;
use tower::{Service, service_fn};

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn request() -> Request<Body> {
    let mut req = Request::get("/x").body(Body::empty()).unwrap_or_default();
    req.headers_mut()
        .insert("traceparent", HeaderValue::from_static(TP));
    req.headers_mut().insert(
        "x-request-id",
        HeaderValue::from_static("0b6c3f5e-8f1e-4e8e-9f53-3c1f0c1a2b3c"),
    );
    req
}

fn call<S>(svc: &mut S) -> u16
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    let ready = std::future::poll_fn(|cx| svc.poll_ready(cx)).now_or_never();
    match (ready, svc.call(request()).now_or_never()) {
        (Some(Ok(())), Some(Ok(res))) => res.status().as_u16(),
        _ => unreachable!("the inner service is always ready"),
    }
}

fn server(config: MeshConfig) -> MeshServer {
    MeshServer::new(
        Workload::new("service3").version("v1"),
        ConfigSource::fixed(config),
    )
    .with_metrics(MeshMetrics::new())
}

fn bench(c: &mut Criterion) {
    let user = service_fn(|_req: Request<Body>| {
        std::future::ready(Ok::<_, Infallible>(Response::new(Body::from("ok"))))
    });

    let mut none = server(MeshConfig::default()).wrap(user);
    c.bench_function("inbound/no_policies", |b| b.iter(|| call(&mut none)));

    let limit = RateLimitPolicy {
        origin: Origin {
            name: "rl".into(),
            namespace: "default".into(),
            ..Origin::default()
        },
        target: "service3".into(),
        total_rps: Some(100_000_000),
        identity_rps: None,
        overrides: vec![],
    };
    let mut limited = server(MeshConfig {
        rate_limits: vec![limit],
        ..MeshConfig::default()
    })
    .wrap(user);
    c.bench_function("inbound/rate_limit", |b| b.iter(|| call(&mut limited)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
