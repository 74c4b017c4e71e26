//! `istio.io/dry-run: "true"` AuthorizationPolicies against a real server: never enforced, their
//! shadow result logged and counted. Before, a dry-run DENY denied real traffic and a dry-run
//! ALLOW denied every other path.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the test failing

use std::net::SocketAddr;

use axum::Router;
use mesh_server::server::ConfigSource;
use mesh_server::{MeshServer, Workload, serve};
use mesh_telemetry::MeshMetrics;
use tokio::sync::oneshot;

const POLICIES: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: trial-deny
  namespace: default
  annotations: {istio.io/dry-run: "true"}
spec:
  selector: {matchLabels: {app: service1}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/private"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: trial-allow
  namespace: default
  annotations: {istio.io/dry-run: "true"}
spec:
  selector: {matchLabels: {app: service1}}
  action: ALLOW
  rules: [{to: [{operation: {paths: ["/public"]}}]}]
"#;

async fn start(metrics: MeshMetrics) -> (SocketAddr, oneshot::Sender<()>) {
    let loaded = mesh_core::load::load_str("policies.yaml", POLICIES)
        .unwrap_or_else(|e| panic!("config: {e}"));
    assert!(loaded.config.authorization.iter().all(|p| p.dry_run));
    let mesh = MeshServer::new(
        Workload::new("service1"),
        ConfigSource::fixed(loaded.config),
    )
    .with_metrics(metrics);
    let app = Router::new().fallback(|| async { "served" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, mesh.wrap(app), async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

fn count(text: &str, policy: &str, action: &str, result: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("mesh_authz_dry_run_total{"))
        .filter(|l| {
            l.contains(&format!("policy=\"{policy}\""))
                && l.contains(&format!("action=\"{action}\""))
                && l.contains(&format!("result=\"{result}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn dry_run_policies_are_reported_not_enforced() {
    let metrics = MeshMetrics::new();
    let (addr, _stop) = start(metrics.clone()).await;
    let client = reqwest::Client::new();
    for path in ["/private", "/public", "/other", "/private"] {
        let res = client
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path} was enforced");
        assert_eq!(res.text().await.unwrap(), "served");
    }
    let text = metrics.encode_prometheus();
    assert_eq!(
        count(&text, "default/trial-deny", "DENY", "shadow_denied"),
        2,
        "{text}"
    );
    assert_eq!(count(&text, "none", "DENY", "shadow_allowed"), 2, "{text}");
    assert_eq!(
        count(&text, "default/trial-allow", "ALLOW", "shadow_allowed"),
        1,
        "{text}"
    );
    assert_eq!(count(&text, "none", "ALLOW", "shadow_denied"), 3, "{text}");
}
