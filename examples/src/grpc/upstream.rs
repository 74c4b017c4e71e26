//! How a service calls its upstream's `Call`: tonic's generated client over the mesh client
//! (routing, retries, deadlines, metrics), or (`--plain`) over a bare HTTP/2 connection to the
//! upstream's first endpoint.

use std::net::SocketAddr;

use http::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesh_client::client::MeshClient;

use super::echo::echo_client::EchoClient;
use super::echo::{CallReply, CallRequest};

/// A gRPC client of one upstream host.
#[derive(Clone, Debug)]
pub enum GrpcUpstream {
    /// Through the mesh: `http://{host}` is routed by the VirtualServices like any call.
    Mesh(EchoClient<MeshClient>),
    /// `--plain`: HTTP/2 with prior knowledge straight to one address.
    Plain(Box<EchoClient<Client<HttpConnector, tonic::body::Body>>>),
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

    /// Calls `Call`.
    pub async fn call(
        &self,
        request: tonic::Request<CallRequest>,
    ) -> Result<tonic::Response<CallReply>, tonic::Status> {
        match self {
            GrpcUpstream::Mesh(c) => c.clone().call(request).await,
            GrpcUpstream::Plain(c) => c.as_ref().clone().call(request).await,
        }
    }
}

fn origin(authority: &str) -> Uri {
    format!("http://{authority}")
        .parse()
        .unwrap_or_else(|_| Uri::from_static("http://localhost"))
}
