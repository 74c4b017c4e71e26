//! Traces as a collector sees them: the example apps, run as their real binaries with the
//! standard OTLP environment variables, export spans over OTLP/HTTP to a receiver in this test
//! that decodes them with OpenTelemetry's own protobuf definitions (`opentelemetry-proto`).
//!
//! What it proves: one request through gateway → service1 → service2 → service3 is one trace;
//! every server span is the child of its caller's client span; a retried attempt and a mirrored
//! copy have spans of their own (`retry`, `mirror`) that are the parents of the server spans
//! they reached; every span carries its workload as Istio's sidecars tag theirs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;

/// One decoded span with its resource's attributes.
#[derive(Clone, Debug)]
struct Got {
    service: String,
    resource: HashMap<String, String>,
    name: String,
    kind: i32,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    attributes: HashMap<String, String>,
}

fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn map(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

/// An OTLP/HTTP receiver on 127.0.0.1:0 keeping every span it is sent.
async fn receiver() -> (SocketAddr, Arc<Mutex<Vec<Got>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let store = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let store = store.clone();
            async move {
                let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                    return (http::StatusCode::BAD_REQUEST, Vec::new());
                };
                let mut got = store.lock().unwrap();
                for rs in request.resource_spans {
                    let resource = map(&rs.resource.map(|r| r.attributes).unwrap_or_default());
                    let service = resource.get("service.name").cloned().unwrap_or_default();
                    for ss in rs.scope_spans {
                        for s in ss.spans {
                            got.push(Got {
                                service: service.clone(),
                                resource: resource.clone(),
                                name: s.name.clone(),
                                kind: s.kind,
                                trace_id: s.trace_id.clone(),
                                span_id: s.span_id.clone(),
                                parent: s.parent_span_id.clone(),
                                attributes: map(&s.attributes),
                            });
                        }
                    }
                }
                // An empty ExportTraceServiceResponse: full success.
                (http::StatusCode::OK, Vec::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, spans)
}

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A child process ended (by its PID, through its handle) when dropped.
struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const SERVICE2_VS: &str = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: service2}
spec:
  hosts: [service2]
  http:
  - route:
    - destination: {host: service2, subset: v1}
    retries: {attempts: 3, retryOn: 5xx}
    mirror: {host: service2, subset: v2}
"#;

fn write_config(dir: &Path, s1: SocketAddr, s2a: SocketAddr, s2b: SocketAddr, s3: SocketAddr) {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/routing");
    for f in [
        "01-gateway.yaml",
        "02-virtualservice-routing.yaml",
        "04-destinationrule-subsets.yaml",
    ] {
        std::fs::copy(scenarios.join(f), dir.join(f)).unwrap();
    }
    let se = mesh_examples::lab::service_entry;
    let registry = se("service1", &[(s1, "v1")])
        + &se("service2", &[(s2a, "v1"), (s2b, "v2")])
        + &se("service3", &[(s3, "v1")]);
    std::fs::write(dir.join("00-registry.yaml"), registry).unwrap();
    std::fs::write(dir.join("05-virtualservice-service2.yaml"), SERVICE2_VS).unwrap();
}

fn spawn(bin: &str, args: &[String], collector: SocketAddr) -> App {
    let child = Command::new(bin)
        .args(args)
        .env(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("http://{collector}/v1/traces"),
        )
        .env("OTEL_TRACES_SAMPLER", "always_on")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    App(child)
}

async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let uri = format!("http://{addr}{path}");
    let req = http::Request::get(uri)
        .body(http_body_util::Empty::new())
        .ok()?;
    let res = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .ok()?
        .ok()?;
    let status = res.status().as_u16();
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .ok()?
        .to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_across_the_chain_with_retry_and_mirror_spans() {
    let (collector, spans) = receiver().await;
    let config = tempfile::tempdir().unwrap();
    let [gw, s1, s2a, s2b, s3] = [(); 5].map(|()| free_addr());
    let admins = [(); 5].map(|()| free_addr());
    write_config(config.path(), s1, s2a, s2b, s3);
    let cfg = config.path().display().to_string();
    let common = |listen: SocketAddr, admin: SocketAddr| {
        vec![
            "--listen".to_owned(),
            listen.to_string(),
            "--admin".to_owned(),
            admin.to_string(),
            "--config".to_owned(),
            cfg.clone(),
        ]
    };
    let mut v1 = common(s2a, admins[2]);
    // Every second call of service2 v1 fails: each of those is retried once.
    v1.extend(["--version", "v1", "--error-rate", "0.5"].map(String::from));
    let mut v2 = common(s2b, admins[3]);
    v2.extend(["--version", "v2"].map(String::from));
    let _apps = [
        spawn(
            env!("CARGO_BIN_EXE_gateway"),
            &common(gw, admins[0]),
            collector,
        ),
        spawn(
            env!("CARGO_BIN_EXE_service1"),
            &common(s1, admins[1]),
            collector,
        ),
        spawn(env!("CARGO_BIN_EXE_service2"), &v1, collector),
        spawn(env!("CARGO_BIN_EXE_service2"), &v2, collector),
        spawn(
            env!("CARGO_BIN_EXE_service3"),
            &common(s3, admins[4]),
            collector,
        ),
    ];
    for admin in admins {
        let mut ready = false;
        for _ in 0..200 {
            if get(admin, "/healthz").await.is_some_and(|(s, _)| s == 200) {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "the app with admin {admin} never became ready");
    }

    // Two requests: service2 v1 fails one of them first, so one trace holds a retry.
    let mut trace_ids = Vec::new();
    for i in 0..2 {
        let (status, body) = get(gw, &format!("/service1/traced/{i}")).await.unwrap();
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        trace_ids.push(json["trace_id"].as_str().unwrap().to_owned());
    }

    // Wait for the batches of every app: per trace, 1 gateway + 2 service1 + (2 or 3 + 2) service2 + 1
    // mirror + service3's two inbound spans.
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut retried = None;
    for _ in 0..200 {
        let got = spans.lock().unwrap().clone();
        retried = trace_ids.iter().find_map(|t| {
            let trace: Vec<Got> = got
                .iter()
                .filter(|s| hex(&s.trace_id) == *t)
                .cloned()
                .collect();
            // The root too: the gateway's span ends after its answer is sent, so its batch
            // may arrive after the inner services' batches.
            let complete = trace.iter().any(|s| s.name == "retry")
                && trace.iter().any(|s| s.parent.is_empty())
                && trace.iter().any(|s| s.name == "mirror")
                && trace
                    .iter()
                    .filter(|s| s.service == "service3.default")
                    .count()
                    >= 2
                && trace
                    .iter()
                    .filter(|s| {
                        s.service == "service2.default" && s.kind == SpanKind::Server as i32
                    })
                    .count()
                    >= 3;
            complete.then_some(trace)
        });
        if retried.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = spans.lock().unwrap().clone();
    let trace = retried.unwrap_or_else(|| {
        panic!(
            "no trace with a retry, a mirror and the whole chain among {} spans: {:#?}",
            all.len(),
            all.iter()
                .map(|s| (&s.service, &s.name, hex(&s.trace_id)))
                .collect::<Vec<_>>()
        )
    });
    let by_id: HashMap<Vec<u8>, &Got> = trace.iter().map(|s| (s.span_id.clone(), s)).collect();
    let parent_of = |s: &Got| by_id.get(&s.parent).copied();
    let describe = |s: &Got| format!("{} {} ({:?})", s.service, s.name, s.attributes);

    // The root is the gateway's server span (its request from outside the mesh).
    let roots: Vec<&Got> = trace.iter().filter(|s| s.parent.is_empty()).collect();
    assert_eq!(
        roots.len(),
        1,
        "{:#?}",
        roots.iter().map(|s| describe(s)).collect::<Vec<_>>()
    );
    let listing = trace
        .iter()
        .map(|s| {
            format!(
                "{} {} kind={} {} <- {}",
                s.service,
                s.name,
                s.kind,
                hex(&s.span_id),
                hex(&s.parent)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(roots[0].service, "gateway.default", "{listing}");
    assert_eq!(roots[0].kind, SpanKind::Server as i32, "{listing}");

    for s in &trace {
        // Every span's parent is in the same trace (no dangling links).
        if !s.parent.is_empty() {
            assert!(parent_of(s).is_some(), "dangling parent of {}", describe(s));
        }
        // Every server span is the child of a client span of another workload.
        if s.kind == SpanKind::Server as i32 && !s.parent.is_empty() {
            let p = parent_of(s).unwrap();
            assert_eq!(
                p.kind,
                SpanKind::Client as i32,
                "{} under {}",
                describe(s),
                describe(p)
            );
            assert_ne!(
                p.service,
                s.service,
                "{} under {}",
                describe(s),
                describe(p)
            );
        }
        // The workload's tags, as Istio's sidecars put them on every span.
        let app = s.service.split('.').next().unwrap();
        assert_eq!(
            s.resource
                .get("istio.canonical_service")
                .map(String::as_str),
            Some(app)
        );
        assert_eq!(
            s.resource.get("istio.namespace").map(String::as_str),
            Some("default")
        );
        assert_eq!(
            s.resource.get("istio.mesh_id").map(String::as_str),
            Some("cluster.local")
        );
    }

    // The chain: gateway → service1 → service2 v1 → service3.
    let server = |service: &'static str| {
        let trace = &trace;
        trace
            .iter()
            .filter(move |s| s.service == service && s.kind == SpanKind::Server as i32)
    };
    let s1_in = server("service1.default").next().unwrap();
    let gw_out = parent_of(s1_in).unwrap();
    assert_eq!(
        (gw_out.service.as_str(), gw_out.name.as_str()),
        ("gateway.default", "outbound"),
        "{listing}"
    );
    assert_eq!(gw_out.parent, roots[0].span_id, "{listing}");
    // The retry span is a child of service1's outbound span, and the parent of the retried
    // attempt's server span at service2 v1.
    let retry = trace.iter().find(|s| s.name == "retry").unwrap();
    let s1_out = parent_of(retry).unwrap();
    assert_eq!(
        (s1_out.service.as_str(), s1_out.name.as_str()),
        ("service1.default", "outbound")
    );
    assert_eq!(parent_of(s1_out).unwrap().span_id, s1_in.span_id);
    assert_eq!(
        retry.attributes.get("retry.attempt").map(String::as_str),
        Some("1")
    );
    let retried_at: Vec<&Got> = server("service2.default")
        .filter(|s| s.parent == retry.span_id)
        .collect();
    assert_eq!(retried_at.len(), 1, "the retried attempt's server span");
    assert_eq!(
        retried_at[0]
            .resource
            .get("istio.canonical_revision")
            .map(String::as_str),
        Some("v1")
    );
    // The mirror span is a child of the same outbound span; the copy reached v2 under it.
    let mirror = trace.iter().find(|s| s.name == "mirror").unwrap();
    assert_eq!(mirror.parent, s1_out.span_id);
    let mirrored_at: Vec<&Got> = server("service2.default")
        .filter(|s| s.parent == mirror.span_id)
        .collect();
    assert_eq!(mirrored_at.len(), 1, "the mirrored copy's server span");
    assert_eq!(
        mirrored_at[0]
            .resource
            .get("istio.canonical_revision")
            .map(String::as_str),
        Some("v2")
    );
    // service3's server spans are children of service2's outbound spans.
    for s3_in in server("service3.default") {
        let p = parent_of(s3_in).unwrap();
        assert_eq!(
            (p.service.as_str(), p.name.as_str()),
            ("service2.default", "outbound")
        );
    }
}
