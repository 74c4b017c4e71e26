//! gRPC callers under mutual TLS (`examples/scenarios/mtls`, every app with a certificate).
//!
//! STRICT refuses a plaintext connection before any HTTP, so there is no answer to carry a
//! `grpc-status`: as Envoy does (its TLS inspector peeks at the first bytes, no filter chain
//! matches plaintext, the connection is closed with them unread), the connection is reset, and
//! the gRPC client reports its own transport error. Where the mesh refuses at the HTTP level instead (a
//! PERMISSIVE port whose AuthorizationPolicy wants a principal plaintext cannot have), the
//! answer is gRPC-shaped: PERMISSION_DENIED.

use std::io::ErrorKind;

use mesh_tests::grpc::{Code, call};
use mesh_tests::{Lab, LabOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn lab() -> Lab {
    match Lab::start(
        "mtls",
        LabOptions {
            mtls: true,
            ..LabOptions::default()
        },
    )
    .await
    {
        Ok(lab) => lab,
        Err(e) => panic!("lab: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_resets_a_plaintext_grpc_connection() {
    let lab = lab().await;
    // tonic's client reports its own transport error (over hyper-util's client, `Unknown`
    // "connection closed"; over tonic's Channel, `Unavailable`): no status came from the server.
    let err = call(lab.service1.addr, "/", None).await.unwrap_err();
    assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    assert!(
        matches!(err.code(), Code::Unavailable | Code::Unknown),
        "{err:?}"
    );

    // What the client's connection sees: its HTTP/2 preface is never read, the connection is
    // reset (not a clean close, and no HTTP of any kind comes back).
    let mut tcp = tokio::net::TcpStream::connect(lab.service1.addr)
        .await
        .unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let read = tcp.read(&mut buf).await;
    assert!(
        matches!(&read, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "{read:?}"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principals_rule_refuses_plaintext_grpc_with_permission_denied() {
    let lab = lab().await;
    // PERMISSIVE everywhere, and service2 admits only service1's principal.
    lab.write_file(
        "05-peer-authentication.yaml",
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: default\n  namespace: istio-system\nspec:\n  mtls:\n    mode: PERMISSIVE\n",
    )
    .unwrap();
    lab.write_file(
        "10-only-service1.yaml",
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: only-service1\nspec:\n  selector:\n    matchLabels: {app: service2}\n  action: ALLOW\n  rules:\n    - from:\n        - source:\n            principals: [cluster.local/ns/default/sa/service1]\n",
    )
    .unwrap();
    lab.wait_reloaded().await.unwrap();

    // Plaintext straight to service2 has no principal: an HTTP 403, which a gRPC caller gets
    // as PERMISSION_DENIED.
    let err = call(lab.service2_v1.addr, "/", None).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(err.message(), "RBAC: access denied");

    // Plaintext to service1 is served (PERMISSIVE); its own call to service2 goes over mutual
    // TLS with its certificate, which the rule admits.
    let reply = call(lab.service1.addr, "/", None).await.unwrap();
    assert_eq!(
        reply.upstream.as_deref().map(|u| u.service.as_str()),
        Some("service2")
    );
    lab.stop().await;
}
