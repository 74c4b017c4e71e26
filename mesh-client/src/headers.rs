//! Header manipulation (`headers.request` / `headers.response`) as a layer, and small helpers
//! the other layers share (response flags, Envoy-style local replies).
//!
//! Request operations apply when the request is sent; response operations when the answer comes
//! back. Within one side, `remove` runs first, then `set` (replacing every value), then `add`
//! (appending), so a rule can both drop and re-add a header.
//!
//! ```
//! use http::{HeaderName, HeaderValue};
//! use mesh_client::headers::HeadersLayer;
//! use mesh_core::policy::{HeaderOps, HeaderRules};
//!
//! let rules = HeaderRules {
//!     request: HeaderOps {
//!         set: vec![(HeaderName::from_static("x-canary"), HeaderValue::from_static("1"))],
//!         ..HeaderOps::default()
//!     },
//!     ..HeaderRules::default()
//! };
//! let _layer = HeadersLayer::new(rules);
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use mesh_core::policy::{HeaderOps, HeaderRules};
use tower::{Layer, Service};

use crate::body::BoxBody;

/// Applies `ops` to `headers`: remove, then set, then add.
pub fn apply(ops: &HeaderOps, headers: &mut HeaderMap) {
    for name in &ops.remove {
        headers.remove(name);
    }
    for (name, value) in &ops.set {
        headers.insert(name.clone(), value.clone());
    }
    for (name, value) in &ops.add {
        headers.append(name.clone(), value.clone());
    }
}

/// Layer applying [`HeaderRules`] around an inner service.
#[derive(Clone, Debug)]
pub struct HeadersLayer {
    rules: Arc<HeaderRules>,
}

impl HeadersLayer {
    /// A layer applying `rules`.
    pub fn new(rules: HeaderRules) -> Self {
        Self {
            rules: Arc::new(rules),
        }
    }
}

impl<S> Layer<S> for HeadersLayer {
    type Service = Headers<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Headers {
            inner,
            rules: self.rules.clone(),
        }
    }
}

/// Service applying request header operations before `inner` and response ones after.
#[derive(Clone, Debug)]
pub struct Headers<S> {
    inner: S,
    rules: Arc<HeaderRules>,
}

impl<S> Headers<S> {
    /// Wraps `inner` with `rules`.
    pub fn new(inner: S, rules: HeaderRules) -> Self {
        Self {
            inner,
            rules: Arc::new(rules),
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, B> Service<Request<B>> for Headers<S>
where
    S: Service<Request<B>, Response = Response<BoxBody>>,
{
    type Response = Response<BoxBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        apply(&self.rules.request, request.headers_mut());
        ResponseFuture {
            inner: self.inner.call(request),
            rules: self.rules.clone(),
        }
    }
}

impl<F> ResponseFuture<F> {
    /// Applies the response operations of `rules` to the answer of `inner`.
    pub fn new(inner: F, rules: Arc<HeaderRules>) -> Self {
        Self { inner, rules }
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`Headers`]: applies the response operations to the answer.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        rules: Arc<HeaderRules>,
    }
}

impl<F, E> std::future::Future for ResponseFuture<F>
where
    F: std::future::Future<Output = Result<Response<BoxBody>, E>>,
{
    type Output = Result<Response<BoxBody>, E>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        apply(&this.rules.response, response.headers_mut());
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue};

    use super::*;
    use crate::body;
    use tower::ServiceExt;

    fn ops(
        set: &[(&'static str, &'static str)],
        add: &[(&'static str, &'static str)],
        remove: &[&'static str],
    ) -> HeaderOps {
        let pair = |(n, v): &(&'static str, &'static str)| {
            (HeaderName::from_static(n), HeaderValue::from_static(v))
        };
        HeaderOps {
            set: set.iter().map(pair).collect(),
            add: add.iter().map(pair).collect(),
            remove: remove.iter().map(|n| HeaderName::from_static(n)).collect(),
        }
    }

    #[test]
    fn remove_then_set_then_add() {
        let mut h = HeaderMap::new();
        h.append("a", HeaderValue::from_static("1"));
        h.append("a", HeaderValue::from_static("2"));
        h.insert("gone", HeaderValue::from_static("x"));
        apply(
            &ops(&[("a", "s")], &[("a", "t"), ("b", "u")], &["gone"]),
            &mut h,
        );
        let a: Vec<_> = h.get_all("a").iter().collect();
        assert_eq!(a, ["s", "t"]);
        assert_eq!(h["b"], "u");
        assert!(!h.contains_key("gone"));
    }

    #[tokio::test]
    async fn request_and_response_ops_apply() {
        let rules = HeaderRules {
            request: ops(&[("x-req", "1")], &[], &["secret"]),
            response: ops(&[], &[("x-resp", "2")], &["server"]),
        };
        let inner = tower::service_fn(|req: Request<BoxBody>| async move {
            assert_eq!(req.headers()["x-req"], "1");
            assert!(!req.headers().contains_key("secret"));
            let mut r = Response::new(body::empty());
            r.headers_mut()
                .insert("server", HeaderValue::from_static("x"));
            Ok::<_, crate::BoxError>(r)
        });
        let svc = HeadersLayer::new(rules).layer(inner);
        let req = Request::builder()
            .header("secret", "s")
            .body(body::empty())
            .unwrap();
        let resp = svc.oneshot(req).await.unwrap();
        assert_eq!(resp.headers()["x-resp"], "2");
        assert!(!resp.headers().contains_key("server"));
    }
}
