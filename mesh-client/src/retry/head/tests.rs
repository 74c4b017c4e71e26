use http::header::{ACCEPT, HOST, HeaderValue};

use super::*;

fn sample() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("service3"));
    headers.append(ACCEPT, HeaderValue::from_static("text/plain"));
    headers.append(ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert("x-user", HeaderValue::from_static("ann"));
    headers
}

fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn a_retry_map_has_every_saved_value_in_order_with_or_without_a_spare_vector() {
    let original = sample();
    // Whatever the thread's store holds, the saved headers are the same.
    let fresh = SavedHeaders::of(&original);
    assert_eq!(pairs(&fresh.to_map()), pairs(&original));
    drop(fresh);
    let reused = SavedHeaders::of(&original);
    let map = reused.to_map();
    assert_eq!(pairs(&map), pairs(&original));
    assert_eq!(map.get_all(ACCEPT).iter().count(), 2);
    // Each map is new: a second retry gets the same headers again.
    assert_eq!(pairs(&reused.to_map()), pairs(&original));
}

#[test]
fn a_retry_map_has_room_for_the_headers_added_below_without_growing() {
    let saved = SavedHeaders::of(&sample());
    let mut map = saved.to_map();
    let capacity = map.capacity();
    map.insert("traceparent", HeaderValue::from_static("00-1-2-01"));
    map.insert("x-added", HeaderValue::from_static("1"));
    assert_eq!(map.capacity(), capacity);
}

#[test]
fn a_dropped_save_leaves_its_vector_cleared_for_the_next() {
    // A thread of its own: the store starts empty.
    std::thread::spawn(|| {
        let mut big = HeaderMap::new();
        for i in 0..20 {
            big.insert(
                http::HeaderName::from_bytes(format!("x-left-over-{i}").as_bytes()).unwrap(),
                HeaderValue::from_static("1"),
            );
        }
        let saved = SavedHeaders::of(&big);
        let capacity = saved.pairs.capacity();
        drop(saved);
        assert_eq!(crate::spare::count(&SPARE), 1);
        let next = SavedHeaders::of(&sample());
        assert_eq!(
            next.pairs.capacity(),
            capacity,
            "the spare vector was reused"
        );
        assert!(
            next.to_map().get("x-left-over-0").is_none(),
            "and was cleared"
        );
        assert_eq!(pairs(&next.to_map()), pairs(&sample()));
    })
    .join()
    .unwrap();
}

#[test]
fn oversized_or_empty_vectors_are_not_kept_and_the_store_is_bounded() {
    std::thread::spawn(|| {
        let mut many = HeaderMap::new();
        for i in 0..=MAX_SPARE_CAPACITY {
            many.append("x-h", HeaderValue::from_str(&i.to_string()).unwrap());
        }
        drop(SavedHeaders::of(&many));
        drop(SavedHeaders::of(&HeaderMap::new()));
        assert_eq!(crate::spare::count(&SPARE), 0);
        let held: Vec<_> = (0..MAX_SPARE + 3)
            .map(|_| SavedHeaders::of(&sample()))
            .collect();
        drop(held);
        assert_eq!(crate::spare::count(&SPARE), MAX_SPARE);
    })
    .join()
    .unwrap();
}

/// What one attempt saw of the extensions the layers below the retry read.
#[derive(Clone, Debug, PartialEq)]
struct Saw {
    target: Option<String>,
    deadline: Option<Deadline>,
    source: Option<SourceAddr>,
    method: Option<(String, String)>,
    caller: Option<u8>,
    previous: usize,
}

/// A gRPC call through a retry layer whose upstream answers UNAVAILABLE and then OK: what each
/// attempt saw.
async fn attempts_of(mut request: Request<crate::body::BoxBody>) -> Vec<Saw> {
    use std::sync::Mutex;

    use tower::{Layer as _, ServiceExt as _};

    use crate::retry::{Budget, RetryLayer};

    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let upstream = tower::service_fn(move |req: Request<crate::body::BoxBody>| {
        let record = Arc::clone(&record);
        async move {
            let e = req.extensions();
            #[cfg(feature = "tonic")]
            let method = e
                .get::<tonic::GrpcMethod<'static>>()
                .map(|m| (m.service().to_owned(), m.method().to_owned()));
            #[cfg(not(feature = "tonic"))]
            let method = None;
            let attempt = {
                let mut record = record.lock().unwrap();
                record.push(Saw {
                    target: e.get::<Target>().map(|t| t.destination.host.clone()),
                    deadline: e.get::<Deadline>().copied(),
                    source: e.get::<SourceAddr>().copied(),
                    method,
                    caller: e.get::<u8>().copied(),
                    previous: e
                        .get::<crate::context::PreviousAttempts>()
                        .map_or(0, |p| p.endpoints.len()),
                });
                record.len()
            };
            // The tape replays the body: read it as a transport would.
            http_body_util::BodyExt::collect(req.into_body()).await?;
            let code = if attempt == 1 { "14" } else { "0" };
            let mut answer = http::Response::new(crate::body::empty());
            answer
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/grpc"));
            answer
                .headers_mut()
                .insert("grpc-status", HeaderValue::from_static(code));
            answer
                .extensions_mut()
                .insert(crate::context::Upstream::new(
                    "127.0.0.1:1".parse().unwrap(),
                ));
            Ok::<_, crate::BoxError>(answer)
        }
    });
    let policy =
        mesh_core::policy::RetryPolicy::new(2, mesh_core::policy::RetryOn::istio_default());
    let retry = RetryLayer::new(policy, Budget::unlimited()).layer(upstream);
    request.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    let answer = retry.oneshot(request).await.unwrap();
    assert_eq!(
        answer.headers()["grpc-status"],
        "0",
        "the retry rescued the call"
    );
    Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
}

/// A gRPC request as tonic sends it over `MeshClient`, below the split and the timeout layer:
/// a streaming body and the target, the deadline, the caller's address and tonic's method.
fn grpc_call() -> (Request<crate::body::BoxBody>, Saw) {
    let chunks = futures_util::stream::iter([Ok::<_, crate::BoxError>(http_body::Frame::data(
        bytes::Bytes::from_static(b"\0\0\0\0\x02hi"),
    ))]);
    let body = crate::body::boxed(http_body_util::StreamBody::new(chunks));
    let mut request = Request::post("http://service3/pkg.Svc/M")
        .body(body)
        .unwrap();
    let deadline = Deadline {
        at: tokio::time::Instant::now() + std::time::Duration::from_secs(5),
    };
    let source = SourceAddr {
        ip: "10.0.0.7".parse().unwrap(),
    };
    let e = request.extensions_mut();
    e.insert(Target::new(Destination {
        host: "service3".into(),
        subset: Some("v1".into()),
        port: None,
    }));
    e.insert(deadline);
    e.insert(source);
    #[cfg(feature = "tonic")]
    e.insert(tonic::GrpcMethod::new("pkg.Svc", "M"));
    let expected = Saw {
        target: Some("service3".into()),
        deadline: Some(deadline),
        source: Some(source),
        #[cfg(feature = "tonic")]
        method: Some(("pkg.Svc".into(), "M".into())),
        #[cfg(not(feature = "tonic"))]
        method: None,
        caller: None,
        previous: 0,
    };
    (request, expected)
}

#[tokio::test(start_paused = true)]
async fn a_retried_grpc_call_carries_every_extension_the_layers_below_read() {
    let (request, expected) = grpc_call();
    assert!(Carried::of(request.extensions()).is_some(), "the fast path");
    let seen = attempts_of(request).await;
    let retried = Saw {
        previous: 1,
        ..expected
    };
    let expected = Saw {
        previous: 0,
        ..retried.clone()
    };
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], expected, "the first attempt");
    assert_eq!(seen[1], retried, "the retry");
}

#[tokio::test(start_paused = true)]
async fn an_unknown_extension_makes_every_attempt_a_copy_of_the_whole_map() {
    let (mut request, expected) = grpc_call();
    request.extensions_mut().insert(7u8);
    assert!(
        Carried::of(request.extensions()).is_none(),
        "not the fast path"
    );
    let seen = attempts_of(request).await;
    let first = Saw {
        caller: Some(7),
        ..expected
    };
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1],
        Saw {
            previous: 1,
            ..first.clone()
        }
    );
    assert_eq!(seen[0], first);
}

#[test]
fn only_maps_of_known_types_are_rebuilt() {
    let mut extensions = Extensions::new();
    assert!(Carried::of(&extensions).is_some(), "an empty map");
    extensions.insert(SourceAddr {
        ip: "10.0.0.7".parse().unwrap(),
    });
    let carried = Carried::of(&extensions).unwrap();
    let rebuilt = carried.rebuild(&None);
    assert_eq!(rebuilt.len(), 1);
    assert_eq!(rebuilt.get::<SourceAddr>(), extensions.get::<SourceAddr>());
    extensions.insert("a caller's value");
    assert!(Carried::of(&extensions).is_none());
}
