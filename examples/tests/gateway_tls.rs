//! The gateway's TLS (started in-process on real sockets): `--listen-port 443=ADDR` serving the
//! Gateway's HTTPS servers, SIMPLE and MUTUAL chosen by SNI, HTTP/2 over ALPN, unknown names
//! and clients without a certificate refused, `httpsRedirect` answering 301 on port 80,
//! `credentialName` in a folder refused with the field named, and replaced certificate files
//! applying to new handshakes (a mismatched or half-written set keeping the last good one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_examples::gateway::{GatewaySpec, start_gateway_ports};
use mesh_examples::mesh::Identity;
use mesh_examples::run::Shutdown;
use mesh_tls::testing::{LeafSpec, TestCa};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use support::{http10, service_spec};

fn manifests(service3: SocketAddr, dir: &Path, shop_tls: &str) -> String {
    let d = dir.display();
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: service3}}
spec:
  hosts: [service3]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
  - address: {ip}
    ports: {{http: {port}}}
    labels: {{app: service3, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: web}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: ['*']
    tls: {{httpsRedirect: true}}
  - port: {{number: 443, name: https-shop, protocol: HTTPS}}
    hosts: [shop.example.com]
    tls: {shop_tls}
  - port: {{number: 443, name: https-api, protocol: HTTPS}}
    hosts: [api.example.com]
    tls: {{mode: MUTUAL, serverCertificate: {d}/api.pem, privateKey: {d}/api.key, caCertificates: {d}/ca.pem, minProtocolVersion: TLSV1_3}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web}}
spec:
  hosts: ['*']
  gateways: [web]
  http:
  - route:
    - destination: {{host: service3, port: {{number: 80}}}}
",
        ip = service3.ip(),
        port = service3.port()
    )
}

struct Setup {
    ca: TestCa,
    dir: tempfile::TempDir,
    service3: SocketAddr,
    shutdown: Shutdown,
}

async fn setup() -> Setup {
    let ca = TestCa::new("web");
    let dir = tempfile::tempdir().unwrap();
    for (name, host) in [("shop", "shop.example.com"), ("api", "api.example.com")] {
        let mut spec = LeafSpec::spiffe("spiffe://cluster.local/ns/default/sa/gateway");
        spec.uris.clear();
        spec.dns = vec![host.to_owned()];
        let leaf = ca.leaf(&spec);
        std::fs::write(dir.path().join(format!("{name}.pem")), &leaf.chain_pem).unwrap();
        std::fs::write(dir.path().join(format!("{name}.key")), &leaf.key_pem).unwrap();
    }
    std::fs::write(dir.path().join("ca.pem"), ca.root_pem()).unwrap();
    let shutdown = Shutdown::new();
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("mesh.yaml"),
        manifests(
            SocketAddr::from(([127, 0, 0, 1], 9)),
            dir.path(),
            "{mode: SIMPLE, credentialName: x}",
        ),
    )
    .unwrap();
    let spec = service_spec("service3", false, config.path(), None);
    let service3 = support::start(&spec, &shutdown).await.addr;
    Setup {
        ca,
        dir,
        service3,
        shutdown,
    }
}

/// Starts the gateway with `shop_tls` as the shop server's `tls`: (port 80, port 443).
async fn gateway(
    setup: &Setup,
    shop_tls: &str,
) -> Result<(SocketAddr, SocketAddr, tempfile::TempDir), String> {
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("mesh.yaml"),
        manifests(setup.service3, setup.dir.path(), shop_tls),
    )
    .unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (http_addr, https_addr) = (http.local_addr().unwrap(), https.local_addr().unwrap());
    let spec = GatewaySpec {
        gateway: None,
        config: config.path().to_owned(),
        identity: Identity {
            certs: None,
            namespace: "default".into(),
        },
    };
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_gateway_ports(&spec, http, vec![(443, https)], admin, &setup.shutdown)
        .map_err(|e| e.to_string())?;
    Ok((http_addr, https_addr, config))
}

fn client(setup: &Setup, with_cert: bool, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(setup.ca.root_pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(mesh_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = if with_cert {
        let leaf = setup.ca.leaf(&LeafSpec::spiffe(
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
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A GET of `/shop/item?x=1` over TLS with SNI `name`: (status, HTTP version, body), or `None`
/// when the handshake or the request fails.
async fn get_tls(
    addr: SocketAddr,
    name: &str,
    config: Arc<ClientConfig>,
) -> Option<(u16, http::Version, String)> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let tls = TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .ok()?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let request = http::Request::get(format!("https://{name}/shop/item?x=1"))
        .header("host", name)
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .ok()?;
        tokio::spawn(conn);
        sender.send_request(request).await.ok()?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .ok()?;
        tokio::spawn(conn);
        sender.send_request(request).await.ok()?
    };
    let status = response.status().as_u16();
    let version = response.version();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, version, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_https_by_sni_and_redirects_plain_http() {
    let setup = setup().await;
    let shop = format!(
        "{{mode: SIMPLE, serverCertificate: {d}/shop.pem, privateKey: {d}/shop.key}}",
        d = setup.dir.path().display()
    );
    let (http_addr, https_addr, _config) = gateway(&setup, &shop).await.unwrap();

    // SIMPLE, HTTP/2 over ALPN, routed to service3.
    let (status, version, body) = get_tls(
        https_addr,
        "shop.example.com",
        client(&setup, false, &[b"h2", b"http/1.1"]),
    )
    .await
    .expect("the shop server answers");
    assert_eq!(status, 200, "{body}");
    assert_eq!(version, http::Version::HTTP_2);
    assert!(body.contains("\"service\":\"service3\""), "{body}");
    // HTTP/1.1 when the client offers only that.
    let (status, version, _) = get_tls(
        https_addr,
        "shop.example.com",
        client(&setup, false, &[b"http/1.1"]),
    )
    .await
    .unwrap();
    assert_eq!((status, version), (200, http::Version::HTTP_11));

    // MUTUAL: refused without a client certificate, served with one.
    assert!(
        get_tls(
            https_addr,
            "api.example.com",
            client(&setup, false, &[b"http/1.1"])
        )
        .await
        .is_none()
    );
    let (status, _, _) = get_tls(
        https_addr,
        "api.example.com",
        client(&setup, true, &[b"http/1.1"]),
    )
    .await
    .expect("a client with a certificate is served");
    assert_eq!(status, 200);

    // A name no server of the port has.
    assert!(
        get_tls(
            https_addr,
            "other.example.com",
            client(&setup, false, &[b"http/1.1"])
        )
        .await
        .is_none()
    );

    // Port 80 redirects to https:// with the request's host and path.
    let raw = http10(http_addr, "/shop/item?x=1", "shop.example.com:8080").await;
    assert!(raw.lines().next().unwrap_or("").contains(" 301"), "{raw}");
    assert!(
        raw.to_ascii_lowercase()
            .contains("location: https://shop.example.com/shop/item?x=1"),
        "{raw}"
    );
    setup.shutdown.trigger();
}

#[tokio::test]
async fn credential_name_in_a_folder_is_an_error_naming_the_field() {
    let setup = setup().await;
    let err = gateway(&setup, "{mode: SIMPLE, credentialName: shop-cert}")
        .await
        .unwrap_err();
    assert!(
        err.contains("spec.servers[1].tls.credentialName") && err.contains("--kube"),
        "{err}"
    );
    setup.shutdown.trigger();
}

/// The serial of the certificate a TLS server with SNI `name` shows, and the open stream.
async fn handshake(
    addr: SocketAddr,
    name: &str,
    config: Arc<ClientConfig>,
) -> Option<(tokio_rustls::client::TlsStream<TcpStream>, String)> {
    let tcp = TcpStream::connect(addr).await.ok()?;
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let tls = TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .ok()?;
    let leaf = tls.get_ref().1.peer_certificates()?.first()?.clone();
    Some((tls, mesh_tls::credentials::serial_of(&leaf)?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_certificate_files_apply_to_new_handshakes_and_bad_ones_keep_the_last_good() {
    let setup = setup().await;
    let shop = format!(
        "{{mode: SIMPLE, serverCertificate: {d}/shop.pem, privateKey: {d}/shop.key}}",
        d = setup.dir.path().display()
    );
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("mesh.yaml"),
        manifests(setup.service3, setup.dir.path(), &shop),
    )
    .unwrap();
    let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https_addr = https.local_addr().unwrap();
    let spec = GatewaySpec {
        gateway: None,
        config: config.path().to_owned(),
        identity: Identity {
            certs: None,
            namespace: "default".into(),
        },
    };
    start_gateway_ports(
        &spec,
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        vec![(443, https)],
        admin,
        &setup.shutdown,
    )
    .unwrap();
    let anonymous = client(&setup, false, &[b"http/1.1"]);
    let (open, first) = handshake(https_addr, "shop.example.com", anonymous.clone())
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(open))
        .await
        .unwrap();
    tokio::spawn(conn);

    let until = |want: String| {
        let anonymous = anonymous.clone();
        async move {
            let start = std::time::Instant::now();
            loop {
                let seen = handshake(https_addr, "shop.example.com", anonymous.clone())
                    .await
                    .map(|(_, s)| s);
                if seen.as_deref() == Some(want.as_str()) {
                    return;
                }
                assert!(
                    start.elapsed() < std::time::Duration::from_secs(20),
                    "still {seen:?}, want {want}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    // The key first, then the certificate (the order Kubernetes does not promise): in between
    // the pair does not match and the last good one stays.
    let mut spec = LeafSpec::spiffe("spiffe://cluster.local/ns/default/sa/gateway").serial(0x77);
    spec.uris.clear();
    spec.dns = vec!["shop.example.com".to_owned()];
    let next = setup.ca.leaf(&spec);
    std::fs::write(setup.dir.path().join("shop.key"), &next.key_pem).unwrap();
    let dump_has = |needle: &'static str| async move {
        let start = std::time::Instant::now();
        loop {
            let tcp = TcpStream::connect(admin_addr).await.unwrap();
            let (mut s, c) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .unwrap();
            tokio::spawn(c);
            let req = http::Request::get("/config_dump")
                .header("host", "admin")
                .body(Empty::<bytes::Bytes>::new())
                .unwrap();
            let body = s.send_request(req).await.unwrap().into_body();
            let body =
                String::from_utf8_lossy(&body.collect().await.unwrap().to_bytes()).into_owned();
            if body.contains(needle) {
                return body;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "{needle} not in {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let dump = dump_has("\"last_good_kept\":true").await;
    assert!(dump.contains("privateKey"), "{dump}");
    until(first.clone()).await;
    std::fs::write(setup.dir.path().join("shop.pem"), &next.chain_pem).unwrap();
    until("77".to_owned()).await;
    dump_has("\"serial\":\"77\"").await;

    // A half-written certificate: the new set stays.
    std::fs::write(
        setup.dir.path().join("shop.pem"),
        &next.chain_pem[..next.chain_pem.len() / 2],
    )
    .unwrap();
    dump_has("\"last_good_kept\":true").await;
    until("77".to_owned()).await;

    // The connection opened before every change still answers.
    let req = http::Request::get("/still-open")
        .header("host", "shop.example.com")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    assert_eq!(sender.send_request(req).await.unwrap().status(), 200);
    setup.shutdown.trigger();
}
