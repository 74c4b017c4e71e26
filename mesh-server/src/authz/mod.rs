//! Authorization: Istio's AuthorizationPolicy evaluated in process.
//!
//! Policies are compiled per workload into an [`AuthzEngine`] and read through a lock-free
//! [`ArcSwap`] cell, so a reload swaps them without blocking requests. Each request is evaluated
//! as Istio does:
//!
//! 1. **CUSTOM**: when a CUSTOM policy's rules match, its provider (an [`ExtAuthz`] hook) is
//!    asked; a refusal ends the request (a missing hook refuses: fail closed).
//! 2. **DENY**: any matching DENY policy refuses the request.
//! 3. **ALLOW**: with no ALLOW policy the request is allowed; otherwise one must match. An
//!    ALLOW policy without rules matches nothing, so it denies all; `rules: [{}]` allows all.
//! 4. **AUDIT** policies never decide: a match emits a `mesh::authz::audit` tracing event.
//!
//! Policies annotated `istio.io/dry-run: "true"` never decide either. As Envoy's RBAC
//! `shadow_rules`, the dry-run DENY policies and the dry-run ALLOW policies are each evaluated
//! on their own beside the real decision, and what they would have decided is reported: a
//! `mesh::authz::dry_run` tracing event (INFO) and, with
//! [`AuthorizationLayer::with_dry_run_metrics`], the counter
//! `mesh_authz_dry_run_total{destination_workload, policy, action, result}` with `result`
//! `shadow_allowed` or `shadow_denied`, Envoy's words.
//!
//! A refused request fails with [`Denied`] (boxed); [`crate::rescue`] answers it with 403
//! `RBAC: access denied`.
//!
//! What a rule can see: method, path (without query), `Host` (case-insensitive, with or without
//! port), the destination port and IP ([`LocalAddr`](crate::context::LocalAddr)), the source IP ([`RemoteAddr`](crate::context::RemoteAddr)
//! or axum's `ConnectInfo<SocketAddr>`), `X-Forwarded-For` when proxies are trusted, the
//! authenticated end user ([`Principal`](crate::context::Principal), set by JWT authentication) and the peer workload
//! identity ([`PeerIdentity`](crate::context::PeerIdentity), set only by a transport with mutual TLS: without it, `principals`,
//! `namespaces`, `source.principal` and `source.namespace` never match and `connection.sni` is
//! never present).
//!
//! ```
//! use mesh_core::policy::{AuthzAction, AuthzPolicy, AuthzRule, Operation};
//! use mesh_server::authz::{AuthorizationLayer, AuthzEngine};
//! use tower::{ServiceBuilder, service_fn};
//!
//! let read_only = AuthzPolicy {
//!     origin: Default::default(),
//!     selector: Default::default(),
//!     action: AuthzAction::Allow,
//!     provider: None,
//!     rules: vec![AuthzRule {
//!         to: vec![Operation { methods: vec!["GET".into()], paths: vec!["/api/*".into()], ..Default::default() }],
//!         ..Default::default()
//!     }],
//!     dry_run: false,
//! };
//! let engine = AuthzEngine::new([&read_only]).expect("valid policy");
//! let svc = ServiceBuilder::new()
//!     .layer(AuthorizationLayer::new(engine))
//!     .service(service_fn(|_req: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(())) }));
//! # drop(svc);
//! ```

mod attrs;
mod custom;
mod engine;
mod error;
mod future;
mod layer;
mod matcher;
mod peer;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use http::Request;
use tower_service::Service;

pub(crate) use attrs::RequestAttrs;
pub use custom::{CheckFuture, CheckRequest, CheckResponse, ExtAuthz};
use engine::Shadow;
pub use engine::{AuthzEngine, ROOT_NAMESPACE};
pub use error::{BuildError, Denied};
pub use future::ResponseFuture;
pub use layer::AuthorizationLayer;

use crate::BoxError;
use mesh_telemetry::MeshMetrics;

/// Middleware enforcing AuthorizationPolicies; see the [module docs](self).
#[derive(Clone)]
pub struct Authorization<S> {
    inner: S,
    engine: Arc<ArcSwap<AuthzEngine>>,
    ext: Option<Arc<dyn ExtAuthz>>,
    trusted_proxies: usize,
    dry_run: Option<Arc<DryRunMetrics>>,
}

/// Where shadow results of dry-run policies are counted.
#[derive(Debug)]
pub(crate) struct DryRunMetrics {
    pub(crate) metrics: MeshMetrics,
    pub(crate) workload: Box<str>,
}

impl<S> Authorization<S> {
    /// Wraps `inner` with a fixed set of compiled policies.
    pub fn new(inner: S, engine: AuthzEngine) -> Self {
        Self {
            inner,
            engine: Arc::new(ArcSwap::from_pointee(engine)),
            ext: None,
            trusted_proxies: 0,
            dry_run: None,
        }
    }

    /// A layer; see [`AuthorizationLayer`].
    pub fn layer(engine: AuthzEngine) -> AuthorizationLayer {
        AuthorizationLayer::new(engine)
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
}

impl<S: std::fmt::Debug> std::fmt::Debug for Authorization<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for Authorization<S>
where
    S: Service<Request<B>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let engine = self.engine.load();
        if engine.is_empty() {
            return ResponseFuture::inner(self.inner.call(req));
        }
        let verdict = {
            let attrs = RequestAttrs::new(&req, self.trusted_proxies);
            let verdict = engine.evaluate(&attrs);
            if let Err(policy) = &verdict.result {
                tracing::debug!(
                    policy = policy.as_deref().unwrap_or("<no allow policy matched>"),
                    method = attrs.method,
                    path = attrs.path,
                    "request denied by authorization"
                );
            }
            for shadow in verdict.shadow.iter().flatten() {
                report_shadow(shadow, &attrs, self.dry_run.as_deref());
            }
            verdict
        };
        let sync = verdict.result.map_err(|policy| Denied {
            policy,
            custom: None,
        });
        match verdict.custom {
            None => match sync {
                Ok(()) => ResponseFuture::inner(self.inner.call(req)),
                Err(denied) => ResponseFuture::denied(denied),
            },
            Some((provider, policy)) => {
                let Some(ext) = &self.ext else {
                    tracing::warn!(%provider, %policy, "no authorization provider configured for a CUSTOM policy: denying");
                    return ResponseFuture::denied(Denied {
                        policy: Some(policy),
                        custom: None,
                    });
                };
                let check = ext.check(check_request(&req, provider, policy.clone()));
                // Take the service that was driven to readiness; leave a fresh clone behind.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::checking(check, inner, req, sync, policy)
            }
        }
    }
}

/// Logs and counts what a dry-run policy set would have decided.
fn report_shadow(shadow: &Shadow, attrs: &RequestAttrs<'_>, sink: Option<&DryRunMetrics>) {
    let result = if shadow.allowed {
        "shadow_allowed"
    } else {
        "shadow_denied"
    };
    let policy = shadow.policy.as_deref().unwrap_or("none");
    let action = shadow.action.as_str();
    tracing::info!(target: "mesh::authz::dry_run", policy, action, result, method = attrs.method, path = attrs.path, "dry-run authorization result (not enforced)");
    if let Some(sink) = sink {
        sink.metrics
            .record_authz_dry_run(&sink.workload, policy, action, result);
    }
}

fn check_request<B>(req: &Request<B>, provider: Arc<str>, policy: Arc<str>) -> CheckRequest {
    let ext = req.extensions();
    CheckRequest {
        provider,
        policy,
        method: req.method().clone(),
        uri: req.uri().clone(),
        headers: req.headers().clone(),
        source: ext
            .get::<crate::context::RemoteAddr>()
            .map(|r| r.0)
            .or_else(|| {
                ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0)
            }),
        principal: ext
            .get::<crate::context::Principal>()
            .map(|a| a.principal().to_owned()),
    }
}
