//! The retry layer's replay of a request's head: every attempt gets the headers and extensions
//! the request came with, whatever an earlier attempt or request added.

use super::*;

/// Each attempt's headers, as the cluster saw them, in order.
type Headers = Vec<(String, String)>;

fn pairs(headers: &http::HeaderMap) -> Headers {
    headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect()
}

/// What each attempt saw of the head: its target's host, a caller's extension, a header.
type HeadsSeen = Arc<Mutex<Vec<(Option<String>, Option<u8>, Option<String>)>>>;

#[tokio::test(start_paused = true)]
async fn every_attempt_gets_the_whole_head_whether_or_not_only_the_target_rides_along() {
    let target = crate::context::Target::new(mesh_core::policy::Destination {
        host: "service2".into(),
        subset: None,
        port: None,
    });
    for with_caller_extension in [false, true] {
        let seen = HeadsSeen::default();
        let recorded = seen.clone();
        // A cluster answering 503 and then 200, recording each attempt's head.
        let cluster = tower::service_fn(move |req: Request<BoxBody>| {
            let seen = recorded.clone();
            async move {
                let mut s = seen.lock().unwrap();
                s.push((
                    req.extensions()
                        .get::<crate::context::Target>()
                        .map(|t| t.destination.host.clone()),
                    req.extensions().get::<u8>().copied(),
                    req.headers()
                        .get("x-user")
                        .map(|v| v.to_str().unwrap().to_owned()),
                ));
                let mut r = Response::new(body::empty());
                *r.status_mut() = if s.len() == 1 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                };
                Ok::<_, BoxError>(r)
            }
        });
        let svc = RetryLayer::new(policy(2), Budget::unlimited()).layer(cluster);
        let mut req = get();
        req.headers_mut().insert("x-user", "ann".parse().unwrap());
        req.extensions_mut().insert(target.clone());
        if with_caller_extension {
            req.extensions_mut().insert(7u8);
        }
        let r = svc.oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let seen = seen.lock().unwrap();
        let caller = with_caller_extension.then_some(7);
        let expected = (Some("service2".to_owned()), caller, Some("ann".to_owned()));
        assert_eq!(*seen, vec![expected.clone(), expected]);
    }
}

#[tokio::test(start_paused = true)]
async fn a_later_request_reusing_an_earlier_heads_map_sees_only_its_own_headers() {
    let seen: Arc<Mutex<Vec<Headers>>> = Arc::default();
    let recorded = seen.clone();
    let cluster = tower::service_fn(move |req: Request<BoxBody>| {
        recorded.lock().unwrap().push(pairs(req.headers()));
        async { Ok::<_, BoxError>(Response::new(body::empty())) }
    });
    let svc = RetryLayer::new(policy(2), Budget::unlimited()).layer(cluster);
    let mut first = get_empty();
    first.headers_mut().insert("x-first", "1".parse().unwrap());
    first.headers_mut().append("x-both", "a".parse().unwrap());
    first.headers_mut().append("x-both", "b".parse().unwrap());
    assert_eq!(svc.clone().oneshot(first).await.unwrap().status(), 200);
    // A request dropped before its answer gives its map back as well.
    let mut dropped = get_empty();
    dropped
        .headers_mut()
        .insert("x-dropped", "1".parse().unwrap());
    let mut retry = svc.clone();
    drop(retry.call(dropped));
    let mut second = get_empty();
    second
        .headers_mut()
        .insert("x-second", "2".parse().unwrap());
    assert_eq!(svc.oneshot(second).await.unwrap().status(), 200);
    let seen = seen.lock().unwrap();
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        seen[0],
        vec![
            pair("x-first", "1"),
            pair("x-both", "a"),
            pair("x-both", "b")
        ]
    );
    assert_eq!(seen[1], vec![pair("x-dropped", "1")]);
    assert_eq!(seen[2], vec![pair("x-second", "2")]);
}

#[tokio::test(start_paused = true)]
async fn a_retry_gets_the_headers_the_request_came_with_not_what_an_attempt_added() {
    let seen: Arc<Mutex<Vec<Headers>>> = Arc::default();
    let recorded = seen.clone();
    // A cluster that adds a header to each attempt it is sent (as a transport adds `Host`),
    // answering 503 and then 200.
    let cluster = tower::service_fn(move |mut req: Request<BoxBody>| {
        let mut seen = recorded.lock().unwrap();
        seen.push(pairs(req.headers()));
        req.headers_mut()
            .insert("x-added-below", "1".parse().unwrap());
        let mut r = Response::new(body::empty());
        *r.status_mut() = if seen.len() == 1 {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        async { Ok::<_, BoxError>(r) }
    });
    let svc = RetryLayer::new(policy(2), Budget::unlimited()).layer(cluster);
    let mut req = get_empty();
    req.headers_mut().append("x-both", "a".parse().unwrap());
    req.headers_mut().insert("x-user", "ann".parse().unwrap());
    req.headers_mut().append("x-both", "b".parse().unwrap());
    assert_eq!(svc.oneshot(req).await.unwrap().status(), 200);
    let seen = seen.lock().unwrap();
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let came = vec![
        pair("x-both", "a"),
        pair("x-both", "b"),
        pair("x-user", "ann"),
    ];
    assert_eq!(*seen, vec![came.clone(), came]);
}
