//! Reliability: malformed HTTP, oversized headers and oversized bodies at the gateway.
//!
//! Raw bytes on a TCP connection to the gateway of the article's set-up. What it proves: each
//! bad request gets a clear 4xx (or the connection is closed for bytes that are not HTTP at all),
//! the gateway keeps serving good requests afterwards, and memory stays bounded while it is fed
//! a stream of oversized requests.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use mesh_tests::{Lab, LabOptions, rss_kib};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The tests of this file one at a time: the memory check reads the whole process's RSS, which
/// the other test's lab (six apps starting, their traffic) would grow too.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Sends `bytes` and returns the status line's code, or None when the server closed without one.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before reading everything: a write error is fine.
    let _ = stream.write_all(bytes).await;
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    let head = String::from_utf8_lossy(&buf[..n]);
    head.strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_4xx_and_the_gateway_survives() {
    let _one = ONE_AT_A_TIME.lock().await;
    let lab = Lab::start("routing", LabOptions::default())
        .await
        .expect("lab starts");
    let gw = lab.gateway.addr;
    assert!(lab.get("/service1/before", &[]).await.ok());

    // Not HTTP at all.
    let status = raw(gw, b"\x16\x03\x01\x00\xa5garbage that is not http\r\n\r\n").await;
    assert!(matches!(status, None | Some(400)), "garbage: {status:?}");
    // A malformed request line and a malformed header.
    assert_eq!(
        raw(gw, b"GET /service1 HTTP/9.9\r\nHost: x\r\n\r\n")
            .await
            .map(|s| s / 100),
        Some(4)
    );
    assert_eq!(
        raw(gw, b"GET /service1 HTTP/1.1\r\nHost x\r\n\r\n").await,
        Some(400)
    );
    // Oversized headers: 1 MiB of one header.
    let mut big = b"GET /service1/x HTTP/1.1\r\nHost: gw\r\nx-big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 1 << 20));
    big.extend(b"\r\n\r\n");
    let status = raw(gw, &big).await;
    assert!(
        matches!(status, Some(431) | Some(400)),
        "oversized headers: {status:?}"
    );
    // An oversized body: 64 MiB announced.
    let status = raw(
        gw,
        b"POST /service1/x HTTP/1.1\r\nHost: gw\r\ncontent-length: 67108864\r\n\r\nsome",
    )
    .await;
    assert_eq!(status, Some(413), "oversized body must be refused with 413");

    // Memory stays bounded under a stream of oversized requests.
    let before = rss_kib();
    for _ in 0..30 {
        let _ = raw(gw, &big).await;
        let _ = raw(
            gw,
            b"POST /service1/x HTTP/1.1\r\nHost: gw\r\ncontent-length: 67108864\r\n\r\nsome",
        )
        .await;
    }
    let after = rss_kib();
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} to {after} KiB under oversized requests"
    );

    // And the gateway still serves.
    let reply = lab.get("/service1/after", &[]).await;
    assert!(
        reply.ok(),
        "the gateway stopped serving good requests: {reply:?}"
    );
    lab.stop().await;
}

/// A client's broken request is the client's failure: never an upstream failure, never retried,
/// never counted by outlier detection. Before, three POSTs with broken chunked framing were
/// answered 503 "connection termination" and got service1 ejected for every user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_malformed_body_never_ejects_a_healthy_backend() {
    let _one = ONE_AT_A_TIME.lock().await;
    let lab = Lab::start("routing", LabOptions::default())
        .await
        .expect("lab starts");
    let gw = lab.gateway.addr;
    assert!(lab.get("/service1/before", &[]).await.ok());

    let broken_chunks: &[u8] = b"POST /service1/upload HTTP/1.1\r\nHost: gw\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nnot a chunk\r\n0\r\n\r\n";
    // A chunk announced longer than what follows, then a bad terminator.
    let bad_terminator: &[u8] = b"POST /service1/upload HTTP/1.1\r\nHost: gw\r\ntransfer-encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n";
    for i in 0..12 {
        let bytes = if i % 2 == 0 {
            broken_chunks
        } else {
            bad_terminator
        };
        let status = raw(gw, bytes).await;
        // The answer is the client's 400, or no answer on a connection hyper gave up on; never
        // a 5xx that blames the upstream. The upstream may also have answered before the gateway
        // read the broken part (service1 does not read bodies): that answer is passed on, as
        // Envoy passes on a complete answer that comes before the end of the request.
        assert!(
            matches!(status, None | Some(400) | Some(200)),
            "broken request {i} answered {status:?}"
        );
    }
    // A body that ends before its content-length, the client closing its side.
    let mut stream = TcpStream::connect(gw).await.unwrap();
    stream
        .write_all(
            b"POST /service1/upload HTTP/1.1\r\nHost: gw\r\ncontent-length: 100\r\n\r\nshort",
        )
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut sink)).await;
    let head = String::from_utf8_lossy(&sink);
    assert!(
        !head.starts_with("HTTP/1.1 5"),
        "a body cut short by the client was blamed on the upstream: {head}"
    );

    // service1 was never ejected: every user is still served.
    for n in 0..20 {
        let reply = lab.get(&format!("/service1/after/{n}"), &[]).await;
        assert!(
            reply.ok(),
            "service1 no longer served after client errors: {reply:?}"
        );
    }
    lab.stop().await;
}
