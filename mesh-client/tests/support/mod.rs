//! Shared harness of the mesh-client integration tests: real hyper servers on 127.0.0.1:0 and a
//! `MeshClient` over the real cluster stack, configured from Istio YAML.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use mesh_client::client::MeshClient;
use mesh_client::cluster::{Clusters, StaticEndpoints};
use mesh_client::random::Random;
use mesh_core::policy::Labels;
use mesh_core::watch::ConfigStore;

/// What a backend saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub host: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// A running backend.
#[derive(Clone)]
pub struct Backend {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Backend {
    pub fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

type Reply = Pin<Box<dyn Future<Output = (StatusCode, String)> + Send>>;

/// Starts a backend named `name`; `decide(n)` (n = 0-based request number) gives the answer.
pub async fn backend(
    name: &'static str,
    decide: impl Fn(usize) -> Reply + Send + Sync + 'static,
) -> Backend {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let counter = Arc::new(AtomicUsize::new(0));
    let decide = Arc::new(decide);
    let state = (seen.clone(), counter, decide);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (seen, counter, decide) = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (seen, counter, decide) = (seen.clone(), counter.clone(), decide.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let host = parts
                            .headers
                            .get("host")
                            .and_then(|h| h.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        seen.lock().unwrap().push(Seen {
                            method: parts.method.to_string(),
                            path: parts
                                .uri
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default(),
                            host,
                            headers: parts.headers.clone(),
                            body,
                        });
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        let (status, text) = decide(n).await;
                        let mut resp =
                            Response::new(Full::new(Bytes::from(format!("{name}:{text}"))));
                        *resp.status_mut() = status;
                        resp.headers_mut()
                            .insert("x-backend", http::HeaderValue::from_static(name));
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Backend { addr, seen }
}

/// A backend that always answers 200.
pub async fn ok_backend(name: &'static str) -> Backend {
    backend(name, |_| {
        Box::pin(async { (StatusCode::OK, "ok".to_owned()) })
    })
    .await
}

/// A backend answering `status` every time.
pub async fn status_backend(name: &'static str, status: StatusCode) -> Backend {
    backend(name, move |_| {
        Box::pin(async move { (status, "fixed".to_owned()) })
    })
    .await
}

/// Labels from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A mesh client over the real cluster stack: `yaml` is the config, `endpoints` the discovery.
pub fn mesh(
    yaml: &str,
    endpoints: &[(&str, SocketAddr, Labels)],
    seed: u64,
) -> (MeshClient, ConfigStore) {
    let store = ConfigStore::new(config(yaml));
    let set = Arc::new(StaticEndpoints::new());
    for (host, addr, labels) in endpoints {
        set.insert(host, None, *addr, 1, labels.clone());
    }
    let source = store.clone();
    let clusters = Clusters::new(move || source.snapshot(), set).with_seed(seed);
    let client = MeshClient::builder(store.clone(), clusters)
        .random(Random::seeded(seed))
        .build();
    (client, store)
}

/// A checked config from YAML (panics with the loader's errors: test input).
pub fn config(yaml: &str) -> mesh_core::policy::MeshConfig {
    match mesh_core::load::load_str("test.yaml", yaml) {
        Ok(loaded) => loaded.config,
        Err(e) => panic!("bad test config: {e}"),
    }
}

/// GET `uri` through `client`; the status, the `x-backend` header and the flags.
pub async fn get(client: &MeshClient, uri: &str) -> (StatusCode, String, String) {
    let resp = client
        .send(Request::get(uri).body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let backend = resp
        .headers()
        .get("x-backend")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let flags = resp
        .extensions()
        .get::<mesh_telemetry::ResponseFlags>()
        .map_or("-".to_owned(), |f| f.to_label());
    (resp.status(), backend, flags)
}

/// The article's DestinationRule with subsets v1 and v2 of service2.
pub const SUBSETS: &str = r#"
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: service2
spec:
  host: service2
  subsets:
    - name: v1
      labels:
        version: v1
    - name: v2
      labels:
        version: v2
"#;

/// A manifest of the article (mesh-core's copy of the seed).
pub fn seed(name: &str) -> String {
    let path = format!(
        "{}/../mesh-core/tests/fixtures/seed/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
