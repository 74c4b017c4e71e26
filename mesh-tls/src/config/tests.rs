#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, HandshakeKind, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;
use crate::testing::{Leaf, LeafSpec, TestCa};

use self::raw::{raw_client, raw_server};

const SERVICE1: &str = "spiffe://cluster.local/ns/default/sa/service1";
const SERVICE2: &str = "spiffe://cluster.local/ns/default/sa/service2";

fn mesh(ca: &TestCa, id: &str) -> MeshTls {
    MeshTls::new(ca.leaf(&LeafSpec::spiffe(id)).source())
}

fn id(text: &str) -> SpiffeId {
    text.parse().unwrap()
}

fn expect(ids: &[&str]) -> ExpectedServer {
    ExpectedServer::Identities(ids.iter().map(|i| id(i)).collect())
}

/// What one server-side connection ended with.
type Accepted = Result<TlsInfo, String>;

/// A TLS echo server on 127.0.0.1:0: every connection says "hello", then echoes.
async fn serve(
    config: Arc<ServerConfig>,
) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Accepted>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(err) => return drop(tx.send(Err(err.to_string()))),
                };
                let _ = tx.send(Ok(TlsInfo::from_server(tls.get_ref().1)));
                if tls.write_all(b"hello").await.is_err() {
                    return;
                }
                let mut buf = [0u8; 64];
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 || tls.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// Connects, completes the handshake and reads the greeting (which is where a client learns
/// that the server refused its certificate under TLS 1.3).
async fn call(
    addr: std::net::SocketAddr,
    config: Arc<ClientConfig>,
    name: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let mut greeting = [0u8; 5];
    tls.read_exact(&mut greeting)
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(&greeting, b"hello");
    Ok(tls)
}

fn serial_of(tls: &tokio_rustls::client::TlsStream<TcpStream>) -> String {
    let leaf = &tls.get_ref().1.peer_certificates().unwrap()[0];
    crate::credentials::serial_of(leaf).unwrap()
}

#[tokio::test]
async fn mutual_tls_extracts_both_identities() {
    let ca = TestCa::new("mesh");
    let server = mesh(&ca, SERVICE2)
        .server_config(ClientAuth::Required)
        .unwrap();
    let client = mesh(&ca, SERVICE1)
        .client_config(expect(&[SERVICE2]), UpstreamProtocol::Http2)
        .unwrap();
    let (addr, mut accepted) = serve(server).await;
    let tls = call(addr, client, "service2.default.svc.cluster.local")
        .await
        .unwrap();
    let server_side = accepted.recv().await.unwrap().unwrap();
    assert_eq!(server_side.peer, Some(id(SERVICE1)));
    assert_eq!(server_side.alpn.as_deref(), Some(alpn::H2));
    assert_eq!(
        server_side.server_name.as_deref(),
        Some("service2.default.svc.cluster.local")
    );
    let client_side = TlsInfo::from_client(tls.get_ref().1);
    assert_eq!(client_side.peer, Some(id(SERVICE2)));
    assert_eq!(
        alpn::negotiated_http(client_side.alpn.as_deref()),
        Some(UpstreamProtocol::Http2)
    );
}

#[tokio::test]
async fn permissive_tls_admits_a_client_without_a_certificate() {
    let ca = TestCa::new("mesh");
    let server = mesh(&ca, SERVICE2)
        .server_config(ClientAuth::Optional)
        .unwrap();
    let (addr, mut accepted) = serve(server).await;
    call(addr, raw_client(None), "service2").await.unwrap();
    assert_eq!(accepted.recv().await.unwrap().unwrap().peer, None);
    // A certificate that is sent is still checked.
    let foreign = ca.leaf(&LeafSpec::spiffe(
        "spiffe://foreign.td/ns/default/sa/service1",
    ));
    assert!(
        call(addr, raw_client(Some(&foreign)), "service2")
            .await
            .is_err()
    );
    assert!(accepted.recv().await.unwrap().is_err());
}

#[tokio::test]
async fn trust_domain_aliases_are_accepted() {
    let ca = TestCa::new("mesh");
    let alias = TrustDomain::new("old.td").unwrap();
    let server = mesh(&ca, SERVICE2)
        .with_trust_domain_aliases([alias])
        .server_config(ClientAuth::Required)
        .unwrap();
    let (addr, mut accepted) = serve(server).await;
    let old = ca.leaf(&LeafSpec::spiffe("spiffe://old.td/ns/default/sa/service1"));
    call(addr, raw_client(Some(&old)), "service2")
        .await
        .unwrap();
    let peer = accepted.recv().await.unwrap().unwrap().peer.unwrap();
    assert_eq!(peer.trust_domain().as_str(), "old.td");
}

#[tokio::test]
async fn rotation_applies_to_new_handshakes_only() {
    let ca = TestCa::new("mesh");
    let server_source = ca.leaf(&LeafSpec::spiffe(SERVICE2).serial(1)).source();
    let server = MeshTls::new(server_source.clone())
        .server_config(ClientAuth::Required)
        .unwrap();
    let client = mesh(&ca, SERVICE1)
        .client_config(expect(&[SERVICE2]), UpstreamProtocol::Http1)
        .unwrap();
    let (addr, _accepted) = serve(server).await;

    let mut first = call(addr, Arc::clone(&client), "service2").await.unwrap();
    assert_eq!(serial_of(&first), "1");
    // Before the rotation a new connection resumes the session...
    let resumed = call(addr, Arc::clone(&client), "service2").await.unwrap();
    assert_eq!(
        resumed.get_ref().1.handshake_kind(),
        Some(HandshakeKind::Resumed)
    );
    let next = ca.leaf(&LeafSpec::spiffe(SERVICE2).serial(2));
    server_source.publish(next.credentials());
    // ...after it, a new connection makes a full handshake with the new certificate.
    let second = call(addr, client, "service2").await.unwrap();
    assert_eq!(
        second.get_ref().1.handshake_kind(),
        Some(HandshakeKind::Full)
    );
    assert_eq!(serial_of(&second), "2");
    // The connection made before the rotation still works.
    first.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    first.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");
}

#[tokio::test]
async fn simple_tls_verifies_the_dns_name() {
    let ca = TestCa::new("external");
    let mut spec = LeafSpec::spiffe(SERVICE2);
    spec.uris.clear();
    spec.dns.push("api.example.com".to_owned());
    let leaf = ca.leaf(&spec);
    let (addr, _accepted) = serve(raw_server(&leaf)).await;
    let roots = vec![CertificateDer::from_pem_slice(leaf.root_pem.as_bytes()).unwrap()];
    let config = simple_client_config(&roots, None, UpstreamProtocol::Auto).unwrap();
    call(addr, Arc::clone(&config), "api.example.com")
        .await
        .unwrap();
    let err = call(addr, config, "other.example.com").await.unwrap_err();
    assert!(
        err.contains("NotValidForName") || err.contains("not valid for name"),
        "{err}"
    );
    let other_roots =
        vec![CertificateDer::from_pem_slice(TestCa::new("x").root_pem().as_bytes()).unwrap()];
    let config = simple_client_config(&other_roots, None, UpstreamProtocol::Auto).unwrap();
    assert!(call(addr, config, "api.example.com").await.is_err());
}

#[tokio::test]
async fn no_credentials_fail_closed() {
    let server = MeshTls::new(CertSource::empty())
        .server_config(ClientAuth::Optional)
        .unwrap();
    let (addr, mut accepted) = serve(server).await;
    assert!(call(addr, raw_client(None), "service2").await.is_err());
    assert!(accepted.recv().await.unwrap().is_err());
}

#[test]
fn alpn_lists_follow_istio() {
    let server = alpn::server_protocols();
    assert_eq!(server[..2], [b"h2".to_vec(), b"http/1.1".to_vec()]);
    for istio in [
        alpn::ISTIO,
        alpn::ISTIO_PEER_EXCHANGE,
        alpn::ISTIO_H2,
        alpn::ISTIO_HTTP_1_1,
    ] {
        assert!(server.contains(&istio.to_vec()));
    }
    assert_eq!(
        alpn::mesh_client_protocols(UpstreamProtocol::Http2),
        [b"istio-h2".to_vec(), b"istio".to_vec(), b"h2".to_vec()]
    );
    assert_eq!(
        alpn::negotiated_http(Some(b"istio-http/1.1")),
        Some(UpstreamProtocol::Http1)
    );
    assert_eq!(alpn::negotiated_http(Some(b"istio")), None);
}

#[tokio::test]
async fn a_client_rotation_forgets_its_resumed_sessions() {
    let ca = TestCa::new("mesh");
    let server = mesh(&ca, SERVICE2)
        .server_config(ClientAuth::Required)
        .unwrap();
    let (addr, _accepted) = serve(server).await;
    let client_source = ca.leaf(&LeafSpec::spiffe(SERVICE1).serial(1)).source();
    let client = MeshTls::new(client_source.clone())
        .client_config(expect(&[SERVICE2]), UpstreamProtocol::Http2)
        .unwrap();
    call(addr, Arc::clone(&client), "service2").await.unwrap();
    let resumed = call(addr, Arc::clone(&client), "service2").await.unwrap();
    assert_eq!(
        resumed.get_ref().1.handshake_kind(),
        Some(HandshakeKind::Resumed)
    );

    let next = ca.leaf(&LeafSpec::spiffe(SERVICE1).serial(2));
    client_source.publish(next.credentials());
    let fresh = call(addr, client, "service2").await.unwrap();
    assert_eq!(
        fresh.get_ref().1.handshake_kind(),
        Some(HandshakeKind::Full)
    );
}

#[test]
fn subject_alt_names_match_as_envoy_matches_them() {
    use super::external::matches;
    use crate::credentials::x509::San;
    let dns = |s: &str| San::Dns(s.to_owned());
    assert!(matches(&dns("db.internal"), "DB.internal"));
    assert!(!matches(&dns("db.internal"), "db.internal.evil"));
    assert!(matches(&dns("*.example.com"), "api.example.com"));
    assert!(!matches(&dns("*.example.com"), "a.b.example.com"));
    assert!(!matches(&dns("*.example.com"), "example.com"));
    assert!(matches(
        &San::Uri("spiffe://cluster.local/ns/a/sa/b".to_owned()),
        "spiffe://cluster.local/ns/a/sa/b"
    ));
    assert!(matches(&San::Ip([10, 0, 0, 1].into()), "10.0.0.1"));
    assert!(!matches(&San::Ip([10, 0, 0, 1].into()), "10.0.0.2"));
}

mod raw;
mod refusals;
