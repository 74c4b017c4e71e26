//! The ingress gateway: an inbound server whose inner service is the mesh client.
//!
//! It represents one Istio Gateway (`--gateway NAME`, else the first in the config): requests
//! whose `Host` none of the Gateway's `hosts` matches get 404; the others are sent through the
//! mesh client, which routes them by the VirtualServices bound to that Gateway (`gateways:`).
//! The Gateway's `servers[].port.number` is the port the gateway represents; `--listen` is where
//! it really listens.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, Uri};
use mesh_core::policy::{GatewayPolicy, MeshConfig};
use serde_json::json;

use crate::upstream::Upstream;

/// What the gateway needs per request.
pub struct GatewayState {
    /// The Gateway's name (the routing context of the VirtualServices bound to it).
    pub name: String,
    /// The Gateway's `hosts` (all servers), as written.
    pub hosts: Vec<String>,
    /// The client that routes and sends.
    pub client: Arc<dyn Upstream>,
}

impl GatewayState {
    /// The state for `gateway`, sending through `client`.
    pub fn new(gateway: &GatewayPolicy, client: Arc<dyn Upstream>) -> Self {
        let hosts = gateway
            .servers
            .iter()
            .flat_map(|s| s.hosts.iter().cloned())
            .collect();
        Self {
            name: gateway.origin.name.clone(),
            hosts,
            client,
        }
    }
}

/// The gateway's handler as a `Router`, without a socket and without inbound layers.
pub fn app(state: Arc<GatewayState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// The Gateway named `name`, or the first one.
pub fn find_gateway<'a>(config: &'a MeshConfig, name: Option<&str>) -> Option<&'a GatewayPolicy> {
    match name {
        Some(n) => config.gateways.iter().find(|g| g.origin.name == n),
        None => config.gateways.first(),
    }
}

/// Whether a Gateway `hosts` entry (`*`, `*.example.com`, `ns/host`, `host`) admits `host`.
pub fn gateway_host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.rsplit_once('/').map_or(pattern, |(_, h)| h);
    let host = host.to_ascii_lowercase();
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => host.ends_with(&suffix.to_ascii_lowercase()),
        None => pattern.eq_ignore_ascii_case(&host),
    }
}

fn request_host(req: &Request) -> String {
    let raw = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or_default();
    // Strip a port, keeping IPv6 brackets intact.
    match raw.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => {
            h.to_owned()
        }
        _ => raw.to_owned(),
    }
}

async fn handle(State(st): State<Arc<GatewayState>>, mut req: Request) -> Response {
    let host = request_host(&req);
    if !st.hosts.iter().any(|p| gateway_host_matches(p, &host)) {
        let body = json!({"gateway": st.name, "error": format!("no server of gateway {} accepts host {host:?}", st.name)});
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let authority = if host.is_empty() {
        "gateway".to_owned()
    } else {
        host.clone()
    };
    match format!("http://{authority}{path}").parse::<Uri>() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("bad request uri: {e}")).into_response();
        }
    }
    let req = req.map(Body::new);
    match st.client.call(req).await {
        Ok(res) => res.into_response(),
        Err(e) => {
            tracing::debug!(gateway = %st.name, %host, %e, "gateway call failed");
            let body = json!({"gateway": st.name, "error": e.to_string()});
            (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response()
        }
    }
}

/// How to start the gateway.
#[derive(Clone, Debug)]
pub struct GatewaySpec {
    /// The Gateway to represent (`None`: the first in the config).
    pub gateway: Option<String>,
    /// The config folder.
    pub config: std::path::PathBuf,
    /// `--certs` and `--namespace`.
    pub identity: crate::mesh::Identity,
}

/// Starts the gateway on the given listeners; it stops when `shutdown` is triggered.
pub fn start_gateway(
    spec: &GatewaySpec,
    listener: tokio::net::TcpListener,
    admin: tokio::net::TcpListener,
    shutdown: &crate::run::Shutdown,
) -> Result<crate::run::Started, crate::mesh::StartError> {
    use crate::mesh::{MeshRuntime, StartError, Workload};
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: crate::cli::default_addr("127.0.0.1:0"),
        source,
    })?;
    let admin_addr = admin
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    // The gateway's ports follow the Gateway resource, not PeerAuthentication (as in Istio):
    // its certificate is its identity towards the services.
    let mesh = MeshRuntime::start_with_certs(&spec.config, spec.identity.certs.as_deref())?;
    let config = mesh.config();
    let gateway = find_gateway(&config, spec.gateway.as_deref()).ok_or_else(|| {
        StartError::NoGateway(spec.gateway.clone().unwrap_or_else(|| "(any)".to_owned()))
    })?;
    let workload = Workload::new("gateway", "v1").in_namespace(&spec.identity.namespace);
    let client = mesh.gateway_client(&workload, &gateway.origin.name);
    let state = Arc::new(GatewayState::new(gateway, client));
    let ready = crate::admin::Ready::default();
    let tasks = vec![
        crate::run::spawn_serve_mesh(
            listener,
            mesh.gateway_server(app(state), &workload),
            None,
            shutdown,
        ),
        crate::run::spawn_serve(admin, mesh.admin(&ready), shutdown),
    ];
    ready.set(true);
    tracing::info!(gateway = %gateway.origin.name, %addr, admin = %admin_addr, "gateway serving");
    Ok(crate::run::Started {
        addr,
        admin: admin_addr,
        state: None,
        ready,
        mesh: Some(mesh),
        tasks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_hosts_match_like_istio() {
        assert!(gateway_host_matches("*", "anything"));
        assert!(gateway_host_matches("*.example.com", "a.example.com"));
        assert!(!gateway_host_matches("*.example.com", "example.org"));
        assert!(gateway_host_matches(
            "ns/shop.example.com",
            "SHOP.example.com"
        ));
        assert!(!gateway_host_matches(
            "shop.example.com",
            "other.example.com"
        ));
    }
}
