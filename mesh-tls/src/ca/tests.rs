#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::identity::SpiffeId;
use crate::source::CertSource;
use crate::testing::{LeafSpec, TestCa};
use std::time::SystemTime;

const ISTIOD: &str = "istiod.istio-system.svc";
const TOKEN: &str = "service-account-token";
const SERVICE1: &str = "spiffe://cluster.local/ns/default/sa/service1";

/// How the fake istiod behaves; changed by the tests while it runs.
struct Behaviour {
    /// Answer UNAVAILABLE instead of signing.
    down: bool,
    /// Go down after this many certificates.
    down_after: Option<u64>,
    /// Certificates start this many seconds in the past...
    back: u64,
    /// ...and last this many seconds.
    validity: u64,
    issued: u64,
    requests: Vec<(String, String, i64)>,
}

struct FakeCa {
    ca: TestCa,
    behaviour: Mutex<Behaviour>,
}

/// istiod's CA on 127.0.0.1:0: TLS for `istiod.istio-system.svc`, HTTP/2, CreateCertificate.
async fn fake_istiod(back: u64, validity: u64) -> (SocketAddr, Arc<FakeCa>) {
    let fake = Arc::new(FakeCa {
        ca: TestCa::new("istio"),
        behaviour: Mutex::new(Behaviour {
            down: false,
            down_after: None,
            back,
            validity,
            issued: 0,
            requests: Vec::new(),
        }),
    });
    let mut spec = LeafSpec::spiffe("spiffe://cluster.local/ns/istio-system/sa/istiod");
    spec.dns.push(ISTIOD.to_owned());
    spec.uris.clear();
    let serving = fake.ca.leaf(&spec);
    let chain = CertificateDer::pem_slice_iter(serving.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes()).unwrap();
    let mut config = ServerConfig::builder_with_provider(crate::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::clone(&fake);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, state) = (acceptor.clone(), Arc::clone(&state));
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut conn) = h2::server::handshake(tls).await else {
                    return;
                };
                while let Some(Ok((request, respond))) = conn.accept().await {
                    tokio::spawn(answer(Arc::clone(&state), request, respond));
                }
            });
        }
    });
    (addr, fake)
}

async fn answer(
    fake: Arc<FakeCa>,
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) {
    let path = request.uri().path().to_owned();
    let auth = header(&request, "authorization");
    let cluster = header(&request, "clusterid");
    let mut body = request.into_body();
    let mut received = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
    }
    let (csr, seconds) = wire::decode_request(wire::unframe(&received).unwrap()).unwrap();
    let outcome = {
        let mut b = fake.behaviour.lock().unwrap();
        b.requests.push((auth.clone(), cluster, seconds));
        if path != CREATE_CERTIFICATE {
            Err((12, "unknown method"))
        } else if auth != format!("Bearer {TOKEN}") {
            Err((16, "bad token"))
        } else if b.down || b.down_after.is_some_and(|n| b.issued >= n) {
            Err((14, "istiod is down"))
        } else {
            b.issued += 1;
            Ok(fake.ca.sign_csr(&csr, b.issued, b.back, b.validity))
        }
    };
    let head = http::Response::builder().header("content-type", "application/grpc");
    match outcome {
        Err((code, message)) => {
            let head = head
                .header("grpc-status", code.to_string())
                .header("grpc-message", message)
                .body(())
                .unwrap();
            let _ = respond.send_response(head, true);
        }
        Ok(chain) => {
            let mut stream = respond
                .send_response(head.body(()).unwrap(), false)
                .unwrap();
            let message = wire::frame(&wire::encode_response(&chain));
            stream.send_data(Bytes::from(message), false).unwrap();
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            stream.send_trailers(trailers).unwrap();
        }
    }
}

fn header(request: &http::Request<h2::RecvStream>, name: &str) -> String {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn client(addr: SocketAddr, fake: &FakeCa, token: &str) -> CaClient {
    let roots = [CertificateDer::from_pem_slice(fake.ca.root_pem().as_bytes()).unwrap()];
    CaClient::new(
        addr.to_string(),
        ISTIOD,
        &roots,
        Token::Static(token.to_owned()),
    )
    .unwrap()
}

fn fast() -> RenewOptions {
    RenewOptions {
        validity: Duration::from_secs(3600),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn serial(source: &CertSource) -> Option<String> {
    source.current().map(|c| c.serial().to_owned())
}

#[tokio::test]
async fn a_csr_gets_a_checked_certificate() {
    let (addr, fake) = fake_istiod(1, 3600).await;
    let identity: SpiffeId = SERVICE1.parse().unwrap();
    let roots = fake.ca.root_pem().into_bytes();
    let credentials = renew::obtain(
        &client(addr, &fake, TOKEN),
        &identity,
        &roots,
        Duration::from_secs(7200),
    )
    .await
    .unwrap();
    assert_eq!(credentials.identity(), &identity);
    assert_eq!(credentials.serial(), "1");
    let requests = fake.behaviour.lock().unwrap().requests.clone();
    assert_eq!(
        requests,
        [(format!("Bearer {TOKEN}"), "Kubernetes".to_owned(), 7200)]
    );
}

#[tokio::test]
async fn the_ca_refuses_a_bad_token() {
    let (addr, fake) = fake_istiod(1, 3600).await;
    let source = CertSource::empty();
    let roots = fake.ca.root_pem().into_bytes();
    let _renewer = CaRenewer::spawn(
        client(addr, &fake, "wrong"),
        SERVICE1.parse().unwrap(),
        roots,
        source.clone(),
        fast(),
    );
    wait_until("the refusal", || source.status().last_error.is_some()).await;
    let error = source.status().last_error.unwrap().to_string();
    assert!(error.contains("gRPC status 16: bad token"), "{error}");
    assert!(source.current().is_none());
}

#[tokio::test]
async fn renews_at_half_life_and_keeps_the_old_certificate_while_the_ca_is_down() {
    // Certificates from 2 h ago, valid 3 h: half their life is over, an hour is left.
    let (addr, fake) = fake_istiod(2 * 3600, 3 * 3600).await;
    fake.behaviour.lock().unwrap().down_after = Some(1);
    let source = CertSource::empty();
    let roots = fake.ca.root_pem().into_bytes();
    let _renewer = CaRenewer::spawn(
        client(addr, &fake, TOKEN),
        SERVICE1.parse().unwrap(),
        roots,
        source.clone(),
        fast(),
    );
    wait_until("the first certificate", || serial(&source).is_some()).await;
    let first = source.current().unwrap();
    assert!(
        renew::renew_at(&first) < SystemTime::now(),
        "renewal is due"
    );

    // The CA is down: renewal fails, retried with backoff, the first certificate stays.
    wait_until("two failed renewals", || {
        fake.behaviour.lock().unwrap().requests.len() >= 3
    })
    .await;
    assert_eq!(serial(&source).as_deref(), Some("1"));
    let error = source.status().last_error.unwrap().to_string();
    assert!(error.contains("gRPC status 14"), "{error}");

    // Back up: renewed before the first one expired, and the error clears. The CA now issues
    // certificates that start now, so the second is not due at once: without that the renewer
    // would go on to serial 3 at once and the wait below could miss serial 2.
    {
        let mut behaviour = fake.behaviour.lock().unwrap();
        behaviour.down_after = None;
        behaviour.back = 0;
    }
    wait_until("serial 2", || serial(&source).as_deref() == Some("2")).await;
    assert!(source.status().last_error.is_none());
    assert!(first.not_after() > SystemTime::now());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        serial(&source).as_deref(),
        Some("2"),
        "a fresh certificate is kept"
    );
}

#[tokio::test]
async fn a_fresh_certificate_is_not_renewed() {
    let (addr, fake) = fake_istiod(1, 3600).await;
    let source = CertSource::empty();
    let roots = fake.ca.root_pem().into_bytes();
    let _renewer = CaRenewer::spawn(
        client(addr, &fake, TOKEN),
        SERVICE1.parse().unwrap(),
        roots,
        source.clone(),
        fast(),
    );
    wait_until("the first certificate", || serial(&source).is_some()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.behaviour.lock().unwrap().issued, 1);
}

#[tokio::test]
async fn the_ca_must_be_who_it_says() {
    let (addr, fake) = fake_istiod(1, 3600).await;
    let other = TestCa::new("other");
    let roots = [CertificateDer::from_pem_slice(other.root_pem().as_bytes()).unwrap()];
    let ca = CaClient::new(
        addr.to_string(),
        ISTIOD,
        &roots,
        Token::Static(TOKEN.into()),
    )
    .unwrap();
    let err = ca
        .create_certificate("csr", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(matches!(err, CaError::Tls(_)), "{err}");
    let wrong_name = CaClient::new(
        addr.to_string(),
        "evil.example.com",
        &[CertificateDer::from_pem_slice(fake.ca.root_pem().as_bytes()).unwrap()],
        Token::Static(TOKEN.into()),
    )
    .unwrap();
    assert!(matches!(
        wrong_name
            .create_certificate("csr", Duration::from_secs(60))
            .await,
        Err(CaError::Tls(_))
    ));
}

#[test]
fn wire_round_trips_and_garbage_never_panics() {
    let request = wire::encode_request("-----BEGIN CERTIFICATE REQUEST-----", 86_400);
    assert_eq!(
        wire::decode_request(&request).unwrap(),
        ("-----BEGIN CERTIFICATE REQUEST-----".to_owned(), 86_400)
    );
    let chain = vec!["a".repeat(300), "b".to_owned()];
    let framed = wire::frame(&wire::encode_response(&chain));
    assert_eq!(
        wire::decode_response(wire::unframe(&framed).unwrap()).unwrap(),
        chain
    );
    assert!(wire::unframe(&framed[..framed.len() - 1]).is_err());
    assert!(wire::unframe(&[1, 0, 0, 0, 0]).is_err());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for len in 0..2000 {
        let bytes: Vec<u8> = (0..len % 64)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let _ = wire::decode_response(&bytes);
        let _ = wire::decode_request(&bytes);
        let _ = wire::unframe(&bytes);
    }
}
