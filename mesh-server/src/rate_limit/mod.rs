//! Local rate limiting: Linkerd's HTTPLocalRateLimitPolicy in process.
//!
//! Token buckets, each holding one second's worth of requests and refilling continuously
//! (GCRA: one atomic `u64` per bucket, updated by compare-and-swap, no lock):
//!
//! - **total**: all requests to the workload;
//! - **identity**: one bucket per client identity, in a sharded map that remembers a bounded
//!   number of clients and forgets idle ones first (an idle bucket is full, so nothing is lost);
//!   requests without an identity share one anonymous bucket;
//! - **overrides**: a bucket shared by the clients an override names, used instead of the
//!   identity bucket for them.
//!
//! The client identity is the peer's ([`PeerIdentity`], mutual TLS) or else the authenticated
//! request principal ([`Principal`], `iss/sub`, set by JWT authentication): per-client limits
//! therefore need this layer *after* authentication. [`crate::MeshServer`] puts the total limit
//! before authentication (cheap refusals before verifying tokens) and the per-client limits right
//! after it. An override's `clientRefs[].name` names a client whose identity is that name or
//! ends in `/name` (`.../sa/NAME`, or a token's `sub`).
//!
//! A refused request fails with [`RateLimited`] (boxed); [`crate::rescue`] answers it with 429 and
//! `retry-after` in whole seconds. The clock is tokio's, so tests run with a paused clock.
//!
//! ```
//! use mesh_server::rate_limit::{RateLimitLayer, RateLimitSettings};
//! use tower::{ServiceBuilder, service_fn};
//!
//! let layer = RateLimitLayer::new(RateLimitSettings { total_rps: Some(100), ..Default::default() });
//! let svc = ServiceBuilder::new()
//!     .layer(layer)
//!     .service(service_fn(|_req: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(())) }));
//! # drop(svc);
//! ```

mod error;
mod future;
mod gcra;
mod keyed;
mod layer;
mod limiter;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwapOption;
use http::Request;
use tower_service::Service;

pub use error::{RateLimited, Scope};
pub use future::ResponseFuture;
pub use layer::RateLimitLayer;
pub use limiter::{RateLimitSettings, RateLimiter};

use crate::BoxError;
use crate::context::{PeerIdentity, Principal};

/// Middleware refusing requests over their limits; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct RateLimit<S> {
    inner: S,
    limiter: Arc<ArcSwapOption<RateLimiter>>,
}

impl<S> RateLimit<S> {
    /// Wraps `inner` with fresh buckets.
    pub fn new(inner: S, settings: RateLimitSettings) -> Self {
        Self {
            inner,
            limiter: Arc::new(ArcSwapOption::from_pointee(RateLimiter::new(settings))),
        }
    }

    /// A layer; see [`RateLimitLayer`].
    pub fn layer(settings: RateLimitSettings) -> RateLimitLayer {
        RateLimitLayer::new(settings)
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

/// The identity a request's per-client limit is keyed by.
pub fn client_identity<B>(req: &Request<B>) -> Option<&str> {
    let ext = req.extensions();
    ext.get::<PeerIdentity>()
        .map(|p| p.principal())
        .or_else(|| ext.get::<Principal>().map(Principal::principal))
}

impl<S, B> Service<Request<B>> for RateLimit<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let limiter = self.limiter.load();
        if let Some(limiter) = limiter.as_deref()
            && let Err(error) = limiter.check(client_identity(&req))
        {
            tracing::debug!(scope = ?error.scope(), wait = ?error.wait(), identity = client_identity(&req), "rate limited");
            return ResponseFuture::limited(error);
        }
        ResponseFuture::inner(self.inner.call(req))
    }
}
