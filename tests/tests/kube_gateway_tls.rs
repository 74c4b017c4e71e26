//! The `--kube` gateway's TLS against the test API server: `--listen-port 443=ADDR` serving a
//! Gateway's HTTPS servers from `credentialName` Secrets created through the API (SIMPLE, and
//! MUTUAL with Istio's `<name>-cacert` Secret), chosen by SNI; `httpsRedirect` on port 80; a
//! rotated Secret applies to new handshakes (its new serial) while an open connection keeps
//! working; a garbage or deleted Secret keeps the last good certificate, shown in
//! `/config_dump`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use mesh_tests::kube::{BOUND, Cluster};
use mesh_tls::testing::{Leaf, LeafSpec, TestCa};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

const NS: &str = "default";

fn server_leaf(ca: &TestCa, host: &str, serial: u64) -> Leaf {
    let mut spec = LeafSpec::spiffe("spiffe://cluster.local/ns/istio-system/sa/gw").serial(serial);
    spec.uris.clear();
    spec.dns = vec![host.to_owned()];
    ca.leaf(&spec)
}

/// A `kubernetes.io/tls` Secret in `istio-system` (written as `stringData`).
fn secret(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": "istio-system"}, "stringData": data})
}

fn tls_secret(name: &str, leaf: &Leaf) -> Value {
    secret(
        name,
        json!({"tls.crt": leaf.chain_pem, "tls.key": leaf.key_pem}),
    )
}

fn client(ca: &TestCa, with_cert: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.root_pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(mesh_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = if with_cert {
        let leaf = ca.leaf(&LeafSpec::spiffe(
            "spiffe://cluster.local/ns/default/sa/client",
        ));
        let chain = CertificateDer::pem_slice_iter(leaf.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TLS connection with SNI `name`, and the serial of the certificate the server showed.
async fn connect(
    addr: SocketAddr,
    name: &str,
    config: Arc<ClientConfig>,
) -> Option<(TlsStream<TcpStream>, String)> {
    let tcp = TcpStream::connect(addr).await.ok()?;
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let connecting = TlsConnector::from(config).connect(server_name, tcp);
    let tls = tokio::time::timeout(Duration::from_secs(5), connecting)
        .await
        .ok()?
        .ok()?;
    let leaf = tls.get_ref().1.peer_certificates()?.first()?.clone();
    let serial = mesh_tls::credentials::serial_of(&leaf)?;
    Some((tls, serial))
}

/// HTTP/1.1 requests on one connection.
struct Conn(hyper::client::conn::http1::SendRequest<Empty<bytes::Bytes>>);

impl Conn {
    async fn open(tls: TlsStream<TcpStream>) -> Self {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        Self(sender)
    }

    async fn get(&mut self, host: &str, path: &str) -> (u16, String) {
        let request = http::Request::get(path)
            .header("host", host)
            .body(Empty::new())
            .unwrap();
        let response = self.0.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// Polls until a handshake with SNI `name` shows a certificate of serial `serial`.
async fn until_serial(addr: SocketAddr, name: &str, config: &Arc<ClientConfig>, serial: &str) {
    let start = Instant::now();
    loop {
        let seen = connect(addr, name, config.clone()).await.map(|(_, s)| s);
        if seen.as_deref() == Some(serial) {
            return;
        }
        assert!(
            start.elapsed() < BOUND,
            "{name}: serial still {seen:?}, want {serial}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn config_dump(c: &Cluster, admin: SocketAddr) -> Value {
    c.get(admin, "/config_dump").await.json()
}

async fn until_dump(c: &Cluster, admin: SocketAddr, what: &str, done: impl Fn(&Value) -> bool) {
    let start = Instant::now();
    loop {
        let dump = config_dump(c, admin).await;
        if done(&dump) {
            return;
        }
        assert!(start.elapsed() < BOUND, "{what}: {}", dump["gateway_tls"]);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kube_gateway_serves_https_from_secrets_and_follows_them() {
    let c = Cluster::start(92).await;
    let ca = TestCa::new("kube-gw");
    c.service(NS, "service3");
    c.pod(
        NS,
        "service3-a",
        "service3",
        json!({"app": "service3", "version": "v1"}),
        14,
    );
    c.slice(NS, "service3", &[("service3-a", 14, true)]);
    c.pod(
        "istio-system",
        "istio-ingressgateway-a",
        "istio-ingressgateway",
        json!({"app": "istio-ingressgateway", "istio": "ingressgateway"}),
        10,
    );
    c.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": [
            {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"],
             "tls": {"httpsRedirect": true}},
            {"port": {"number": 443, "name": "https-shop", "protocol": "HTTPS"},
             "hosts": ["shop.example.com"], "tls": {"mode": "SIMPLE", "credentialName": "shop-cert"}},
            {"port": {"number": 443, "name": "https-api", "protocol": "HTTPS"},
             "hosts": ["api.example.com"], "tls": {"mode": "MUTUAL", "credentialName": "api-cert"}}]}}));
    c.apply(
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"hosts": ["*"], "gateways": ["web"], "http": [
            {"route": [{"destination": {"host": "service3", "port": {"number": 80}}}]}]}}),
    );
    c.apply(tls_secret(
        "shop-cert",
        &server_leaf(&ca, "shop.example.com", 0x51),
    ));
    c.apply(tls_secret(
        "api-cert",
        &server_leaf(&ca, "api.example.com", 0x61),
    ));
    c.apply(secret("api-cert-cacert", json!({"ca.crt": ca.root_pem()})));

    let s3 = c.start_service(NS, "service3-a", "service3", 14).await;
    let gw = c.start_gateway_ports(&[(443, 8443)]).await;
    c.ready(&s3).await;
    c.ready(&gw).await;
    let https = SocketAddr::new(c.ip(10), 8443);
    let anonymous = client(&ca, false);

    // SIMPLE by SNI, from the Secret created through the API, routed to service3.
    until_serial(https, "shop.example.com", &anonymous, "51").await;
    let (tls, _) = connect(https, "shop.example.com", anonymous.clone())
        .await
        .unwrap();
    let mut open = Conn::open(tls).await;
    let (status, body) = open.get("shop.example.com", "/shop/item").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"service\":\"service3\""), "{body}");

    // MUTUAL with the CA from `api-cert-cacert`: a client without a certificate is refused.
    until_serial(https, "api.example.com", &client(&ca, true), "61").await;
    let refused = match connect(https, "api.example.com", anonymous.clone()).await {
        None => true,
        Some((tls, _)) => {
            // TLS 1.3: the refusal arrives after the client's handshake finished.
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .unwrap();
            tokio::spawn(conn);
            let req = http::Request::get("/")
                .header("host", "api.example.com")
                .body(Empty::<bytes::Bytes>::new())
                .unwrap();
            sender.send_request(req).await.is_err()
        }
    };
    assert!(refused, "MUTUAL served a client without a certificate");
    // A name no server has.
    assert!(
        connect(https, "other.example.com", anonymous.clone())
            .await
            .is_none()
    );

    // Port 80 redirects.
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    tcp.write_all(b"GET /a?b=1 HTTP/1.0\r\nhost: shop.example.com\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await.unwrap();
    assert!(raw.lines().next().unwrap_or("").contains(" 301"), "{raw}");
    assert!(
        raw.to_ascii_lowercase()
            .contains("location: https://shop.example.com/a?b=1"),
        "{raw}"
    );

    // The Secret rotated: new handshakes get the new serial; the open connection still works.
    c.apply(tls_secret(
        "shop-cert",
        &server_leaf(&ca, "shop.example.com", 0x52),
    ));
    until_serial(https, "shop.example.com", &anonymous, "52").await;
    let (status, _) = open.get("shop.example.com", "/still-open").await;
    assert_eq!(status, 200);

    // A garbage Secret: the last good certificate stays, the error is in /config_dump.
    c.apply(secret(
        "shop-cert",
        json!({"tls.crt": "garbage", "tls.key": "garbage"}),
    ));
    until_dump(&c, gw.admin, "garbage Secret reported", |d| {
        d["gateway_tls"]["listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|l| l["last_good_kept"] == true && l["error"].as_str().is_some())
    })
    .await;
    until_serial(https, "shop.example.com", &anonymous, "52").await;

    // Deleted: kept too, and said so.
    c.server
        .delete("v1", "Secret", "istio-system", "shop-cert")
        .unwrap();
    until_dump(&c, gw.admin, "deleted Secret reported", |d| {
        d["gateway_tls"]["secrets"]["shop-cert"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("deleted"))
    })
    .await;
    until_serial(https, "shop.example.com", &anonymous, "52").await;
    c.shutdown.trigger();
}
