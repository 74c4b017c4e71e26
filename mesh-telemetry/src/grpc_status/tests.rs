use std::collections::VecDeque;
use std::future::poll_fn;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use super::*;
use crate::labels::{PeerLabels, Reporter, RequestLabels, ServiceLabels, WorkloadLabels};

struct Frames(VecDeque<Frame<Bytes>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }
}

fn record() -> RequestRecord {
    RequestRecord {
        labels: RequestLabels {
            peers: PeerLabels::new(
                Reporter::Destination,
                WorkloadLabels::unknown(),
                WorkloadLabels::unknown(),
                ServiceLabels::from_host("service2"),
            ),
            protocol: "grpc",
            response_code: 200,
            response_flags: "-".into(),
            grpc_status: None,
        },
        duration: Duration::from_millis(1),
        request_bytes: 5,
        response_bytes: 0,
    }
}

fn series(metrics: &MeshMetrics) -> Vec<String> {
    metrics
        .encode_prometheus()
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .map(str::to_owned)
        .collect()
}

/// A gRPC answer's body: one message, then trailers with `grpc-status: status`.
fn message_then_status(message: &'static [u8], status: &'static str) -> Frames {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static(status));
    Frames(VecDeque::from([
        Frame::data(Bytes::from_static(message)),
        Frame::trailers(trailers),
    ]))
}

async fn drain(mut body: GrpcStatusBody<Frames>) {
    while poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
        .await
        .is_some()
    {}
}

#[tokio::test]
async fn the_status_comes_from_the_trailers_once_the_body_ends() {
    let metrics = MeshMetrics::new();
    let mut response = http::Response::new(message_then_status(b"hello", "0"));
    response
        .extensions_mut()
        .insert(PendingGrpcStatus::new(metrics.clone(), record(), None));
    let pending = watch(&mut response).unwrap();
    assert!(watch(&mut response).is_none());
    let body = GrpcStatusBody::new(response.into_body(), pending);
    assert!(
        series(&metrics).is_empty(),
        "nothing recorded before the end"
    );
    drain(body).await;
    let lines = series(&metrics);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(r#"grpc_response_status="0""#),
        "{}",
        lines[0]
    );
    assert!(metrics.encode_prometheus().contains("istio_response_bytes"));
}

#[tokio::test]
async fn without_trailers_or_a_reader_the_request_is_still_recorded() {
    let metrics = MeshMetrics::new();
    let mut response = http::Response::new(Frames(VecDeque::new()));
    response
        .extensions_mut()
        .insert(PendingGrpcStatus::new(metrics.clone(), record(), None));
    drop(response);
    let lines = series(&metrics);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(r#"grpc_response_status="""#),
        "{}",
        lines[0]
    );
}

#[tokio::test]
async fn a_cloned_extension_carries_no_record_and_the_request_is_recorded_once() {
    let metrics = MeshMetrics::new();
    let mut response = http::Response::new(Frames(VecDeque::new()));
    response
        .extensions_mut()
        .insert(PendingGrpcStatus::new(metrics.clone(), record(), None));
    let copy = response.extensions().clone();
    let mut twin = http::Response::new(Frames(VecDeque::new()));
    *twin.extensions_mut() = copy;
    assert!(watch(&mut twin).is_none(), "a clone has no record to take");
    drop(twin);
    assert!(
        series(&metrics).is_empty(),
        "dropping the clone records nothing"
    );
    let pending = watch(&mut response).unwrap();
    drain(GrpcStatusBody::new(response.into_body(), pending)).await;
    let lines = series(&metrics);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].ends_with(" 1"), "recorded once: {}", lines[0]);
}

/// The `rpc.*` fields a subscriber is given, by name.
#[derive(Clone, Default)]
struct RpcFields(std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RpcFields {
    fn on_record(
        &self,
        _: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Visit<'a>(&'a mut Vec<(String, String)>);
        impl tracing::field::Visit for Visit<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push((field.name().to_owned(), format!("{value:?}")));
            }
        }
        values.record(&mut Visit(&mut self.0.lock().unwrap()));
    }
}

fn rpc_span() -> tracing::Span {
    tracing::info_span!(
        "outbound",
        rpc.system = tracing::field::Empty,
        rpc.service = tracing::field::Empty,
        rpc.method = tracing::field::Empty,
    )
}

#[test]
fn rpc_attributes_go_on_a_live_span_and_a_disabled_one_is_left_alone() {
    use tracing_subscriber::layer::SubscriberExt as _;

    let fields = RpcFields::default();
    let subscriber = tracing_subscriber::registry().with(fields.clone());
    tracing::subscriber::with_default(subscriber, || {
        // Another test's thread may have cached a callsite's interest without this subscriber.
        tracing::callsite::rebuild_interest_cache();
        let span = rpc_span();
        assert!(!span.is_disabled());
        record_rpc(&span, "/mesh.examples.Echo/Call");
    });
    let seen = fields.0.lock().unwrap().clone();
    let pairs = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        seen,
        pairs(&[
            ("rpc.system", "\"grpc\""),
            ("rpc.service", "\"mesh.examples.Echo\""),
            ("rpc.method", "\"Call\""),
        ])
    );
    // No subscriber: the span is disabled and nothing is recorded (nor needed).
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
        // Another test's thread may have cached a callsite's interest without this subscriber.
        tracing::callsite::rebuild_interest_cache();
        let span = rpc_span();
        assert!(span.is_disabled());
        record_rpc(&span, "/mesh.examples.Echo/Call");
    });
}

#[tokio::test]
async fn a_span_alone_gets_the_status_from_the_trailers() {
    use tracing_subscriber::layer::SubscriberExt as _;

    // A server that traces but keeps no request metrics: the trace layer's extension holds
    // only the span, and the body's end still gives it the status.
    let fields = RpcFields::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(fields.clone()));
    // Another test's thread may have cached a callsite's interest without this subscriber.
    tracing::callsite::rebuild_interest_cache();
    let span = tracing::info_span!("inbound", rpc.grpc.status_code = tracing::field::Empty);
    let mut response = http::Response::new(message_then_status(b"\0\0\0\0\0", "3"));
    response
        .extensions_mut()
        .insert(PendingGrpcStatus::span(span));
    let pending = watch(&mut response).expect("the span waits for the status");
    assert!(fields.0.lock().unwrap().is_empty(), "before the trailers");
    drain(GrpcStatusBody::new(response.into_body(), pending)).await;
    assert_eq!(
        *fields.0.lock().unwrap(),
        [("rpc.grpc.status_code".to_owned(), "3".to_owned())]
    );
}
