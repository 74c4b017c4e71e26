//! [`JwtLayer`]: builds the JWT layer of one workload from the mesh's policies.

use std::sync::Arc;

use arc_swap::ArcSwap;
use mesh_core::policy::{AuthnPolicy, Labels, MeshConfig};
use tower_layer::Layer;

use super::Jwt;
use super::authenticate::{Authenticator, JwtSettings};
use super::jwks::JwksCache;

/// Applies [`Jwt`] to a service. Cloning shares the policies: [`JwtLayer::update`] on any clone
/// changes what every service built from it enforces (hot reload), and the JWKS cache (keyed by
/// `jwksUri`) survives the update.
#[derive(Clone)]
pub struct JwtLayer {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) current: ArcSwap<Authenticator>,
    cache: JwksCache,
    settings: JwtSettings,
    labels: Labels,
}

impl std::fmt::Debug for JwtLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtLayer")
            .field("labels", &self.shared.labels)
            .finish_non_exhaustive()
    }
}

impl JwtLayer {
    /// The layer of the workload labelled `labels`: the policies whose selector selects it.
    pub fn new(
        policies: &[AuthnPolicy],
        labels: Labels,
        cache: JwksCache,
        settings: JwtSettings,
    ) -> Self {
        let auth = Authenticator::build(policies, &labels, &cache, settings.clone());
        Self {
            shared: Arc::new(Shared {
                current: ArcSwap::from_pointee(auth),
                cache,
                settings,
                labels,
            }),
        }
    }

    /// The layer from a whole config snapshot's `authentication` policies.
    pub fn from_config(
        config: &MeshConfig,
        labels: Labels,
        cache: JwksCache,
        settings: JwtSettings,
    ) -> Self {
        Self::new(&config.authentication, labels, cache, settings)
    }

    /// Swaps in new policies (config reload). Requests already past the layer are unaffected;
    /// keys of a `jwksUri` still in use are kept.
    pub fn update(&self, policies: &[AuthnPolicy]) {
        let s = &self.shared;
        let auth = Authenticator::build(policies, &s.labels, &s.cache, s.settings.clone());
        s.current.store(Arc::new(auth));
    }

    /// [`update`](Self::update) from a config snapshot.
    pub fn update_from(&self, config: &MeshConfig) {
        self.update(&config.authentication);
    }

    /// Whether no policy currently applies to this workload.
    pub fn is_empty(&self) -> bool {
        self.shared.current.load().is_empty()
    }

    /// The JWKS cache (for its [`stats`](JwksCache::stats)).
    pub fn cache(&self) -> &JwksCache {
        &self.shared.cache
    }
}

impl<S> Layer<S> for JwtLayer {
    type Service = Jwt<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Jwt {
            inner,
            shared: self.shared.clone(),
        }
    }
}
