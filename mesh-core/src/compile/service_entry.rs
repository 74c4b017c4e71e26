//! ServiceEntry → [`ServiceEntryPolicy`]: the static part of discovery.

use std::collections::BTreeMap;

use super::Cx;
use super::common::{non_negative, port};
use crate::policy::{
    Resolution, ServiceAccount, ServiceEntryPolicy, ServicePort, WorkloadEndpoint,
};
use crate::spec::ServiceEntrySpec;

const RESOLUTIONS: [(&str, Resolution); 4] = [
    ("NONE", Resolution::None),
    ("STATIC", Resolution::Static),
    ("DNS", Resolution::Dns),
    ("DNS_ROUND_ROBIN", Resolution::DnsRoundRobin),
];

/// Compiles a ServiceEntry; `None` when it has errors.
pub(crate) fn compile(spec: &ServiceEntrySpec, cx: &mut Cx<'_>) -> Option<ServiceEntryPolicy> {
    let before = cx.error_count();
    if spec.hosts.is_empty() {
        cx.error("spec.hosts", "at least one host is required");
    }
    for (i, h) in spec.hosts.iter().enumerate() {
        if h.trim().is_empty() {
            cx.error(&format!("spec.hosts[{i}]"), "host must not be empty");
        }
    }
    if !spec.addresses.is_empty() {
        // Istio uses them for TCP traffic (and DNS proxying) only; this mesh carries HTTP, which
        // is routed by host
        cx.warn(
            "spec.addresses",
            "accepted and not used: addresses matter only for TCP traffic, which this mesh does not carry (HTTP is routed by host)",
        );
    }
    if spec.workload_selector.is_some() {
        cx.unsupported("spec.workloadSelector");
    }
    if !spec.subject_alt_names.is_empty() {
        cx.unsupported("spec.subjectAltNames");
    }
    let mut ports = Vec::with_capacity(spec.ports.len());
    for (i, p) in spec.ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        let Some(number) = p.number else {
            cx.error(&format!("{path}.number"), "is required");
            continue;
        };
        let Some(number) = port(number, &format!("{path}.number"), cx) else {
            continue;
        };
        let target_port = p
            .target_port
            .and_then(|t| port(t, &format!("{path}.targetPort"), cx));
        let name = match p.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => {
                cx.error(&format!("{path}.name"), "port name is required");
                continue;
            }
        };
        if ports.iter().any(|q: &ServicePort| q.name == name) {
            cx.error(
                &format!("{path}.name"),
                format!("duplicate port name `{name}`"),
            );
        }
        let protocol = p.protocol.as_deref().unwrap_or("TCP").to_ascii_uppercase();
        ports.push(ServicePort {
            number,
            name,
            protocol,
            target_port,
        });
    }
    let mesh_internal = match spec.location.as_deref() {
        None | Some("MESH_EXTERNAL") => false,
        Some("MESH_INTERNAL") => true,
        Some(other) => {
            cx.error(
                "spec.location",
                format!("unknown location `{other}` (expected `MESH_EXTERNAL` or `MESH_INTERNAL`)"),
            );
            false
        }
    };
    let resolution = match spec.resolution.as_deref() {
        None => Resolution::None,
        Some(r) => match RESOLUTIONS.iter().find(|(n, _)| *n == r) {
            Some((_, res)) => *res,
            None if cx.unsupported_value("spec.resolution", r, &[]) => Resolution::None,
            None => {
                let hint = crate::diag::closest(r, RESOLUTIONS.iter().map(|(n, _)| *n))
                    .map(|h| format!(", did you mean `{h}`?"))
                    .unwrap_or_default();
                cx.error("spec.resolution", format!("unknown resolution `{r}`{hint}"));
                Resolution::None
            }
        },
    };
    let mut endpoints = Vec::with_capacity(spec.endpoints.len());
    for (i, e) in spec.endpoints.iter().enumerate() {
        let path = format!("spec.endpoints[{i}]");
        if e.network.is_some() {
            cx.unsupported(&format!("{path}.network"));
        }
        let service_account = match e.service_account.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) if valid_service_account(name) => Some(ServiceAccount {
                namespace: cx.origin().namespace.clone(),
                name: name.to_owned(),
            }),
            Some(name) => {
                cx.error(
                    &format!("{path}.serviceAccount"),
                    format!(
                        "`{name}` is not a service account name (a bare name such as `service2`, in the ServiceEntry's namespace)"
                    ),
                );
                None
            }
        };
        let address = match e.address.as_deref().map(str::trim) {
            Some(a) if !a.is_empty() => a.to_owned(),
            _ => {
                cx.error(&format!("{path}.address"), "endpoint address is required");
                continue;
            }
        };
        if resolution == Resolution::Static
            && address.parse::<std::net::IpAddr>().is_err()
            && !address.starts_with("unix://")
        {
            cx.error(
                &format!("{path}.address"),
                format!("`{address}` is not an IP address, as resolution STATIC requires"),
            );
        }
        let mut eports = BTreeMap::new();
        for (name, n) in &e.ports {
            if let Some(p) = port(*n, &format!("{path}.ports.{name}"), cx) {
                eports.insert(name.clone(), p);
            }
        }
        let weight = match e.weight {
            None | Some(0) => 1,
            Some(w) => non_negative(w, &format!("{path}.weight"), cx).unwrap_or(1),
        };
        endpoints.push(WorkloadEndpoint {
            address,
            ports: eports,
            labels: e.labels.clone(),
            weight,
            locality: e.locality.clone(),
            service_account,
        });
    }
    if resolution == Resolution::Static && endpoints.is_empty() && spec.workload_selector.is_none()
    {
        cx.error(
            "spec.endpoints",
            "resolution STATIC needs at least one endpoint",
        );
    }
    // exportTo: checked and recorded beside the policy (load::dispatch, compile::export_to).
    if cx.error_count() > before {
        return None;
    }
    Some(ServiceEntryPolicy {
        origin: cx.origin().clone(),
        hosts: spec.hosts.iter().map(|h| h.trim().to_owned()).collect(),
        ports,
        resolution,
        endpoints,
        mesh_internal,
    })
}

/// A Kubernetes service account name: a DNS-1123 subdomain (lower-case letters, digits, `-`
/// and `.`, starting and ending alphanumeric, at most 253 bytes).
fn valid_service_account(name: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 253
        && bytes.iter().all(|&b| alnum(b) || b == b'-' || b == b'.')
        && bytes.first().is_some_and(|&b| alnum(b))
        && bytes.last().is_some_and(|&b| alnum(b))
}
