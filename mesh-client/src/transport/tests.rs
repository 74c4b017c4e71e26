use super::*;
use crate::body;
use crate::context::Upstream;
use http::Response;

#[test]
fn endpoint_uri_keeps_path_and_query() {
    let v4: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let a = endpoint_authority(v4);
    let uri = endpoint_uri("http://service3/a/b?x=1".parse().unwrap(), v4, a.as_ref()).unwrap();
    assert_eq!(uri, "http://127.0.0.1:8080/a/b?x=1");
    let uri = endpoint_uri("/only/path".parse().unwrap(), v4, None).unwrap();
    assert_eq!(uri, "http://127.0.0.1:8080/only/path");
    let v6: SocketAddr = "[::1]:9000".parse().unwrap();
    let uri = endpoint_uri(
        "https://svc".parse().unwrap(),
        v6,
        endpoint_authority(v6).as_ref(),
    )
    .unwrap();
    assert_eq!(uri, "http://[::1]:9000/");
}

#[tokio::test(start_paused = true)]
async fn grpc_calls_carry_the_time_left_as_grpc_timeout() {
    let seen = Arc::new(std::sync::Mutex::new(None));
    let record = seen.clone();
    let t = Transport::in_process(move |_, req| {
        *record.lock().unwrap() = req.headers().get("grpc-timeout").cloned();
        Box::pin(async { Ok(Response::new(body::empty())) })
    });
    let mut req = Request::post("http://service3/pkg.Svc/M")
        .header("content-type", "application/grpc")
        .header("grpc-timeout", "10S")
        .body(body::empty())
        .unwrap();
    req.extensions_mut().insert(mesh_core::grpc::Deadline {
        at: tokio::time::Instant::now() + std::time::Duration::from_millis(300),
    });
    let ep: SocketAddr = "127.0.0.1:1".parse().unwrap();
    t.send(ep, None, req).await.unwrap();
    let sent = seen.lock().unwrap().clone().unwrap();
    assert_eq!(
        mesh_core::grpc::parse_timeout(&sent),
        Some(std::time::Duration::from_millis(300))
    );
}

/// An extension of the caller's own.
#[derive(Clone, Debug, PartialEq)]
struct Mine(u8);

#[tokio::test]
async fn the_answer_is_tagged_in_the_request_map_when_only_mesh_values_rode_in_it() {
    use crate::context::Target;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let t = Transport::in_process(move |_, req| {
        record.lock().unwrap().push((
            req.extensions().len(),
            req.extensions().get::<Mine>().cloned(),
        ));
        // The callee's own answer value, on the second call.
        let answer_value = req.uri().path() == "/answer-value";
        Box::pin(async move {
            let mut resp = Response::new(body::empty());
            if answer_value {
                resp.extensions_mut().insert(Mine(9));
            }
            Ok(resp)
        })
    });
    let ep: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let target = || {
        Target::new(mesh_core::policy::Destination {
            host: "service3".into(),
            subset: None,
            port: None,
        })
    };
    let send = |path: &str, mine: Option<Mine>| {
        let mut req = Request::get(format!("http://service3{path}"))
            .body(body::empty())
            .unwrap();
        req.extensions_mut().insert(target());
        if let Some(m) = mine {
            req.extensions_mut().insert(m);
        }
        req.extensions_mut().insert(mesh_core::grpc::Deadline {
            at: tokio::time::Instant::now() + std::time::Duration::from_secs(5),
        });
        t.send(ep, None, req)
    };
    // The mesh's values alone: the callee sees none of them, the answer carries its
    // `Upstream` and nothing of the request's.
    let resp = send("/plain", None).await.unwrap();
    assert_eq!(resp.extensions().len(), 1);
    assert_eq!(
        resp.extensions().get::<Upstream>().map(|u| u.endpoint),
        Some(ep)
    );
    assert!(resp.extensions().get::<Target>().is_none());
    // The answer's own value is kept beside the `Upstream`.
    let resp = send("/answer-value", None).await.unwrap();
    assert_eq!(resp.extensions().get::<Mine>(), Some(&Mine(9)));
    assert!(resp.extensions().get::<Upstream>().is_some());
    // A value of the caller's own goes with the request, and the mesh's with it.
    let resp = send("/mine", Some(Mine(1))).await.unwrap();
    assert!(resp.extensions().get::<Upstream>().is_some());
    assert!(resp.extensions().get::<Mine>().is_none());
    let seen = seen.lock().unwrap();
    assert_eq!(*seen, [(0, None), (0, None), (3, Some(Mine(1)))]);
}

#[tokio::test]
async fn host_header_from_uri_or_service() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let t = Transport::in_process(move |_, req| {
        record
            .lock()
            .unwrap()
            .push((req.uri().clone(), req.headers().get(HOST).cloned()));
        Box::pin(async { Ok(Response::new(body::empty())) })
    });
    let ep: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let service = HeaderValue::from_static("service3");
    for uri in ["http://service3/x", "http://other:81/y", "/z"] {
        let req = Request::get(uri).body(body::empty()).unwrap();
        let resp = t.send(ep, Some(&service), req).await.unwrap();
        assert_eq!(
            resp.extensions().get::<Upstream>().map(|u| u.endpoint),
            Some(ep)
        );
    }
    let seen = seen.lock().unwrap();
    let hosts: Vec<_> = seen
        .iter()
        .map(|(_, h)| h.as_ref().and_then(|h| h.to_str().ok()).unwrap_or(""))
        .collect();
    assert_eq!(hosts, ["service3", "other:81", "service3"]);
    assert_eq!(seen[1].0, "http://127.0.0.1:1/y");
}
