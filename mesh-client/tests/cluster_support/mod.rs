//! Shared helpers of the cluster integration tests: real backends on 127.0.0.1:0.
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
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_client::body::{self, BoxBody};
use mesh_client::context::Target;
use mesh_core::policy::Destination;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A backend that answers `status` with its port as the body; while `hold` is on, requests wait.
pub struct Backend {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub done: Arc<AtomicUsize>,
    pub status: Arc<AtomicU16>,
    hold: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Backend {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let status = Arc::new(AtomicU16::new(200));
        let (hold, _) = watch::channel(false);
        let (h, d, s, w) = (hits.clone(), done.clone(), status.clone(), hold.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (h, d, s, w) = (h.clone(), d.clone(), s.clone(), w.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (h, d, s) = (h.clone(), d.clone(), s.clone());
                        let mut rx = w.subscribe();
                        async move {
                            h.fetch_add(1, Ordering::SeqCst);
                            let _ = rx.wait_for(|held| !held).await;
                            let host = req.headers().get("host").cloned();
                            let mut resp = http::Response::new(Full::new(Bytes::from(
                                addr.port().to_string(),
                            )));
                            *resp.status_mut() =
                                http::StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap();
                            if let Some(host) = host {
                                resp.headers_mut().insert("x-seen-host", host);
                            }
                            resp.headers_mut().insert(
                                "x-version",
                                http::HeaderValue::from_str(&format!("{:?}", req.version()))
                                    .unwrap(),
                            );
                            d.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            hits,
            done,
            status,
            hold,
            task,
        }
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn hold(&self, on: bool) {
        self.hold.send_replace(on);
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.hold.send_replace(false);
        self.task.abort();
    }
}

/// An address that refuses connections: bound, then dropped.
pub async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// A GET to `host` with a Target extension.
pub fn request(host: &str) -> http::Request<BoxBody> {
    let mut req = http::Request::get("/").body(body::empty()).unwrap();
    req.extensions_mut().insert(Target::new(Destination {
        host: host.into(),
        subset: None,
        port: None,
    }));
    req
}

/// The body as text.
pub async fn text(resp: http::Response<BoxBody>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Waits (bounded: 5 s) until `cond` holds; false when it never did.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..250 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// Clusters over `endpoints` for host `svc` with `policy` as its DestinationRule's.
pub fn clusters(
    policy: mesh_core::policy::TrafficPolicy,
    endpoints: &[SocketAddr],
) -> (
    mesh_client::cluster::Clusters,
    Arc<mesh_client::cluster::StaticEndpoints>,
) {
    use mesh_core::policy::{DestinationPolicy, MeshConfig};
    let mut config = MeshConfig::default();
    config.destinations.insert(
        "svc".into(),
        Arc::new(DestinationPolicy {
            origin: Default::default(),
            host: "svc".into(),
            traffic_policy: policy,
            subsets: vec![],
        }),
    );
    let config = Arc::new(config);
    let set = Arc::new(mesh_client::cluster::StaticEndpoints::new());
    for a in endpoints {
        set.insert("svc", None, *a, 1, Default::default());
    }
    let clusters =
        mesh_client::cluster::Clusters::new(move || Arc::clone(&config), set.clone()).with_seed(7);
    (clusters, set)
}

/// The destination `svc`.
pub fn svc() -> Destination {
    Destination {
        host: "svc".into(),
        subset: None,
        port: None,
    }
}
