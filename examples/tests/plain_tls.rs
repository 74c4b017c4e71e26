//! `--plain` (the benchmarks' baselines), on real sockets: without `--certs` the bare app calls
//! its upstream over plaintext, keeping the path and the logical `Host`; with `--certs` it
//! serves mutual TLS (a client without a certificate refused, plaintext still served for the
//! chain's entry) and calls its upstream over mutual TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use mesh_examples::lab::service_entry;
use mesh_examples::run::Shutdown;
use mesh_tls::MeshTls;
use mesh_tls::config::{ExpectedServer, ServerCheck, UpstreamProtocol, external_client_config};
use mesh_tls::testing::{LeafSpec, TestCa};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use support::{get_hello, service_spec};

async fn start(name: &str, config: &Path, certs: &Path, shutdown: &Shutdown) -> SocketAddr {
    support::start(&service_spec(name, true, config, Some(certs)), shutdown)
        .await
        .addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_apps_call_their_upstream_over_plaintext() {
    let shutdown = Shutdown::new();
    let config3 = tempfile::tempdir().unwrap();
    let service3 = support::start(
        &service_spec("service3", true, config3.path(), None),
        &shutdown,
    )
    .await;
    let config2 = tempfile::tempdir().unwrap();
    std::fs::write(
        config2.path().join("registry.yaml"),
        service_entry("service3", &[(service3.addr, "v1")]),
    )
    .unwrap();
    let service2 = support::start(
        &service_spec("service2", true, config2.path(), None),
        &shutdown,
    )
    .await;
    let tcp = TcpStream::connect(service2.addr).await.unwrap();
    let (status, body) = get_on(tcp).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"service\":\"service3\""), "{body}");
    shutdown.trigger();
}

async fn get_on<IO>(io: IO) -> Option<(u16, String)>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    get_hello(io, "service").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_apps_with_certs_speak_mutual_tls() {
    let ca = TestCa::new("plain");
    let dir = tempfile::tempdir().unwrap();
    let cert_dir = |app: &str| {
        let d = dir.path().join(app);
        std::fs::create_dir_all(&d).unwrap();
        ca.leaf(&LeafSpec::spiffe(&format!(
            "spiffe://cluster.local/ns/default/sa/{app}"
        )))
        .write_to(&d)
        .unwrap();
        d
    };
    let shutdown = Shutdown::new();
    let config3 = tempfile::tempdir().unwrap();
    let service3 = start("service3", config3.path(), &cert_dir("service3"), &shutdown).await;
    let config2 = tempfile::tempdir().unwrap();
    std::fs::write(
        config2.path().join("registry.yaml"),
        service_entry("service3", &[(service3, "v1")]),
    )
    .unwrap();
    let service2 = start("service2", config2.path(), &cert_dir("service2"), &shutdown).await;

    // service2 → service3 over mutual TLS (service3 refuses TLS clients without a certificate,
    // so the chain answering proves service2 presented one).
    let tcp = TcpStream::connect(service2).await.unwrap();
    let (status, body) = get_on(tcp).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"service\":\"service3\""), "{body}");

    // A TLS client with a mesh certificate is served; one without is refused.
    let leaf = ca.leaf(&LeafSpec::spiffe(
        "spiffe://cluster.local/ns/default/sa/client",
    ));
    let with_cert = MeshTls::new(leaf.source())
        .client_config(ExpectedServer::AnyInMesh, UpstreamProtocol::Http1)
        .unwrap();
    let name = ServerName::try_from("service3").unwrap();
    let tcp = TcpStream::connect(service3).await.unwrap();
    let tls = TlsConnector::from(Arc::clone(&with_cert))
        .connect(name.clone(), tcp)
        .await
        .unwrap();
    assert_eq!(get_on(tls).await.map(|(s, _)| s), Some(200));
    // No certificate (and no check of the server's, so only the server can refuse).
    let without =
        external_client_config(&[], None, UpstreamProtocol::Http1, &ServerCheck::SkipVerify)
            .unwrap();
    let tcp = TcpStream::connect(service3).await.unwrap();
    let refused = match TlsConnector::from(without).connect(name, tcp).await {
        Err(_) => true,
        Ok(tls) => get_on(tls).await.is_none(),
    };
    assert!(refused, "a TLS client without a certificate was served");
    shutdown.trigger();
}
