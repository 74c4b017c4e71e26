//! The ingress gateway: an inbound server whose inner service is the mesh client.
//!
//! It represents one Istio Gateway (`--gateway NAME`, else the first in the config): requests
//! whose `Host` none of the Gateway's `hosts` matches get 404; the others are sent through the
//! mesh client, which routes them by the VirtualServices bound to that Gateway (`gateways:`).
//! The Gateway's `servers[].port.number` is the port the gateway represents: `--listen` is
//! where its first server port really listens, `--listen-port N=ADDR` where port N does. A port
//! whose servers have `tls` SIMPLE or MUTUAL serves TLS ([`crate::gateway_tls`]); a plaintext
//! server with `tls.httpsRedirect` answers 301 to `https://` with the request's host and path.

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
    /// Per host pattern (in `hosts` order): whether its server redirects to HTTPS (`false`
    /// where the list is shorter).
    pub redirects: Vec<bool>,
    /// The client that routes and sends.
    pub client: Arc<dyn Upstream>,
}

impl GatewayState {
    /// The state for `gateway`, sending through `client`.
    pub fn new(gateway: &GatewayPolicy, client: Arc<dyn Upstream>) -> Self {
        Self::build(gateway, None, client)
    }

    /// The state of the servers of `gateway` on port `port` only.
    pub fn for_port(gateway: &GatewayPolicy, port: u16, client: Arc<dyn Upstream>) -> Self {
        Self::build(gateway, Some(port), client)
    }

    fn build(gateway: &GatewayPolicy, port: Option<u16>, client: Arc<dyn Upstream>) -> Self {
        let servers = gateway
            .servers
            .iter()
            .filter(|s| port.is_none_or(|p| s.port == p));
        let mut hosts = Vec::new();
        let mut redirects = Vec::new();
        for server in servers {
            let redirect = server.tls.as_ref().is_some_and(|t| t.https_redirect);
            for host in &server.hosts {
                hosts.push(host.clone());
                redirects.push(redirect);
            }
        }
        Self {
            name: gateway.origin.name.clone(),
            hosts,
            redirects,
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
    let Some(index) = st.hosts.iter().position(|p| gateway_host_matches(p, &host)) else {
        let body = json!({"gateway": st.name, "error": format!("no server of gateway {} accepts host {host:?}", st.name)});
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    if st.redirects.get(index).copied().unwrap_or(false) {
        return https_redirect(&host, path);
    }
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

/// Istio's `httpsRedirect`: 301 to the same host and path over `https://`.
fn https_redirect(host: &str, path: &str) -> Response {
    let location = format!("https://{host}{path}");
    match http::HeaderValue::from_str(&location) {
        Ok(value) => (
            StatusCode::MOVED_PERMANENTLY,
            [(http::header::LOCATION, value)],
        )
            .into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "bad host").into_response(),
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
    start_gateway_ports(spec, listener, Vec::new(), admin, shutdown)
}

/// [`start_gateway`] with `listener` serving the Gateway's first server port and each of
/// `ports` (`--listen-port N=ADDR`) the servers of port N.
pub fn start_gateway_ports(
    spec: &GatewaySpec,
    listener: tokio::net::TcpListener,
    ports: Vec<(u16, tokio::net::TcpListener)>,
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
    let ready = crate::admin::Ready::default();
    let mut tasks = Vec::new();
    let first = gateway.servers.first().map(|s| s.port);
    let listeners = first
        .map(|p| (p, listener))
        .into_iter()
        .chain(ports)
        .collect::<Vec<_>>();
    // Every port's TLS is read before anything serves: a bad file starts nothing. After that
    // the files are watched (a bad replacement keeps the last good set).
    let fixed = gateway.clone();
    let tls = Arc::new(crate::gateway_ports::GatewayTlsSet::new(
        Box::new(move || Some(fixed.clone())),
        None,
    ));
    let mut planned = Vec::new();
    for (port, listener) in listeners {
        let inputs =
            crate::gateway_tls::port_inputs(gateway, port, None).map_err(StartError::GatewayTls)?;
        let has_tls = !inputs.is_empty();
        let at = listener.local_addr().unwrap_or(addr);
        let slot = has_tls.then(|| tls.add(crate::gateway_ports::PortKey::Number(port), at));
        planned.push((port, listener, slot));
    }
    if let Some(error) = tls.refresh().into_iter().next() {
        return Err(StartError::GatewayTls(error));
    }
    let watched = planned.iter().any(|(_, _, slot)| slot.is_some());
    for (port, listener, slot) in planned {
        let state = Arc::new(GatewayState::for_port(gateway, port, client.clone()));
        let service = mesh.gateway_server(app(state), &workload);
        tasks.push(match slot {
            Some(slot) => crate::gateway_tls::spawn_serve_port(listener, service, slot, shutdown),
            None => crate::run::spawn_serve_mesh(listener, service, None, shutdown),
        });
    }
    let admin_router = if watched {
        tasks.push(Arc::clone(&tls).spawn_refresh(shutdown));
        let view = Arc::clone(&tls);
        mesh.admin_with_view(&ready, None, "gateway_tls", Arc::new(move || view.view()))
    } else {
        mesh.admin(&ready)
    };
    tasks.push(crate::run::spawn_serve(admin, admin_router, shutdown));
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
