//! The gateway in `--kube` mode: it serves the Gateway resources whose `selector` its Pod labels
//! match, in any namespace (the article's gateway Pod is in `istio-system`, its Gateway and
//! VirtualService in `default`), picked again whenever the config changes.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use mesh_core::policy::{GatewayPolicy, Labels, MeshConfig};
use mesh_core::watch::ConfigStore;
use serde_json::json;
use tower::ServiceExt as _;

use crate::admin::Ready;
use crate::cli::default_addr;
use crate::gateway::{GatewaySpec, GatewayState, app};
use crate::mesh::{MeshRuntime, StartError, Workload};
use crate::run::{Shutdown, Started, spawn_serve, spawn_serve_mesh};

use super::{KubeTarget, admin, gate, start_runtime, synced_flag};

/// The Gateway this workload serves: the first (by namespace, then name) whose non-empty
/// `selector` its `labels` match, restricted to `name` when given.
pub fn selected_gateway<'a>(
    config: &'a MeshConfig,
    labels: &Labels,
    name: Option<&str>,
) -> Option<&'a GatewayPolicy> {
    config
        .gateways
        .iter()
        .filter(|g| name.is_none_or(|n| g.origin.name == n))
        .filter(|g| {
            !g.selector.is_empty() && g.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .min_by(|a, b| {
            (&a.origin.namespace, &a.origin.name).cmp(&(&b.origin.namespace, &b.origin.name))
        })
}

/// Per request, the handler of the Gateway selected under the config in force (rebuilt only
/// when the selected Gateway changes).
struct Selector {
    store: ConfigStore,
    mesh: MeshRuntime,
    workload: Workload,
    name: Option<String>,
    current: Mutex<Option<(GatewayPolicy, Router)>>,
}

impl Selector {
    fn router(&self) -> Option<Router> {
        let config = self.store.snapshot();
        let labels = self.workload.labels();
        let gateway = selected_gateway(&config, &labels, self.name.as_deref())?;
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((g, router)) = &*current
            && g == gateway
        {
            return Some(router.clone());
        }
        let client = self
            .mesh
            .gateway_client(&self.workload, &gateway.origin.name);
        let router = app(Arc::new(GatewayState::new(gateway, client)));
        tracing::info!(gateway = %format!("{}/{}", gateway.origin.namespace, gateway.origin.name),
            "kubernetes: serving this Gateway");
        *current = Some((gateway.clone(), router.clone()));
        Some(router)
    }
}

async fn handle(State(selector): State<Arc<Selector>>, req: Request) -> Response {
    match selector.router() {
        Some(router) => match router.oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        None => {
            let body = json!({"gateway": null, "error": "no Gateway resource selects this workload's labels"});
            (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
        }
    }
}

/// Starts the gateway whose config and endpoints come from the API server `target` names, on
/// the given listeners; it stops when `shutdown` is triggered. `spec.gateway` narrows the
/// Gateways to one name; `spec.config` is ignored. The listen port answers 503 until every
/// watch synced.
pub async fn start_kube_gateway(
    spec: &GatewaySpec,
    target: &KubeTarget,
    listener: tokio::net::TcpListener,
    admin_listener: tokio::net::TcpListener,
    shutdown: &Shutdown,
) -> Result<Started, StartError> {
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: default_addr("127.0.0.1:0"),
        source,
    })?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let started = start_runtime(
        target,
        "gateway",
        "v1",
        Vec::new(),
        spec.identity.certs.as_deref(),
    )
    .await?;
    let (mesh, kube, workload) = (started.runtime, started.kube, started.workload);
    let selector = Arc::new(Selector {
        store: mesh.store().clone(),
        mesh: mesh.clone(),
        workload: workload.clone(),
        name: spec.gateway.clone(),
        current: Mutex::new(None),
    });
    let ready = Ready::default();
    let synced = synced_flag(kube.readiness(), &ready);
    let router = gate(
        Router::new().fallback(handle).with_state(selector),
        synced,
        kube.readiness().clone(),
    );
    let tasks = vec![
        spawn_serve_mesh(
            listener,
            mesh.gateway_server(router, &workload),
            None,
            shutdown,
        ),
        spawn_serve(admin_listener, admin(&mesh, &kube, &ready, None), shutdown),
    ];
    tracing::info!(%addr, admin = %admin_addr, "gateway serving (kubernetes: 503 until every watch synced)");
    Ok(Started {
        addr,
        admin: admin_addr,
        state: None,
        ready,
        mesh: Some(mesh),
        tasks,
    })
}
