use std::sync::Mutex;
use std::time::Duration;

use http::HeaderMap;
use mesh_core::policy::{Destination, Labels};
use tower::{ServiceExt, service_fn};

use super::*;
use crate::context::Upstream;
use mesh_telemetry::ResponseFlags;
use mesh_telemetry::trace_context::{Propagation, parse_traceparent};

fn me() -> WorkloadLabels {
    let mut l = Labels::new();
    l.insert("app".into(), "service1".into());
    l.insert("version".into(), "v1".into());
    WorkloadLabels::from_labels("service1", Some("default"), &l)
}

type Seen = Arc<Mutex<Vec<HeaderMap>>>;

/// A service recording request headers, answering `status` after `delay` with `Target`
/// (service2, subset v2) and a `UO` flag in the response extensions when `status` is 503.
fn upstream(
    seen: Seen,
    status: u16,
    delay: Duration,
) -> impl tower_service::Service<
    Request<String>,
    Response = Response<String>,
    Error = &'static str,
    Future: Send,
> + Clone {
    service_fn(move |req: Request<String>| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(req.headers().clone());
            tokio::time::sleep(delay).await;
            if status == 0 {
                return Err("connection refused");
            }
            let mut resp = Response::new("hello".to_owned());
            *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
            resp.extensions_mut().insert(Target::new(Destination {
                host: "service2".into(),
                subset: Some("v2".into()),
                port: None,
            }));
            if status == 503 {
                let mut f = ResponseFlags::default();
                f.insert("UO");
                resp.extensions_mut().insert(f);
            }
            Ok(resp)
        }
    })
}

fn line<'a>(text: &'a str, prefix: &str, needle: &str) -> Option<&'a str> {
    text.lines()
        .find(|l| l.starts_with(prefix) && l.contains(needle))
}

#[tokio::test(start_paused = true)]
async fn records_source_metrics_with_destination_from_target() {
    let metrics = MeshMetrics::new();
    let seen = Seen::default();
    let layer = ClientTelemetryLayer::new(metrics.clone(), ClientTelemetryConfig::new(me()));
    let svc = layer.layer(upstream(seen.clone(), 200, Duration::from_millis(20)));
    let req = Request::builder()
        .uri("http://service2/x")
        .body("abc".to_owned())
        .unwrap();
    let resp = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let svc503 = layer.layer(upstream(seen.clone(), 503, Duration::ZERO));
    svc503.oneshot(Request::new(String::new())).await.unwrap();

    let text = metrics.encode_prometheus();
    let ok = line(&text, "istio_requests_total{response_code=\"200\"", "").expect(&text);
    for want in [
        "reporter=\"source\"",
        "source_workload=\"service1\"",
        "source_app=\"service1\"",
        "source_version=\"v1\"",
        "source_workload_namespace=\"default\"",
        "destination_service=\"service2\"",
        "destination_service_name=\"service2\"",
        "destination_version=\"v2\"",
        "destination_canonical_revision=\"v2\"",
        "response_flags=\"-\"",
        "connection_security_policy=\"unknown\"",
    ] {
        assert!(ok.contains(want), "{want} not in {ok}");
    }
    assert!(ok.ends_with("} 1"));
    let bad = line(&text, "istio_requests_total{response_code=\"503\"", "").expect(&text);
    assert!(bad.contains("response_flags=\"UO\""), "{bad}");
    // The paused clock makes the 20 ms exact: it lands in le=25, not le=10.
    let b10 = line(
        &text,
        "istio_request_duration_milliseconds_bucket{response_code=\"200\"",
        "le=\"10\"",
    )
    .unwrap();
    let b25 = line(
        &text,
        "istio_request_duration_milliseconds_bucket{response_code=\"200\"",
        "le=\"25\"",
    )
    .unwrap();
    assert!(b10.ends_with(" 0") && b25.ends_with(" 1"), "{b10}\n{b25}");
    // Request body of 3 bytes, response of 5.
    let rq = line(&text, "istio_request_bytes_sum{response_code=\"200\"", "").unwrap();
    let rs = line(&text, "istio_response_bytes_sum{response_code=\"200\"", "").unwrap();
    let value = |l: &str| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
    assert_eq!((value(rq), value(rs)), (Some(3.0), Some(5.0)), "{rq}\n{rs}");
}

#[tokio::test(start_paused = true)]
async fn failed_calls_count_with_code_zero() {
    let metrics = MeshMetrics::new();
    let svc = ClientTelemetryLayer::new(metrics.clone(), ClientTelemetryConfig::new(me()))
        .layer(upstream(Seen::default(), 0, Duration::ZERO));
    let req = Request::builder()
        .uri("http://service3:9000/")
        .body(String::new())
        .unwrap();
    assert!(svc.oneshot(req).await.is_err());
    let text = metrics.encode_prometheus();
    let l = line(&text, "istio_requests_total{response_code=\"0\"", "").expect(&text);
    assert!(l.contains("destination_service=\"service3\""), "{l}");
}

#[tokio::test(start_paused = true)]
async fn a_routed_call_that_fails_is_labelled_with_the_routes_destination() {
    // A call that gets no answer is counted under its request's target (host and subset),
    // not the host its URI names.
    let metrics = MeshMetrics::new();
    let svc = ClientTelemetryLayer::new(metrics.clone(), ClientTelemetryConfig::new(me()))
        .layer(upstream(Seen::default(), 0, Duration::ZERO));
    let req = routed("http://reviews/", "ratings", Some("v3"));
    assert!(svc.oneshot(req).await.is_err());
    let text = metrics.encode_prometheus();
    let l = line(&text, "istio_requests_total{response_code=\"0\"", "").expect(&text);
    for want in [
        "destination_service=\"ratings\"",
        "destination_version=\"v3\"",
    ] {
        assert!(l.contains(want), "{want} not in {l}");
    }
}

/// A request for `uri` that the router sent to `host` (and `subset`), as its `Target` says.
fn routed(uri: &str, host: &str, subset: Option<&str>) -> Request<String> {
    let mut req = Request::builder().uri(uri).body(String::new()).unwrap();
    req.extensions_mut().insert(Target::new(Destination {
        host: host.into(),
        subset: subset.map(Into::into),
        port: None,
    }));
    req
}

/// Each field given to a span, at its creation or after: (span name, field, value).
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<(String, String, String)>>>);

/// The fields of one record, as (field, value).
#[derive(Default)]
struct Values(Vec<(String, String)>);

impl tracing::field::Visit for Values {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S> tracing_subscriber::Layer<S> for Recorded
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut values = Values::default();
        attrs.record(&mut values);
        self.keep(attrs.metadata().name(), values);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        record: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let name = ctx.span(id).map(|s| s.name()).unwrap_or_default();
        let mut values = Values::default();
        record.record(&mut values);
        self.keep(name, values);
    }
}

impl Recorded {
    fn keep(&self, span: &str, values: Values) {
        let mut seen = self.0.lock().unwrap();
        seen.extend(values.0.into_iter().map(|(f, v)| (span.to_owned(), f, v)));
    }
}

#[tokio::test(start_paused = true)]
async fn a_listened_to_client_span_names_the_server_it_calls() {
    use tracing_subscriber::layer::SubscriberExt;
    let recorded = Recorded::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorded.clone()));
    // Another test's thread may have cached a callsite's interest without this subscriber.
    tracing::callsite::rebuild_interest_cache();
    let svc = ClientTelemetryLayer::new(MeshMetrics::new(), ClientTelemetryConfig::new(me()))
        .layer(upstream(Seen::default(), 200, Duration::ZERO));
    let req = routed("http://reviews/", "ratings", None);
    assert_eq!(svc.oneshot(req).await.unwrap().status(), 200);
    let seen = recorded.0.lock().unwrap();
    let address: Vec<_> = seen
        .iter()
        .filter(|(span, field, _)| span == "outbound" && field == "server.address")
        .map(|(_, _, value)| value.as_str())
        .collect();
    assert_eq!(address, ["ratings"], "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn injects_a_child_of_the_explicit_parent() {
    let seen = Seen::default();
    let svc = ClientTelemetryLayer::new(MeshMetrics::new(), ClientTelemetryConfig::new(me()))
        .layer(upstream(seen.clone(), 200, Duration::ZERO));
    let parent = TraceContext {
        propagation: Propagation::B3Multi,
        trace_state: Some(HeaderValue::from_static("x=1")),
        ..TraceContext::new_root(true)
    };
    let mut req = Request::new(String::new());
    req.extensions_mut().insert(parent.clone());
    req.extensions_mut()
        .insert(RequestId::parse(&HeaderValue::from_static("rid-1")).unwrap());
    let resp = svc.oneshot(req).await.unwrap();
    let h = seen.lock().unwrap().pop().unwrap();
    let tp = parse_traceparent(h.get("traceparent").unwrap().as_bytes()).unwrap();
    assert_eq!(tp.trace_id, parent.trace_id);
    assert_ne!(tp.span_id, parent.span_id);
    assert!(tp.sampled);
    assert_eq!(h.get("tracestate").unwrap(), "x=1");
    assert_eq!(
        h.get("x-b3-parentspanid").unwrap().to_str().unwrap(),
        parent.span_id_hex()
    );
    assert_eq!(h.get("x-request-id").unwrap(), "rid-1");
    assert_eq!(
        h.get("x-mesh-peer-metadata").unwrap(),
        "workload=service1;namespace=default;app=service1;version=v1"
    );
    let client_span = crate::context::client_span(resp.extensions()).unwrap();
    assert_eq!(client_span.span_id, tp.span_id);
    assert_eq!(client_span.parent_span_id, Some(parent.span_id));
}

#[tokio::test(start_paused = true)]
async fn task_local_parent_and_new_roots_follow_the_ratio() {
    let seen = Seen::default();
    let mut cfg = ClientTelemetryConfig::new(me());
    cfg.sample_ratio = 1.0;
    let layer = ClientTelemetryLayer::new(MeshMetrics::new(), cfg.clone());
    let server = TraceContext::new_root(false);
    let svc = layer.layer(upstream(seen.clone(), 200, Duration::ZERO));
    current::scope(
        server.clone(),
        svc.clone().oneshot(Request::new(String::new())),
    )
    .await
    .unwrap();
    let tp = parse_traceparent(
        seen.lock()
            .unwrap()
            .pop()
            .unwrap()
            .get("traceparent")
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(tp.trace_id, server.trace_id);
    assert!(!tp.sampled, "the parent's decision wins over the ratio");
    // No parent: a new root, sampled at ratio 1.0 ...
    let mut req = Request::new(String::new());
    req.headers_mut()
        .insert("x-request-id", HeaderValue::from_static("keep"));
    req.extensions_mut()
        .insert(RequestId::parse(&HeaderValue::from_static("other")).unwrap());
    svc.oneshot(req).await.unwrap();
    let h = seen.lock().unwrap().pop().unwrap();
    let tp = parse_traceparent(h.get("traceparent").unwrap().as_bytes()).unwrap();
    assert_ne!(tp.trace_id, server.trace_id);
    assert!(tp.sampled);
    assert_eq!(
        h.get("x-request-id").unwrap(),
        "keep",
        "an explicit header is left alone"
    );
    // ... and never at ratio 0.
    cfg.sample_ratio = 0.0;
    cfg.send_peer_metadata = false;
    let svc = ClientTelemetryLayer::new(MeshMetrics::new(), cfg).layer(upstream(
        seen.clone(),
        200,
        Duration::ZERO,
    ));
    svc.oneshot(Request::new(String::new())).await.unwrap();
    let h = seen.lock().unwrap().pop().unwrap();
    assert!(
        !parse_traceparent(h.get("traceparent").unwrap().as_bytes())
            .unwrap()
            .sampled
    );
    assert!(h.get("x-mesh-peer-metadata").is_none());
}

#[test]
fn sampling_is_decided_by_the_trace_id() {
    assert!(sample(1, 1.0));
    assert!(!sample(u128::MAX, 0.0));
    assert!(!sample(5, f64::NAN));
    assert!(sample(0x10, 0.5));
    assert!(!sample(u128::from(u64::MAX), 0.5));
    let hits = (0..10_000u128)
        .filter(|i| {
            sample(
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834),
                0.1,
            )
        })
        .count();
    assert!((700..1300).contains(&hits), "{hits}");
}

#[test]
fn destination_labels_are_interned_per_host_and_subset() {
    let layer = ClientTelemetryLayer::new(MeshMetrics::new(), ClientTelemetryConfig::new(me()));
    let shared = &layer.shared;
    let a = shared.peers("service2", Some("v1"), None, None);
    assert!(
        Arc::ptr_eq(&a, &shared.peers("service2", Some("v1"), None, None)),
        "a hit returns the interned labels"
    );
    let b = shared.peers("service2", Some("v2"), None, None);
    let c = shared.peers("service2", None, None, None);
    assert!(!Arc::ptr_eq(&a, &b) && !Arc::ptr_eq(&b, &c));
    assert_eq!(&*b.destination().version, "v2");
    assert_eq!(&*c.destination().version, UNKNOWN);
    assert_eq!(
        &*shared
            .peers("service3:9000", None, None, None)
            .service()
            .service,
        "service3"
    );
    // Bounded: past the limit, labels are still built (and correct), just not remembered.
    for i in 0..MAX_DESTINATIONS {
        shared.peers(&format!("h{i}"), None, None, None);
    }
    let extra = shared.peers("late", None, None, None);
    assert_eq!(&*extra.service().service, "late");
    assert!(!Arc::ptr_eq(
        &extra,
        &shared.peers("late", None, None, None)
    ));
    assert!(Arc::ptr_eq(
        &a,
        &shared.peers("service2", Some("v1"), None, None)
    ));
}

#[test]
fn destination_workload_labels_come_from_the_endpoint_that_answered() {
    let layer = ClientTelemetryLayer::new(MeshMetrics::new(), ClientTelemetryConfig::new(me()));
    let shared = &layer.shared;
    let v1: Arc<Labels> = Arc::new(
        [("app", "service2"), ("version", "v1")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
    );
    let p = shared.peers("service2", None, Some(&v1), None);
    let d = p.destination();
    assert_eq!(&*d.workload, "service2-v1");
    assert_eq!(&*d.app, "service2");
    assert_eq!(&*d.version, "v1");
    assert_eq!(&*d.cluster, mesh_telemetry::labels::DEFAULT_CLUSTER);
    // A short host is a service of the caller's namespace.
    assert_eq!(&*d.namespace, &*me().namespace);
    assert_eq!(&*p.service().namespace, &*me().namespace);
    // The same labels in another Arc (a rebuilt endpoint set) find the same interned entry.
    let again = Arc::new((*v1).clone());
    assert!(Arc::ptr_eq(
        &p,
        &shared.peers("service2", None, Some(&again), None)
    ));
    // Without an answering endpoint the workload is unknown, the version the subset's.
    let q = shared.peers("service2", Some("v2"), None, None);
    assert_eq!(&*q.destination().workload, UNKNOWN);
    assert_eq!(&*q.destination().version, "v2");
}

#[tokio::test(start_paused = true)]
async fn client_span_rides_on_the_answers_upstream_when_it_has_one() {
    let addr: std::net::SocketAddr = "127.0.0.9:8080".parse().unwrap();
    let inner = service_fn(move |_req: Request<String>| async move {
        let mut resp = Response::new(String::new());
        resp.extensions_mut().insert(Upstream::new(addr));
        Ok::<_, &'static str>(resp)
    });
    let layer = ClientTelemetryLayer::new(MeshMetrics::new(), ClientTelemetryConfig::new(me()));
    let parent = TraceContext::new_root(true);
    let mut req = Request::new(String::new());
    req.extensions_mut().insert(parent.clone());
    let resp = layer.layer(inner).oneshot(req).await.unwrap();
    let up = resp.extensions().get::<Upstream>().unwrap();
    let span = up
        .client_span
        .as_ref()
        .expect("the client span on the Upstream");
    assert_eq!(span.parent_span_id, Some(parent.span_id));
    assert!(
        resp.extensions().get::<TraceContext>().is_none(),
        "no second extension"
    );
    assert_eq!(crate::context::client_span(resp.extensions()), Some(span));

    // Without an Upstream (a transport not the mesh's), an extension of its own.
    let bare = service_fn(|_req: Request<String>| async {
        Ok::<_, &'static str>(Response::new(String::new()))
    });
    let layer = ClientTelemetryLayer::new(MeshMetrics::new(), ClientTelemetryConfig::new(me()));
    let resp = layer
        .layer(bare)
        .oneshot(Request::new(String::new()))
        .await
        .unwrap();
    assert!(resp.extensions().get::<TraceContext>().is_some());
    assert!(crate::context::client_span(resp.extensions()).is_some());
}
