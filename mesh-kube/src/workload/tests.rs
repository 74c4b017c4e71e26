#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;
use crate::testing::TestApiServer;

#[tokio::test]
async fn the_own_pod_gives_labels_identity_and_the_deployment_name() {
    let server = TestApiServer::start().await.unwrap();
    server
        .apply(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "service2-v1-5d8f7c9b4-x2x9z", "namespace": "default",
                "labels": {"app": "service2", "version": "v1", "pod-template-hash": "5d8f7c9b4"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "service2-v1-5d8f7c9b4",
                    "uid": "u", "controller": true}]},
            "spec": {"serviceAccountName": "service2", "containers": [{"name": "app", "image": "x"}]},
            "status": {"podIP": "127.0.0.12"}
        }))
        .unwrap();
    let w = Workload::read(
        server.client().unwrap(),
        "default",
        "service2-v1-5d8f7c9b4-x2x9z",
    )
    .await
    .unwrap();
    assert_eq!(w.workload, "service2-v1");
    assert_eq!(w.labels["version"], "v1");
    assert_eq!(w.service_account, "service2");
    assert_eq!(w.ip.as_deref(), Some("127.0.0.12"));

    let err = Workload::read(server.client().unwrap(), "default", "nope")
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("reading pod default/nope: "),
        "{err}"
    );
}
