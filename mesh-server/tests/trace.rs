//! Trace context across two real services on loopback: A (server layers) → A's handler →
//! client layer → B (server layers). B must see A's trace id, with A's client span as parent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use http::{Request, Response};
use mesh_client::telemetry::{ClientTelemetryConfig, ClientTelemetryLayer};
use mesh_server::request_id::RequestIdLayer;
use mesh_server::trace::{TraceConfig, TraceLayer};
use mesh_telemetry::trace_context::parse_traceparent;
use mesh_telemetry::{MeshMetrics, RequestId, TraceContext, WorkloadLabels};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt, service_fn};

use mesh_server::BoxError;

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn hex(v: Option<u64>) -> Value {
    v.map(|v| json!(format!("{v:016x}"))).unwrap_or(Value::Null)
}

fn ctx_json(c: &TraceContext) -> Value {
    json!({ "trace_id": c.trace_id_hex(), "span_id": c.span_id_hex(), "parent": hex(c.parent_span_id), "sampled": c.sampled })
}

/// Service B: reports the server span context and the headers it received.
async fn service_b(req: Request<Body>) -> axum::Json<Value> {
    let ctx = TraceContext::from_extensions(req.extensions())
        .cloned()
        .unwrap();
    let h = req.headers();
    let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
    axum::Json(json!({
        "ctx": ctx_json(&ctx),
        "traceparent": get("traceparent"),
        "tracestate": get("tracestate"),
        "x_b3_traceid": get("x-b3-traceid"),
        "x_b3_parentspanid": get("x-b3-parentspanid"),
        "x_request_id": get("x-request-id"),
    }))
}

/// A mesh client reduced to its telemetry layer over reqwest.
fn client(
    metrics: MeshMetrics,
) -> impl tower::Service<Request<String>, Response = Response<String>, Error = BoxError, Future: Send>
+ Clone {
    let http = reqwest::Client::new();
    let transport = service_fn(move |req: Request<String>| {
        let http = http.clone();
        async move {
            let resp = http.execute(reqwest::Request::try_from(req)?).await?;
            let mut out = Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                out = out.header(k, v);
            }
            Ok::<_, BoxError>(out.body(resp.text().await?)?)
        }
    });
    let mut workload = mesh_core::policy::Labels::new();
    workload.insert("app".into(), "service-a".into());
    let config =
        ClientTelemetryConfig::new(WorkloadLabels::from_labels("service-a", None, &workload));
    ClientTelemetryLayer::new(metrics, config).layer(transport)
}

#[derive(Clone)]
struct AState {
    b: SocketAddr,
    metrics: MeshMetrics,
    explicit: bool,
}

/// Service A: calls B through the client layer, forwarding the request id by extension only.
async fn service_a(State(s): State<AState>, req: Request<Body>) -> axum::Json<Value> {
    let server = TraceContext::from_extensions(req.extensions())
        .cloned()
        .unwrap();
    let id = RequestId::from_extensions(req.extensions())
        .cloned()
        .unwrap();
    let mut out = Request::get(format!("http://{}/b", s.b))
        .body(String::new())
        .unwrap();
    out.extensions_mut().insert(id);
    if s.explicit {
        out.extensions_mut().insert(server.clone());
    }
    let resp = client(s.metrics.clone()).oneshot(out).await.unwrap();
    let client_span = resp.extensions().get::<TraceContext>().cloned().unwrap();
    let b: Value = serde_json::from_str(resp.body()).unwrap();
    axum::Json(json!({ "server": ctx_json(&server), "client": ctx_json(&client_span), "b": b }))
}

fn layered(router: Router) -> Router {
    router
        .layer(RequestIdLayer::new())
        .layer(TraceLayer::new(TraceConfig { sample_ratio: 1.0 }))
}

async fn two_services(explicit: bool) -> (SocketAddr, MeshMetrics) {
    let b = serve(layered(Router::new().route("/b", get(service_b)))).await;
    let metrics = MeshMetrics::new();
    let state = AState {
        b,
        metrics: metrics.clone(),
        explicit,
    };
    let a = serve(layered(
        Router::new().route("/a", get(service_a)).with_state(state),
    ))
    .await;
    (a, metrics)
}

async fn call(a: SocketAddr, headers: &[(&str, &str)]) -> Value {
    let mut req = reqwest::Client::new().get(format!("http://{a}/a"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn check_chain(v: &Value) {
    let (server, client, b) = (&v["server"], &v["client"], &v["b"]["ctx"]);
    assert_eq!(client["trace_id"], server["trace_id"], "{v:#}");
    assert_eq!(b["trace_id"], server["trace_id"], "{v:#}");
    assert_eq!(
        client["parent"], server["span_id"],
        "the client span is a child of A's server span: {v:#}"
    );
    assert_eq!(
        b["parent"], client["span_id"],
        "B's parent is A's client span: {v:#}"
    );
    let tp = v["b"]["traceparent"].as_str().unwrap();
    let parsed = parse_traceparent(tp.as_bytes()).unwrap();
    assert_eq!(
        format!("{:016x}", parsed.span_id),
        client["span_id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn trace_follows_the_task_local_context_across_two_services() {
    let (a, metrics) = two_services(false).await;
    let v = call(
        a,
        &[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "vendor=abc"),
            ("x-request-id", "req-42"),
        ],
    )
    .await;
    check_chain(&v);
    assert_eq!(v["server"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(v["server"]["parent"], "00f067aa0ba902b7");
    assert_eq!(v["b"]["tracestate"], "vendor=abc");
    assert_eq!(
        v["b"]["x_request_id"], "req-42",
        "request id forwarded from the extension"
    );
    assert_eq!(
        v["b"]["x_b3_traceid"],
        Value::Null,
        "no B3 headers for a W3C trace"
    );
    let text = metrics.encode_prometheus();
    assert!(
        text.lines().any(|l| l.starts_with("istio_requests_total{response_code=\"200\",reporter=\"source\",source_workload=\"service-a\"")
            && l.ends_with(" 1")),
        "{text}"
    );
}

#[tokio::test]
async fn explicit_context_and_b3_are_carried_too() {
    let (a, _) = two_services(true).await;
    let v = call(
        a,
        &[
            ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ("x-b3-sampled", "1"),
        ],
    )
    .await;
    check_chain(&v);
    assert_eq!(v["server"]["trace_id"], "463ac35c9f6413ad48485a3953bb6124");
    assert_eq!(v["b"]["x_b3_traceid"], "463ac35c9f6413ad48485a3953bb6124");
    assert_eq!(v["b"]["x_b3_parentspanid"], v["server"]["span_id"]);
    // No incoming context: a new trace, still one trace across both services.
    let v = call(a, &[]).await;
    check_chain(&v);
    assert_eq!(v["server"]["parent"], Value::Null);
    let rid = v["b"]["x_request_id"].as_str().unwrap();
    assert_eq!(rid.len(), 36, "a generated uuid reached B: {rid}");
}

// === OpenTelemetry: exported spans carry the same ids as the headers ===

#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

impl opentelemetry_sdk::trace::SpanExporter for Collect {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

#[tokio::test]
async fn otel_spans_share_the_propagated_ids() {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    let spans = Collect::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    // Global, not thread-scoped: `tracing` caches per-callsite interest process-wide, and a
    // thread-local default races with the other tests of this binary. Their spans land in the
    // collector too, which is harmless: spans are looked up by id.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let (a, _) = two_services(false).await;
    let v = call(
        a,
        &[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )],
    )
    .await;
    check_chain(&v);
    let _ = provider.force_flush();
    let spans = spans.0.lock().unwrap().clone();
    let id = |s: &opentelemetry_sdk::trace::SpanData| {
        format!(
            "{:016x}",
            u64::from_be_bytes(s.span_context.span_id().to_bytes())
        )
    };
    let find = |want: &Value| {
        spans
            .iter()
            .find(|s| Value::String(id(s)) == *want)
            .cloned()
    };
    let server_a =
        find(&v["server"]["span_id"]).expect("A's server span exported with the propagated id");
    let client_a = find(&v["client"]["span_id"]).expect("A's client span exported");
    let server_b = find(&v["b"]["ctx"]["span_id"]).expect("B's server span exported");
    assert_eq!(
        format!(
            "{:016x}",
            u64::from_be_bytes(server_a.parent_span_id.to_bytes())
        ),
        "00f067aa0ba902b7"
    );
    assert_eq!(client_a.parent_span_id, server_a.span_context.span_id());
    assert_eq!(server_b.parent_span_id, client_a.span_context.span_id());
    assert_eq!(
        server_b.span_context.trace_id(),
        server_a.span_context.trace_id()
    );
    assert_eq!(server_a.span_kind, opentelemetry::trace::SpanKind::Server);
    assert_eq!(client_a.span_kind, opentelemetry::trace::SpanKind::Client);
}
