//! The gateway in `--kube` mode: it serves the Gateway resources whose `selector` its Pod labels
//! match, in any namespace (the article's gateway Pod is in `istio-system`, its Gateway and
//! VirtualService in `default`), picked again whenever the config changes. Its listeners are the
//! folder gateway's ([`crate::gateway_ports`]): `--listen` serves the selected Gateway's first
//! server port, `--listen-port N=ADDR` its port N, with TLS per `servers[].tls`, `credentialName`
//! read from the gateway namespace's Secrets ([`mesh_kube::secrets`]).

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
use crate::gateway_ports::{Credentials, GatewayTlsSet, PortKey};
use crate::gateway_tls::spawn_serve_port;
use crate::mesh::{ExtraView, MeshRuntime, StartError, Workload};
use crate::run::{Shutdown, Started, spawn_serve};
use crate::upstream::Upstream;

use super::credentials::SecretCredentials;
use super::{KubeTarget, admin_with_view, gate, start_runtime, synced_flag};

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

/// The selected Gateway, its client, and the handler of each port asked for so far.
struct Selected {
    gateway: GatewayPolicy,
    client: Arc<dyn Upstream>,
    routers: Vec<(PortKey, Router)>,
}

/// Per request, the handler of the Gateway selected under the config in force, for one port
/// (rebuilt only when the selected Gateway changes).
struct Selector {
    store: ConfigStore,
    mesh: MeshRuntime,
    workload: Workload,
    name: Option<String>,
    current: Mutex<Option<Selected>>,
}

impl Selector {
    /// The Gateway selected now.
    fn gateway(&self) -> Option<GatewayPolicy> {
        let config = self.store.snapshot();
        selected_gateway(&config, &self.workload.labels(), self.name.as_deref()).cloned()
    }

    fn router(&self, key: PortKey) -> Option<Router> {
        let config = self.store.snapshot();
        let labels = self.workload.labels();
        let gateway = selected_gateway(&config, &labels, self.name.as_deref())?;
        let port = key.resolve(gateway)?;
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let selected = match &mut *current {
            Some(selected) if selected.gateway == *gateway => selected,
            slot => {
                let client = self
                    .mesh
                    .gateway_client(&self.workload, &gateway.origin.name);
                tracing::info!(gateway = %format!("{}/{}", gateway.origin.namespace, gateway.origin.name),
                    "kubernetes: serving this Gateway");
                slot.insert(Selected {
                    gateway: gateway.clone(),
                    client,
                    routers: Vec::new(),
                })
            }
        };
        if let Some((_, router)) = selected.routers.iter().find(|(k, _)| *k == key) {
            return Some(router.clone());
        }
        let state = GatewayState::for_port(gateway, port, selected.client.clone());
        let router = app(Arc::new(state));
        selected.routers.push((key, router.clone()));
        Some(router)
    }
}

async fn handle(State((selector, key)): State<(Arc<Selector>, PortKey)>, req: Request) -> Response {
    match selector.router(key) {
        Some(router) => match router.oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        None => {
            let body = json!({"gateway": null, "error": "no Gateway resource selects this workload's labels (or it has no server on this port)"});
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
    start_kube_gateway_ports(spec, target, listener, Vec::new(), admin_listener, shutdown).await
}

/// [`start_kube_gateway`] with `listener` serving the selected Gateway's first server port and
/// each of `ports` (`--listen-port N=ADDR`) its servers of port N, as the folder gateway does:
/// TLS per `servers[].tls` (files, or `credentialName` Secrets in the gateway's namespace,
/// watched), re-selected when the Gateway, a Secret or a file changes.
pub async fn start_kube_gateway_ports(
    spec: &GatewaySpec,
    target: &KubeTarget,
    listener: tokio::net::TcpListener,
    ports: Vec<(u16, tokio::net::TcpListener)>,
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
    // Secrets are read in the gateway's own namespace, as Istio's gateways read them.
    let credentials: Arc<dyn Credentials> = Arc::new(SecretCredentials::new(
        target.client.clone(),
        &workload.namespace,
    ));
    let select = Arc::clone(&selector);
    let tls = Arc::new(GatewayTlsSet::new(
        Box::new(move || select.gateway()),
        Some(credentials),
    ));
    let ready = Ready::default();
    let synced = synced_flag(kube.readiness(), &ready);
    let mut tasks = Vec::new();
    let listeners = std::iter::once((PortKey::First, listener))
        .chain(ports.into_iter().map(|(n, l)| (PortKey::Number(n), l)));
    for (key, listener) in listeners {
        let at = listener.local_addr().unwrap_or(addr);
        let slot = tls.add(key, at);
        let router = gate(
            Router::new()
                .fallback(handle)
                .with_state((Arc::clone(&selector), key)),
            synced.clone(),
            kube.readiness().clone(),
        );
        let service = mesh.gateway_server(router, &workload);
        tasks.push(spawn_serve_port(listener, service, slot, shutdown));
    }
    tasks.push(Arc::clone(&tls).spawn_refresh(shutdown));
    let view = Arc::clone(&tls);
    let extra: ExtraView = Arc::new(move || view.view());
    tasks.push(spawn_serve(
        admin_listener,
        admin_with_view(&mesh, &kube, &ready, None, Some(("gateway_tls", extra))),
        shutdown,
    ));
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
