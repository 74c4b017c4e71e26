//! The admin endpoints of an app: `/metrics`, `/healthz` and `/config_dump`, with the mesh's
//! sections (certificates, outbound TLS) or a `--plain` app's own counter.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use mesh_server::admin::{ConfigView, mesh_config_view};

use super::{MeshRuntime, RuntimeInner};
use crate::admin::{AdminSource, Ready, RequestCounter};

impl MeshRuntime {
    /// The admin endpoints (`/metrics`, `/healthz`, `/config_dump`) of this app.
    pub fn admin(&self, ready: &Ready) -> Router {
        self.admin_with(ready, None)
    }

    /// [`MeshRuntime::admin`] whose `/healthz` also reports why `inbound` refuses connections on
    /// `port` (STRICT without a certificate).
    pub fn admin_with(
        &self,
        ready: &Ready,
        inbound: Option<(mesh_server::server::InboundTls, u16)>,
    ) -> Router {
        self.admin_inner(ready, inbound, None)
    }

    /// [`MeshRuntime::admin_with`] whose `/config_dump` also has section `name`, as `section`
    /// says at each request (e.g. the gateway's `gateway_tls`).
    pub fn admin_with_view(
        &self,
        ready: &Ready,
        inbound: Option<(mesh_server::server::InboundTls, u16)>,
        name: &'static str,
        section: ExtraView,
    ) -> Router {
        self.admin_inner(ready, inbound, Some((name, section)))
    }

    fn admin_inner(
        &self,
        ready: &Ready,
        inbound: Option<(mesh_server::server::InboundTls, u16)>,
        extra: Option<(&'static str, ExtraView)>,
    ) -> Router {
        let store = self.inner.store.clone();
        let certs = self
            .inner
            .tls
            .dir()
            .is_some()
            .then(|| self.inner.tls.clone());
        let runtime = Arc::downgrade(&self.inner);
        let view: ConfigView = Arc::new(move || {
            let last = store.last_reload().map(|r| {
                serde_json::json!({
                    "generation": r.generation,
                    "applied": r.is_ok(),
                    "errors": r.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "warnings": r.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            });
            let mut view = mesh_config_view(&store.snapshot(), store.generation(), last);
            if let (Some(certs), Some(map)) = (&certs, view.as_object_mut()) {
                map.insert("certificates".to_owned(), certs.view());
            }
            if let (Some((name, section)), Some(map)) = (&extra, view.as_object_mut()) {
                map.insert((*name).to_owned(), section());
            }
            if let (Some(inner), Some(map)) = (runtime.upgrade(), view.as_object_mut()) {
                map.insert("outbound_tls".to_owned(), inner.outbound_tls());
            }
            view
        });
        match inbound {
            None => mesh_server::admin::router(self.inner.metrics.clone(), ready.flag(), view),
            Some((inbound, port)) => mesh_server::admin::router_with_health(
                self.inner.metrics.clone(),
                ready.flag(),
                view,
                Arc::new(move || inbound.unready_reason(port)),
            ),
        }
    }
}

impl RuntimeInner {
    /// `/config_dump` `outbound_tls`: upstream TLS handshakes completed and failed so far.
    fn outbound_tls(&self) -> serde_json::Value {
        let stats = self
            .tls_stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let handshakes: u64 = stats.iter().map(|s| s.handshakes()).sum();
        let failures: u64 = stats.iter().map(|s| s.failures()).sum();
        serde_json::json!({"handshakes": handshakes, "failures": failures})
    }
}

/// A section of `/config_dump` computed at each request.
pub type ExtraView = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// Admin data of a `--plain` app: its own request counter and the upstream address.
pub struct PlainAdmin {
    /// The request counter.
    pub counter: Arc<RequestCounter>,
    /// What it calls.
    pub upstream: Option<SocketAddr>,
}

impl AdminSource for PlainAdmin {
    fn metrics(&self) -> String {
        self.counter.render()
    }

    fn config_dump(&self) -> String {
        format!("plain mode: no mesh config; upstream {:?}\n", self.upstream)
    }
}
