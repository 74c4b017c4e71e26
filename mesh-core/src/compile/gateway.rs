//! Gateway → [`GatewayPolicy`].

use super::Cx;
use super::common::port;
use crate::policy::{GatewayPolicy, GatewayServer};
use crate::spec::GatewaySpec;

use super::istio_schema::PROTOCOLS;

/// Compiles a Gateway; `None` when it has errors.
pub(crate) fn compile(spec: &GatewaySpec, cx: &mut Cx<'_>) -> Option<GatewayPolicy> {
    let before = cx.error_count();
    if spec.servers.is_empty() {
        cx.error("spec.servers", "at least one server is required");
    }
    let mut servers = Vec::with_capacity(spec.servers.len());
    for (i, s) in spec.servers.iter().enumerate() {
        let path = format!("spec.servers[{i}]");
        for (field, set) in [
            ("bind", s.bind.is_some()),
            ("defaultEndpoint", s.default_endpoint.is_some()),
        ] {
            if set {
                cx.unsupported(&format!("{path}.{field}"));
            }
        }
        let Some(p) = &s.port else {
            cx.error(&format!("{path}.port"), "is required");
            continue;
        };
        if p.target_port.is_some() {
            cx.unsupported(&format!("{path}.port.targetPort"));
        }
        let Some(number) = p
            .number
            .and_then(|n| port(n, &format!("{path}.port.number"), cx))
        else {
            if p.number.is_none() {
                cx.error(&format!("{path}.port.number"), "is required");
            }
            continue;
        };
        let protocol = p.protocol.as_deref().unwrap_or("").to_ascii_uppercase();
        let tls = s
            .tls
            .as_ref()
            .and_then(|t| super::gateway_tls::compile(t, &format!("{path}.tls"), cx));
        let terminates = tls.as_ref().is_some_and(|t| t.mode.is_some());
        if !PROTOCOLS.contains(&protocol.as_str()) {
            cx.error(
                &format!("{path}.port.protocol"),
                format!(
                    "unknown protocol `{protocol}` (expected one of {})",
                    PROTOCOLS.join(", ")
                ),
            );
        } else if protocol == "HTTPS" && !terminates {
            cx.error(
                &format!("{path}.tls"),
                "an HTTPS server needs `tls` with mode SIMPLE or MUTUAL",
            );
        } else if protocol != "HTTPS" && terminates {
            cx.error(
                &format!("{path}.port.protocol"),
                format!("`{protocol}` with tls.mode SIMPLE or MUTUAL: use HTTPS"),
            );
        } else if !matches!(protocol.as_str(), "HTTP" | "HTTP2" | "GRPC" | "HTTPS") {
            cx.error(
                &format!("{path}.port.protocol"),
                format!("protocol `{protocol}` is not supported by this mesh (HTTP, HTTPS, HTTP2 and GRPC are)"),
            );
        }
        if s.hosts.is_empty() {
            cx.error(&format!("{path}.hosts"), "at least one host is required");
        }
        servers.push(GatewayServer {
            port: number,
            port_name: p.name.clone(),
            protocol,
            hosts: s.hosts.clone(),
            tls,
        });
    }
    if cx.error_count() > before {
        return None;
    }
    Some(GatewayPolicy {
        origin: cx.origin().clone(),
        selector: spec.selector.clone(),
        servers,
    })
}
