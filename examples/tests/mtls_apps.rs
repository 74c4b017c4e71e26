//! The example apps with `--certs` (started in-process on real sockets): the listen port follows
//! PeerAuthentication, metrics show `connection_security_policy="mutual_tls"` and both
//! principals, `/config_dump` shows the certificate, and STRICT without certificates fails
//! closed with `/healthz` saying why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;

use mesh_examples::run::{Shutdown, Started};
use mesh_tls::MeshTls;
use mesh_tls::config::{ExpectedServer, UpstreamProtocol};
use mesh_tls::testing::{LeafSpec, TestCa};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use support::{admin_get, get_hello, service_spec};

const SERVICE1: &str = "spiffe://cluster.local/ns/default/sa/service1";
const SERVICE3: &str = "spiffe://cluster.local/ns/default/sa/service3";

const STRICT: &str = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: istio-system }\nspec:\n  mtls: { mode: STRICT }\n";

async fn start(config: &Path, certs: Option<&Path>, shutdown: &Shutdown) -> Started {
    support::start(&service_spec("service3", false, config, certs), shutdown).await
}

/// A GET over `io`: the status, or `None` when the connection is refused or dropped.
async fn get_on<IO>(io: IO) -> Option<u16>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    get_hello(io, "service3").await.map(|(status, _)| status)
}

#[tokio::test]
async fn service_with_certs_serves_mutual_tls_and_reports_principals() {
    let ca = TestCa::new("mesh");
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("pa.yaml"), STRICT).unwrap();
    let certs = tempfile::tempdir().unwrap();
    ca.leaf(&LeafSpec::spiffe(SERVICE3))
        .write_to(certs.path())
        .unwrap();
    let shutdown = Shutdown::new();
    let service3 = start(config.path(), Some(certs.path()), &shutdown).await;

    // Plaintext is refused under STRICT.
    let tcp = TcpStream::connect(service3.addr).await.unwrap();
    assert_eq!(get_on(tcp).await, None);

    // service1's certificate from the same CA.
    let leaf = ca.leaf(&LeafSpec::spiffe(SERVICE1));
    let client = MeshTls::new(leaf.source())
        .client_config(
            ExpectedServer::Identities(vec![SERVICE3.parse().unwrap()]),
            UpstreamProtocol::Http1,
        )
        .unwrap();
    let tcp = TcpStream::connect(service3.addr).await.unwrap();
    let name = ServerName::try_from("service3.default.svc.cluster.local").unwrap();
    let tls = TlsConnector::from(Arc::clone(&client))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(get_on(tls).await, Some(200));

    let (status, metrics) = admin_get(service3.admin, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    let line = metrics
        .lines()
        .find(|l| l.starts_with("istio_requests_total{") && l.contains("response_code=\"200\""))
        .unwrap_or_else(|| panic!("no request series in:\n{metrics}"));
    for want in [
        "connection_security_policy=\"mutual_tls\"",
        "source_principal=\"spiffe://cluster.local/ns/default/sa/service1\"",
        "destination_principal=\"spiffe://cluster.local/ns/default/sa/service3\"",
    ] {
        assert!(line.contains(want), "{want} missing from {line}");
    }

    let (_, dump) = admin_get(service3.admin, "/config_dump").await;
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    assert_eq!(dump["certificates"]["current"]["identity"], SERVICE3);
    let (status, _) = admin_get(service3.admin, "/healthz").await;
    assert!(status.contains("200"), "{status}");
    shutdown.trigger();
}

#[tokio::test]
async fn strict_without_certs_refuses_everything_and_healthz_says_why() {
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("pa.yaml"), STRICT).unwrap();
    let shutdown = Shutdown::new();
    let service3 = start(config.path(), None, &shutdown).await;
    let tcp = TcpStream::connect(service3.addr).await.unwrap();
    assert_eq!(get_on(tcp).await, None);
    let (status, body) = admin_get(service3.admin, "/healthz").await;
    assert!(status.contains("503"), "{status}");
    assert!(
        body.contains("STRICT") && body.contains("no workload certificate"),
        "{body}"
    );
    shutdown.trigger();
}

#[tokio::test]
async fn permissive_by_default_serves_plaintext_with_certs() {
    let ca = TestCa::new("mesh");
    let config = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    ca.leaf(&LeafSpec::spiffe(SERVICE3))
        .write_to(certs.path())
        .unwrap();
    let shutdown = Shutdown::new();
    let service3 = start(config.path(), Some(certs.path()), &shutdown).await;
    let tcp = TcpStream::connect(service3.addr).await.unwrap();
    assert_eq!(get_on(tcp).await, Some(200));
    let (_, metrics) = admin_get(service3.admin, "/metrics").await;
    assert!(
        metrics.contains("connection_security_policy=\"none\""),
        "{metrics}"
    );
    shutdown.trigger();
}
