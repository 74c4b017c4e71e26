//! Authorization against a real server on 127.0.0.1:0, configured by Istio YAML.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use http::Request;
use mesh_core::watch::ConfigSource;
use mesh_server::context::Principal;
use mesh_server::{MeshServer, Workload, serve};
use tokio::sync::oneshot;

const LIMIT: Duration = Duration::from_secs(10);

const POLICIES: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api-readers, namespace: default}
spec:
  selector: {matchLabels: {app: service1}}
  action: ALLOW
  rules:
  - to: [{operation: {methods: ["GET"], paths: ["/api/*"]}}]
  - from: [{source: {requestPrincipals: ["https://issuer.example/*"]}}]
    to: [{operation: {methods: ["POST"], paths: ["/api/*"]}}]
    when:
    - key: request.auth.claims[realm][roles]
      values: ["writer"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-internal, namespace: default}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["*/internal"]}}]
  - from: [{source: {ipBlocks: ["127.0.0.0/8"]}}]
    when: [{key: "request.headers[x-block-me]", values: ["*"]}]
"#;

async fn start() -> (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let loaded = mesh_core::load::load_str("policies.yaml", POLICIES)
        .unwrap_or_else(|e| panic!("config: {e}"));
    assert_eq!(loaded.config.authorization.len(), 2);
    let mesh = MeshServer::new(
        Workload::new("service1"),
        ConfigSource::fixed(loaded.config),
    );
    let app = Router::new()
        .route(
            "/api/items",
            get(|| async { "items" }).post(|| async { "created" }),
        )
        .route("/api/internal", get(|| async { "internal" }))
        .route("/other", get(|| async { "other" }))
        .route("/api/x", post(|| async { "x" }));
    // Stands in for JWT authentication: the test names the verified user in a header.
    let stack = tower::ServiceBuilder::new()
        .map_request(|mut req: Request<axum::body::Body>| {
            let user = req
                .headers()
                .get("x-test-user")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Some(user) = user {
                let claims = serde_json::json!({
                    "iss": "https://issuer.example",
                    "sub": user.clone(),
                    "realm": {"roles": [user]},
                });
                req.extensions_mut().insert(Principal::from_claims(claims));
            }
            req
        })
        .service(mesh.wrap(app));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(serve(listener, stack, async {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

#[tokio::test]
async fn istio_yaml_policies_decide() {
    let (addr, stop, task) = start().await;
    let c = reqwest::Client::builder()
        .no_proxy()
        .timeout(LIMIT)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let status =
        |method: reqwest::Method, path: &'static str, user: Option<&'static str>, block: bool| {
            let c = c.clone();
            async move {
                let mut req = c.request(method, format!("http://{addr}{path}"));
                if let Some(u) = user {
                    req = req.header("x-test-user", u);
                }
                if block {
                    req = req.header("x-block-me", "yes");
                }
                let res = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
                let code = res.status().as_u16();
                (code, res.text().await.unwrap_or_default())
            }
        };
    use reqwest::Method;
    assert_eq!(
        status(Method::GET, "/api/items", None, false).await,
        (200, "items".into())
    );
    assert_eq!(
        status(Method::GET, "/other", None, false).await.0,
        403,
        "no ALLOW rule matches"
    );
    assert_eq!(
        status(Method::POST, "/api/items", None, false).await.0,
        403,
        "POST needs a principal"
    );
    assert_eq!(
        status(Method::POST, "/api/items", Some("reader"), false)
            .await
            .0,
        403,
        "and the writer role"
    );
    assert_eq!(
        status(Method::POST, "/api/items", Some("writer"), false).await,
        (200, "created".into())
    );
    assert_eq!(
        status(Method::GET, "/api/internal", None, false).await,
        (403, "RBAC: access denied".into())
    );
    assert_eq!(
        status(Method::GET, "/api/items", None, true).await.0,
        403,
        "DENY by source ip and header"
    );
    let _ = stop.send(());
    assert!(matches!(
        tokio::time::timeout(LIMIT, task).await,
        Ok(Ok(Ok(())))
    ));
}
