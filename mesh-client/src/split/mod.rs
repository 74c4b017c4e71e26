//! Weighted traffic split: pick one destination per request by relative weight.
//!
//! The pick happens once per request, before retries, so every attempt of a request goes to the
//! same destination (host and subset) as in Envoy's weighted clusters. The choice is written as
//! the [`Target`] request extension, which the cluster below reads; the destination's own
//! `headers` rules are applied on the way out and back. Weights are relative and `0` means no
//! traffic; randomness is injectable so that shares are testable.
//!
//! ```
//! use mesh_client::split::SplitLayer;
//! use mesh_client::random::Random;
//! use mesh_core::policy::{Destination, HeaderRules, WeightedDestination};
//!
//! let to = |subset: &str, weight| WeightedDestination {
//!     destination: Destination { host: "service2".into(), subset: Some(subset.into()), port: None },
//!     weight,
//!     headers: HeaderRules::default(),
//! };
//! let layer = SplitLayer::new(vec![to("v1", 90), to("v2", 10)])?.with_random(Random::seeded(7));
//! let subset = layer.pick().target.destination.subset.clone();
//! assert!(matches!(subset.as_deref(), Some("v1" | "v2")));
//! # Ok::<(), mesh_client::split::SplitError>(())
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use mesh_core::policy::{HeaderRules, WeightedDestination};
use tower::{Layer, Service};

use crate::body::BoxBody;
use crate::context::{Target, Upstream};
use crate::headers;
use crate::random::Random;

/// Why a split cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SplitError {
    /// `route` lists no destination.
    #[error("route: no destination")]
    Empty,
    /// Every destination has weight 0.
    #[error("route: every destination has weight 0")]
    AllZero,
}

/// One destination of a split, ready to use.
#[derive(Debug)]
pub struct Choice {
    /// The target extension the request gets.
    pub target: Target,
    /// The destination's header rules.
    pub headers: Arc<HeaderRules>,
    cumulative: u64,
}

/// Layer picking a weighted destination per request.
#[derive(Clone, Debug)]
pub struct SplitLayer {
    choices: Arc<[Choice]>,
    total: u64,
    random: Random,
}

impl SplitLayer {
    /// A split over `destinations` (weights relative, 0 = no traffic).
    pub fn new(destinations: Vec<WeightedDestination>) -> Result<Self, SplitError> {
        if destinations.is_empty() {
            return Err(SplitError::Empty);
        }
        let mut total = 0u64;
        let mut choices = Vec::with_capacity(destinations.len());
        for d in destinations {
            total += u64::from(d.weight);
            choices.push(Choice {
                target: Target::new(d.destination),
                headers: Arc::new(d.headers),
                cumulative: total,
            });
        }
        if total == 0 {
            return Err(SplitError::AllZero);
        }
        Ok(Self {
            choices: choices.into(),
            total,
            random: Random::thread(),
        })
    }

    /// Draws with `random` (seeded in tests).
    pub fn with_random(mut self, random: Random) -> Self {
        self.random = random;
        self
    }

    /// Picks a destination.
    pub fn pick(&self) -> &Choice {
        pick(&self.choices, self.total, &self.random)
    }
}

fn pick<'a>(choices: &'a [Choice], total: u64, random: &Random) -> &'a Choice {
    let r = if choices.len() == 1 {
        0
    } else {
        random.below(total)
    };
    let i = choices.partition_point(|c| c.cumulative <= r);
    // `r < total == last.cumulative`, so `i` is in range; fall back to the last to stay total.
    match choices.get(i).or_else(|| choices.last()) {
        Some(c) => c,
        None => unreachable_empty(),
    }
}

#[cold]
fn unreachable_empty() -> ! {
    // invariant: `SplitLayer::new` refuses an empty list, and the list is immutable after.
    unreachable!("split built with no destination")
}

impl<S> Layer<S> for SplitLayer {
    type Service = Split<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Split {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service routing each request to one weighted destination.
#[derive(Clone, Debug)]
pub struct Split<S> {
    inner: S,
    layer: SplitLayer,
}

impl<S> Split<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, B> Service<Request<B>> for Split<S>
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
        let choice = self.layer.pick();
        headers::apply(&choice.headers.request, request.headers_mut());
        request.extensions_mut().insert(choice.target.clone());
        ResponseFuture {
            inner: self.inner.call(request),
            rules: choice.headers.clone(),
            target: Some(choice.target.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`Split`]: applies the destination's response header rules and copies
    /// the [`Target`] to the response (for metrics) unless its [`Upstream`] names it already.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        rules: Arc<HeaderRules>,
        target: Option<Target>,
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
        headers::apply(&this.rules.response, response.headers_mut());
        // An answer from the cluster names its destination in `Upstream` already; one made
        // on the way (a timeout's 504, a rescue) gets the target.
        if let Some(target) = this.target.take() {
            let named = response
                .extensions()
                .get::<Upstream>()
                .and_then(|u| u.destination.as_ref())
                .is_some_and(|d| Arc::ptr_eq(d, &target.destination) || **d == *target.destination);
            if !named {
                response.extensions_mut().insert(target);
            }
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests;
