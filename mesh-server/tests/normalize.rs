//! Path normalization against a real server on 127.0.0.1:0: every spelling of a denied path is
//! denied, the application receives the normalized path, and unnormalizable paths get 400.
//!
//! Requests are written as raw bytes on a TCP socket: an HTTP client library would normalize the
//! paths itself (the `url` crate removes dot segments), and these tests are about what a hostile
//! client really sends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the test failing

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use mesh_server::server::ConfigSource;
use mesh_server::{MeshServer, Workload, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

const LIMIT: Duration = Duration::from_secs(10);

const DENY: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-private, namespace: default}
spec:
  selector: {matchLabels: {app: service1}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/private", "/admin/*"]}}]
"#;

const MESH_CONFIG: &str = r#"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    pathNormalization: {normalization: LEVEL}
"#;

struct Server {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// service1 behind the mesh with the DENY policy, answering `path=<what it received>`.
async fn start(level: Option<&str>) -> Server {
    let mut text = DENY.to_owned();
    if let Some(level) = level {
        text.push_str(&MESH_CONFIG.replace("LEVEL", level));
    }
    let loaded =
        mesh_core::load::load_str("policy.yaml", &text).unwrap_or_else(|e| panic!("config: {e}"));
    let mesh = MeshServer::new(
        Workload::new("service1"),
        ConfigSource::fixed(loaded.config),
    );
    let app = Router::new().fallback(|req: Request| async move {
        format!(
            "path={}",
            req.uri().path_and_query().map_or("", |p| p.as_str())
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, mesh.wrap(app), async {
        let _ = stopped.await;
    }));
    Server { addr, _stop: stop }
}

/// Sends `target` as the request-target, byte for byte; the status and body of the answer.
async fn raw_get(addr: SocketAddr, target: &str) -> (u16, String) {
    let exchange = async {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let head = format!("GET {target} HTTP/1.1\r\nhost: service1\r\nconnection: close\r\n\r\n");
        conn.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    };
    let answer = tokio::time::timeout(LIMIT, exchange)
        .await
        .expect("answer in time");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[tokio::test]
async fn every_spelling_of_a_denied_path_is_denied() {
    let server = start(None).await;
    for target in [
        "/private",
        "/./private",
        "/public/../private",
        "/public/%2e%2e/private",
        "/%2e/private",
        "/.%2e/private",
        "/%70rivate",
        "/priv%61te",
        "/./admin/x",
        "/%61dmin/x",
        "/public\\..\\private",
        "http://service1/./private",
        "/admin/./x",
        "/admin/y/../x",
    ] {
        let (status, body) = raw_get(server.addr, target).await;
        assert_eq!(status, 403, "{target} answered {status} {body:?}");
    }
}

#[tokio::test]
async fn the_app_receives_the_normalized_path_and_the_query_untouched() {
    let server = start(None).await;
    for (target, seen) in [
        ("/public/./a/../b?x=%2e%2e", "path=/public/b?x=%2e%2e"),
        ("/%7Euser/%41", "path=/~user/A"),
        ("/a//b", "path=/a//b"),
        ("/group%2Fproject", "path=/group%2Fproject"),
    ] {
        let (status, body) = raw_get(server.addr, target).await;
        assert_eq!((status, body.as_str()), (200, seen), "{target}");
    }
}

#[tokio::test]
async fn paths_that_cannot_be_normalized_are_refused_with_400() {
    let server = start(None).await;
    for target in ["/a%00b", "/a%zz", "/private%", "/%2"] {
        let (status, body) = raw_get(server.addr, target).await;
        assert_eq!(status, 400, "{target}: {body:?}");
        assert!(body.contains("invalid request path"), "{target}: {body:?}");
    }
}

#[tokio::test]
async fn the_level_comes_from_istios_mesh_config() {
    let merge = start(Some("MERGE_SLASHES")).await;
    assert_eq!(
        raw_get(merge.addr, "/a//b").await,
        (200, "path=/a/b".to_owned())
    );
    assert_eq!(raw_get(merge.addr, "//private").await.0, 403);

    let decode = start(Some("DECODE_AND_MERGE_SLASHES")).await;
    assert_eq!(raw_get(decode.addr, "/admin%2Fx").await.0, 403);
    assert_eq!(raw_get(decode.addr, "/public%2F..%2Fprivate").await.0, 403);

    // NONE: the operator chose raw paths; the spelling is then theirs to handle.
    let none = start(Some("NONE")).await;
    assert_eq!(
        raw_get(none.addr, "/./private").await,
        (200, "path=/./private".to_owned())
    );
}
