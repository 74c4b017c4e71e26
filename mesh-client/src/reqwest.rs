//! Sending `reqwest` requests through the mesh.
//!
//! Code written against `reqwest` keeps building `reqwest::Request`s; [`MeshReqwest`] converts
//! each into an `http::Request`, sends it through a [`MeshClient`] (routing, retries, mirroring,
//! ...), and converts the answer back into a `reqwest::Response`. It is a
//! `tower::Service<reqwest::Request>`, so generic tower layers still wrap it.
//!
//! Notes:
//! - reqwest's own retries (since 0.12.23) and timeouts do not apply here: the request never
//!   goes through a `reqwest::Client`. If a `reqwest::Client` is used elsewhere for the same
//!   calls, build it with `retry::never()` so retries are not multiplied under the mesh's.
//! - `reqwest::Request::timeout` is ignored: the route's `timeout` governs.
//! - `Response::url()` of the converted answer is a placeholder (reqwest keeps the field
//!   private); read the request's URL instead.
//!
//! ```
//! use std::sync::Arc;
//! use arc_swap::ArcSwap;
//! use mesh_client::client::MeshClient;
//! use mesh_client::reqwest::MeshReqwest;
//! use mesh_core::policy::MeshConfig;
//!
//! # async fn run() -> Result<(), mesh_client::BoxError> {
//! let config = Arc::new(ArcSwap::from_pointee(MeshConfig::default()));
//! let cluster = tower::service_fn(|_req: http::Request<mesh_client::body::BoxBody>| async {
//!     Ok::<_, mesh_client::BoxError>(http::Response::new(mesh_client::body::full("hi")))
//! });
//! let mesh = MeshReqwest::new(MeshClient::builder_with(config, cluster).build());
//! let request = reqwest::Request::new(reqwest::Method::GET, "http://service2/hello".parse()?);
//! let response = mesh.execute(request).await?;
//! assert_eq!(response.text().await?, "hi");
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::BoxError;
use crate::body::BoxBody;
use crate::client::MeshClient;

/// A `tower::Service<reqwest::Request>` sending through a [`MeshClient`].
#[derive(Clone, Debug)]
pub struct MeshReqwest {
    client: MeshClient,
}

impl MeshReqwest {
    /// Sends through `client`.
    pub fn new(client: MeshClient) -> Self {
        Self { client }
    }

    /// The mesh client.
    pub fn get_ref(&self) -> &MeshClient {
        &self.client
    }

    /// Sends `request` through the mesh.
    pub async fn execute(&self, request: reqwest::Request) -> Result<reqwest::Response, BoxError> {
        let request: http::Request<reqwest::Body> = request.try_into()?;
        let response = self.client.send(request).await?;
        Ok(reqwest::Response::from(
            response.map(|b| reqwest::Body::wrap(SyncBody::new(b))),
        ))
    }
}

impl tower::Service<reqwest::Request> for MeshReqwest {
    type Response = reqwest::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<reqwest::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The mesh client is always ready: readiness is per route, inside the call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: reqwest::Request) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.execute(request).await })
    }
}

/// A [`BoxBody`] made `Sync` (as `reqwest::Body::wrap` requires) without locking: the mutex is
/// only ever reached through `&mut`, with `get_mut`.
struct SyncBody {
    inner: Mutex<BoxBody>,
}

impl SyncBody {
    fn new(body: BoxBody) -> Self {
        Self {
            inner: Mutex::new(body),
        }
    }

    fn body(&mut self) -> &mut BoxBody {
        self.inner
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for SyncBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SyncBody")
    }
}

impl Body for SyncBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(self.get_mut().body()).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        // Only `&self` here: answer conservatively without locking.
        false
    }

    fn size_hint(&self) -> SizeHint {
        match self.inner.try_lock() {
            Ok(body) => body.size_hint(),
            Err(_) => SizeHint::default(),
        }
    }
}
