//! The workload's compiled policies ([`Policies`]) and the [`Gate`] that keeps them current and
//! lets a request skip the policy layers when none applies.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mesh_core::watch::SeenAt;
use pin_project_lite::pin_project;

use crate::normalize::SharedLevel;

use super::*;

/// The JWT policies that can apply to a workload in `namespace`, as Istio scopes them: those of
/// its own namespace and of the root namespace (`istio-system`, mesh-wide without a selector);
/// the selector is matched afterwards.
fn authn_in_scope(config: &MeshConfig, namespace: &str) -> Vec<mesh_core::policy::AuthnPolicy> {
    config
        .authentication
        .iter()
        .filter(|p| {
            let ns = if p.origin.namespace.is_empty() {
                "default"
            } else {
                p.origin.namespace.as_str()
            };
            ns == namespace || ns == crate::authz::ROOT_NAMESPACE
        })
        .cloned()
        .collect()
}

// === impl Policies ===

/// The workload's compiled policies, swapped lock-free when the config changes.
pub(super) struct Policies {
    pub(super) workload: Workload,
    source: ConfigSource,
    seen: ArcSwapOption<MeshConfig>,
    // The address of `seen` (0 before the first build): compared with the source's config on
    // each request; `seen` keeps that config alive, so no other config can share its address.
    seen_at: AtomicUsize,
    // When `seen` was last found in force (see `ConfigSource::holds`).
    seen_generation: SeenAt,
    // Serialises rebuilds (never taken when the config is unchanged), so that a request holding
    // an older snapshot cannot overwrite what a newer one built.
    rebuild: Mutex<()>,
    pub(super) authz: Arc<ArcSwap<AuthzEngine>>,
    pub(super) total: Arc<ArcSwapOption<RateLimiter>>,
    pub(super) per_client: Arc<ArcSwapOption<RateLimiter>>,
    // JWT authentication of the workload (its policies are updated on refresh too).
    pub(super) jwt: ArcSwapOption<JwtLayer>,
    // `meshConfig.pathNormalization` of the config in force, for the normalize layer.
    pub(super) path_normalization: SharedLevel,
    // Set after each rebuild: no rate limit, no JWT rule and no authorization policy applies, so
    // a request may go straight to the user's service.
    none_apply: AtomicBool,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("workload", &self.workload)
            .finish_non_exhaustive()
    }
}

impl Policies {
    pub(super) fn new(workload: Workload, source: ConfigSource) -> Self {
        Self {
            workload,
            source,
            seen: ArcSwapOption::empty(),
            seen_at: AtomicUsize::new(0),
            seen_generation: SeenAt::new(),
            rebuild: Mutex::new(()),
            authz: Arc::new(ArcSwap::from_pointee(AuthzEngine::allow_all())),
            total: Arc::new(ArcSwapOption::empty()),
            per_client: Arc::new(ArcSwapOption::empty()),
            jwt: ArcSwapOption::empty(),
            path_normalization: SharedLevel::default(),
            // Nothing is compiled yet: enforce (the first refresh decides).
            none_apply: AtomicBool::new(false),
        }
    }

    /// Recompiles when the snapshot is not the one seen last (one atomic load while the
    /// source's generation is unchanged, a pointer comparison otherwise).
    pub(super) fn refresh(&self) {
        if self
            .source
            .holds(self.seen_at.load(Ordering::Acquire), &self.seen_generation)
        {
            return;
        }
        // A poisoned lock guards no data: carry on.
        let _guard = self
            .rebuild
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Read again under the lock: the newest snapshot wins.
        let config = self.source.snapshot();
        if self.is_current(&config) {
            return;
        }
        let w = &self.workload;
        match AuthzEngine::for_workload(&config.authorization, &w.namespace, &w.labels) {
            Ok(engine) => self.authz.store(Arc::new(engine)),
            // Only hand-built configs can fail here (the loader checks first): keep the last good.
            Err(error) => {
                tracing::error!(%error, workload = %w.service, "authorization policies refused; keeping the previous ones")
            }
        }
        let mut limits = config.rate_limits.iter().filter(|p| {
            let ns = if p.origin.namespace.is_empty() {
                "default"
            } else {
                p.origin.namespace.as_str()
            };
            p.target == w.service && ns == w.namespace
        });
        let settings = limits
            .next()
            .map(RateLimitSettings::from_policy)
            .unwrap_or_default();
        if let Some(extra) = limits.next() {
            tracing::warn!(policy = %extra.origin.name, workload = %w.service, "more than one rate limit policy targets this workload; using the first");
        }
        swap_limiter(&self.total, settings.total_only());
        swap_limiter(&self.per_client, settings.per_client_only());
        if let Some(jwt) = self.jwt.load().as_deref() {
            jwt.update(&authn_in_scope(&config, &w.namespace));
        }
        self.path_normalization.set(config.mesh.path_normalization);
        self.update_none_apply();
        tracing::debug!(workload = %w.service, "inbound policies refreshed");
        let at = Arc::as_ptr(&config) as usize;
        // Readers compare with no address while the old config may be freed (and its address
        // reused): they take the lock above and wait for this rebuild instead.
        self.seen_at.store(0, Ordering::Release);
        self.seen_generation.forget();
        self.seen.store(Some(config));
        self.seen_at.store(at, Ordering::Release);
    }

    pub(super) fn set_jwks_cache(&self, cache: JwksCache) {
        let config = self.source.snapshot();
        let w = &self.workload;
        let layer = JwtLayer::new(
            &authn_in_scope(&config, &w.namespace),
            w.labels.clone(),
            cache,
            JwtSettings::default(),
        );
        self.jwt.store(Some(Arc::new(layer)));
        self.update_none_apply();
    }

    /// Whether no policy applies to the workload now: one atomic load.
    pub(super) fn none_apply(&self) -> bool {
        self.none_apply.load(Ordering::Acquire)
    }

    fn update_none_apply(&self) {
        let none = self.authz.load().is_empty()
            && self.total.load().is_none()
            && self.per_client.load().is_none()
            && self.jwt.load().as_deref().is_none_or(JwtLayer::is_empty);
        self.none_apply.store(none, Ordering::Release);
    }

    fn is_current(&self, config: &Arc<MeshConfig>) -> bool {
        self.seen
            .load()
            .as_ref()
            .is_some_and(|seen| Arc::ptr_eq(seen, config))
    }
}

/// Replaces the limiter only when its settings changed, so that reloads keep the buckets.
fn swap_limiter(cell: &ArcSwapOption<RateLimiter>, settings: RateLimitSettings) {
    let current = cell.load();
    let unchanged = match current.as_deref() {
        Some(l) => *l.settings() == settings,
        None => settings.is_empty(),
    };
    if !unchanged {
        cell.store((!settings.is_empty()).then(|| Arc::new(RateLimiter::new(settings))));
    }
}

// === impl Gate ===

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    // Straight to the user's service: no policy applies.
    Direct,
    // Through rate limits, authentication and authorization.
    Enforce,
}

/// Brings the workload's policies up to date before each request (a pointer comparison when the
/// config is unchanged) and sends the request through the policy layers, or straight to the
/// user's service when no policy applies to the workload (one atomic load).
///
/// The route is chosen in `poll_ready` and the chosen service driven to readiness, so `call`
/// uses exactly the service that is ready.
pub struct Gate<D, E> {
    direct: D,
    enforce: E,
    policies: Arc<Policies>,
    route: Route,
}

impl<D, E> Gate<D, E> {
    pub(super) fn new(direct: D, enforce: E, policies: Arc<Policies>) -> Self {
        Self {
            direct,
            enforce,
            policies,
            route: Route::Enforce,
        }
    }
}

impl<D: Clone, E: Clone> Clone for Gate<D, E> {
    fn clone(&self) -> Self {
        // A clone has not been polled: it has chosen no route, and enforcing is the safe default.
        Self::new(
            self.direct.clone(),
            self.enforce.clone(),
            self.policies.clone(),
        )
    }
}

impl<D, E> std::fmt::Debug for Gate<D, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("policies", &self.policies)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl<D, E, B, R> Service<Request<B>> for Gate<D, E>
where
    D: Service<Request<B>, Response = R>,
    D::Error: Into<BoxError>,
    E: Service<Request<B>, Response = R, Error = BoxError>,
{
    type Response = R;
    type Error = BoxError;
    type Future = GateFuture<D::Future, E::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.policies.refresh();
        if self.policies.none_apply() {
            self.route = Route::Direct;
            self.direct.poll_ready(cx).map_err(Into::into)
        } else {
            self.route = Route::Enforce;
            self.enforce.poll_ready(cx)
        }
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match self.route {
            Route::Direct => GateFuture {
                kind: Kind::Direct {
                    fut: self.direct.call(req),
                },
            },
            Route::Enforce => GateFuture {
                kind: Kind::Enforce {
                    fut: self.enforce.call(req),
                },
            },
        }
    }
}

pin_project! {
    /// Response future of [`Gate`].
    pub struct GateFuture<D, E> {
        #[pin]
        kind: Kind<D, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<D, E> {
        Direct { #[pin] fut: D },
        Enforce { #[pin] fut: E },
    }
}

impl<D, E, R, DE> Future for GateFuture<D, E>
where
    D: Future<Output = Result<R, DE>>,
    DE: Into<BoxError>,
    E: Future<Output = Result<R, BoxError>>,
{
    type Output = Result<R, BoxError>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Direct { fut } => fut.poll(cx).map_err(Into::into),
            KindProj::Enforce { fut } => fut.poll(cx),
        }
    }
}
