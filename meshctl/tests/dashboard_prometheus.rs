//! `meshctl dashboard --prometheus`: a real Prometheus (Debian's `prometheus`) scrapes the demo
//! lab's admin ports every second; the dashboard reading it shows the same graph as one
//! scraping the apps itself, and its numbers are what a direct PromQL query to that Prometheus
//! returns at the same instant. Skips, saying why, when `prometheus` is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use meshctl::dashboard::fetch::{Fetch, encode};
use meshctl::dashboard::graph::node_id;
use meshctl::dashboard::prometheus::vector;
use meshctl::dashboard::{Dashboard, Options, Source};
use serde_json::Value;

/// A Prometheus process, ended by its PID when dropped.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn scrape_config(lab: &mesh_examples::lab::Lab) -> String {
    let mut out = String::from(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: mesh\n    metrics_path: /metrics\n    static_configs:\n",
    );
    for (app, version, s) in [
        ("gateway", "v1", &lab.gateway),
        ("service1", "v1", &lab.service1),
        ("service2", "v1", &lab.service2_v1),
        ("service2", "v2", &lab.service2_v2),
        ("service3", "v1", &lab.service3),
    ] {
        out.push_str(&format!(
            "      - targets: ['{}']\n        labels: {{app: {app}, version: {version}}}\n",
            s.admin
        ));
    }
    out
}

async fn start_prometheus(lab: &mesh_examples::lab::Lab) -> Option<Prometheus> {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, scrape_config(lab)).unwrap();
    let port = free_port();
    let child = match Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            println!(
                "skipped: cannot run `prometheus` ({e}); install it with `apt-get install -y prometheus`"
            );
            return None;
        }
    };
    let p = Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let fetch = Fetch::new();
    for _ in 0..300 {
        if fetch.get(&format!("{}/-/ready", p.url)).await.is_ok() {
            return Some(p);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("prometheus never became ready at {}", p.url);
}

async fn instant(prom: &str, promql: &str, at: f64) -> Vec<meshctl::dashboard::promtext::Sample> {
    let url = format!("{prom}/api/v1/query?query={}&time={at:.3}", encode(promql));
    let body = Fetch::new().get(&url).await.unwrap();
    vector(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap()
}

fn edge_key(s: &meshctl::dashboard::promtext::Sample) -> (String, String) {
    (
        node_id(s.label("source_app"), s.label("source_version")),
        node_id(s.label("destination_app"), s.label("destination_version")),
    )
}

async fn start_dashboard(source: Source) -> Dashboard {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = Options {
        interval: Duration::from_millis(500),
        ..Options::new(source)
    };
    Dashboard::start(listener, options).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_mode_matches_promql_and_the_scraped_graph() {
    let lab = lab().await;
    let Some(prom) = start_prometheus(&lab).await else {
        stop_lab(lab).await;
        return;
    };
    let traffic = Traffic::start(lab.clone(), 20_000);
    let from_prom = start_dashboard(Source::Prometheus(prom.url.clone())).await;
    let scraped = start_dashboard(Source::Scrape(admin_urls(&lab))).await;
    traffic.wait_sent(100).await;

    let graph = wait_complete(from_prom.local_addr()).await;
    let direct = wait_complete(scraped.local_addr()).await;
    assert_eq!(traffic.stop().await.1, 0);
    assert_eq!(graph["source"], "prometheus");
    assert_eq!(node_ids(&graph), NODES.map(str::to_owned));
    assert_eq!(
        node_ids(&graph),
        node_ids(&direct),
        "the same graph from both sources"
    );
    let edges = |g: &Value| {
        let mut e: Vec<(String, String)> = g["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["source"].as_str().unwrap().to_owned(),
                    e["target"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        e.sort();
        e
    };
    assert_eq!(edges(&graph), edges(&direct));

    // The dashboard's numbers are Prometheus' own, queried at the instant it used.
    let at = graph["at"].as_f64().unwrap();
    let rates = instant(
        &prom.url,
        "sum(rate(istio_requests_total{reporter=\"destination\"}[60s])) by (source_app, source_version, destination_app, destination_version)",
        at,
    )
    .await;
    let mut want: BTreeMap<(String, String), f64> = BTreeMap::new();
    for s in &rates {
        *want.entry(edge_key(s)).or_insert(0.0) += s.value;
    }
    assert_eq!(want.len(), EDGES.len(), "{rates:?}");
    for ((s, t), rps) in &want {
        let e = edge(&graph, s, t).unwrap_or_else(|| panic!("no {s} -> {t}"));
        let got = e["rps"].as_f64().unwrap();
        assert!(
            close(got, *rps),
            "{s} -> {t}: dashboard {got}, PromQL {rps}"
        );
        assert!(*rps > 0.0);
    }
    let p99 = instant(
        &prom.url,
        "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter=\"destination\"}[60s])) by (le, source_app, source_version, destination_app, destination_version))",
        at,
    )
    .await;
    let mut checked = 0;
    for s in p99.iter().filter(|s| s.value.is_finite()) {
        let (src, dst) = edge_key(s);
        let got = edge(&graph, &src, &dst).unwrap()["p99_ms"]
            .as_f64()
            .unwrap();
        assert!(
            close(got, s.value),
            "{src} -> {dst}: p99 {got} vs {}",
            s.value
        );
        checked += 1;
    }
    assert_eq!(checked, EDGES.len(), "{p99:?}");

    // Apps from Prometheus' targets, with each admin port's config state.
    let apps = get_json(from_prom.local_addr(), "/api/apps").await;
    let list = apps["apps"].as_array().unwrap();
    assert_eq!(list.len(), 5, "{apps:#}");
    for a in list {
        assert_eq!(a["up"], true, "{a}");
        assert_eq!(a["last_reload"], "applied", "{a}");
        assert!(a["generation"].as_u64().unwrap() >= 1, "{a}");
    }
    let routes = get_json(from_prom.local_addr(), "/api/routes").await;
    assert!(
        !routes["routes"].as_array().unwrap().is_empty(),
        "{routes:#}"
    );

    // The page draws the same graph from Prometheus' numbers, in a real browser.
    if let Some(bin) = chromium() {
        let profile = tempfile::tempdir().unwrap();
        let (dir, url) = (
            profile.path().to_owned(),
            format!("http://{}/", from_prom.local_addr()),
        );
        let out = tokio::task::spawn_blocking(move || {
            run_chromium(bin, &dir, &["--dump-dom".to_owned()], &url)
        })
        .await
        .unwrap();
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(dom.contains("from prometheus"), "{dom}");
        for (s, t) in EDGES {
            let drawn = format!("data-source=\"{s}\" data-target=\"{t}\"");
            assert!(dom.contains(&drawn), "edge {s} -> {t} not drawn:\n{dom}");
        }
        assert!(
            dom.contains("histogram_quantile(0.99"),
            "the PromQL is listed:\n{dom}"
        );
    } else {
        println!("no chromium: the page itself is not checked in Prometheus mode");
    }

    from_prom.shutdown().await;
    scraped.shutdown().await;
    drop(prom);
    stop_lab(lab).await;
}
