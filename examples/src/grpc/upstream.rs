//! How a service calls its upstream's `Call`: tonic's generated client over the mesh client
//! (routing, retries, deadlines, metrics), or (`--plain`) over a bare HTTP/2 connection to the
//! upstream's first endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesh_client::client::MeshClient;

use super::echo::echo_client::EchoClient;
use super::echo::{CallReply, CallRequest};
use crate::upstream::BoxError;

/// A gRPC client of one upstream host.
#[derive(Clone, Debug)]
pub enum GrpcUpstream {
    /// Through the mesh: `http://{host}` is routed by the VirtualServices like any call.
    Mesh(EchoClient<MeshClient>),
    /// `--plain`: HTTP/2 with prior knowledge straight to one address.
    Plain(Box<EchoClient<Client<HttpConnector, tonic::body::Body>>>),
    /// Answered by a function in this process (the bare gRPC hop of `hop_cost`).
    InProcess(EchoClient<InProcess>),
}

/// A function answering tonic's requests in-process.
pub type InProcessFn = dyn Fn(http::Request<tonic::body::Body>) -> InProcessFuture + Send + Sync;

/// The answer of an [`InProcessFn`].
pub type InProcessFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<http::Response<tonic::body::Body>, BoxError>>
            + Send,
    >,
>;

/// tonic's transport answered by an [`InProcessFn`].
#[derive(Clone)]
pub struct InProcess(Arc<InProcessFn>);

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcess")
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for InProcess {
    type Response = http::Response<tonic::body::Body>;
    type Error = BoxError;
    type Future = InProcessFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> InProcessFuture {
        (self.0)(request)
    }
}

impl GrpcUpstream {
    /// Calls `host` through `mesh`: tonic's client with the mesh client as its transport.
    pub fn mesh(host: &str, mesh: MeshClient) -> Self {
        GrpcUpstream::Mesh(EchoClient::with_origin(mesh, origin(host)))
    }

    /// Calls `addr` directly over one pooled HTTP/2 connection.
    pub fn plain(addr: SocketAddr) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build(connector);
        GrpcUpstream::Plain(Box::new(EchoClient::with_origin(
            client,
            origin(&addr.to_string()),
        )))
    }

    /// Calls `host` answered by `answer`, in this process.
    pub fn in_process(
        answer: impl Fn(http::Request<tonic::body::Body>) -> InProcessFuture + Send + Sync + 'static,
    ) -> Self {
        GrpcUpstream::InProcess(EchoClient::with_origin(
            InProcess(Arc::new(answer)),
            origin("service3"),
        ))
    }

    /// Calls `Call`.
    pub async fn call(
        &self,
        request: tonic::Request<CallRequest>,
    ) -> Result<tonic::Response<CallReply>, tonic::Status> {
        match self {
            GrpcUpstream::Mesh(c) => c.clone().call(request).await,
            GrpcUpstream::Plain(c) => c.as_ref().clone().call(request).await,
            GrpcUpstream::InProcess(c) => c.clone().call(request).await,
        }
    }
}

fn origin(authority: &str) -> Uri {
    format!("http://{authority}")
        .parse()
        .unwrap_or_else(|_| Uri::from_static("http://localhost"))
}

/// What [`closed_loop_calls`] counted.
#[derive(Clone, Copy, Debug)]
pub struct CallCount {
    /// Calls answered OK.
    pub ok: u64,
    /// Calls that failed.
    pub errors: u64,
    /// How long the callers ran.
    pub elapsed: std::time::Duration,
}

/// `callers` callers, each with a client (an HTTP/2 connection) of its own, sending `Echo/Call`
/// to `entry` back to back for `duration`: the closed-loop gRPC load of `bench` and
/// `examples/grpc_load.rs`.
pub async fn closed_loop_calls(
    entry: SocketAddr,
    callers: usize,
    duration: std::time::Duration,
) -> CallCount {
    use std::sync::atomic::{AtomicU64, Ordering};
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = std::time::Instant::now();
    let until = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..callers.max(1) {
        let client = GrpcUpstream::plain(entry);
        let (ok, errors) = (ok.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            while std::time::Instant::now() < until {
                let request = tonic::Request::new(CallRequest {
                    path: "/bench".into(),
                });
                match client.call(request).await {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    CallCount {
        ok: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    }
}
