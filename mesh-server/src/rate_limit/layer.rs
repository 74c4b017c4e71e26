use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tower_layer::Layer;

use super::{RateLimit, RateLimitSettings, RateLimiter};

/// Applies [`RateLimit`] to a service.
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    limiter: Arc<ArcSwapOption<RateLimiter>>,
}

impl RateLimitLayer {
    /// A layer with its own buckets, shared by every service it makes.
    pub fn new(settings: RateLimitSettings) -> Self {
        Self::shared(Arc::new(ArcSwapOption::from_pointee(RateLimiter::new(
            settings,
        ))))
    }

    /// A layer reading its limiter from a lock-free cell that a reload can swap (`None`: no limit).
    pub fn shared(limiter: Arc<ArcSwapOption<RateLimiter>>) -> Self {
        Self { limiter }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}
