use std::sync::Arc;

use arc_swap::ArcSwap;
use tower_layer::Layer;

use mesh_telemetry::MeshMetrics;

use super::{Authorization, AuthzEngine, DryRunMetrics, ExtAuthz};

/// Applies [`Authorization`] to a service.
#[derive(Clone)]
pub struct AuthorizationLayer {
    pub(super) engine: Arc<ArcSwap<AuthzEngine>>,
    pub(super) ext: Option<Arc<dyn ExtAuthz>>,
    pub(super) trusted_proxies: usize,
    pub(super) dry_run: Option<Arc<DryRunMetrics>>,
}

impl AuthorizationLayer {
    /// A layer evaluating a fixed set of compiled policies.
    pub fn new(engine: AuthzEngine) -> Self {
        Self::shared(Arc::new(ArcSwap::from_pointee(engine)))
    }

    /// A layer reading its policies from a lock-free cell that a reload can swap.
    pub fn shared(engine: Arc<ArcSwap<AuthzEngine>>) -> Self {
        Self {
            engine,
            ext: None,
            trusted_proxies: 0,
            dry_run: None,
        }
    }

    /// Counts the shadow results of `istio.io/dry-run` policies in `metrics`
    /// (`mesh_authz_dry_run_total`) for `workload`; without it they are only logged.
    pub fn with_dry_run_metrics(mut self, metrics: MeshMetrics, workload: &str) -> Self {
        self.dry_run = Some(Arc::new(DryRunMetrics {
            metrics,
            workload: workload.into(),
        }));
        self
    }

    /// The provider asked for requests that a CUSTOM policy selects. Without one, such
    /// requests are denied (fail closed).
    pub fn with_ext_authz(mut self, ext: impl ExtAuthz) -> Self {
        self.ext = Some(Arc::new(ext));
        self
    }

    /// The same, for a provider already shared.
    pub fn with_shared_ext_authz(mut self, ext: Option<Arc<dyn ExtAuthz>>) -> Self {
        self.ext = ext;
        self
    }

    /// Istio's `numTrustedProxies` (default 0): how many proxies in front of this server append
    /// to `X-Forwarded-For`; `remote.ip` and `remoteIpBlocks` read the address they saw.
    pub fn trusted_proxies(mut self, n: usize) -> Self {
        self.trusted_proxies = n;
        self
    }
}

impl std::fmt::Debug for AuthorizationLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationLayer")
            .field("ext_authz", &self.ext.is_some())
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

impl<S> Layer<S> for AuthorizationLayer {
    type Service = Authorization<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorization {
            inner,
            engine: self.engine.clone(),
            ext: self.ext.clone(),
            trusted_proxies: self.trusted_proxies,
            dry_run: self.dry_run.clone(),
        }
    }
}
