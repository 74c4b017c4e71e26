//! `meshctl dashboard --scrape`: the demo lab in this process, traffic through its gateway, the
//! dashboard scraping the lab's admin ports; `/api/graph`, `/api/routes` and `/api/apps` show
//! the lab as it is, and the canary's observed share moves when the weights do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use meshctl::dashboard::{Dashboard, Options, Source};

fn options(urls: Vec<String>) -> Options {
    Options {
        interval: Duration::from_millis(200),
        ..Options::new(Source::Scrape(urls))
    }
}

fn share(routes: &serde_json::Value, subset: &str) -> (f64, Option<f64>) {
    let d = routes["routes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["destinations"].as_array().unwrap())
        .find(|d| d["host"] == "service2" && d["subset"] == subset)
        .unwrap_or_else(|| panic!("no service2 [{subset}] in {routes:#}"));
    (
        d["configured_share"].as_f64().unwrap(),
        d["observed_share"].as_f64(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_routes_and_apps_of_the_running_lab() {
    let lab = lab().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dash = Dashboard::start(listener, options(admin_urls(&lab))).unwrap();
    let addr = dash.local_addr();

    let traffic = Traffic::start(lab.clone(), 5000);
    traffic.wait_sent(300).await;
    let graph = wait_complete(addr).await;
    let (sent, failed) = traffic.stop().await;
    assert_eq!(failed, 0);

    assert_eq!(graph["source"], "scrape");
    assert_eq!(node_ids(&graph), NODES.map(str::to_owned));
    let node = |id: &str| {
        graph["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(node("service2:v2")["app"], "service2");
    assert_eq!(node("service2:v2")["version"], "v2");
    assert_eq!(node("gateway")["kind"], "gateway");
    let rate = |s: &str, t: &str| edge(&graph, s, t).unwrap()["rps"].as_f64().unwrap();
    for (s, t) in EDGES {
        let e = edge(&graph, s, t).unwrap();
        assert_eq!(e["error_rate"], 0.0, "{e}");
        assert_eq!(e["reporter"], "destination", "{e}");
        let p99 = e["p99_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("no p99: {e}"));
        assert!(p99 > 0.0 && p99 < 10_000.0, "{e}");
    }
    // Every request crossed each hop once: the hops' rates agree (scrapes of different apps
    // are a few milliseconds apart, hence the tolerance), and v1 takes most of service2's.
    let into_s1 = rate("gateway", "service1:v1");
    let into_s2 = rate("service1:v1", "service2:v1") + rate("service1:v1", "service2:v2");
    assert!(
        (into_s2 / into_s1 - 1.0).abs() < 0.2,
        "{into_s1} vs {into_s2}"
    );
    assert!(rate("service1:v1", "service2:v1") > rate("service1:v1", "service2:v2"));
    // No more than was sent (the rates are per second over at least the traffic's duration).
    let window = graph["window_seconds"].as_f64().unwrap();
    assert!(
        into_s1 * window <= sent as f64 * 1.2,
        "{into_s1} rps over {window} s, {sent} sent"
    );

    // Routes from the apps' /config_dump: 90/10 configured, v1 observed far above v2.
    let routes = get_json(addr, "/api/routes").await;
    let (cfg_v1, obs_v1) = share(&routes, "v1");
    let (cfg_v2, obs_v2) = share(&routes, "v2");
    assert!(
        (cfg_v1 - 0.9).abs() < 1e-9 && (cfg_v2 - 0.1).abs() < 1e-9,
        "{routes:#}"
    );
    let (obs_v1, obs_v2) = (obs_v1.unwrap(), obs_v2.unwrap());
    assert!((obs_v1 + obs_v2 - 1.0).abs() < 1e-9);
    assert!(
        obs_v1 > 0.75 && obs_v2 > 0.0,
        "observed {obs_v1} / {obs_v2}"
    );

    // Apps: every admin port answered, config generation and the reload applied.
    let apps = get_json(addr, "/api/apps").await;
    let list = apps["apps"].as_array().unwrap();
    assert_eq!(list.len(), 5, "{apps:#}");
    for a in list {
        assert_eq!(a["up"], true, "{a}");
        assert!(a["generation"].as_u64().unwrap() >= 1, "{a}");
        assert_eq!(a["last_reload"], "applied", "{a}");
    }
    let mut who: Vec<String> = list
        .iter()
        .map(|a| {
            format!(
                "{}:{}",
                a["app"].as_str().unwrap(),
                a["version"].as_str().unwrap()
            )
        })
        .collect();
    who.sort();
    assert_eq!(
        who,
        [
            "gateway:v1",
            "service1:v1",
            "service2:v1",
            "service2:v2",
            "service3:v1"
        ]
    );
    assert_eq!(apps["ejections"], serde_json::json!([]));

    // The canary moves to 0/100: the configured weights follow the apps' config, and v2's
    // observed share grows as its traffic does.
    lab.apply("canary-3-0-100").unwrap();
    lab.wait_reloaded().await.unwrap();
    let traffic = Traffic::start(lab.clone(), 5000);
    traffic.wait_sent(300).await;
    let mut moved = None;
    for _ in 0..100 {
        let routes = get_json(addr, "/api/routes").await;
        let (cfg, obs) = share(&routes, "v2");
        if cfg == 1.0 && obs.is_some_and(|o| o > obs_v2 + 0.2) {
            moved = Some(obs);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(traffic.stop().await.1, 0);
    assert!(moved.is_some(), "v2's share never grew past {obs_v2}");
    let apps = get_json(addr, "/api/apps").await;
    assert!(
        apps["apps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["generation"].as_u64().unwrap() >= 2),
        "{apps:#}"
    );

    dash.shutdown().await;
    stop_lab(lab).await;
}

#[tokio::test]
async fn the_page_is_served_and_a_down_app_is_shown_down() {
    // Nothing listens on port 9 of 127.0.0.1 here: that app is down, and says why.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dash = Dashboard::start(listener, options(vec!["127.0.0.1:9".to_owned()])).unwrap();
    let addr = dash.local_addr();
    let mut apps = serde_json::Value::Null;
    for _ in 0..50 {
        apps = get_json(addr, "/api/apps").await;
        if apps["apps"][0]["error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let app = &apps["apps"][0];
    assert_eq!(app["url"], "http://127.0.0.1:9");
    assert_eq!(app["up"], false);
    assert!(app["error"].as_str().unwrap().contains("/metrics"), "{app}");
    let graph = get_json(addr, "/api/graph").await;
    assert_eq!(graph["edges"], serde_json::json!([]));

    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let res = client
        .get(format!("http://{addr}/").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    dash.shutdown().await;
}

fn meshctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_meshctl"))
        .args(args)
        .output()
        .expect("meshctl runs")
}

/// `--kube`: the routes panel from the API server (`$KUBECONFIG`, mesh-kube's test API server),
/// a VirtualService changed through the API shown at its new weights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_mode_reads_the_routes_from_the_api_server() {
    use mesh_kube::testing::{TestApiServer, mesh_types};
    let server = TestApiServer::start().await.unwrap();
    for t in mesh_types() {
        server.register(t);
    }
    let split = |v1: u32, v2: u32| {
        serde_json::json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "service2", "namespace": "default"},
            "spec": {"hosts": ["service2"], "http": [{"route": [
                {"destination": {"host": "service2", "subset": "v1"}, "weight": v1},
                {"destination": {"host": "service2", "subset": "v2"}, "weight": v2}]}]}})
    };
    server
        .apply(
            serde_json::json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "service2", "namespace": "default"},
        "spec": {"host": "service2", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
            {"name": "v2", "labels": {"version": "v2"}}]}}),
        )
        .unwrap();
    server.apply(split(90, 10)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _dashboard = Kill(
        Command::new(env!("CARGO_BIN_EXE_meshctl"))
            .args(["dashboard", "--kube", "--interval", "200ms"])
            .args([
                "--scrape",
                "http://127.0.0.1:9",
                "--listen",
                &addr.to_string(),
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("meshctl runs"),
    );
    let wait_share = |want: f64| async move {
        let mut routes = serde_json::Value::Null;
        let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(hyper_util::client::legacy::connect::HttpConnector::new());
        for _ in 0..150 {
            // not listening yet: no answer, try again
            routes = mesh_examples::lab::get(&client, addr, "/api/routes", &[])
                .await
                .json
                .unwrap_or_default();
            let found = routes["routes"].as_array().is_some_and(|r| !r.is_empty())
                && (share(&routes, "v1").0 - want).abs() < 1e-9;
            if found {
                return routes;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no v1 share {want}: {routes:#}");
    };
    let routes = wait_share(0.9).await;
    assert_eq!(routes["from"], "kubernetes", "{routes:#}");
    server.apply(split(50, 50)).unwrap();
    wait_share(0.5).await;
}

#[test]
fn a_source_is_required() {
    let out = meshctl(&["dashboard", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--prometheus") && err.contains("--scrape"),
        "{err}"
    );
    let out = meshctl(&[
        "dashboard",
        "--prometheus",
        "http://x",
        "--scrape",
        "http://y",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn routes_from_a_config_folder() {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-split");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dash = Dashboard::start(
        listener,
        Options {
            config: Some(dir.clone()),
            ..options(Vec::new())
        },
    )
    .unwrap();
    let mut routes = serde_json::Value::Null;
    for _ in 0..50 {
        routes = get_json(dash.local_addr(), "/api/routes").await;
        if routes["routes"].as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(routes["from"], dir.display().to_string());
    assert_eq!(routes["routes"].as_array().unwrap().len(), 3, "{routes:#}");
    let (v1, observed) = share(&routes, "v1");
    assert!((v1 - 0.9).abs() < 1e-9);
    assert_eq!(observed, None, "no traffic: no observed share");
    dash.shutdown().await;
}

/// Ends the child process when dropped, whatever happened before.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_until_stopped() {
    use std::io::BufRead as _;
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_meshctl"))
            .args([
                "dashboard",
                "--listen",
                "127.0.0.1:0",
                "--scrape",
                "127.0.0.1:9",
                "--interval",
                "200ms",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("meshctl prints its address");
    // `dashboard on http://127.0.0.1:PORT/ (Ctrl-C stops)`
    let addr: std::net::SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .parse()
        .unwrap();
    // The first round may still be under way: poll (bounded) until it is in.
    let mut apps = serde_json::Value::Null;
    for _ in 0..100 {
        apps = get_json(addr, "/api/apps").await;
        if !apps["apps"][0].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(apps["apps"][0]["url"], "http://127.0.0.1:9", "{apps}");
    drop(child);
}
