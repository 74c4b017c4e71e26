//! JWT authentication: Istio's RequestAuthentication (and the legacy authentication Policy) as a
//! Tower layer.
//!
//! For each request the layer looks for a token where the workload's rules say (by default
//! `Authorization: Bearer <token>`, then the `access_token` query parameter), picks the rule by
//! the token's `iss`, and verifies it against that issuer's keys (inline, or fetched from the
//! `jwksUri`, cached and refreshed: see [`jwks`]). Then, as Istio does:
//! - no token: the request passes unauthenticated (an authorization policy decides), unless a
//!   legacy Policy requires one (`401 Jwt is missing`) on a path its `triggerRules` cover;
//! - an invalid token: `401` with `www-authenticate: Bearer error="invalid_token"` and Envoy's
//!   wording in the body (`Jwt verification fails`, `Jwt is expired`, ...): a response, not an
//!   error, as tower-http's middleware do;
//! - a valid token: the verified caller, a [`Principal`](crate::context::Principal) (`iss/sub`
//!   and the claims; also an axum extractor), goes into the request extensions, where
//!   authorization, the per-client rate limits and the application read it; claims are copied
//!   to headers as configured, and the token's header is removed unless `forwardOriginalToken`.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use http::{Request, Response};
//! use mesh_core::policy::{AuthnPolicy, JwksSource, JwtRule, Labels};
//! use mesh_server::jwt::{JwksCache, JwtLayer, JwtSettings};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let rule = JwtRule {
//!     issuer: "https://issuer.example".into(),
//!     audiences: vec![],
//!     jwks: JwksSource::Uri("http://127.0.0.1:9/jwks.json".into()), // fetched in the background
//!     from_headers: vec![],
//!     from_params: vec![],
//!     from_cookies: vec![],
//!     output_payload_to_header: None,
//!     output_claim_to_headers: vec![],
//!     forward_original_token: false,
//!     timeout: Duration::from_secs(5),
//!     space_delimited_claims: Vec::new(),
//! };
//! let policy = AuthnPolicy {
//!     origin: Default::default(),
//!     selector: Default::default(),
//!     rules: vec![rule],
//!     require_token: true, // the legacy Policy's meaning
//!     trigger_rules: vec![],
//! };
//! let labels = Labels::from([("app".to_owned(), "service1".to_owned())]);
//! let cache = JwksCache::new().unwrap();
//! let layer = JwtLayer::new(&[policy], labels, cache, JwtSettings::default());
//! let svc = ServiceBuilder::new()
//!     .layer(layer)
//!     .service(service_fn(|_req: Request<String>| async { Ok::<_, std::convert::Infallible>(Response::new(String::from("hi"))) }));
//! let res = svc.oneshot(Request::new(String::new())).await.unwrap();
//! assert_eq!(res.status(), 401); // no token, and one is required
//! # }
//! ```

mod authenticate;
pub mod error;
mod extract;
mod future;
pub mod jwks;
mod layer;
pub mod verify;

use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response};
use tower_service::Service;

pub use self::authenticate::{Clock, JwtSettings};
pub use self::error::{JwksError, JwtError};
pub use self::extract::MissingPrincipal;
pub use self::future::ResponseFuture;
pub use self::jwks::{HttpFetcher, JwksCache, JwksFetcher, JwksSettings, JwksStats};
pub use self::layer::JwtLayer;

use self::authenticate::{Step, WaitFor};
use self::layer::Shared;

/// The JWT authentication service: see the [module docs](self).
#[derive(Clone)]
pub struct Jwt<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for Jwt<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt").finish_non_exhaustive()
    }
}

impl<S> Jwt<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The 401 answered for `err`.
pub fn unauthorized<B: From<&'static str>>(err: &JwtError) -> Response<B> {
    let mut res = Response::new(B::from(err.body()));
    *res.status_mut() = err.status();
    let h = res.headers_mut();
    h.insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static(err.www_authenticate()),
    );
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

impl<S, B, ResBody> Service<Request<B>> for Jwt<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResBody: From<&'static str> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let auth = self.shared.current.load();
        if auth.is_empty() {
            return ResponseFuture::inner(self.inner.call(req));
        }
        match auth.check(&req, true) {
            Step::Pass => {
                auth.strip(&mut req);
                ResponseFuture::inner(self.inner.call(req))
            }
            Step::Accept(v) => {
                auth.apply(&mut req, v);
                ResponseFuture::inner(self.inner.call(req))
            }
            Step::Reject(e) => ResponseFuture::reject(unauthorized(&e)),
            Step::Wait(entry, what) => {
                // The ready service goes into the future; this one keeps a fresh clone.
                let clone = self.inner.clone();
                let mut inner = mem::replace(&mut self.inner, clone);
                let auth = arc_swap::Guard::into_inner(auth);
                ResponseFuture::wait(Box::pin(async move {
                    match what {
                        WaitFor::FirstFetch => entry.wait_first_fetch().await,
                        WaitFor::Refetch => entry.refetch().await,
                    };
                    match auth.check(&req, false) {
                        Step::Pass => auth.strip(&mut req),
                        Step::Accept(v) => auth.apply(&mut req, v),
                        Step::Reject(e) => return Ok(unauthorized(&e)),
                        // `may_wait` is false: never asked to wait again.
                        Step::Wait(..) => return Ok(unauthorized(&JwtError::KeysUnavailable)),
                    }
                    inner.call(req).await
                }))
            }
        }
    }
}

#[cfg(test)]
#[path = "../../tests/support/test_keys.rs"]
mod test_keys;
#[cfg(test)]
mod tests;
