//! How a service calls its upstream: through the mesh client, or (`--plain`) with a bare hyper
//! client at a fixed address, the baseline the benchmarks compare against.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use axum::body::Body;
use http::{HeaderValue, Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;

/// The error of an upstream call: the mesh's one boxed error.
pub use mesh_core::BoxError;

/// A boxed future answering one upstream call.
pub type UpstreamFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

/// A client for upstream calls. The request's URI is `http://{host}{path}` with the logical
/// service host (`service2`); the implementation decides where it really goes.
pub trait Upstream: Send + Sync + 'static {
    /// Sends `req` and returns the answer (any status), or an error when there is none.
    fn call(&self, req: Request<Body>) -> UpstreamFuture;
}

/// [`MeshClient`](mesh_client::client::MeshClient) as the apps' [`Upstream`].
pub(crate) struct MeshUpstream(pub(crate) mesh_client::client::MeshClient);

impl Upstream for MeshUpstream {
    fn call(&self, req: Request<Body>) -> UpstreamFuture {
        // No clone of the client: its answer's future owns what it needs. A named combinator
        // rather than an `async` block, which would move the (large) future once more into its
        // own state on the first poll.
        let sent = self.0.send_owned(req);
        Box::pin(futures_util::FutureExt::map(sent, |answer| {
            Ok(answer?.map(Body::new))
        }))
    }
}

/// A bare hyper client that sends every call to one address (`--plain`): no routing, no retries,
/// no metrics, nothing but a pooled HTTP/1 connection.
#[derive(Clone, Debug)]
pub struct PlainUpstream {
    addr: SocketAddr,
    client: Client<HttpConnector, Body>,
}

impl PlainUpstream {
    /// A client for `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self { addr, client }
    }

    /// Where it sends.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Upstream for PlainUpstream {
    fn call(&self, req: Request<Body>) -> UpstreamFuture {
        forward(&self.client, self.addr, req)
    }
}

/// Sends `req` with `client` to `addr`, keeping its path and, as `Host`, its logical host: the
/// bare baselines' (plaintext and TLS) whole upstream call.
pub(crate) fn forward<C>(
    client: &Client<C, Body>,
    addr: SocketAddr,
    mut req: Request<Body>,
) -> UpstreamFuture
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let host = req.uri().host().map(str::to_owned);
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let uri = format!("http://{addr}{path}");
    let client = client.clone();
    Box::pin(async move {
        *req.uri_mut() = uri.parse::<Uri>()?;
        if let Some(host) = host {
            req.headers_mut()
                .insert(http::header::HOST, HeaderValue::from_str(&host)?);
        }
        let res = client.request(req).await?;
        Ok(res.map(Body::new))
    })
}
