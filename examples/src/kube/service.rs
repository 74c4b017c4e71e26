//! service1, service2 and service3 in `--kube` mode.

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::admin::Ready;
use crate::app::{AppState, app, upstream_of};
use crate::cli::default_addr;
use crate::mesh::StartError;
use crate::run::{ServiceSpec, Shutdown, Started, spawn_serve, spawn_serve_mesh};

use super::{KubeTarget, admin, gate, start_runtime, synced_flag};

/// Starts a service whose config and endpoints come from the API server `target` names, on the
/// given listeners; it stops when `shutdown` is triggered. `spec.name` and `spec.version` are
/// used when the Pod has no `app` or `version` label; `spec.config` and `spec.plain` are
/// ignored. The listen port answers 503 until every watch synced.
pub async fn start_kube_service(
    spec: &ServiceSpec,
    target: &KubeTarget,
    listener: TcpListener,
    admin_listener: TcpListener,
    shutdown: &Shutdown,
) -> Result<Started, StartError> {
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: default_addr("127.0.0.1:0"),
        source,
    })?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let upstream = upstream_of(&spec.name);
    let calls = upstream.map(|h| vec![h.to_owned()]).unwrap_or_default();
    let started = start_runtime(
        target,
        &spec.name,
        &spec.version,
        calls,
        spec.identity.certs.as_deref(),
    )
    .await?;
    let (mesh, kube, workload) = (started.runtime, started.kube, started.workload);
    let mut state = AppState::new(&workload.app, &workload.version).with_faults(spec.faults);
    if let Some(host) = upstream {
        state = state.with_upstream(host, mesh.client(&workload));
    }
    let state = Arc::new(state);
    let ready = Ready::default();
    let synced = synced_flag(kube.readiness(), &ready);
    let inbound = mesh.inbound_tls(&workload);
    let health = inbound.clone().map(|tls| (tls, addr.port()));
    let router = gate(app(state.clone()), synced, kube.readiness().clone());
    let tasks = vec![
        spawn_serve_mesh(listener, mesh.server(router, &workload), inbound, shutdown),
        spawn_serve(
            admin_listener,
            admin(&mesh, &kube, &ready, health),
            shutdown,
        ),
    ];
    tracing::info!(service = %workload.app, version = %workload.version, %addr, admin = %admin_addr,
        "serving (kubernetes: 503 until every watch synced)");
    Ok(Started {
        addr,
        admin: admin_addr,
        state: Some(state),
        ready,
        mesh: Some(mesh),
        tasks,
    })
}
