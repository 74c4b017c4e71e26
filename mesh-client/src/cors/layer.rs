use std::sync::Arc;

use mesh_core::policy::CorsPolicy;
use tower::Layer;

use super::{Cors, Rendered};
use crate::stats::ClientStats;

/// Layer applying a [`CorsPolicy`]; see [`Cors`].
#[derive(Clone, Debug)]
pub struct CorsLayer {
    rendered: Arc<Rendered>,
    stats: Arc<ClientStats>,
}

impl CorsLayer {
    /// A layer applying `policy`.
    pub fn new(policy: CorsPolicy) -> Self {
        Self {
            rendered: Arc::new(Rendered::new(policy)),
            stats: Arc::default(),
        }
    }

    /// Reports to `stats` (shared by every service this layer makes).
    pub fn with_stats(mut self, stats: Arc<ClientStats>) -> Self {
        self.stats = stats;
        self
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = Cors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Cors {
            inner,
            rendered: self.rendered.clone(),
            stats: self.stats.clone(),
        }
    }
}
