//! Path normalization before any policy or routing decision (Istio's `pathNormalization`).
//!
//! [`Normalize`] rewrites the request's path to its normalized form
//! ([`mesh_core::normalize`]: dot segments removed, unreserved escapes decoded, `\` → `/`, and
//! slashes merged at the higher levels), so that rate-limit overrides, JWT rules, authorization
//! `paths`/`notPaths`, the gateway's VirtualService `uri` matches and the application itself all
//! see one spelling: `/public/%2e%2e/private` is `/private` to every one of them. A path that
//! cannot be normalized (`%00`, a broken escape) fails with [`PathRefused`], which
//! [`rescue`](crate::rescue) answers `400 Bad Request`.
//!
//! [`MeshServer`](crate::MeshServer) puts it right under the rescue, above the policy gate, with
//! the level of the config in force (`meshConfig.pathNormalization`, Istio's default `BASE`).
//! Used alone it takes a fixed level:
//!
//! ```
//! use mesh_core::normalize::PathNormalization;
//! use mesh_server::normalize::NormalizeLayer;
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let echo = service_fn(|req: http::Request<()>| async move {
//!     Ok::<_, std::convert::Infallible>(req.uri().path().to_owned())
//! });
//! let mut svc = NormalizeLayer::new(PathNormalization::Base).layer(echo);
//! let req = http::Request::get("/public/%2e%2e/private").body(()).unwrap();
//! assert_eq!(svc.ready().await.unwrap().call(req).await.unwrap(), "/private");
//! # }
//! ```

mod error;
mod future;
mod layer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use http::Request;
use mesh_core::normalize::{PathNormalization, normalize_uri};
use tower_service::Service;

use crate::BoxError;

pub use self::error::PathRefused;
pub use self::future::NormalizeFuture;
pub use self::layer::NormalizeLayer;

/// The level in force, shared with whatever keeps it current (the server's policy refresh):
/// one atomic load per request.
#[derive(Clone, Debug)]
pub struct SharedLevel(Arc<AtomicU8>);

impl Default for SharedLevel {
    /// Istio's default level, `BASE`.
    fn default() -> Self {
        Self::new(PathNormalization::default())
    }
}

impl SharedLevel {
    /// A cell holding `level`.
    pub fn new(level: PathNormalization) -> Self {
        Self(Arc::new(AtomicU8::new(code(level))))
    }

    /// The level in force.
    pub fn get(&self) -> PathNormalization {
        match self.0.load(Ordering::Acquire) {
            0 => PathNormalization::None,
            2 => PathNormalization::MergeSlashes,
            3 => PathNormalization::DecodeAndMergeSlashes,
            _ => PathNormalization::Base,
        }
    }

    /// Sets the level for the requests that start from now on.
    pub fn set(&self, level: PathNormalization) {
        self.0.store(code(level), Ordering::Release);
    }
}

fn code(level: PathNormalization) -> u8 {
    match level {
        PathNormalization::None => 0,
        PathNormalization::Base => 1,
        PathNormalization::MergeSlashes => 2,
        PathNormalization::DecodeAndMergeSlashes => 3,
    }
}

/// Normalizes each request's path, then calls `S`; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Normalize<S> {
    inner: S,
    level: SharedLevel,
}

impl<S> Normalize<S> {
    /// `inner` behind normalization at a fixed `level`.
    pub fn new(inner: S, level: PathNormalization) -> Self {
        Self::shared(inner, SharedLevel::new(level))
    }

    /// `inner` behind normalization at the level `level` holds when each request starts.
    pub fn shared(inner: S, level: SharedLevel) -> Self {
        Self { inner, level }
    }

    /// A [`NormalizeLayer`] at a fixed `level`.
    pub fn layer(level: PathNormalization) -> NormalizeLayer {
        NormalizeLayer::new(level)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for Normalize<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = NormalizeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // Read after `poll_ready`: the policy refresh under it has set the level of the config
        // this request runs on.
        let level = self.level.get();
        match normalize_uri(req.uri_mut(), level) {
            Ok(()) => NormalizeFuture::called(self.inner.call(req)),
            Err(reason) => {
                tracing::debug!(path = %req.uri().path(), %reason, %level, "request path refused");
                NormalizeFuture::refused(PathRefused::new(reason))
            }
        }
    }
}

#[cfg(test)]
mod tests;
