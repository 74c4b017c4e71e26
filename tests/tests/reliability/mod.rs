//! Shared pieces of the reliability tests: backends that can be killed, restarted on the same
//! port, slowed down or made to fail, and a mesh client over the real cluster stack.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_client::client::MeshClient;
use mesh_client::cluster::Clusters;
use mesh_core::registry::Registry;
use mesh_core::watch::ConfigStore;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How a backend behaves; shared with its server task so a test can change it while it runs.
#[derive(Default)]
pub struct Behaviour {
    /// Added delay per request, in milliseconds.
    pub delay_ms: AtomicU64,
    /// Requests seen.
    pub hits: AtomicUsize,
}

/// A backend on a fixed loopback port that answers 200 with its `name` in `x-backend`.
pub struct Backend {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub behaviour: Arc<Behaviour>,
    task: Option<JoinHandle<()>>,
}

impl Backend {
    /// Starts on 127.0.0.1:0.
    pub async fn start(name: &'static str) -> Self {
        Self::start_on(
            name,
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(Behaviour::default()),
        )
        .await
    }

    /// Starts on `addr` (a port freed by [`Backend::kill`] can be taken again).
    pub async fn start_on(name: &'static str, addr: SocketAddr, behaviour: Arc<Behaviour>) -> Self {
        let listener = {
            // The port was just released by the killed backend: retry briefly while the kernel
            // lets go of it.
            let mut tries = 0;
            loop {
                match TcpListener::bind(addr).await {
                    Ok(l) => break l,
                    Err(e) if tries < 50 => {
                        tries += 1;
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("bind {addr}: {e}"),
                }
            }
        };
        let addr = listener.local_addr().unwrap();
        let b = behaviour.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let b = b.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |_req: http::Request<hyper::body::Incoming>| {
                        let b = b.clone();
                        async move {
                            b.hits.fetch_add(1, Ordering::SeqCst);
                            let delay = b.delay_ms.load(Ordering::SeqCst);
                            if delay > 0 {
                                tokio::time::sleep(Duration::from_millis(delay)).await;
                            }
                            let mut resp =
                                http::Response::new(Full::new(Bytes::from_static(b"ok")));
                            resp.headers_mut()
                                .insert("x-backend", http::HeaderValue::from_static(name));
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            // Dropping the set aborts every open connection: the backend is gone.
            conns.abort_all();
        });
        Self {
            name,
            addr,
            behaviour,
            task: Some(task),
        }
    }

    /// Stops listening and drops every connection, as a crashed process would.
    pub fn kill(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Requests seen so far.
    pub fn hits(&self) -> usize {
        self.behaviour.hits.load(Ordering::SeqCst)
    }

    /// Adds `ms` of latency to every answer from now on.
    pub fn slow_down(&self, ms: u64) {
        self.behaviour.delay_ms.store(ms, Ordering::SeqCst);
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A checked config from YAML (test input: panics with the loader's errors).
pub fn config(yaml: &str) -> mesh_core::policy::MeshConfig {
    match mesh_core::load::load_str("reliability.yaml", yaml) {
        Ok(loaded) => loaded.config,
        Err(e) => panic!("bad test config: {e}"),
    }
}

/// A ServiceEntry for `host` with one endpoint per `(address, version)`: the examples' own.
pub use mesh_examples::lab::service_entry;

/// A mesh client over the real stack (registry from the config's ServiceEntries, clusters,
/// pooled transport), and the store to reload it through.
pub fn mesh(yaml: &str) -> (MeshClient, ConfigStore, Arc<Registry>) {
    let store = ConfigStore::new(config(yaml));
    let registry = Arc::new(Registry::from_config(&store.snapshot()));
    let source = store.clone();
    let clusters = Clusters::new(move || source.snapshot(), registry.clone()).with_seed(7);
    let client = MeshClient::builder(store.clone(), clusters).build();
    (client, store, registry)
}

/// What one request through the mesh gave.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub backend: String,
    pub headers: http::HeaderMap,
    pub flags: String,
}

/// GET `uri` through `client`, with a safety bound so a hang fails the test instead of CI.
pub async fn get(client: &MeshClient, uri: &str) -> Answer {
    let req = http::Request::get(uri)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), client.send(req))
        .await
        .expect("a request through the mesh hung for 30 s")
        .expect("the mesh client answers errors as HTTP responses");
    let status = resp.status().as_u16();
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
    let headers = resp.headers().clone();
    let _ = resp.into_body().collect().await;
    Answer {
        status,
        backend,
        headers,
        flags,
    }
}
