#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hyper;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::*;
use crate::config::{ExpectedServer, UpstreamProtocol};
use crate::credentials::serial_of;
use crate::source::{DirWatcher, WatchOptions};
use crate::testing::{LeafSpec, TestCa};

const SERVICE1: &str = "spiffe://cluster.local/ns/default/sa/service1";
const SERVICE2: &str = "spiffe://cluster.local/ns/default/sa/service2";
const REQUEST: &[u8] = b"GET / HTTP/1.1\n";

pub(super) fn mesh(ca: &TestCa, id: &str) -> MeshTls {
    MeshTls::new(ca.leaf(&LeafSpec::spiffe(id)).source())
}

fn client_for_service2(ca: &TestCa) -> Arc<ClientConfig> {
    let expected = ExpectedServer::Identities(vec![SERVICE2.parse().unwrap()]);
    mesh(ca, SERVICE1)
        .client_config(expected, UpstreamProtocol::Http1)
        .unwrap()
}

/// A server on 127.0.0.1:0 that accepts under `mode`, reports each outcome, and answers each
/// accepted connection's first line with "<plain|tls PEER> <the line>".
async fn serve(
    acceptor: Acceptor,
    mode: Mode,
) -> (SocketAddr, mpsc::UnboundedReceiver<Result<String, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let accepted = match acceptor.accept(tcp, mode).await {
                    Ok(accepted) => accepted,
                    Err(err) => return drop(tx.send(Err(err.to_string()))),
                };
                let label = match accepted.peer() {
                    Some(peer) => format!("tls {peer}"),
                    None if matches!(accepted, Accepted::Tls(..)) => "tls anonymous".to_owned(),
                    None => "plain".to_owned(),
                };
                let _ = tx.send(Ok(format!("{label} {}", accepted.security_policy())));
                let (stream, _) = accepted.into_stream();
                let mut stream = BufReader::new(stream);
                let mut line = String::new();
                if stream.read_line(&mut line).await.is_ok() {
                    let reply = format!("{label} {line}");
                    let _ = stream.get_mut().write_all(reply.as_bytes()).await;
                    let _ = stream.get_mut().shutdown().await;
                }
            });
        }
    });
    (addr, rx)
}

async fn plain(addr: SocketAddr) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(REQUEST).await.unwrap();
    let mut reply = Vec::new();
    let _ = tcp.read_to_end(&mut reply).await;
    String::from_utf8_lossy(&reply).into_owned()
}

pub(super) async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("service2.default.svc.cluster.local").unwrap();
    TlsConnector::from(config).connect(name, tcp).await
}

async fn request(tls: &mut TlsStream<TcpStream>) -> std::io::Result<String> {
    tls.write_all(REQUEST).await?;
    let mut reply = Vec::new();
    tls.read_to_end(&mut reply).await?;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

#[tokio::test]
async fn permissive_serves_tls_and_plaintext_on_one_port() {
    let ca = TestCa::new("mesh");
    let acceptor = Acceptor::new(&mesh(&ca, SERVICE2)).unwrap();
    let (addr, mut outcomes) = serve(acceptor, Mode::Permissive).await;

    let mut tls = connect(addr, client_for_service2(&ca)).await.unwrap();
    let reply = request(&mut tls).await.unwrap();
    assert_eq!(reply, format!("tls {SERVICE1} GET / HTTP/1.1\n"));
    assert_eq!(
        outcomes.recv().await.unwrap().unwrap(),
        format!("tls {SERVICE1} mutual_tls")
    );

    // The peeked byte was not lost: the whole request line arrives.
    assert_eq!(plain(addr).await, "plain GET / HTTP/1.1\n");
    assert_eq!(outcomes.recv().await.unwrap().unwrap(), "plain none");
}

#[tokio::test]
async fn strict_refuses_plaintext() {
    let ca = TestCa::new("mesh");
    let acceptor = Acceptor::new(&mesh(&ca, SERVICE2)).unwrap();
    let (addr, mut outcomes) = serve(acceptor, Mode::Strict).await;

    assert_eq!(plain(addr).await, "");
    let err = outcomes.recv().await.unwrap().unwrap_err();
    assert!(err.contains("plaintext connection refused"), "{err}");

    let mut tls = connect(addr, client_for_service2(&ca)).await.unwrap();
    assert_eq!(
        request(&mut tls).await.unwrap(),
        format!("tls {SERVICE1} GET / HTTP/1.1\n")
    );
    assert!(outcomes.recv().await.unwrap().is_ok());

    // A client of another mesh fails the handshake.
    let foreign = TestCa::new("foreign");
    let result = match connect(addr, client_for_service2(&foreign)).await {
        Ok(mut tls) => request(&mut tls).await,
        Err(err) => Err(err),
    };
    assert!(result.is_err(), "{result:?}");
    let err = outcomes.recv().await.unwrap().unwrap_err();
    assert!(err.starts_with("TLS handshake"), "{err}");
}

#[tokio::test]
async fn strict_without_credentials_fails_closed() {
    let acceptor = Acceptor::new(&MeshTls::new(CertSource::empty())).unwrap();
    let (addr, mut outcomes) = serve(acceptor, Mode::Strict).await;
    assert_eq!(plain(addr).await, "");
    let err = outcomes.recv().await.unwrap().unwrap_err();
    assert!(err.contains("no workload certificate"), "{err}");
}

#[tokio::test]
async fn disable_never_does_tls() {
    let ca = TestCa::new("mesh");
    let acceptor = Acceptor::new(&mesh(&ca, SERVICE2)).unwrap();
    let (addr, mut outcomes) = serve(acceptor, Mode::Disable).await;
    assert_eq!(plain(addr).await, "plain GET / HTTP/1.1\n");
    assert_eq!(outcomes.recv().await.unwrap().unwrap(), "plain none");
    // A TLS client's ClientHello is taken for plaintext (its handshake cannot succeed).
    let client = tokio::spawn(connect(addr, client_for_service2(&ca)));
    assert_eq!(outcomes.recv().await.unwrap().unwrap(), "plain none");
    client.abort();
}

#[tokio::test]
async fn closed_and_silent_connections_are_errors() {
    let ca = TestCa::new("mesh");
    let acceptor = Acceptor::new(&mesh(&ca, SERVICE2))
        .unwrap()
        .with_handshake_timeout(Duration::from_millis(200));
    let (addr, mut outcomes) = serve(acceptor, Mode::Permissive).await;
    drop(TcpStream::connect(addr).await.unwrap());
    let err = outcomes.recv().await.unwrap().unwrap_err();
    assert!(
        err.contains("closed the connection before sending anything"),
        "{err}"
    );

    let _silent = TcpStream::connect(addr).await.unwrap();
    let err = outcomes.recv().await.unwrap().unwrap_err();
    assert!(err.contains("did not finish within"), "{err}");
}

#[tokio::test]
async fn rotated_files_apply_to_new_handshakes_and_open_connections_stay() {
    let ca = TestCa::new("mesh");
    let dir = tempfile::tempdir().unwrap();
    ca.leaf(&LeafSpec::spiffe(SERVICE2).serial(1))
        .write_to(dir.path())
        .unwrap();
    let server_source = CertSource::empty();
    let options = WatchOptions {
        settle: Duration::from_millis(50),
        poll_interval: Duration::from_millis(500),
    };
    let _watcher = DirWatcher::spawn(dir.path(), server_source.clone(), options);
    let acceptor = Acceptor::new(&MeshTls::new(server_source.clone())).unwrap();
    let (addr, _outcomes) = serve(acceptor, Mode::Strict).await;
    let client = client_for_service2(&ca);

    let mut open = connect(addr, Arc::clone(&client)).await.unwrap();
    let serial = |tls: &TlsStream<TcpStream>| {
        serial_of(&tls.get_ref().1.peer_certificates().unwrap()[0]).unwrap()
    };
    assert_eq!(serial(&open), "1");

    ca.leaf(&LeafSpec::spiffe(SERVICE2).serial(2))
        .write_to(dir.path())
        .unwrap();
    for _ in 0..200 {
        if server_source.current().unwrap().serial() == "2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut fresh = connect(addr, client).await.unwrap();
    assert_eq!(serial(&fresh), "2");
    assert!(request(&mut fresh).await.unwrap().starts_with("tls "));
    // The connection from before the rotation is still served.
    assert_eq!(
        request(&mut open).await.unwrap(),
        format!("tls {SERVICE1} GET / HTTP/1.1\n")
    );
}
