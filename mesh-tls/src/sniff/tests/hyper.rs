//! The acceptor under hyper, as mesh-server will use it: one PERMISSIVE port serving HTTP/2
//! over mutual TLS and HTTP/1.1 in plaintext, the caller's principal handed to the service.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};

use super::{SERVICE1, mesh};
use crate::config::{ExpectedServer, UpstreamProtocol};
use crate::sniff::{Acceptor, Mode};
use crate::testing::TestCa;

/// What a transport would insert into request extensions (mesh-server's `PeerIdentity`).
#[derive(Clone)]
struct Caller(Option<String>);

async fn serve(acceptor: Acceptor) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(accepted) = acceptor.accept(tcp, Mode::Permissive).await else {
                    return;
                };
                let caller = Caller(accepted.peer().map(|id| id.principal()));
                let (io, _) = accepted.into_stream();
                let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(caller.clone());
                    async move { Ok::<_, Infallible>(answer(&req)) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(io), service)
                    .await;
            });
        }
    });
    addr
}

fn answer(req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let caller = req.extensions().get::<Caller>().and_then(|c| c.0.clone());
    let text = format!(
        "{:?} {}",
        req.version(),
        caller.as_deref().unwrap_or("none")
    );
    Response::new(Full::new(Bytes::from(text)))
}

async fn body(response: Response<Incoming>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn hyper_serves_h2_over_mtls_and_http1_plaintext_on_one_port() {
    let ca = TestCa::new("mesh");
    let addr = serve(Acceptor::new(&mesh(&ca, super::SERVICE2)).unwrap()).await;

    // HTTP/2 over mutual TLS: ALPN picks h2, the service sees the caller's principal.
    let expected = ExpectedServer::Identities(vec![super::SERVICE2.parse().unwrap()]);
    let h2_client = mesh(&ca, SERVICE1)
        .client_config(expected, UpstreamProtocol::Http2)
        .unwrap();
    let tls = super::connect(addr, h2_client).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    for _ in 0..3 {
        let request = Request::get("https://service2/")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let principal = SERVICE1.trim_start_matches("spiffe://");
        assert_eq!(body(response).await, format!("HTTP/2.0 {principal}"));
    }

    // HTTP/1.1 in plaintext on the same port: no caller.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::get("/")
        .header("host", "service2")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(body(response).await, "HTTP/1.1 none");
}
