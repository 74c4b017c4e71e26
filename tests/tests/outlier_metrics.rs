//! Outlier detection as a user sees it on the apps' admin port.
//!
//! What it proves: when service2 v1 fails every call and service2's DestinationRule enables
//! outlier detection, service1 ejects that endpoint, and its admin `/metrics` shows
//! `mesh_outlier_ejections_total` with the cluster, the endpoint and the reason, which is what
//! `meshctl dashboard`'s ejected-endpoints panel reads.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use http::StatusCode;
use mesh_examples::app::Faults;
use mesh_tests::{Lab, LabOptions};

const OUTLIER_DR: &str = r#"apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: service2}
spec:
  host: service2
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"#;

async fn metrics(admin: std::net::SocketAddr) -> String {
    mesh_tests::get_text(&format!("http://{admin}/metrics"))
        .await
        .expect("the admin port answers /metrics")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejections_are_on_the_admin_port() {
    let options = LabOptions {
        v1_faults: Faults {
            error_rate: 1.0,
            status: StatusCode::SERVICE_UNAVAILABLE,
            ..Faults::default()
        },
        ..LabOptions::default()
    };
    let lab = Lab::start("routing", options).await.expect("lab starts");
    let before = metrics(lab.service1.admin).await;
    // No family is printed before its first sample.
    assert!(
        !before.contains("mesh_outlier_ejections_total{"),
        "{before}"
    );

    lab.write_file("04-destinationrule-subsets.yaml", OUTLIER_DR)
        .unwrap();
    lab.wait_reloaded().await.unwrap();
    for i in 0..40 {
        lab.get(&format!("/service1/{i}"), &[]).await;
    }

    let v1 = lab.service2_v1.addr;
    let after = metrics(lab.service1.admin).await;
    let line = after
        .lines()
        .find(|l| {
            l.starts_with("mesh_outlier_ejections_total{")
                && l.contains(&format!("endpoint=\"{v1}\""))
        })
        .unwrap_or_else(|| panic!("no ejection of service2 v1 ({v1}) in\n{after}"));
    // Envoy's cluster name: outbound|port|subset|host.
    assert!(line.contains("cluster=\"outbound|80||service2\""), "{line}");
    assert!(line.contains("reason=\"consecutive_5xx\""), "{line}");
    let v2 = lab.service2_v2.addr;
    assert!(
        !after.contains(&format!("endpoint=\"{v2}\"")),
        "the healthy endpoint was ejected:\n{after}"
    );
    lab.stop().await;
}
