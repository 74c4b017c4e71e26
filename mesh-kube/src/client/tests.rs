#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use super::*;
use crate::testing::{TestApiServer, TestServerOptions};

/// A kubeconfig with a bearer token and an `http://` server: the token is sent.
#[tokio::test]
async fn a_kubeconfig_token_is_sent_over_plain_http() {
    let server = TestApiServer::start_with(TestServerOptions {
        token: Some("s3cret".into()),
        ..TestServerOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).unwrap();
    let client = connect_kubeconfig(&path).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // a wrong token is refused by the server
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("s3cret", "wrong"),
    )
    .unwrap();
    let client = connect_kubeconfig(&path).await.unwrap();
    let err = Api::<Pod>::namespaced(client, "default")
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 401),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_missing_kubeconfig_is_a_config_error() {
    let Err(err) = connect_kubeconfig(std::path::Path::new("/nonexistent/kubeconfig")).await else {
        panic!("a missing kubeconfig must fail");
    };
    assert!(matches!(err, ConnectError::Config(_)), "{err:?}");
}

/// An `https://` server: the client builds its rustls config (aws-lc-rs) without a panic, and a
/// server that is not there is an error, not a hang.
#[tokio::test]
async fn an_https_kubeconfig_builds_a_client() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
    )
    .unwrap();
    let client = connect_kubeconfig(&path).await.unwrap();
    assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    let pods: Api<Pod> = Api::namespaced(client, "default");
    assert!(pods.list(&ListParams::default()).await.is_err());
}
