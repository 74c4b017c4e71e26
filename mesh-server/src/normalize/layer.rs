use mesh_core::normalize::PathNormalization;
use tower_layer::Layer;

use super::{Normalize, SharedLevel};

/// Wraps a service in [`Normalize`].
#[derive(Clone, Debug)]
pub struct NormalizeLayer {
    level: SharedLevel,
}

impl NormalizeLayer {
    /// Normalization at a fixed `level`.
    pub fn new(level: PathNormalization) -> Self {
        Self::shared(SharedLevel::new(level))
    }

    /// Normalization at the level `level` holds when each request starts.
    pub fn shared(level: SharedLevel) -> Self {
        Self { level }
    }
}

impl<S> Layer<S> for NormalizeLayer {
    type Service = Normalize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Normalize::shared(inner, self.level.clone())
    }
}
