//! CORS (`corsPolicy`) as a layer, answered on the caller's side as Envoy's CORS filter does.
//!
//! A request with an `Origin` header is a CORS request. Its origin is allowed when one of
//! `allowOrigins` matches it (or matches the literal `*`).
//! - A **preflight** (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin is
//!   answered here with 200 and `Access-Control-Allow-Origin` (the origin), `-Allow-Methods`,
//!   `-Allow-Headers`, `-Max-Age` and `-Allow-Credentials` as configured; it never reaches the
//!   destination. A `*` in `allowMethods` or `allowHeaders` echoes what the preflight asks for.
//!   A preflight from another origin is sent on (`unmatchedPreflights: FORWARD`, the default) or
//!   answered here with 200 and no CORS headers (`IGNORE`).
//! - Any other request goes on; when its origin is allowed the answer gets
//!   `Access-Control-Allow-Origin`, `-Allow-Credentials` and `-Expose-Headers`.
//! - A disallowed origin never gets CORS headers from the mesh, so the browser refuses the
//!   answer. Counted in [`ClientStats`] as Envoy's `cors.origin_valid` / `cors.origin_invalid`
//!   (`cors_origin_valid`, `cors_origin_invalid`), with the preflights answered here.
//!
//! ```
//! use http::{Method, Request, Response, StatusCode};
//! use mesh_client::cors::CorsLayer;
//! use mesh_core::policy::{CorsPolicy, StringMatch};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio_test::block_on(async {
//! let policy = CorsPolicy {
//!     allow_origins: vec![StringMatch::Exact("https://app.example.com".into())],
//!     allow_methods: vec![Method::GET, Method::POST],
//!     ..CorsPolicy::default()
//! };
//! let svc = ServiceBuilder::new()
//!     .layer(CorsLayer::new(policy))
//!     .service(service_fn(|_req: Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(String::from("from upstream")))
//!     }));
//! let preflight = Request::options("/api")
//!     .header("origin", "https://app.example.com")
//!     .header("access-control-request-method", "POST")
//!     .body(String::new())
//!     .unwrap();
//! let response = svc.oneshot(preflight).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.headers()["access-control-allow-methods"], "GET,POST");
//! assert_eq!(response.body(), ""); // answered by the layer
//! # });
//! ```

mod future;
mod layer;

use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use mesh_core::policy::{CorsPolicy, UnmatchedPreflights};
use tower::Service;

pub use future::ResponseFuture;
pub use layer::CorsLayer;

use crate::stats::ClientStats;

/// The policy with its header values rendered once.
#[derive(Debug)]
pub(crate) struct Rendered {
    policy: CorsPolicy,
    allow_methods: Option<HeaderValue>,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
    echo_methods: bool,
    echo_headers: bool,
}

impl Rendered {
    fn new(policy: CorsPolicy) -> Self {
        let join = |items: Vec<&str>| {
            (!items.is_empty())
                .then(|| HeaderValue::from_str(&items.join(",")).ok())
                .flatten()
        };
        let methods: Vec<&str> = policy.allow_methods.iter().map(Method::as_str).collect();
        let echo_methods = methods == ["*"];
        let echo_headers = policy.allow_headers.iter().map(String::as_str).eq(["*"]);
        Self {
            allow_methods: join(methods),
            allow_headers: join(policy.allow_headers.iter().map(String::as_str).collect()),
            expose_headers: join(policy.expose_headers.iter().map(String::as_str).collect()),
            max_age: policy.max_age.map(|d| HeaderValue::from(d.as_secs())),
            echo_methods,
            echo_headers,
            policy,
        }
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.policy
            .allow_origins
            .iter()
            .any(|m| m.matches("*", false) || m.matches(origin, false))
    }

    fn credentials(&self) -> bool {
        self.policy.allow_credentials == Some(true)
    }

    /// The answer to a preflight from `origin` (`None`: not allowed).
    fn preflight<B: Default>(
        &self,
        request: &HeaderMap,
        origin: Option<HeaderValue>,
    ) -> Response<B> {
        let mut response = Response::new(B::default());
        *response.status_mut() = StatusCode::OK;
        let Some(origin) = origin else {
            return response;
        };
        let h = response.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.credentials() {
            h.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        let echo = |name| request.get(name).cloned();
        let methods = if self.echo_methods {
            echo(ACCESS_CONTROL_REQUEST_METHOD)
        } else {
            self.allow_methods.clone()
        };
        if let Some(v) = methods {
            h.insert(ACCESS_CONTROL_ALLOW_METHODS, v);
        }
        let headers = if self.echo_headers {
            echo(ACCESS_CONTROL_REQUEST_HEADERS)
        } else {
            self.allow_headers.clone()
        };
        if let Some(v) = headers {
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        if let Some(v) = &self.max_age {
            h.insert(ACCESS_CONTROL_MAX_AGE, v.clone());
        }
        response
    }

    /// Adds the headers of an answer to a request from the allowed `origin`.
    fn decorate(&self, headers: &mut HeaderMap, origin: HeaderValue) {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.credentials() {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(v) = &self.expose_headers {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
        }
    }
}

/// Applies a [`CorsPolicy`] around an inner service (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Cors<S> {
    inner: S,
    rendered: Arc<Rendered>,
    stats: Arc<ClientStats>,
}

impl<S> Cors<S> {
    /// Wraps `inner` with `policy`.
    pub fn new(inner: S, policy: CorsPolicy) -> Self {
        Self {
            inner,
            rendered: Arc::new(Rendered::new(policy)),
            stats: Arc::default(),
        }
    }

    /// A [`CorsLayer`] for `policy`.
    pub fn layer(policy: CorsPolicy) -> CorsLayer {
        CorsLayer::new(policy)
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

    /// The counters this service reports to.
    pub fn stats(&self) -> &Arc<ClientStats> {
        &self.stats
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Cors<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Default,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let Some(origin) = request.headers().get(ORIGIN).filter(|o| !o.is_empty()) else {
            return ResponseFuture::forward(self.inner.call(request), None);
        };
        let allowed = origin
            .to_str()
            .is_ok_and(|o| self.rendered.origin_allowed(o))
            .then(|| origin.clone());
        if allowed.is_some() {
            self.stats.cors_origin_valid.incr();
        } else {
            self.stats.cors_origin_invalid.incr();
            tracing::debug!(origin = ?origin, "cors: origin not allowed");
        }
        let preflight = request.method() == Method::OPTIONS
            && request
                .headers()
                .get(ACCESS_CONTROL_REQUEST_METHOD)
                .is_some_and(|m| !m.is_empty());
        let forward_unmatched =
            self.rendered.policy.unmatched_preflights == UnmatchedPreflights::Forward;
        if preflight && (allowed.is_some() || !forward_unmatched) {
            self.stats.cors_preflights_answered.incr();
            let response = self.rendered.preflight(request.headers(), allowed);
            return ResponseFuture::answered(response);
        }
        let decorate = allowed.map(|origin| (self.rendered.clone(), origin));
        ResponseFuture::forward(self.inner.call(request), decorate)
    }
}

#[cfg(test)]
mod tests;
