//! The admin server on a real socket: `/metrics` after a request through the server layers,
//! `/healthz` readiness, `/config_dump`, graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use mesh_core::policy::{
    Destination, HttpRoute, MeshConfig, Origin, RouteAction, VirtualService, WeightedDestination,
};
use mesh_server::admin::{AdminServer, ConfigView, mesh_config_view};
use mesh_server::metrics::{ServerMetricsConfig, ServerMetricsLayer};
use mesh_server::request_id::RequestIdLayer;
use mesh_server::trace::{TraceConfig, TraceLayer};
use mesh_telemetry::MeshMetrics;
use serde_json::json;

fn empty_view() -> ConfigView {
    Arc::new(|| json!({}))
}

#[tokio::test]
async fn metrics_after_one_request_through_the_server_layers() {
    let metrics = MeshMetrics::new();
    let admin = AdminServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        metrics.clone(),
        empty_view(),
    )
    .await
    .unwrap();

    let mut labels = mesh_core::policy::Labels::new();
    labels.insert("app".into(), "service2".into());
    labels.insert("version".into(), "v1".into());
    let app = Router::new()
        .route("/hello", get(|| async { "hi" }))
        .layer(RequestIdLayer::new())
        .layer(TraceLayer::new(TraceConfig::default()))
        .layer(ServerMetricsLayer::new(
            metrics.clone(),
            ServerMetricsConfig::for_workload("service2-v1", Some("default"), &labels),
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::new();
    let before = http
        .get(format!("http://{}/metrics", admin.local_addr()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !before.contains("istio_requests_total{"),
        "no sample before the request:\n{before}"
    );

    let resp = http
        .get(format!("http://{addr}/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));

    let scrape = http
        .get(format!("http://{}/metrics", admin.local_addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), 200);
    let ct = scrape
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = scrape.text().await.unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("istio_requests_total{") && l.contains("reporter=\"destination\""))
        .unwrap_or_else(|| panic!("no destination series in:\n{text}"));
    assert!(line.ends_with("} 1"), "{line}");
    for want in [
        "response_code=\"200\"",
        "destination_workload=\"service2-v1\"",
        "destination_version=\"v1\"",
        "destination_service=\"service2\"",
    ] {
        assert!(line.contains(want), "{want} not in {line}");
    }
    assert!(text.contains("# TYPE istio_request_duration_milliseconds histogram"));

    // OpenMetrics on request.
    let om = http
        .get(format!("http://{}/metrics", admin.local_addr()))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(
        om.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(om.text().await.unwrap().ends_with("# EOF\n"));

    admin.shutdown().await;
    server.abort();
}

#[tokio::test]
async fn healthz_follows_readiness_and_shutdown_closes_the_port() {
    let admin = AdminServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        MeshMetrics::new(),
        empty_view(),
    )
    .await
    .unwrap();
    let url = format!("http://{}/healthz", admin.local_addr());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok\n");
    admin.set_ready(false);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 503);
    admin.set_ready(true);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    let addr = admin.local_addr();
    admin.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed after shutdown"
    );
}

#[tokio::test]
async fn config_dump_shows_the_active_config() {
    let mut config = MeshConfig::default();
    config.virtual_services.push(Arc::new(VirtualService {
        origin: Origin {
            kind: "VirtualService".into(),
            name: "service2".into(),
            namespace: "default".into(),
            ..Origin::default()
        },
        hosts: vec!["service2".into()],
        gateways: vec![],
        http: vec![HttpRoute {
            name: Some("split".into()),
            matches: vec![],
            action: RouteAction::Forward(vec![WeightedDestination {
                destination: Destination {
                    host: "service2".into(),
                    subset: Some("v1".into()),
                    port: None,
                },
                weight: 100,
                headers: Default::default(),
            }]),
            rewrite: None,
            timeout: None,
            retries: Default::default(),
            fault: None,
            mirrors: vec![],
            headers: Default::default(),
            cors: None,
        }],
    }));
    let config = Arc::new(config);
    let view: ConfigView =
        Arc::new(move || mesh_config_view(&config, 7, Some(json!({ "ok": true }))));
    let admin = AdminServer::bind("127.0.0.1:0".parse().unwrap(), MeshMetrics::new(), view)
        .await
        .unwrap();
    let v: serde_json::Value = reqwest::get(format!("http://{}/config_dump", admin.local_addr()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["generation"], 7);
    assert_eq!(v["last_reload"]["ok"], true);
    assert_eq!(v["counts"]["virtual_services"], 1);
    assert_eq!(v["virtual_services"][0]["name"], "default/service2");
    assert_eq!(
        v["virtual_services"][0]["http"][0]["action"]["route"][0]["subset"],
        "v1"
    );
    assert_eq!(
        v["routes_by_host"]["service2"][0]["virtual_service"],
        "default/service2"
    );
    admin.shutdown().await;
}

#[tokio::test]
async fn config_dump_from_a_config_store_reports_refused_reloads() {
    let store = mesh_core::watch::ConfigStore::new(MeshConfig::default());
    let dir = std::env::temp_dir().join(format!("obs-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata:\n  name: x\nspec:\n  hosts: [a]\n  bogusField: 1\n",
    )
    .unwrap();
    assert!(store.reload_from(&[&bad]).is_err());
    let admin = AdminServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        MeshMetrics::new(),
        mesh_server::admin::config_store_view(store.clone()),
    )
    .await
    .unwrap();
    let v: serde_json::Value = reqwest::get(format!("http://{}/config_dump", admin.local_addr()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["generation"], 1, "{v:#}");
    assert_eq!(v["last_reload"]["ok"], false, "{v:#}");
    assert!(
        v["last_reload"]["errors"][0]
            .as_str()
            .unwrap()
            .contains("bad.yaml"),
        "{v:#}"
    );
    assert_eq!(v["counts"]["virtual_services"], 0);
    admin.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
