use std::sync::{Arc, Mutex};

use http::HeaderValue;
use mesh_telemetry::trace_context::Propagation;
use tower::{ServiceExt, service_fn};

use super::*;

type Seen = Arc<Mutex<Vec<(Option<TraceContext>, Option<TraceContext>)>>>;

/// Records the extension and the task-local context the handler sees.
fn handler(
    seen: Seen,
) -> impl Service<Request<String>, Response = Response<String>, Error = std::convert::Infallible> {
    service_fn(move |req: Request<String>| {
        let seen = seen.clone();
        async move {
            tokio::task::yield_now().await;
            seen.lock().unwrap().push((
                TraceContext::from_extensions(req.extensions()).cloned(),
                current::current(),
            ));
            Ok(Response::new(String::new()))
        }
    })
}

async fn run(headers: &[(&str, &str)], ratio: f64) -> TraceContext {
    let seen = Seen::default();
    let svc = TraceLayer::new(TraceConfig {
        sample_ratio: ratio,
    })
    .layer(handler(seen.clone()));
    let mut req = Request::new(String::new());
    for (k, v) in headers {
        req.headers_mut().append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    svc.oneshot(req).await.unwrap();
    let (ext, local) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(ext, local, "extension and task-local agree");
    ext.unwrap()
}

#[tokio::test(start_paused = true)]
async fn continues_a_w3c_parent() {
    let ctx = run(
        &[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "k=v"),
        ],
        0.0,
    )
    .await;
    assert_eq!(ctx.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
    assert_eq!(ctx.parent_span_id, Some(0x00f067aa0ba902b7));
    assert_ne!(ctx.span_id, 0x00f067aa0ba902b7);
    assert!(ctx.sampled, "the parent's decision wins over ratio 0");
    assert_eq!(ctx.trace_state.unwrap(), "k=v");
    assert_eq!(ctx.propagation, Propagation::W3c);
}

#[tokio::test(start_paused = true)]
async fn invalid_traceparent_starts_a_new_trace() {
    let ctx = run(
        &[(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        )],
        1.0,
    )
    .await;
    assert_ne!(ctx.trace_id, 0);
    assert_eq!(ctx.parent_span_id, None);
    assert!(ctx.sampled, "ratio 1.0 samples new traces");
    let ctx = run(&[], 0.0).await;
    assert!(!ctx.sampled);
}

#[tokio::test(start_paused = true)]
async fn continues_b3_single_and_multi() {
    let ctx = run(
        &[("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0")],
        1.0,
    )
    .await;
    assert_eq!(ctx.trace_id, 0x80f198ee56343ba864fe8b2a57d3eff7);
    assert_eq!(ctx.parent_span_id, Some(0xe457b5a2e4d86bd1));
    assert!(!ctx.sampled);
    assert_eq!(ctx.propagation, Propagation::B3Single);
    let ctx = run(
        &[
            ("x-b3-traceid", "64fe8b2a57d3eff7"),
            ("x-b3-spanid", "e457b5a2e4d86bd1"),
            ("x-b3-sampled", "1"),
        ],
        0.0,
    )
    .await;
    assert_eq!(ctx.trace_id, 0x64fe8b2a57d3eff7);
    assert!(ctx.sampled);
    assert_eq!(ctx.propagation, Propagation::B3Multi);
    // A lone sampling decision starts a new trace with that decision.
    let ctx = run(&[("b3", "0")], 1.0).await;
    assert_eq!(ctx.parent_span_id, None);
    assert!(!ctx.sampled);
}

#[tokio::test]
async fn only_a_grpc_call_has_its_answers_grpc_status_awaited_from_the_trailers() {
    // An answer that looks like gRPC (its content type) with its status still to come.
    let grpc_looking = service_fn(|_req: Request<String>| async {
        let mut answer = Response::new(String::new());
        answer.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        Ok::<_, std::convert::Infallible>(answer)
    });
    let svc = TraceLayer::new(TraceConfig::default()).layer(grpc_looking);
    for grpc in [true, false] {
        let mut req = Request::post("/pkg.Svc/Method")
            .body(String::new())
            .unwrap();
        if grpc {
            req.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc+proto"),
            );
        }
        let answer = svc.clone().oneshot(req).await.unwrap();
        let pending = answer
            .extensions()
            .get::<mesh_telemetry::grpc_status::PendingGrpcStatus>();
        assert_eq!(pending.is_some(), grpc, "gRPC call: {grpc}");
    }
}
