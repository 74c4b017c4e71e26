//! What the example apps' integration tests share: a service started in-process on loopback, a
//! GET over any stream (plaintext or TLS), and a raw HTTP/1.0 exchange for admin pages and
//! redirects. Each test file uses part of it.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use mesh_examples::app::Faults;
use mesh_examples::mesh::Identity;
use mesh_examples::run::{ServiceSpec, Shutdown, Started, start_service};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The spec of service `name` (version v1, no faults) in namespace `default`, with its config
/// folder and, when given, its certificate folder.
pub(crate) fn service_spec(
    name: &str,
    plain: bool,
    config: &Path,
    certs: Option<&Path>,
) -> ServiceSpec {
    ServiceSpec {
        name: name.into(),
        version: "v1".into(),
        faults: Faults::default(),
        plain,
        config: config.to_owned(),
        identity: Identity {
            certs: certs.map(Path::to_owned),
            namespace: "default".into(),
        },
    }
}

/// Starts `spec` on a free loopback port, with its admin server on another.
pub(crate) async fn start(spec: &ServiceSpec, shutdown: &Shutdown) -> Started {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_service(spec, listener, admin, shutdown).unwrap()
}

/// `GET /hello` with `host` over `io` (HTTP/1.1): the status and the body, or `None` when the
/// connection is refused or dropped.
pub(crate) async fn get_hello<IO>(io: IO, host: &str) -> Option<(u16, String)>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .ok()?;
    tokio::spawn(conn);
    let request = http::Request::get("/hello")
        .header("host", host)
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// `GET path` as HTTP/1.0 with `host` on a plain connection to `addr`: the whole answer as
/// written on the wire (status line, headers, body), read until the server closes.
pub(crate) async fn http10(addr: SocketAddr, path: &str, host: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nhost: {host}\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await.unwrap();
    raw
}

/// An admin page over HTTP/1.0: the status line and the body.
pub(crate) async fn admin_get(addr: SocketAddr, path: &str) -> (String, String) {
    let raw = http10(addr, path, "admin").await;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}
