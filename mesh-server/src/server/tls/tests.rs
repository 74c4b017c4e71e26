//! Mutual TLS on a real listen port: STRICT, PERMISSIVE, `principals` rules, trust domain
//! aliasing and failing closed, with the testing CA.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use mesh_core::policy::{MeshConfig, PeerMtls};
use mesh_tls::config::{ExpectedServer, UpstreamProtocol};
use mesh_tls::testing::{LeafSpec, TestCa};
use mesh_tls::{CertSource, MeshTls};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use super::InboundTls;
use crate::context::PeerIdentity;
use crate::{MeshServer, Workload};

const SERVICE1: &str = "spiffe://cluster.local/ns/default/sa/service1";
const SERVICE2: &str = "spiffe://cluster.local/ns/default/sa/service2";
const SERVICE3: &str = "spiffe://cluster.local/ns/default/sa/service3";

fn mesh(ca: &TestCa, id: &str) -> MeshTls {
    let leaf = ca.leaf(&LeafSpec::spiffe(id));
    let credentials = leaf.credentials();
    MeshTls::new(CertSource::new(credentials))
}

fn config(yaml: &str) -> MeshConfig {
    mesh_core::load::load_str("test.yaml", yaml).unwrap().config
}

const STRICT: &str = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: istio-system }\nspec:\n  mtls: { mode: STRICT }\n";

const ONLY_SERVICE1: &str = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: only-service1, namespace: default }\nspec:\n  selector: { matchLabels: { app: service2 } }\n  action: ALLOW\n  rules:\n  - from:\n    - source: { principals: [cluster.local/ns/default/sa/service1] }\n";

/// service2 on 127.0.0.1:0 under `config`, answering with the caller's principal.
async fn service2(tls: MeshTls, config: MeshConfig) -> (SocketAddr, InboundTls) {
    let workload = Workload::new("service2");
    let source = mesh_core::watch::ConfigSource::fixed(config);
    let inbound = InboundTls::new(&tls, &workload, source.clone()).unwrap();
    let app = Router::new().route(
        "/",
        get(|peer: Option<axum::Extension<PeerIdentity>>| async move {
            peer.map_or("none".to_owned(), |p| p.0.0.clone())
        }),
    );
    let server = MeshServer::new(workload, source);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = inbound.clone();
    tokio::spawn(async move {
        super::super::serve_tls(listener, server.wrap(app), serving, std::future::pending()).await
    });
    (addr, inbound)
}

fn client(ca: &TestCa, id: &str) -> Arc<ClientConfig> {
    let expected = ExpectedServer::Identities(vec![SERVICE2.parse().unwrap()]);
    mesh(ca, id)
        .client_config(expected, UpstreamProtocol::Http1)
        .unwrap()
}

/// One GET over `io`: the status and the body, or the error that ended the connection.
async fn get_on<IO>(io: IO) -> Result<(u16, String), hyper::Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(conn);
    let request = Request::get("/")
        .header("host", "service2")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn plain(addr: SocketAddr) -> Result<(u16, String), hyper::Error> {
    get_on(TcpStream::connect(addr).await.unwrap()).await
}

/// Over TLS with `config`; `None` when the handshake fails.
async fn over_tls(addr: SocketAddr, config: Arc<ClientConfig>) -> Option<(u16, String)> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("service2.default.svc.cluster.local").unwrap();
    let tls = TlsConnector::from(config).connect(name, tcp).await.ok()?;
    get_on(tls).await.ok()
}

#[tokio::test]
async fn strict_refuses_plaintext_and_clients_without_certificates() {
    let ca = TestCa::new("mesh");
    let (addr, inbound) = service2(mesh(&ca, SERVICE2), config(STRICT)).await;
    assert_eq!(inbound.mode(addr.port()), PeerMtls::Strict);

    assert!(
        plain(addr).await.is_err(),
        "plaintext is refused under STRICT"
    );

    // TLS without a client certificate: the server's identity checks out, ours is missing.
    let roots = mesh(&ca, SERVICE1)
        .source()
        .current()
        .unwrap()
        .roots()
        .clone();
    let anonymous = ClientConfig::builder_with_provider(mesh_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert_eq!(over_tls(addr, Arc::new(anonymous)).await, None);

    let principal = SERVICE1.trim_start_matches("spiffe://").to_owned();
    assert_eq!(
        over_tls(addr, client(&ca, SERVICE1)).await,
        Some((200, principal))
    );
    assert_eq!(inbound.unready_reason(addr.port()), None);
}

#[tokio::test]
async fn permissive_serves_both_and_principals_rules_see_the_certificate() {
    let ca = TestCa::new("mesh");
    let (addr, inbound) = service2(mesh(&ca, SERVICE2), config(ONLY_SERVICE1)).await;
    assert_eq!(
        inbound.mode(addr.port()),
        PeerMtls::Permissive,
        "Istio's default"
    );

    let principal = SERVICE1.trim_start_matches("spiffe://").to_owned();
    assert_eq!(
        over_tls(addr, client(&ca, SERVICE1)).await,
        Some((200, principal))
    );
    // Plaintext is served, but has no principal: the ALLOW rule does not match.
    assert_eq!(plain(addr).await.unwrap().0, 403);
    // The wrong service account.
    assert_eq!(over_tls(addr, client(&ca, SERVICE3)).await.unwrap().0, 403);
}

#[tokio::test]
async fn permissive_without_policies_serves_plaintext() {
    let ca = TestCa::new("mesh");
    let (addr, _) = service2(mesh(&ca, SERVICE2), MeshConfig::default()).await;
    assert_eq!(plain(addr).await.unwrap(), (200, "none".to_owned()));
}

#[tokio::test]
async fn cluster_local_in_a_policy_means_the_local_trust_domain() {
    let ca = TestCa::new("mesh");
    let own = |sa: &str| format!("spiffe://example.org/ns/default/sa/{sa}");
    let (addr, _) = service2(mesh(&ca, &own("service2")), config(ONLY_SERVICE1)).await;
    let expected = ExpectedServer::Identities(vec![own("service2").parse().unwrap()]);
    let caller = mesh(&ca, &own("service1"))
        .client_config(expected.clone(), UpstreamProtocol::Http1)
        .unwrap();
    assert_eq!(
        over_tls(addr, caller).await,
        Some((200, "example.org/ns/default/sa/service1".to_owned()))
    );
    let other = mesh(&ca, &own("service3"))
        .client_config(expected, UpstreamProtocol::Http1)
        .unwrap();
    assert_eq!(over_tls(addr, other).await.unwrap().0, 403);
}

#[tokio::test]
async fn strict_without_certificates_fails_closed_and_says_why() {
    let tls = MeshTls::new(CertSource::empty());
    let (addr, inbound) = service2(tls, config(STRICT)).await;
    assert!(plain(addr).await.is_err());
    let why = inbound.unready_reason(addr.port()).unwrap();
    assert!(
        why.contains("STRICT") && why.contains("no workload certificate"),
        "{why}"
    );
}

#[tokio::test]
async fn port_level_disable_serves_plaintext_on_that_port_only() {
    let ca = TestCa::new("mesh");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let yaml = format!(
        "{STRICT}---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{ name: service2, namespace: default }}\nspec:\n  selector: {{ matchLabels: {{ app: service2 }} }}\n  portLevelMtls:\n    {port}: {{ mode: DISABLE }}\n"
    );
    let workload = Workload::new("service2");
    let inbound = InboundTls::new(&mesh(&ca, SERVICE2), &workload, config(&yaml)).unwrap();
    assert_eq!(inbound.mode(port), PeerMtls::Disable);
    assert_eq!(inbound.mode(port.wrapping_add(1)), PeerMtls::Strict);
}
