//! The chain service1 → service2 → service3 with `--certs` under a mesh-wide STRICT
//! PeerAuthentication (the apps started in-process on real sockets): every hop is mutual TLS by
//! auto-mTLS, both reporters show `mutual_tls` and the principals, the certificate's expiry is
//! a metric, and replacing service3's files during traffic fails no request while new
//! handshakes present the new serial.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use mesh_examples::run::{Shutdown, Started, start_service};
use mesh_tls::MeshTls;
use mesh_tls::config::{ExpectedServer, UpstreamProtocol};
use mesh_tls::testing::{LeafSpec, TestCa};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use support::{http10, service_spec};

const TD: &str = "spiffe://cluster.local/ns/default/sa";

struct Chain {
    _config: tempfile::TempDir,
    certs: Vec<tempfile::TempDir>,
    apps: Vec<Started>,
    shutdown: Shutdown,
    client: Arc<tokio_rustls::rustls::ClientConfig>,
}

fn registry(addrs: &[SocketAddr]) -> String {
    let mut yaml = String::from(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: STRICT}\n",
    );
    for (i, addr) in addrs.iter().enumerate() {
        let name = format!("service{}", i + 1);
        yaml.push_str(&format!(
            "---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [{name}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
  - address: {ip}
    ports: {{http: {port}}}
    labels: {{app: {name}, version: v1, security.istio.io/tlsMode: istio}}
    serviceAccount: {name}
",
            ip = addr.ip(),
            port = addr.port()
        ));
    }
    yaml
}

async fn start_chain(ca: &TestCa) -> Chain {
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push((
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
        ));
    }
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .map(|(l, _)| l.local_addr().unwrap())
        .collect();
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("mesh.yaml"), registry(&addrs)).unwrap();
    let shutdown = Shutdown::new();
    let mut certs = Vec::new();
    let mut apps = Vec::new();
    // service3 first, so that each caller finds its upstream serving.
    for (i, (listener, admin)) in listeners.into_iter().enumerate().rev() {
        let name = format!("service{}", i + 1);
        let dir = tempfile::tempdir().unwrap();
        ca.leaf(&LeafSpec::spiffe(&format!("{TD}/{name}")))
            .write_to(dir.path())
            .unwrap();
        let spec = service_spec(&name, false, config.path(), Some(dir.path()));
        apps.push(start_service(&spec, listener, admin, &shutdown).unwrap());
        certs.push(dir);
    }
    apps.reverse();
    certs.reverse();
    let leaf = ca.leaf(&LeafSpec::spiffe(&format!("{TD}/test-client")));
    let client = MeshTls::new(leaf.source())
        .client_config(ExpectedServer::AnyInMesh, UpstreamProtocol::Http1)
        .unwrap();
    Chain {
        _config: config,
        certs,
        apps,
        shutdown,
        client,
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<bytes::Bytes>>;

/// One mutual TLS connection to `addr`: the request sender and the server's leaf serial.
async fn connect(chain: &Chain, addr: SocketAddr) -> (Sender, String) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("mesh.local").unwrap();
    let tls = TlsConnector::from(Arc::clone(&chain.client))
        .connect(name, tcp)
        .await
        .unwrap();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let serial = mesh_tls::credentials::serial_of(&leaf).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    (sender, serial)
}

async fn get(sender: &mut Sender) -> Result<(u16, String), hyper::Error> {
    sender.ready().await?;
    let request = http::Request::get("/hello")
        .header("host", "service1")
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn metrics(admin: SocketAddr) -> String {
    http10(admin, "/metrics", "admin").await
}

fn series<'a>(metrics: &'a str, must: &[&str]) -> &'a str {
    metrics
        .lines()
        .find(|l| l.starts_with("istio_requests_total{") && must.iter().all(|m| l.contains(m)))
        .unwrap_or_else(|| panic!("no series with {must:?} in:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_runs_under_mutual_tls_and_both_reporters_show_the_principals() {
    let ca = TestCa::new("mesh");
    let chain = start_chain(&ca).await;

    // Plaintext is refused on the STRICT port.
    let mut plain = TcpStream::connect(chain.apps[0].addr).await.unwrap();
    let _ = plain
        .write_all(b"GET / HTTP/1.1\r\nhost: service1\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("200"));

    let (mut sender, _) = connect(&chain, chain.apps[0].addr).await;
    let (status, body) = get(&mut sender).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"service\":\"service3\""), "{body}");

    // service1 as the source of the call to service2.
    let m1 = metrics(chain.apps[0].admin).await;
    let line = series(
        &m1,
        &["reporter=\"source\"", "destination_service=\"service2\""],
    );
    for want in [
        "connection_security_policy=\"mutual_tls\"",
        &format!("source_principal=\"{TD}/service1\""),
        &format!("destination_principal=\"{TD}/service2\""),
    ] {
        assert!(line.contains(want), "{want} missing from {line}");
    }
    // service2 as the destination of service1's call, and the source of its own.
    let m2 = metrics(chain.apps[1].admin).await;
    let line = series(&m2, &["reporter=\"destination\""]);
    for want in [
        "connection_security_policy=\"mutual_tls\"",
        &format!("source_principal=\"{TD}/service1\""),
        &format!("destination_principal=\"{TD}/service2\""),
    ] {
        assert!(line.contains(want), "{want} missing from {line}");
    }
    let line = series(
        &m2,
        &["reporter=\"source\"", "destination_service=\"service3\""],
    );
    assert!(line.contains(&format!("destination_principal=\"{TD}/service3\"")));
    assert!(line.contains("connection_security_policy=\"mutual_tls\""));

    // The certificate's time to expiry (valid until 2090 in the test CA).
    let expiry = m1
        .lines()
        .find(|l| l.starts_with("istio_agent_cert_expiry_seconds "))
        .unwrap_or_else(|| panic!("no expiry gauge in:\n{m1}"));
    let seconds: f64 = expiry.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(seconds > 365.0 * 86400.0, "{expiry}");
    chain.shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_fails_no_request_and_new_handshakes_show_the_new_serial() {
    let ca = TestCa::new("mesh");
    let chain = Arc::new(start_chain(&ca).await);
    let (_, old_serial) = connect(&chain, chain.apps[2].addr).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (chain, stop, ok, failed) = (
            Arc::clone(&chain),
            Arc::clone(&stop),
            Arc::clone(&ok),
            Arc::clone(&failed),
        );
        load.push(tokio::spawn(async move {
            let (mut sender, _) = connect(&chain, chain.apps[0].addr).await;
            while !stop.load(Ordering::Relaxed) {
                match get(&mut sender).await {
                    Ok((200, _)) => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // service3's new certificate, its files replaced one by one during the traffic.
    let new = ca.leaf(&LeafSpec::spiffe(&format!("{TD}/service3")).serial(4242));
    let dir: &Path = chain.certs[2].path();
    std::fs::write(dir.join("key.pem"), &new.key_pem).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::write(dir.join("cert-chain.pem"), &new.chain_pem).unwrap();
    let new_serial = new.credentials().serial().to_owned();
    assert_ne!(new_serial, old_serial);

    let mut seen = String::new();
    for _ in 0..100 {
        seen = connect(&chain, chain.apps[2].addr).await.1;
        if seen == new_serial {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen, new_serial,
        "new handshakes never showed the new certificate"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 0);
    assert_eq!(failed, 0, "{failed} failed requests out of {}", ok + failed);
    chain.shutdown.trigger();
}
