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
