//! Istio's own Grafana dashboards, unchanged, against a real Prometheus scraping the apps.
//!
//! The test starts the article's apps (the 90/10 split, so both versions of service2 serve),
//! sends traffic through the gateway, starts Debian's `prometheus` on loopback with a generated
//! scrape config for every app's admin port, and then runs every panel query of Istio's mesh,
//! service and workload dashboards (`shared/istio-dashboards/`), with the dashboard variables
//! filled as Grafana would. Every query that applies to this traffic must return data: HTTP over
//! plain text. TCP-only panels and the panels that select `mutual_tls` traffic alone are counted
//! apart, as not applicable to this set-up. It also checks Kiali's graph query (both reporters,
//! no `unknown` where the value is known, no double counting) and runs `promtool check metrics`
//! on each app's `/metrics`.
//!
//! Without `prometheus` (or without the dashboards beside the checkout) it prints why and skips.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mesh_tests::{Lab, LabOptions};
use serde_json::Value;

/// Ends the Prometheus this test started, by its PID.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

fn dashboards_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/istio-dashboards");
    dir.join("istio-mesh-dashboard.gen.json")
        .is_file()
        .then_some(dir)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn start_prometheus(binary: &Path, targets: &[SocketAddr]) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: mesh\n    static_configs:\n      - targets: [{}]\n",
        list.join(", ")
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    Prometheus {
        child,
        addr,
        _dir: dir,
    }
}

/// Percent-encodes a query parameter value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The result vector of an instant query (empty on any error).
async fn query(prom: SocketAddr, promql: &str) -> Vec<Value> {
    let url = format!("http://{prom}/api/v1/query?query={}", encode(promql));
    let Some(text) = mesh_tests::get_text(&url).await else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Every panel query of a dashboard (nested rows included), with its panel title.
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("").to_owned();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((title.clone(), e.to_owned()));
                }
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// The dashboard variables as Grafana fills them for one selection: `service2` and its
/// `service2-v1` workload in `default`, both reporters, "All" for the rest.
fn fill(expr: &str) -> String {
    let mut e = expr.to_owned();
    for (var, value) in [
        ("$__rate_interval", "15s"),
        ("$qrep", "source|destination"),
        ("$service", "service2"),
        ("$workload", "service2-v1"),
        ("$namespace", "default"),
        ("$srcns", ".*"),
        ("$srcwl", ".*"),
        ("$dstns", ".*"),
        ("$dstwl", ".*"),
        ("$dstsvc", ".*"),
    ] {
        e = e.replace(var, value);
    }
    e
}

/// Why a query cannot show data for plain-text HTTP traffic, if it cannot.
fn not_applicable(expr: &str) -> Option<&'static str> {
    if expr.contains("istio_tcp_") && !expr.contains("istio_request") {
        return Some("TCP");
    }
    let mtls_only = expr.contains("connection_security_policy=\"mutual_tls\"")
        || expr.contains("destination_principal=~\"spiffe.*\"");
    mtls_only.then_some("mutual TLS only")
}

async fn traffic(lab: &Lab, n: usize) {
    for i in 0..n {
        let path = if i % 3 == 0 {
            format!("/service2/t{i}")
        } else {
            format!("/service1/t{i}")
        };
        let _ = lab.get(&path, &[]).await;
    }
}

/// The split scenario's lab (with `options`), scraped by a Prometheus of ours, with traffic
/// until every app has been scraped with data twice.
async fn scraped_lab(prometheus: &Path, options: LabOptions) -> (Lab, Prometheus, [SocketAddr; 5]) {
    let lab = Lab::start("split", options).await.expect("lab starts");
    let admins = [
        lab.gateway.admin,
        lab.service1.admin,
        lab.service2_v1.admin,
        lab.service2_v2.admin,
        lab.service3.admin,
    ];
    let prom = start_prometheus(prometheus, &admins);

    // Traffic while Prometheus scrapes, until every app has been scraped with data twice (rates
    // need two samples), bounded.
    let mut ready = false;
    for _ in 0..60 {
        traffic(&lab, 30).await;
        let up = query(
            prom.addr,
            "count(count_over_time(istio_requests_total[30s]) >= 2) by (instance)",
        )
        .await;
        if up.len() == admins.len() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(ready, "Prometheus never scraped every app twice");
    traffic(&lab, 60).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    (lab, prom, admins)
}

/// The panel queries of Istio's three dashboards, with their file and title.
fn dashboard_queries(dashboards: &Path) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    for file in [
        "istio-mesh-dashboard.gen.json",
        "istio-service-dashboard.json",
        "istio-workload-dashboard.json",
    ] {
        let text = std::fs::read_to_string(dashboards.join(file)).unwrap();
        let dashboard: Value = serde_json::from_str(&text).unwrap();
        for (title, expr) in panel_queries(&dashboard) {
            out.push((file, title, expr));
        }
    }
    out
}

/// With every app on a workload certificate (the lab's `mtls` option: auto-mTLS on every hop),
/// the panels that select `mutual_tls` traffic alone show data too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istios_mutual_tls_panels_show_the_mesh_under_mtls() {
    let Some(prometheus) = which("prometheus") else {
        eprintln!("skipped: no `prometheus` binary (apt-get install -y prometheus)");
        return;
    };
    let Some(dashboards) = dashboards_dir() else {
        eprintln!(
            "skipped: Istio's dashboards are not beside the checkout (../shared/istio-dashboards)"
        );
        return;
    };
    let options = LabOptions {
        mtls: true,
        ..LabOptions::default()
    };
    let (lab, prom, _) = scraped_lab(&prometheus, options).await;
    let mut mtls_queries = 0;
    let mut empty = Vec::new();
    for (file, title, expr) in dashboard_queries(&dashboards) {
        if not_applicable(&expr) != Some("mutual TLS only") {
            continue;
        }
        mtls_queries += 1;
        let promql = fill(&expr);
        if query(prom.addr, &promql).await.is_empty() {
            empty.push(format!("{file}: {title}: {promql}"));
        }
    }
    eprintln!(
        "{mtls_queries} mutual-TLS-only panel queries, {} returned data",
        mtls_queries - empty.len()
    );
    assert!(mtls_queries >= 20, "too few queries found: {mtls_queries}");
    assert!(
        empty.is_empty(),
        "{} of {mtls_queries} mutual-TLS-only panel queries returned no data:\n{}",
        empty.len(),
        empty.join("\n")
    );
    drop(prom);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istios_dashboards_and_kialis_graph_show_the_mesh() {
    let Some(prometheus) = which("prometheus") else {
        eprintln!("skipped: no `prometheus` binary (apt-get install -y prometheus)");
        return;
    };
    let Some(dashboards) = dashboards_dir() else {
        eprintln!(
            "skipped: Istio's dashboards are not beside the checkout (../shared/istio-dashboards)"
        );
        return;
    };
    let (lab, prom, admins) = scraped_lab(&prometheus, LabOptions::default()).await;

    // Every applicable panel query of Istio's three dashboards returns data.
    let mut applicable = 0;
    let mut skipped = Vec::new();
    let mut empty = Vec::new();
    for (file, title, expr) in dashboard_queries(&dashboards) {
        if let Some(why) = not_applicable(&expr) {
            skipped.push((why, file, title));
            continue;
        }
        applicable += 1;
        let promql = fill(&expr);
        if query(prom.addr, &promql).await.is_empty() {
            empty.push(format!("{file}: {title}: {promql}"));
        }
    }
    eprintln!(
        "{applicable} applicable panel queries, {} returned data; {} not applicable ({} TCP, {} mutual TLS only)",
        applicable - empty.len(),
        skipped.len(),
        skipped.iter().filter(|s| s.0 == "TCP").count(),
        skipped.iter().filter(|s| s.0 != "TCP").count(),
    );
    assert!(applicable >= 60, "too few queries found: {applicable}");
    assert!(
        empty.is_empty(),
        "{} of {applicable} applicable panel queries returned no data:\n{}",
        empty.len(),
        empty.join("\n")
    );

    // Kiali's versioned app graph: one edge per caller → callee workload, from both reporters,
    // with every label known.
    let graph = query(
        prom.addr,
        "sum(rate(istio_requests_total{response_code=~\".+\"}[1m])) by (reporter, source_cluster, source_workload_namespace, source_workload, source_app, source_version, destination_cluster, destination_service_namespace, destination_service, destination_workload_namespace, destination_workload, destination_app, destination_version)",
    )
    .await;
    let mut edges = std::collections::BTreeSet::new();
    for series in &graph {
        let m = &series["metric"];
        for label in [
            "source_cluster",
            "source_workload_namespace",
            "source_workload",
            "source_app",
            "source_version",
            "destination_cluster",
            "destination_service_namespace",
            "destination_workload_namespace",
            "destination_workload",
            "destination_app",
            "destination_version",
        ] {
            assert_ne!(m[label], "unknown", "{label} unknown in {m}");
        }
        assert_eq!(m["source_cluster"], "Kubernetes", "{m}");
        edges.insert((
            m["reporter"].as_str().unwrap_or("").to_owned(),
            m["source_workload"].as_str().unwrap_or("").to_owned(),
            m["destination_workload"].as_str().unwrap_or("").to_owned(),
        ));
    }
    // The gateway is the root: no series ends at it (Istio's gateways report as sources only).
    assert!(
        !edges.iter().any(|(_, _, to)| to == "gateway-v1"),
        "a series ends at the gateway: {edges:?}"
    );
    for (from, to) in [
        ("gateway-v1", "service1-v1"),
        ("gateway-v1", "service2-v1"),
        ("service1-v1", "service2-v1"),
        ("service1-v1", "service2-v2"),
        ("service2-v1", "service3-v1"),
        ("service2-v2", "service3-v1"),
    ] {
        for reporter in ["source", "destination"] {
            assert!(
                edges.contains(&(reporter.to_owned(), from.to_owned(), to.to_owned())),
                "no {reporter}-reported edge {from} -> {to} in {edges:?}"
            );
        }
    }
    // No double counting: each reporter sees each request once, so the two agree.
    let by_reporter = query(
        prom.addr,
        "sum(istio_requests_total{source_workload=\"service1-v1\"}) by (reporter)",
    )
    .await;
    let counts: Vec<f64> = by_reporter
        .iter()
        .filter_map(|s| s["value"][1].as_str()?.parse().ok())
        .collect();
    assert_eq!(counts.len(), 2, "{by_reporter:?}");
    let (a, b) = (counts[0], counts[1]);
    assert!(
        (a - b).abs() <= 0.05 * a.max(b) + 5.0,
        "reporters disagree: {a} vs {b}"
    );

    // `promtool check metrics` on every app's exposition (Istio's "milliseconds" unit aside).
    if let Some(promtool) = which("promtool") {
        for admin in admins {
            let text = mesh_tests::get_text(&format!("http://{admin}/metrics"))
                .await
                .unwrap();
            let mut child = Command::new(&promtool)
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            let report = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let problems: Vec<&str> = report
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.contains("milliseconds"))
                .collect();
            assert!(problems.is_empty(), "promtool on {admin}:\n{report}");
        }
    } else {
        eprintln!("promtool not found: exposition lint skipped");
    }
    drop(prom);
    lab.stop().await;
}
