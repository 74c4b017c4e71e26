//! Cost of observability per request: recording Istio's metrics, parsing and injecting trace
//! context, and whole calls through the server and client telemetry layers around a ready
//! service (no exporter installed, as in production without OTLP).
//!
//! `cargo bench -p mesh-server --bench telemetry -- --warm-up-time 1 --measurement-time 2`

use std::borrow::Cow;
use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{HeaderMap, HeaderValue, Request, Response};
use mesh_client::telemetry::{ClientTelemetryConfig, ClientTelemetryLayer};
use mesh_server::metrics::{ServerMetricsConfig, ServerMetricsLayer};
use mesh_server::request_id::RequestIdLayer;
use mesh_server::trace::{TraceConfig, TraceLayer};
use mesh_telemetry::labels::{PeerLabels, Reporter, RequestLabels, ServiceLabels, WorkloadLabels};
use mesh_telemetry::trace_context::{extract, parse_traceparent};
use mesh_telemetry::{MeshMetrics, RequestRecord, TraceContext};
use tower::{Layer, Service, service_fn};

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn workload() -> WorkloadLabels {
    let l = [("app", "service2"), ("version", "v1")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    WorkloadLabels::from_labels("service2-v1", Some("default"), &l)
}

fn ready()
-> impl Service<Request<String>, Response = Response<String>, Error = Infallible, Future: FutureExt>
+ Clone {
    service_fn(|_req: Request<String>| {
        std::future::ready(Ok::<_, Infallible>(Response::new(String::from("ok"))))
    })
}

fn call<S>(svc: &mut S, req: Request<String>) -> Response<String>
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible>,
{
    match svc.call(req).now_or_never() {
        Some(Ok(r)) => r,
        _ => unreachable!("the inner service is always ready"),
    }
}

fn bench(c: &mut Criterion) {
    let metrics = MeshMetrics::new();
    let peers = PeerLabels::new(
        Reporter::Destination,
        WorkloadLabels::unknown(),
        workload(),
        ServiceLabels::from_host("service2"),
    );
    let record = RequestRecord {
        labels: RequestLabels {
            peers,
            protocol: "http",
            response_code: 200,
            response_flags: Cow::Borrowed("-"),
            grpc_status: None,
        },
        duration: Duration::from_micros(800),
        request_bytes: 0,
        response_bytes: 120,
    };
    c.bench_function("metrics/record_request", |b| {
        b.iter(|| metrics.record_request(black_box(&record)))
    });

    c.bench_function("trace/parse_traceparent", |b| {
        b.iter(|| parse_traceparent(black_box(TP.as_bytes())))
    });
    let mut incoming = HeaderMap::new();
    incoming.insert("traceparent", HeaderValue::from_static(TP));
    incoming.insert("tracestate", HeaderValue::from_static("vendor=abc"));
    c.bench_function("trace/extract", |b| {
        b.iter(|| extract(black_box(&incoming)))
    });
    let parent = TraceContext::new_root(true);
    c.bench_function("trace/child_and_inject", |b| {
        b.iter(|| {
            let mut h = HeaderMap::new();
            parent.child().inject(&mut h);
            h
        })
    });

    let mut bare = ready();
    c.bench_function("layers/none", |b| {
        b.iter(|| call(&mut bare, Request::new(String::new())))
    });

    let mut server_metrics = ServerMetricsLayer::new(
        metrics.clone(),
        ServerMetricsConfig {
            workload: workload(),
            service: ServiceLabels::from_host("service2"),
        },
    )
    .layer(ready());
    c.bench_function("layers/server_metrics", |b| {
        b.iter(|| call(&mut server_metrics, Request::new(String::new())))
    });

    let mut inbound = TraceLayer::new(TraceConfig::default()).layer(
        RequestIdLayer::new().layer(
            ServerMetricsLayer::new(
                metrics.clone(),
                ServerMetricsConfig {
                    workload: workload(),
                    service: ServiceLabels::from_host("service2"),
                },
            )
            .layer(ready()),
        ),
    );
    c.bench_function("layers/server_trace_request_id_metrics", |b| {
        b.iter(|| {
            let mut req = Request::new(String::new());
            req.headers_mut()
                .insert("traceparent", HeaderValue::from_static(TP));
            call(&mut inbound, req)
        })
    });

    let mut outbound =
        ClientTelemetryLayer::new(metrics.clone(), ClientTelemetryConfig::new(workload()))
            .layer(ready());
    c.bench_function("layers/client_telemetry", |b| {
        b.iter(|| {
            let mut req = Request::get("http://service3/x")
                .body(String::new())
                .unwrap_or_default();
            req.extensions_mut().insert(parent.clone());
            call(&mut outbound, req)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
