//! The transport against real servers on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod cluster_support;

use std::time::Duration;

use cluster_support::{Backend, dead_addr, text};
use mesh_client::body;
use mesh_client::context::Upstream;
use mesh_client::transport::{Transport, TransportConfig, TransportError};
use mesh_core::classify::Outcome;

#[tokio::test]
async fn sends_to_the_endpoint_with_the_service_host() {
    let backend = Backend::start().await;
    let t = Transport::new(&TransportConfig::default()).unwrap();
    let host = http::HeaderValue::from_static("service2");
    let req = http::Request::get("/path?q=1").body(body::empty()).unwrap();
    let resp = t.send(backend.addr, Some(&host), req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.extensions().get::<Upstream>(),
        Some(&Upstream::new(backend.addr))
    );
    assert_eq!(resp.headers()["x-seen-host"], "service2");
    assert_eq!(resp.headers()["x-version"], "HTTP/1.1");
    assert_eq!(text(resp).await, backend.addr.port().to_string());
}

#[tokio::test]
async fn h2c_when_configured() {
    let backend = Backend::start().await;
    let t = Transport::new(&TransportConfig {
        http2: true,
        ..Default::default()
    })
    .unwrap();
    let req = http::Request::get("/").body(body::empty()).unwrap();
    let resp = t.send(backend.addr, None, req).await.unwrap();
    assert_eq!(resp.headers()["x-version"], "HTTP/2.0");
}

#[tokio::test]
async fn dead_endpoint_is_a_connect_failure() {
    let dead = dead_addr().await;
    let t = Transport::new(&TransportConfig {
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .unwrap();
    let req = http::Request::get("/").body(body::empty()).unwrap();
    let err = t.send(dead, None, req).await.unwrap_err();
    assert_eq!(err.outcome, Outcome::ConnectFailure);
    assert_eq!(err.endpoint, Some(dead));
    assert!(err.is_connect_failure());
}

#[test]
fn max_requests_per_connection_above_one_is_unsupported() {
    let err = Transport::new(&TransportConfig {
        max_requests_per_connection: 5,
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(
        err,
        TransportError::Unsupported {
            field: "connectionPool.http.maxRequestsPerConnection",
            ..
        }
    ));
    assert!(
        Transport::new(&TransportConfig {
            max_requests_per_connection: 1,
            ..Default::default()
        })
        .is_ok()
    );
}

#[tokio::test]
async fn one_request_per_connection_still_serves_every_request() {
    let backend = Backend::start().await;
    let t = Transport::new(&TransportConfig {
        max_requests_per_connection: 1,
        ..Default::default()
    })
    .unwrap();
    for _ in 0..3 {
        let req = http::Request::get("/").body(body::empty()).unwrap();
        let resp = t.send(backend.addr, None, req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let _ = text(resp).await;
    }
    assert_eq!(backend.hits(), 3);
}

#[tokio::test]
async fn clusters_speak_h2c_to_http2_and_grpc_ports() {
    use mesh_client::cluster::{Clusters, StaticEndpoints};
    use mesh_client::context::Target;
    use mesh_core::policy::{Destination, MeshConfig, Resolution, ServiceEntryPolicy, ServicePort};
    use std::sync::Arc;
    use tower::ServiceExt;

    let backend = Backend::start().await;
    let mut config = MeshConfig::default();
    for (host, protocol) in [("grpc-svc", "GRPC"), ("plain-svc", "HTTP")] {
        config.service_entries.push(ServiceEntryPolicy {
            origin: Default::default(),
            hosts: vec![host.into()],
            ports: vec![ServicePort {
                number: 7000,
                name: "p".into(),
                protocol: protocol.into(),
                target_port: None,
            }],
            resolution: Resolution::Static,
            endpoints: vec![],
            mesh_internal: true,
        });
    }
    let config = Arc::new(config);
    let set = Arc::new(StaticEndpoints::new());
    set.insert("grpc-svc", None, backend.addr, 1, Default::default());
    set.insert("plain-svc", None, backend.addr, 1, Default::default());
    let clusters = Clusters::new(move || Arc::clone(&config), set);
    for (host, version) in [("grpc-svc", "HTTP/2.0"), ("plain-svc", "HTTP/1.1")] {
        let mut req = http::Request::get("/").body(body::empty()).unwrap();
        req.extensions_mut().insert(Target::new(Destination {
            host: host.into(),
            subset: None,
            port: Some(7000),
        }));
        let resp = clusters.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.headers()["x-version"], version, "{host}");
    }
}

#[tokio::test]
async fn in_process_transport_answers_for_every_cluster_without_sockets() {
    use std::sync::{Arc, Mutex};

    use mesh_client::cluster::{Clusters, StaticEndpoints};
    use mesh_client::context::Target;
    use mesh_core::policy::{Destination, MeshConfig};

    let seen: Arc<Mutex<Vec<(std::net::SocketAddr, String, String)>>> = Arc::default();
    let record = Arc::clone(&seen);
    let transport = Transport::in_process(move |endpoint, req| {
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_owned();
        record
            .lock()
            .unwrap()
            .push((endpoint, req.uri().to_string(), host));
        Box::pin(async move {
            if endpoint.port() == 9 {
                return Err("refused".into());
            }
            Ok(http::Response::new(body::full(bytes::Bytes::from_static(
                b"in-process",
            ))))
        })
    });
    let endpoints = Arc::new(StaticEndpoints::new());
    let up: std::net::SocketAddr = "127.0.0.1:8081".parse().unwrap();
    let down: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    endpoints.insert("service2", None, up, 1, Default::default());
    endpoints.insert("service3", None, down, 1, Default::default());
    let config = Arc::new(MeshConfig::default());
    let clusters = Clusters::new(move || Arc::clone(&config), endpoints).with_transport(transport);

    let mut req = http::Request::get("http://service2/a?b=1")
        .body(body::empty())
        .unwrap();
    req.extensions_mut().insert(Target::new(Destination {
        host: "service2".into(),
        subset: None,
        port: None,
    }));
    let resp = clusters.send(req).await.unwrap();
    // Through a cluster, the endpoint's labels come along (for the source-side metrics).
    let upstream = resp.extensions().get::<Upstream>().cloned();
    assert_eq!(upstream.as_ref().map(|u| u.endpoint), Some(up));
    assert!(
        upstream.and_then(|u| u.labels).is_some(),
        "the cluster names the endpoint's labels"
    );
    assert_eq!(text(resp).await, "in-process");

    let mut req = http::Request::get("http://service3/")
        .body(body::empty())
        .unwrap();
    req.extensions_mut().insert(Target::new(Destination {
        host: "service3".into(),
        subset: None,
        port: None,
    }));
    let err = clusters.send(req).await.unwrap_err();
    assert_eq!(
        mesh_client::error::outcome_of(&err),
        Outcome::Reset,
        "{err}"
    );

    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[0],
        (
            up,
            "http://127.0.0.1:8081/a?b=1".to_owned(),
            "service2".to_owned()
        )
    );
    assert_eq!(seen.len(), 2);
}
