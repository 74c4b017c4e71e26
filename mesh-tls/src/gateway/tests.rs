#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

use super::*;
use crate::credentials::serial_of;
use crate::testing::{Leaf, LeafSpec, TestCa};

fn dns_leaf(ca: &TestCa, names: &[&str], serial: u64) -> Leaf {
    let mut spec = LeafSpec::spiffe("spiffe://unused/ns/a/sa/b").serial(serial);
    spec.uris.clear();
    spec.dns = names.iter().map(|n| (*n).to_owned()).collect();
    ca.leaf(&spec)
}

fn hosts(list: &[&str]) -> Vec<String> {
    list.iter().map(|h| (*h).to_owned()).collect()
}

fn simple(list: &[&str], leaf: &Leaf) -> GatewayServer {
    GatewayServer::simple(
        &hosts(list),
        leaf.chain_pem.as_bytes(),
        leaf.key_pem.as_bytes(),
        MinVersion::Tls12,
    )
    .unwrap()
}

async fn serve(tls: GatewayTls) -> (SocketAddr, mpsc::UnboundedReceiver<Result<usize, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (tls, tx) = (tls.clone(), tx.clone());
            tokio::spawn(async move {
                match tls.accept(tcp).await {
                    Ok((mut stream, _, index)) => {
                        let _ = tx.send(Ok(index));
                        let _ = stream.write_all(b"hello").await;
                        let _ = stream.shutdown().await;
                    }
                    Err(err) => drop(tx.send(Err(err.to_string()))),
                }
            });
        }
    });
    (addr, rx)
}

fn client(root_pem: &str, cert: Option<&Leaf>, tls12_only: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(root_pem.as_bytes()).unwrap())
        .unwrap();
    let versions: &[&'static rustls::SupportedProtocolVersion] = if tls12_only {
        &[&TLS12]
    } else {
        &[&TLS13, &TLS12]
    };
    let builder = ClientConfig::builder_with_provider(crate::provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match cert {
        Some(leaf) => {
            let chain = CertificateDer::pem_slice_iter(leaf.chain_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Connects with SNI `name`; the server's serial and ALPN on success.
async fn call(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: &str,
) -> Result<(String, Vec<u8>), String> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let mut hello = [0u8; 5];
    tls.read_exact(&mut hello)
        .await
        .map_err(|e| e.to_string())?;
    let conn = tls.get_ref().1;
    let serial = serial_of(&conn.peer_certificates().unwrap()[0]).unwrap();
    Ok((serial, conn.alpn_protocol().unwrap_or_default().to_vec()))
}

#[test]
fn the_most_specific_host_wins() {
    let ca = TestCa::new("gw");
    let leaf = dns_leaf(&ca, &["x"], 1);
    let tls = GatewayTls::new(vec![
        simple(&["*"], &leaf),
        simple(&["*.example.com"], &leaf),
        simple(&["default/api.example.com", "*.api.example.com"], &leaf),
        simple(&["*.example.com"], &leaf),
    ]);
    assert_eq!(tls.select(Some("api.example.com")), Some(2));
    assert_eq!(tls.select(Some("API.Example.com")), Some(2));
    assert_eq!(tls.select(Some("v1.api.example.com")), Some(2));
    assert_eq!(
        tls.select(Some("www.example.com")),
        Some(1),
        "the first of a tie"
    );
    assert_eq!(tls.select(Some("example.com")), Some(0));
    assert_eq!(tls.select(None), Some(0));
    let no_catch_all = GatewayTls::new(vec![simple(&["*.example.com"], &leaf)]);
    assert_eq!(no_catch_all.select(Some("example.org")), None);
    assert_eq!(no_catch_all.select(None), None);
}

#[tokio::test]
async fn sni_picks_the_server_and_mutual_requires_a_client_certificate() {
    let ca = TestCa::new("gw");
    let bookinfo = dns_leaf(&ca, &["bookinfo.example.com"], 11);
    let wildcard = dns_leaf(&ca, &["*.example.com"], 22);
    let mutual = GatewayServer::mutual(
        &hosts(&["*.example.com"]),
        wildcard.chain_pem.as_bytes(),
        wildcard.key_pem.as_bytes(),
        ca.root_pem().as_bytes(),
        MinVersion::Tls12,
    )
    .unwrap();
    let tls = GatewayTls::new(vec![simple(&["bookinfo.example.com"], &bookinfo), mutual]);
    let (addr, mut outcomes) = serve(tls).await;
    let root = ca.root_pem();

    let (serial, alpn) = call(addr, client(&root, None, false), "bookinfo.example.com")
        .await
        .unwrap();
    assert_eq!((serial.as_str(), alpn.as_slice()), ("b", b"h2".as_slice()));
    assert_eq!(outcomes.recv().await.unwrap(), Ok(0));

    // MUTUAL: no client certificate, refused; one from the CA, served by the wildcard server.
    assert!(
        call(addr, client(&root, None, false), "api.example.com")
            .await
            .is_err()
    );
    assert!(outcomes.recv().await.unwrap().is_err());
    let client_cert = dns_leaf(&ca, &["client"], 5);
    let (serial, _) = call(
        addr,
        client(&root, Some(&client_cert), false),
        "api.example.com",
    )
    .await
    .unwrap();
    assert_eq!(serial, "16");
    assert_eq!(outcomes.recv().await.unwrap(), Ok(1));

    // A name no server has.
    assert!(
        call(addr, client(&root, None, false), "example.org")
            .await
            .is_err()
    );
    let err = outcomes.recv().await.unwrap().unwrap_err();
    assert!(
        err.contains("no Gateway server for TLS server name Some(\"example.org\")"),
        "{err}"
    );
}

#[tokio::test]
async fn min_protocol_version_is_enforced() {
    let ca = TestCa::new("gw");
    let leaf = dns_leaf(&ca, &["a.example.com"], 1);
    let server = GatewayServer::simple(
        &hosts(&["a.example.com"]),
        leaf.chain_pem.as_bytes(),
        leaf.key_pem.as_bytes(),
        MinVersion::Tls13,
    )
    .unwrap();
    let (addr, _outcomes) = serve(GatewayTls::new(vec![server])).await;
    let root = ca.root_pem();
    assert!(
        call(addr, client(&root, None, true), "a.example.com")
            .await
            .is_err(),
        "TLS 1.2"
    );
    call(addr, client(&root, None, false), "a.example.com")
        .await
        .unwrap();
}

#[test]
fn bad_certificates_and_keys_are_errors() {
    let ca = TestCa::new("gw");
    let leaf = dns_leaf(&ca, &["a"], 1);
    let other = dns_leaf(&ca, &["a"], 2);
    let h = hosts(&["a"]);
    let err =
        GatewayServer::simple(&h, b"", leaf.key_pem.as_bytes(), MinVersion::Tls12).unwrap_err();
    assert!(err.to_string().starts_with("serverCertificate"), "{err}");
    let err = GatewayServer::simple(&h, leaf.chain_pem.as_bytes(), b"junk", MinVersion::Tls12)
        .unwrap_err();
    assert!(err.to_string().starts_with("privateKey"), "{err}");
    let err = GatewayServer::simple(
        &h,
        leaf.chain_pem.as_bytes(),
        other.key_pem.as_bytes(),
        MinVersion::Tls12,
    )
    .unwrap_err();
    assert!(matches!(err, GatewayTlsError::Key(_)), "{err}");
    let err = GatewayServer::mutual(
        &h,
        leaf.chain_pem.as_bytes(),
        leaf.key_pem.as_bytes(),
        b"",
        MinVersion::Tls12,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("caCertificates"), "{err}");
}
