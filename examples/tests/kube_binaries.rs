//! The real `service2` and `service3` binaries with `--kube`, as a Deployment runs them: the API
//! server from `$KUBECONFIG` (mesh-kube's test API server, bearer token over http://), the Pod
//! from `POD_NAME`/`POD_NAMESPACE`, each listening on its Pod's loopback IP. service2 is given
//! no `--version`: its Pod's label says v2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mesh_kube::testing::{TestApiServer, mesh_types};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BOUND: Duration = Duration::from_secs(30);

/// Kills the child when the test ends, pass or fail.
struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(binary: &str, kubeconfig: &Path, pod: &str, ip: &str) -> App {
    let child = Command::new(binary)
        .args(["--kube", "--listen", &format!("{ip}:8080")])
        .args(["--admin", &format!("{ip}:15000")])
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAME", pod)
        .env("POD_NAMESPACE", "default")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the binary starts");
    App(child)
}

/// `GET path` over HTTP/1.0: status (0 without an answer) and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let attempt = async {
        let mut tcp = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nhost: {addr}\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await.ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
        Some((status, body))
    };
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Some(answer)) => answer,
        _ => (0, String::new()),
    }
}

async fn until(addr: SocketAddr, path: &str, done: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let start = Instant::now();
    loop {
        let (status, body) = get(addr, path).await;
        if done(status, &body) {
            return (status, body);
        }
        assert!(
            start.elapsed() < BOUND,
            "{addr}{path}: still {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pod(name: &str, app: &str, version: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default",
            "labels": {"app": app, "version": version, "pod-template-hash": "7f6d"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": format!("{app}-{version}-7f6d"), "uid": "u", "controller": true}]},
        "spec": {"serviceAccountName": app, "containers": [{"name": app, "image": "x"}]},
        "status": {"podIP": ip}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_run_in_kube_mode_from_kubeconfig() {
    let server = TestApiServer::start().await.unwrap();
    for t in mesh_types() {
        server.register(t);
    }
    let (ip2, ip3) = ("127.89.0.12", "127.89.0.13");
    server
        .apply(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "service3", "namespace": "default"},
        "spec": {"selector": {"app": "service3"}, "ports": [{"name": "http", "port": 80}]}}))
        .unwrap();
    server
        .apply(
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "service3-1", "namespace": "default",
            "labels": {"kubernetes.io/service-name": "service3"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": [ip3], "conditions": {"ready": true},
            "targetRef": {"kind": "Pod", "name": "service3-a"}}]}),
        )
        .unwrap();
    server
        .apply(pod("service2-v2-a", "service2", "v2", ip2))
        .unwrap();
    server
        .apply(pod("service3-a", "service3", "v1", ip3))
        .unwrap();
    // the API server refuses DestinationRules until the test grants them
    server.fail(403, "destinationrules", None);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let _s3 = spawn(
        env!("CARGO_BIN_EXE_service3"),
        &kubeconfig,
        "service3-a",
        ip3,
    );
    let _s2 = spawn(
        env!("CARGO_BIN_EXE_service2"),
        &kubeconfig,
        "service2-v2-a",
        ip2,
    );
    let admin2: SocketAddr = format!("{ip2}:15000").parse().unwrap();
    let listen2: SocketAddr = format!("{ip2}:8080").parse().unwrap();
    let (status, body) = until(admin2, "/healthz", |_, b| b.contains("403")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("DestinationRule"), "{body}");
    let (status, body) = get(listen2, "/early").await;
    assert_ne!(status, 200, "served before the first sync: {body}");

    server.clear_faults();
    until(admin2, "/healthz", |s, _| s == 200).await;
    let (status, body) = until(listen2, "/hello", |s, _| s == 200).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200);
    assert_eq!(v["service"], "service2", "{v}");
    assert_eq!(v["version"], "v2", "the version from the Pod's label: {v}");
    assert_eq!(v["upstream"]["service"], "service3", "{v}");
    let (_, dump) = get(admin2, "/config_dump").await;
    let dump: Value = serde_json::from_str(&dump).unwrap();
    assert_eq!(dump["kubernetes"]["ready"], true, "{dump}");
    let (_, metrics) = get(admin2, "/metrics").await;
    assert!(
        metrics.contains("source_workload=\"service2-v2\""),
        "{metrics}"
    );
}
