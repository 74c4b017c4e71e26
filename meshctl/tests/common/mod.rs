//! Shared by the dashboard tests: the demo lab with traffic flowing through it, and JSON reads
//! from the dashboard.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesh_examples::lab::{Lab, LabOptions};
use serde_json::Value;
use tokio::task::JoinHandle;

/// The nodes the lab's graph has once traffic went gateway → service1 → service2 → service3.
/// The gateway is the root: like Istio's ingress gateways, it reports its calls as their source
/// only, so its own (outside) callers draw no `unknown` node.
pub const NODES: [&str; 5] = [
    "gateway",
    "service1:v1",
    "service2:v1",
    "service2:v2",
    "service3:v1",
];

/// The edges of that graph.
pub const EDGES: [(&str, &str); 5] = [
    ("gateway", "service1:v1"),
    ("service1:v1", "service2:v1"),
    ("service1:v1", "service2:v2"),
    ("service2:v1", "service3:v1"),
    ("service2:v2", "service3:v1"),
];

/// The lab's admin base URLs, one per app.
pub fn admin_urls(lab: &Lab) -> Vec<String> {
    [
        &lab.gateway,
        &lab.service1,
        &lab.service2_v1,
        &lab.service2_v2,
        &lab.service3,
    ]
    .iter()
    .map(|s| format!("http://{}", s.admin))
    .collect()
}

/// Requests sent through the gateway in the background, a few milliseconds apart, until
/// stopped (at most `limit`).
pub struct Traffic {
    stop: Arc<AtomicBool>,
    /// Requests answered so far.
    pub sent: Arc<AtomicUsize>,
    /// Answers that were not 2xx.
    pub failed: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Traffic {
    /// Starts sending `GET /service1/dash/{i}` through the lab's gateway.
    pub fn start(lab: Arc<Lab>, limit: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let (s, n, f) = (stop.clone(), sent.clone(), failed.clone());
        let task = tokio::spawn(async move {
            for i in 0..limit {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let r = lab.get(&format!("/service1/dash/{i}"), &[]).await;
                assert_ne!(r.status, 0, "no answer: {r:?}");
                if !r.ok() {
                    f.fetch_add(1, Ordering::Relaxed);
                }
                n.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Self {
            stop,
            sent,
            failed,
            task,
        }
    }

    /// Waits until at least `n` requests were answered (bounded: 60 s).
    pub async fn wait_sent(&self, n: usize) {
        for _ in 0..600 {
            if self.sent.load(Ordering::Relaxed) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "only {} requests answered",
            self.sent.load(Ordering::Relaxed)
        );
    }

    /// Stops sending and waits for the last request: how many were answered, how many of
    /// those not 2xx.
    pub async fn stop(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        (
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// `GET http://{addr}{path}` as JSON.
pub async fn get_json(addr: SocketAddr, path: &str) -> Value {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let r = mesh_examples::lab::get(&client, addr, path, &[]).await;
    assert_eq!(r.status, 200, "{path}: {r:?}");
    r.json.unwrap_or_else(|| panic!("{path}: not JSON"))
}

/// Starts the lab on the canary's first step (90/10 between service2 v1 and v2).
pub async fn lab() -> Arc<Lab> {
    lab_with(LabOptions::default()).await
}

/// [`lab`] with faults added to the apps.
pub async fn lab_with(options: LabOptions) -> Arc<Lab> {
    Arc::new(
        Lab::start("canary-1-90-10", options)
            .await
            .expect("the lab starts"),
    )
}

/// The edge `source → target` of a `/api/graph` answer.
pub fn edge<'a>(graph: &'a Value, source: &str, target: &str) -> Option<&'a Value> {
    graph["edges"]
        .as_array()?
        .iter()
        .find(|e| e["source"] == source && e["target"] == target)
}

/// Whether the graph has every edge of [`EDGES`] with traffic on it.
pub fn complete(graph: &Value) -> bool {
    EDGES
        .iter()
        .all(|(s, t)| edge(graph, s, t).is_some_and(|e| e["rps"].as_f64().is_some_and(|r| r > 0.0)))
}

/// Node ids of a `/api/graph` answer, sorted.
pub fn node_ids(graph: &Value) -> Vec<String> {
    let mut ids: Vec<String> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Polls `/api/graph` until [`complete`] (bounded: 60 s).
pub async fn wait_complete(addr: SocketAddr) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = get_json(addr, "/api/graph").await;
        if complete(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the graph never showed every edge: {last:#}");
}

/// Stops the lab (it is shared with the traffic task, which must have stopped).
pub async fn stop_lab(lab: Arc<Lab>) {
    match Arc::try_unwrap(lab) {
        Ok(lab) => lab.stop().await,
        Err(_) => panic!("the lab is still shared"),
    }
}

/// The headless browser installed, if any.
pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// Runs the browser headless on `url` with `args` (bounded by coreutils' `timeout`).
pub fn run_chromium(bin: &str, profile: &Path, args: &[String], url: &str) -> Output {
    // Bounded: coreutils' timeout ends a browser that hangs.
    let mut cmd = Command::new("timeout");
    cmd.arg("120")
        .arg(bin)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1360,860",
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url);
    cmd.output().expect("chromium runs")
}
