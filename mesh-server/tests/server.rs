//! MeshServer end to end: a real axum app on 127.0.0.1:0, wrapped in the inbound stack.

#[allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]
mod support;

use support::test_keys;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::routing::get;
use mesh_core::policy::{
    AuthzAction, AuthzPolicy, AuthzRule, MeshConfig, Operation, Origin, RateLimitPolicy,
    WorkloadSelector,
};
use mesh_core::watch::ConfigSource;
use mesh_server::{MeshServer, Workload, serve};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

const LIMIT: Duration = Duration::from_secs(10);

fn origin(kind: &str, name: &str) -> Origin {
    Origin {
        kind: kind.into(),
        name: name.into(),
        namespace: "default".into(),
        ..Origin::default()
    }
}

fn deny_admin() -> AuthzPolicy {
    AuthzPolicy {
        origin: origin("AuthorizationPolicy", "deny-admin"),
        selector: WorkloadSelector::default(),
        action: AuthzAction::Deny,
        provider: None,
        rules: vec![AuthzRule {
            to: vec![Operation {
                paths: vec!["/admin/*".into()],
                ..Operation::default()
            }],
            ..AuthzRule::default()
        }],
        dry_run: false,
    }
}

fn limit(target: &str, rps: u32) -> RateLimitPolicy {
    RateLimitPolicy {
        origin: origin("HTTPLocalRateLimitPolicy", "rl"),
        target: target.into(),
        total_rps: Some(rps),
        identity_rps: None,
        overrides: vec![],
    }
}

fn app() -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route("/admin/panel", get(|| async { "secret" }))
        .route("/whoami", get(|axum::extract::ConnectInfo(addr): axum::extract::ConnectInfo<SocketAddr>| async move { addr.ip().to_string() }))
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(mesh: &MeshServer, app: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let (stop, stopped) = oneshot::channel::<()>();
        let svc = mesh.wrap(app);
        let task = tokio::spawn(serve(listener, svc, async {
            let _ = stopped.await;
        }));
        Running {
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let done = tokio::time::timeout(LIMIT, self.task).await;
        assert!(
            matches!(done, Ok(Ok(Ok(())))),
            "server did not stop cleanly: {done:?}"
        );
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(LIMIT)
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"))
}

async fn get_status(c: &reqwest::Client, url: &str) -> (u16, Option<String>, String) {
    let res = c
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("request {url}: {e}"));
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.text().await.unwrap_or_default();
    (status, retry, body)
}

#[tokio::test]
async fn passes_through_and_denies() {
    let config = MeshConfig {
        authorization: vec![deny_admin()],
        ..MeshConfig::default()
    };
    let mesh = MeshServer::new(Workload::new("service1"), ConfigSource::fixed(config));
    let server = Running::start(&mesh, app()).await;
    let c = client();
    for _ in 0..3 {
        assert_eq!(
            get_status(&c, &server.url("/hello")).await,
            (200, None, "hello".into())
        );
        let (status, _, body) = get_status(&c, &server.url("/admin/panel")).await;
        assert_eq!((status, body.as_str()), (403, "RBAC: access denied"));
    }
    // The connection info reaches the app.
    assert_eq!(get_status(&c, &server.url("/whoami")).await.2, "127.0.0.1");
    server.stop().await;
}

#[tokio::test]
async fn limits_with_429_and_retry_after() {
    let config = MeshConfig {
        rate_limits: vec![limit("service1", 1)],
        ..MeshConfig::default()
    };
    let mesh = MeshServer::new(Workload::new("service1"), ConfigSource::fixed(config));
    let server = Running::start(&mesh, app()).await;
    let c = client();
    let mut ok = 0;
    let mut limited = None;
    // One token per second: a 429 comes as soon as two requests share a second (bounded loop,
    // no timing assumption beyond "20 local requests do not all take a second each").
    for _ in 0..20 {
        match get_status(&c, &server.url("/hello")).await {
            (200, _, _) => ok += 1,
            (429, retry, body) => {
                limited = Some((retry, body));
                break;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(ok >= 1, "the first request is admitted");
    let (retry, body) = limited.unwrap_or_else(|| panic!("never limited"));
    assert_eq!(body, "local_rate_limited");
    assert_eq!(retry.as_deref(), Some("1"));
    server.stop().await;
}

#[tokio::test]
async fn other_workloads_are_not_affected() {
    let config = MeshConfig {
        rate_limits: vec![limit("service2", 1)],
        ..MeshConfig::default()
    };
    let mut deny_all = deny_admin();
    deny_all
        .selector
        .match_labels
        .insert("app".into(), "service2".into());
    let config = MeshConfig {
        authorization: vec![deny_all],
        ..config
    };
    let mesh = MeshServer::new(
        Workload::new("service1").version("v1"),
        ConfigSource::fixed(config),
    );
    let server = Running::start(&mesh, app()).await;
    let c = client();
    for _ in 0..5 {
        assert_eq!(get_status(&c, &server.url("/admin/panel")).await.0, 200);
    }
    server.stop().await;
}

#[tokio::test]
async fn reloads_take_effect_on_the_next_request() {
    let cell = Arc::new(ArcSwap::from_pointee(MeshConfig::default()));
    let mesh = MeshServer::new(Workload::new("service1"), ConfigSource::swap(cell.clone()));
    let server = Running::start(&mesh, app()).await;
    let c = client();
    assert_eq!(get_status(&c, &server.url("/admin/panel")).await.0, 200);
    cell.store(Arc::new(MeshConfig {
        authorization: vec![deny_admin()],
        ..MeshConfig::default()
    }));
    assert_eq!(get_status(&c, &server.url("/admin/panel")).await.0, 403);
    assert_eq!(get_status(&c, &server.url("/hello")).await.0, 200);
    cell.store(Arc::new(MeshConfig::default()));
    assert_eq!(get_status(&c, &server.url("/admin/panel")).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (s, r) = (started.clone(), release.clone());
    let app = Router::new().route(
        "/slow",
        get(move || {
            let (s, r) = (s.clone(), r.clone());
            async move {
                s.notify_one();
                r.notified().await;
                "done"
            }
        }),
    );
    let mesh = MeshServer::new(
        Workload::new("service1"),
        ConfigSource::fixed(MeshConfig::default()),
    );
    let mut server = Running::start(&mesh, app).await;
    let c = client();
    let url = server.url("/slow");
    let in_flight = tokio::spawn(async move { get_status(&c, &url).await });
    tokio::time::timeout(LIMIT, started.notified())
        .await
        .unwrap_or_else(|_| panic!("request never started"));
    if let Some(stop) = server.stop.take() {
        let _ = stop.send(());
    }
    // The server waits for the request: it has not finished yet.
    tokio::task::yield_now().await;
    assert!(!server.task.is_finished());
    release.notify_one();
    let answer = tokio::time::timeout(LIMIT, in_flight).await;
    assert!(
        matches!(&answer, Ok(Ok((200, _, body))) if body == "done"),
        "{answer:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn observability_layers_see_refusals() {
    let metrics = mesh_telemetry::MeshMetrics::new();
    let config = MeshConfig {
        authorization: vec![deny_admin()],
        ..MeshConfig::default()
    };
    let mesh = MeshServer::new(
        Workload::new("service1").version("v1"),
        ConfigSource::fixed(config),
    )
    .with_metrics(metrics.clone());
    let server = Running::start(&mesh, app()).await;
    let c = client();
    let res = c
        .get(server.url("/admin/panel"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(res.status().as_u16(), 403);
    assert!(
        res.headers().contains_key("x-request-id"),
        "the request id layer answers even refusals"
    );
    assert_eq!(get_status(&c, &server.url("/hello")).await.0, 200);
    server.stop().await;
    let text = metrics.encode_prometheus();
    let has = |needle: &[&str]| text.lines().any(|l| needle.iter().all(|n| l.contains(n)));
    assert!(
        has(&["istio_requests_total{", "response_code=\"403\""]),
        "{text}"
    );
    assert!(
        has(&["istio_requests_total{", "response_code=\"200\""]),
        "{text}"
    );
    assert!(
        has(&["mesh_authz_denied_total{", "default/deny-admin"]),
        "{text}"
    );
}

#[tokio::test]
async fn jwt_tokens_identify_clients_for_authz_and_limits() {
    use jsonwebtoken::Algorithm;
    use mesh_core::policy::{AuthnPolicy, JwksSource, JwtRule, Source};
    use test_keys::{claims, jwks, sign};

    let key = test_keys::key(Algorithm::ES256, "k", true);
    let origin = |kind: &str| Origin {
        kind: kind.into(),
        name: "p".into(),
        namespace: "default".into(),
        ..Origin::default()
    };
    let config = MeshConfig {
        authentication: vec![AuthnPolicy {
            origin: origin("RequestAuthentication"),
            selector: Default::default(),
            rules: vec![JwtRule {
                issuer: "https://iss".into(),
                audiences: vec![],
                jwks: JwksSource::Inline(jwks(&[&key])),
                from_headers: vec![],
                from_params: vec![],
                from_cookies: vec![],
                output_payload_to_header: None,
                output_claim_to_headers: vec![],
                forward_original_token: false,
                timeout: Duration::from_secs(5),
                space_delimited_claims: Vec::new(),
            }],
            require_token: false,
            trigger_rules: vec![],
        }],
        authorization: vec![AuthzPolicy {
            origin: origin("AuthorizationPolicy"),
            selector: Default::default(),
            action: AuthzAction::Allow,
            provider: None,
            rules: vec![AuthzRule {
                from: vec![Source {
                    request_principals: vec!["https://iss/*".into()],
                    ..Source::default()
                }],
                ..AuthzRule::default()
            }],
            dry_run: false,
        }],
        rate_limits: vec![RateLimitPolicy {
            origin: origin("HTTPLocalRateLimitPolicy"),
            target: "service1".into(),
            total_rps: None,
            identity_rps: Some(1),
            overrides: vec![],
        }],
        ..MeshConfig::default()
    };
    let mesh = MeshServer::new(Workload::new("service1"), ConfigSource::fixed(config));
    let app = Router::new().route("/", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, mesh.wrap(app), async {
        let _ = stopped.await;
    }));
    let c = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let send = |token: Option<String>| {
        let c = c.clone();
        async move {
            let mut req = c.get(format!("http://{addr}/"));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap_or_else(|e| panic!("{e}"));
            (res.status().as_u16(), res.text().await.unwrap_or_default())
        }
    };
    let token = sign(&key, &claims("https://iss"));
    assert_eq!(
        send(None).await,
        (403, "RBAC: access denied".into()),
        "no token, no principal"
    );
    assert_eq!(
        send(Some("not.a.token".into())).await.0,
        401,
        "a bad token is refused by authentication"
    );
    assert_eq!(send(Some(token.clone())).await, (200, "ok".into()));
    // One request per second for alice: a 429 comes as soon as two share a second (bounded).
    let mut limited = false;
    for _ in 0..20 {
        if send(Some(token.clone())).await.0 == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "the verified identity is rate limited");
    let _ = stop.send(());
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(10), task).await,
        Ok(Ok(Ok(())))
    ));
}
