//! Helpers of the gRPC end-to-end tests: tonic's client over a bare HTTP/2 connection (what a
//! gRPC client outside the mesh sends: h2c with prior knowledge), calls to any method, and the
//! apps' metrics.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
pub use mesh_examples::grpc::GrpcUpstream;
pub use mesh_examples::grpc::echo::{CallReply, CallRequest};
pub use tonic::{Code, Status};

/// `mesh.examples.Echo/Call` at `addr` with `path`, within `timeout` when given.
pub async fn call(
    addr: SocketAddr,
    path: &str,
    timeout: Option<Duration>,
) -> Result<CallReply, Status> {
    let mut req = tonic::Request::new(CallRequest {
        path: path.to_owned(),
    });
    if let Some(t) = timeout {
        req.set_timeout(t);
    }
    GrpcUpstream::plain(addr)
        .call(req)
        .await
        .map(tonic::Response::into_inner)
}

/// A unary call of `method` (`/package.Service/Method`) at `addr` with an empty `CallRequest`.
pub async fn call_method(addr: SocketAddr, method: &'static str) -> Result<CallReply, Status> {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(HttpConnector::new());
    let origin: http::Uri = format!("http://{addr}")
        .parse()
        .map_err(|_| Status::internal("uri"))?;
    let mut grpc = tonic::client::Grpc::with_origin(client, origin);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<CallRequest, CallReply>::default();
    grpc.unary(
        tonic::Request::new(CallRequest::default()),
        PathAndQuery::from_static(method),
        codec,
    )
    .await
    .map(tonic::Response::into_inner)
}

/// The Prometheus text of an app's admin port.
pub async fn metrics(admin: SocketAddr) -> String {
    let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let uri: http::Uri = match format!("http://{admin}/metrics").parse() {
        Ok(u) => u,
        Err(_) => return String::new(),
    };
    let req = match http::Request::get(uri).body(Empty::<Bytes>::new()) {
        Ok(r) => r,
        Err(_) => return String::new(),
    };
    match client.request(req).await {
        Ok(res) => match res.into_body().collect().await {
            Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
            Err(_) => String::new(),
        },
        Err(_) => String::new(),
    }
}

/// The `istio_requests_total` lines of `text` holding every one of `labels` (`key="value"`).
pub fn request_lines<'a>(text: &'a str, labels: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .collect()
}

/// The sum of the values of `lines`.
pub fn total(lines: &[&str]) -> f64 {
    lines
        .iter()
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}
