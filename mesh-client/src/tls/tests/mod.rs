//! Outbound TLS on real sockets, against mesh-tls's acceptor and gateway servers, with
//! certificates from mesh-tls's testing CA.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use mesh_core::classify::Outcome;
use mesh_core::policy::MeshConfig;
use mesh_core::registry::Registry;
use mesh_tls::gateway::{GatewayServer, GatewayTls, MinVersion};
use mesh_tls::testing::{LeafSpec, TestCa};
use mesh_tls::{Acceptor, CertSource, Credentials, MeshTls, Mode};
use tokio::net::TcpListener;

use crate::BoxError;
use crate::body::{self, BoxBody};
use crate::cluster::Clusters;
use crate::context::Upstream;
use crate::error::outcome_of;

const SERVICE1: &str = "spiffe://cluster.local/ns/default/sa/service1";
const SERVICE2: &str = "spiffe://cluster.local/ns/default/sa/service2";

fn creds(ca: &TestCa, spec: &LeafSpec) -> Credentials {
    ca.leaf(spec).credentials()
}

fn mesh(ca: &TestCa, id: &str) -> MeshTls {
    MeshTls::new(CertSource::new(creds(ca, &LeafSpec::spiffe(id))))
}

/// A server on 127.0.0.1:0 answering "<tls|plain> <caller principal|none>"; counts connections.
struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

async fn serve_mesh(tls: &MeshTls, mode: Mode) -> Server {
    let acceptor = Acceptor::new(tls).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(accepted) = acceptor.accept(tcp, mode).await else {
                    return;
                };
                let text = match accepted.into_stream() {
                    (io, Some(info)) => {
                        let peer = info.peer.map_or("none".to_owned(), |p| p.principal());
                        serve_io(io, format!("tls {peer}")).await;
                        return;
                    }
                    (io, None) => (io, "plain none".to_owned()),
                };
                serve_io(text.0, text.1).await;
            });
        }
    });
    Server { addr, connections }
}

async fn serve_io<I>(io: I, text: String)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |_req: http::Request<Incoming>| {
        let text = text.clone();
        async move { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(text)))) }
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// A TLS server for any SNI whose certificate (from `ca`) names only `dns`; with `client_ca`,
/// MUTUAL (clients must present a certificate from it).
async fn serve_external(ca: &TestCa, dns: &[&str], client_ca: Option<&TestCa>) -> SocketAddr {
    let mut spec = LeafSpec::spiffe(SERVICE2);
    spec.uris.clear();
    spec.dns = dns.iter().map(|n| (*n).to_owned()).collect();
    let leaf = ca.leaf(&spec);
    let hosts = vec!["*".to_owned()];
    let (chain, key) = (leaf.chain_pem.as_bytes(), leaf.key_pem.as_bytes());
    let server = match client_ca {
        None => GatewayServer::simple(&hosts, chain, key, MinVersion::Tls12),
        Some(client_ca) => GatewayServer::mutual(
            &hosts,
            chain,
            key,
            client_ca.root_pem().as_bytes(),
            MinVersion::Tls12,
        ),
    }
    .unwrap();
    let gateway = Arc::new(GatewayTls::new(vec![server]));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let gateway = Arc::clone(&gateway);
            tokio::spawn(async move {
                if let Ok((stream, _, _)) = gateway.accept(tcp).await {
                    serve_io(stream, "external".to_owned()).await;
                }
            });
        }
    });
    addr
}

/// A DestinationRule for service2 whose `trafficPolicy` is `policy` (YAML indented by four).
fn rule(policy: &str) -> String {
    format!(
        "---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: service2, namespace: default}}
spec:
  host: service2
  trafficPolicy:
{policy}
"
    )
}

/// service2 on `addr`, in-mesh, its endpoint labelled for auto-mTLS when `labelled`, plus
/// `extra` manifests.
fn config(addr: SocketAddr, labelled: bool, extra: &str) -> Arc<MeshConfig> {
    let labels = if labelled {
        "labels: {security.istio.io/tlsMode: istio}"
    } else {
        "labels: {}"
    };
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: service2, namespace: default}}
spec:
  hosts: [service2]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
  - address: {ip}
    ports: {{http: {port}}}
    {labels}
    serviceAccount: service2
{extra}",
        ip = addr.ip(),
        port = addr.port()
    );
    Arc::new(
        mesh_core::load::load_str("test.yaml", &yaml)
            .unwrap()
            .config,
    )
}

fn clusters(config: Arc<MeshConfig>, tls: Option<MeshTls>) -> Clusters {
    let registry = Arc::new(Registry::from_config(&config));
    let clusters = Clusters::new(move || Arc::clone(&config), registry);
    match tls {
        Some(tls) => clusters.with_tls(tls),
        None => clusters,
    }
}

async fn get(clusters: &Clusters) -> Result<http::Response<BoxBody>, BoxError> {
    let req = http::Request::get("http://service2:80/")
        .body(body::empty())
        .unwrap();
    clusters.send(req).await
}

async fn text(resp: http::Response<BoxBody>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The request fails as a TLS connect failure, and the local reply says so.
async fn refused(clusters: &Clusters) -> String {
    let err = get(clusters).await.unwrap_err();
    assert_eq!(outcome_of(&err), Outcome::ConnectFailure, "{err}");
    let reply = crate::rescue::rescue(err.as_ref());
    assert_eq!(reply.status(), 503);
    let flags = reply
        .extensions()
        .get::<mesh_telemetry::ResponseFlags>()
        .map(|f| f.to_label());
    assert_eq!(flags.as_deref(), Some("UF"));
    let body = text(reply).await;
    assert!(body.contains("TLS error"), "{body}");
    body
}

#[tokio::test]
async fn auto_mtls_follows_the_endpoint_label() {
    let ca = TestCa::new("mesh");
    let server = serve_mesh(&mesh(&ca, SERVICE2), Mode::Permissive).await;

    let labelled = clusters(config(server.addr, true, ""), Some(mesh(&ca, SERVICE1)));
    let resp = get(&labelled).await.unwrap();
    let security = resp
        .extensions()
        .get::<Upstream>()
        .and_then(|u| u.security.clone())
        .expect("a TLS connection");
    assert_eq!(security.peer.as_deref(), Some(SERVICE2));
    assert_eq!(security.local.as_deref(), Some(SERVICE1));
    assert!(security.is_mutual());
    assert_eq!(text(resp).await, "tls cluster.local/ns/default/sa/service1");

    let unlabelled = clusters(config(server.addr, false, ""), Some(mesh(&ca, SERVICE1)));
    let resp = get(&unlabelled).await.unwrap();
    assert!(
        resp.extensions()
            .get::<Upstream>()
            .unwrap()
            .security
            .is_none()
    );
    assert_eq!(text(resp).await, "plain none");

    // A workload without mesh TLS settings calls in plaintext, as one without a sidecar does.
    let no_certs = clusters(config(server.addr, true, ""), None);
    assert_eq!(text(get(&no_certs).await.unwrap()).await, "plain none");
}

#[tokio::test]
async fn destination_rule_disable_overrides_auto_mtls() {
    let ca = TestCa::new("mesh");
    let server = serve_mesh(&mesh(&ca, SERVICE2), Mode::Permissive).await;
    let dr = rule("    tls: {mode: DISABLE}");
    let c = clusters(config(server.addr, true, &dr), Some(mesh(&ca, SERVICE1)));
    assert_eq!(text(get(&c).await.unwrap()).await, "plain none");

    // Port level ISTIO_MUTUAL over a rule-level DISABLE, on an unlabelled endpoint.
    let dr = rule(
        "    tls: {mode: DISABLE}
    portLevelSettings:
    - port: {number: 80}
      tls: {mode: ISTIO_MUTUAL}",
    );
    let c = clusters(config(server.addr, false, &dr), Some(mesh(&ca, SERVICE1)));
    assert_eq!(
        text(get(&c).await.unwrap()).await,
        "tls cluster.local/ns/default/sa/service1"
    );
}

#[tokio::test]
async fn wrong_identity_foreign_trust_domain_and_expired_are_refused() {
    let ca = TestCa::new("mesh");
    let client = || Some(mesh(&ca, SERVICE1));

    // The endpoint's service account is service2; the server proves service3.
    let server = serve_mesh(
        &mesh(&ca, "spiffe://cluster.local/ns/default/sa/service3"),
        Mode::Strict,
    )
    .await;
    let body = refused(&clusters(config(server.addr, true, ""), client())).await;
    assert!(body.contains("sa/service3"), "{body}");

    // The same service account under a trust domain that is neither ours nor an alias.
    let server = serve_mesh(
        &mesh(&ca, "spiffe://other.example/ns/default/sa/service2"),
        Mode::Strict,
    )
    .await;
    refused(&clusters(config(server.addr, true, ""), client())).await;

    // An expired server certificate (served by plain rustls: mesh-tls refuses to load one).
    let leaf = ca.leaf(&LeafSpec::spiffe(SERVICE2).validity((2020, 1, 1), (2021, 1, 1)));
    let addr = serve_raw(&leaf.chain_pem, &leaf.key_pem).await;
    let body = refused(&clusters(config(addr, true, ""), client())).await;
    assert!(body.contains("expired"), "{body}");

    // Another CA altogether.
    let other = TestCa::new("other");
    let server = serve_mesh(&mesh(&other, SERVICE2), Mode::Strict).await;
    refused(&clusters(config(server.addr, true, ""), client())).await;

    // subjectAltNames narrow what the server may prove.
    let server = serve_mesh(&mesh(&ca, SERVICE2), Mode::Strict).await;
    let dr = rule(
        "    tls:
      mode: ISTIO_MUTUAL
      subjectAltNames: [spiffe://cluster.local/ns/default/sa/reviews]",
    );
    refused(&clusters(config(server.addr, false, &dr), client())).await;
}

/// A TLS server with a fixed certificate, no client authentication.
async fn serve_raw(chain_pem: &str, key_pem: &str) -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(mesh_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(stream) = acceptor.accept(tcp).await {
                    serve_io(stream, "raw".to_owned()).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_client_the_server_refuses_is_a_tls_connect_failure() {
    let ca = TestCa::new("mesh");
    let server = serve_mesh(&mesh(&ca, SERVICE2), Mode::Strict).await;
    // Our certificate from another CA, whose root we trust along with the server's: only the
    // server's check fails, after our side of the handshake is done (TLS 1.3).
    let other = TestCa::new("other");
    let leaf = other.leaf(&LeafSpec::spiffe(SERVICE1));
    let roots = format!("{}{}", leaf.root_pem, ca.root_pem());
    let ours = MeshTls::new(CertSource::new(
        Credentials::from_pem(
            leaf.chain_pem.as_bytes(),
            leaf.key_pem.as_bytes(),
            roots.as_bytes(),
        )
        .unwrap(),
    ));
    refused(&clusters(config(server.addr, true, ""), Some(ours))).await;
}

#[tokio::test]
async fn istio_mutual_without_a_certificate_fails_with_a_tls_error() {
    let ca = TestCa::new("mesh");
    let server = serve_mesh(&mesh(&ca, SERVICE2), Mode::Permissive).await;
    let dr = rule("    tls: {mode: ISTIO_MUTUAL}");
    let body = refused(&clusters(config(server.addr, false, &dr), None)).await;
    assert!(body.contains("--certs"), "{body}");
}

#[tokio::test]
async fn simple_tls_to_a_server_outside_the_mesh() {
    let ca = TestCa::new("public");
    let addr = serve_external(&ca, &["api.example.com"], None).await;
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("ca.pem");
    std::fs::write(&roots, ca.root_pem()).unwrap();
    let dr = |sni: &str| {
        rule(&format!(
            "    tls: {{mode: SIMPLE, sni: {sni}, caCertificates: {}}}",
            roots.display()
        ))
    };
    let c = clusters(config(addr, false, &dr("api.example.com")), None);
    let resp = get(&c).await.unwrap();
    let security = resp
        .extensions()
        .get::<Upstream>()
        .unwrap()
        .security
        .clone();
    assert!(security.is_some_and(|s| !s.is_mutual()));
    assert_eq!(text(resp).await, "external");

    // The certificate does not name the server name sent: refused.
    let c = clusters(config(addr, false, &dr("other.example.com")), None);
    refused(&c).await;
}

#[tokio::test]
async fn tls_connections_are_pooled() {
    let ca = TestCa::new("mesh");
    let server = serve_mesh(&mesh(&ca, SERVICE2), Mode::Strict).await;
    let c = clusters(config(server.addr, true, ""), Some(mesh(&ca, SERVICE1)));
    for _ in 0..20 {
        let resp = get(&c).await.unwrap();
        assert_eq!(resp.status(), 200);
        text(resp).await;
    }
    assert_eq!(c.tls_stats().handshakes(), 1);
    assert_eq!(c.tls_stats().failures(), 0);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn failed_handshakes_count_as_connect_failures_for_outlier_detection() {
    let ca = TestCa::new("mesh");
    // The endpoint should be service2 but proves service3: every handshake fails.
    let server = serve_mesh(
        &mesh(&ca, "spiffe://cluster.local/ns/default/sa/service3"),
        Mode::Strict,
    )
    .await;
    let dr = rule(
        "    outlierDetection:
      consecutiveGatewayErrors: 2
      interval: 10s
      baseEjectionTime: 30s
      maxEjectionPercent: 100",
    );
    let c = clusters(config(server.addr, true, &dr), Some(mesh(&ca, SERVICE1)));
    let dest = mesh_core::policy::Destination {
        host: "service2".to_owned(),
        subset: None,
        port: Some(80),
    };
    let outlier = |c: &Clusters| c.cluster(&dest).unwrap().outlier().unwrap().ejected_count();
    refused(&c).await;
    assert_eq!(outlier(&c), 0);
    refused(&c).await;
    assert_eq!(
        outlier(&c),
        1,
        "two TLS failures in a row eject the endpoint"
    );
    assert_eq!(c.tls_stats().failures(), 2);
}

mod external;
