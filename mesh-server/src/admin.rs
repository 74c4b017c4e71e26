//! The admin server, like Envoy's admin port: `/metrics` (Prometheus text), `/healthz`
//! (readiness), `/config_dump` (the active configuration as JSON).
//!
//! ```no_run
//! # async fn run() -> Result<(), mesh_server::admin::AdminError> {
//! use std::sync::Arc;
//! use mesh_telemetry::MeshMetrics;
//! use mesh_server::admin::{AdminServer, mesh_config_view};
//!
//! let metrics = MeshMetrics::new();
//! let config = Arc::new(mesh_core::policy::MeshConfig::default());
//! let view = Arc::new(move || mesh_config_view(&config, 1, None));
//! let admin = AdminServer::bind("127.0.0.1:0".parse().unwrap(), metrics, view).await?;
//! println!("admin on {}", admin.local_addr());
//! admin.set_ready(false); // draining: /healthz answers 503
//! admin.shutdown().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mesh_core::policy::{AuthzAction, MeshConfig, RouteAction};
use mesh_telemetry::MeshMetrics;
use mesh_telemetry::metrics::{OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Produces the `/config_dump` JSON (called per request to `/config_dump`).
pub type ConfigView = Arc<dyn Fn() -> Value + Send + Sync>;

/// Why the workload cannot serve right now, if it cannot (called per request to `/healthz`):
/// `Some(reason)` makes `/healthz` answer 503 with the reason even while ready.
pub type HealthCheck = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Admin server failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The address could not be bound.
    #[error("admin: cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

#[derive(Clone)]
struct AdminState {
    metrics: MeshMetrics,
    ready: Arc<AtomicBool>,
    config: ConfigView,
    health: Option<HealthCheck>,
}

/// Entry point: see [`AdminServer::bind`].
#[derive(Debug)]
pub struct AdminServer {
    _priv: (),
}

impl AdminServer {
    /// Binds `addr` and serves the admin endpoints until [`AdminHandle::shutdown`] (or the
    /// handle is dropped). Starts ready.
    pub async fn bind(
        addr: SocketAddr,
        metrics: MeshMetrics,
        config: ConfigView,
    ) -> Result<AdminHandle, AdminError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| AdminError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| AdminError::Bind { addr, source })?;
        let ready = Arc::new(AtomicBool::new(true));
        let app = router(metrics, ready.clone(), config);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "admin server stopped");
            }
        });
        tracing::info!(%local_addr, "admin server listening");
        Ok(AdminHandle {
            local_addr,
            ready,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

/// The admin endpoints as a router (for embedding in an existing server).
pub fn router(metrics: MeshMetrics, ready: Arc<AtomicBool>, config: ConfigView) -> Router {
    router_inner(metrics, ready, config, None)
}

/// [`router`] whose `/healthz` also asks `health` why the workload cannot serve (STRICT mutual
/// TLS without a certificate, say).
pub fn router_with_health(
    metrics: MeshMetrics,
    ready: Arc<AtomicBool>,
    config: ConfigView,
    health: HealthCheck,
) -> Router {
    router_inner(metrics, ready, config, Some(health))
}

fn router_inner(
    metrics: MeshMetrics,
    ready: Arc<AtomicBool>,
    config: ConfigView,
    health: Option<HealthCheck>,
) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/stats/prometheus", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/ready", get(healthz))
        .route("/config_dump", get(config_dump))
        .with_state(AdminState {
            metrics,
            ready,
            config,
            health,
        })
}

async fn metrics_handler(State(s): State<AdminState>, headers: HeaderMap) -> Response {
    // Prometheus text 0.0.4 unless the scraper asks for OpenMetrics.
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let (body, ct) = if openmetrics {
        (s.metrics.encode_openmetrics(), OPENMETRICS_CONTENT_TYPE)
    } else {
        (s.metrics.encode_prometheus(), PROMETHEUS_CONTENT_TYPE)
    };
    ([(header::CONTENT_TYPE, HeaderValue::from_static(ct))], body).into_response()
}

async fn healthz(State(s): State<AdminState>) -> Response {
    if let Some(reason) = s.health.as_ref().and_then(|h| h()) {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response();
    }
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn config_dump(State(s): State<AdminState>) -> Response {
    let view = s.config.clone();
    // The view may walk a large config: keep it off the async workers.
    match tokio::task::spawn_blocking(move || view()).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(error) => {
            tracing::warn!(%error, "config view failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "config view failed\n").into_response()
        }
    }
}

/// A running admin server.
#[derive(Debug)]
pub struct AdminHandle {
    local_addr: SocketAddr,
    ready: Arc<AtomicBool>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl AdminHandle {
    /// The bound address (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Sets readiness: `/healthz` answers 200 `ok` when ready, 503 otherwise.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// The readiness flag, to share with code that decides readiness.
    pub fn readiness(&self) -> Arc<AtomicBool> {
        self.ready.clone()
    }

    /// Stops accepting, lets in-flight admin requests finish, and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            tracing::warn!(%error, "admin server task failed");
        }
    }
}

impl Drop for AdminHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A `/config_dump` view of the config in force in `store`, with its generation and the result
/// of the last reload (applied or refused, with the errors and warnings).
pub fn config_store_view(store: mesh_core::watch::ConfigStore) -> ConfigView {
    Arc::new(move || {
        let last = store.last_reload().map(|r| {
            let since_epoch =
                r.at.duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
            json!({
                "ok": r.is_ok(),
                "generation": r.generation,
                "at_unix_seconds": since_epoch,
                "errors": r.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "warnings": r.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        });
        mesh_config_view(&store.snapshot(), store.generation(), last)
    })
}

/// A JSON view of `config` for `/config_dump`: the generation, the last reload result, and each
/// resource kind with counts, names and the routes per host.
pub fn mesh_config_view(config: &MeshConfig, generation: u64, last_reload: Option<Value>) -> Value {
    let name = |o: &mesh_core::policy::Origin| format!("{}/{}", o.namespace, o.name);
    let virtual_services: Vec<Value> = config
        .virtual_services
        .iter()
        .map(|vs| {
            let routes: Vec<Value> = vs
                .http
                .iter()
                .map(|r| {
                    let action = match &r.action {
                        RouteAction::Forward(ds) => json!({
                            "route": ds.iter().map(|d| json!({
                                "host": d.destination.host,
                                "subset": d.destination.subset,
                                "port": d.destination.port,
                                "weight": d.weight,
                            })).collect::<Vec<_>>()
                        }),
                        RouteAction::Redirect(_) => json!({ "redirect": true }),
                        RouteAction::DirectResponse(_) => json!({ "direct_response": true }),
                    };
                    json!({
                        "name": r.name,
                        "matches": r.matches.len(),
                        "action": action,
                        "timeout_ms": r.timeout.map(|t| t.as_millis() as u64),
                        "retry_attempts": r.retries.attempts(),
                        "fault": r.fault.is_some(),
                        "mirrors": r.mirrors.len(),
                    })
                })
                .collect();
            json!({ "name": name(&vs.origin), "hosts": vs.hosts, "gateways": vs.gateways, "http": routes })
        })
        .collect();
    let mut routes_by_host = serde_json::Map::new();
    for vs in &config.virtual_services {
        for host in &vs.hosts {
            let entry = routes_by_host
                .entry(host.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = entry {
                list.push(json!({ "virtual_service": name(&vs.origin), "routes": vs.http.len() }));
            }
        }
    }
    let destination_rules: Vec<Value> = config
        .destinations
        .values()
        .map(|d| json!({
            "name": name(&d.origin),
            "host": d.host,
            "subsets": d.subsets.iter().map(|s| json!({ "name": s.name, "labels": s.labels })).collect::<Vec<_>>(),
        }))
        .collect();
    let service_entries: Vec<Value> = config
        .service_entries
        .iter()
        .map(|s| json!({
            "name": name(&s.origin),
            "hosts": s.hosts,
            "ports": s.ports.iter().map(|p| p.number).collect::<Vec<_>>(),
            "endpoints": s.endpoints.iter().map(|e| json!({ "address": e.address, "labels": e.labels })).collect::<Vec<_>>(),
        }))
        .collect();
    let authn: Vec<Value> = config
        .authentication
        .iter()
        .map(|a| {
            json!({
                "name": name(&a.origin),
                "issuers": a.rules.iter().map(|r| r.issuer.as_str()).collect::<Vec<_>>(),
                "require_token": a.require_token,
            })
        })
        .collect();
    let authz: Vec<Value> = config
        .authorization
        .iter()
        .map(|a| {
            let action = match a.action {
                AuthzAction::Allow => "ALLOW",
                AuthzAction::Deny => "DENY",
                AuthzAction::Audit => "AUDIT",
                AuthzAction::Custom => "CUSTOM",
            };
            json!({ "name": name(&a.origin), "action": action })
        })
        .collect();
    let rate_limits: Vec<Value> = config
        .rate_limits
        .iter()
        .map(|r| json!({ "name": name(&r.origin), "target": r.target, "total_rps": r.total_rps, "identity_rps": r.identity_rps }))
        .collect();
    json!({
        "generation": generation,
        "last_reload": last_reload.unwrap_or(Value::Null),
        "counts": {
            "gateways": config.gateways.len(),
            "virtual_services": virtual_services.len(),
            "destination_rules": destination_rules.len(),
            "service_entries": service_entries.len(),
            "request_authentications": authn.len(),
            "authorization_policies": authz.len(),
            "rate_limits": rate_limits.len(),
        },
        "gateways": config.gateways.iter().map(|g| name(&g.origin)).collect::<Vec<_>>(),
        "virtual_services": virtual_services,
        "routes_by_host": routes_by_host,
        "destination_rules": destination_rules,
        "service_entries": service_entries,
        "request_authentications": authn,
        "authorization_policies": authz,
        "rate_limits": rate_limits,
    })
}
