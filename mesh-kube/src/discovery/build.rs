//! A Service, its EndpointSlices and its Pods → one [`KubeService`], mapped as Istio's
//! Kubernetes registry maps them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mesh_core::load::CLUSTER_DOMAIN;
use mesh_core::policy::{Labels, ServicePort};
use mesh_core::registry::{self, DiscoveredEndpoint};

/// The Pod label that says an endpoint speaks Istio mTLS.
pub const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";

/// One endpoint as Kubernetes knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeEndpoint {
    /// The address (from the EndpointSlice).
    pub ip: IpAddr,
    /// Port name → number, from the slice's ports (an unnamed port is `""`).
    pub ports: BTreeMap<String, u16>,
    /// The Pod's labels (empty without a Pod).
    pub labels: Arc<Labels>,
    /// The Pod's name, from the slice's `targetRef`.
    pub pod: Option<String>,
    /// The Pod's `spec.serviceAccountName` (its identity for mTLS).
    pub service_account: Option<String>,
    /// The Pod's `security.istio.io/tlsMode` label (`istio`: speaks Istio mTLS).
    pub tls_mode: Option<String>,
}

/// A Kubernetes Service with its endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeService {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// Ports, protocol from `appProtocol`, else the port name's prefix.
    pub ports: Vec<ServicePort>,
    /// Ready endpoints (all of them when the Service publishes not-ready addresses), each once.
    pub endpoints: Vec<KubeEndpoint>,
    /// The `networking.istio.io/exportTo` annotation (comma-separated; empty: every namespace).
    pub export_to: mesh_core::policy::ExportTo,
}

/// The Service annotation that narrows which namespaces see it, as Istio reads it.
pub(crate) const EXPORT_TO_ANNOTATION: &str = "networking.istio.io/exportTo";

impl KubeService {
    /// `name.namespace.svc.cluster.local`.
    pub fn host(&self) -> String {
        format!("{}.{}.{CLUSTER_DOMAIN}", self.name, self.namespace)
    }

    /// As mesh-core's registry takes it.
    pub fn to_service(&self) -> registry::Service {
        registry::Service {
            hosts: vec![self.host()],
            namespace: self.namespace.clone(),
            // A Kubernetes Service is inside the mesh; whether an endpoint speaks Istio's mTLS
            // is its Pod's `security.istio.io/tlsMode` label, carried in its labels.
            mesh_internal: true,
            ports: self.ports.clone(),
            endpoints: self
                .endpoints
                .iter()
                .map(|e| DiscoveredEndpoint {
                    ip: e.ip,
                    ports: e.ports.clone(),
                    labels: e.labels.clone(),
                    weight: 1,
                    locality: None,
                    service_account: e.service_account.as_ref().map(|name| {
                        Arc::new(mesh_core::policy::ServiceAccount {
                            namespace: self.namespace.clone(),
                            name: name.clone(),
                        })
                    }),
                })
                .collect(),
        }
    }
}

/// Istio's protocol of a port: `appProtocol`, else the name's prefix before `-` (`http-web`,
/// `grpc`, `http2-x`). Istio sniffs the protocol of other ports; this mesh speaks HTTP only, so
/// they are HTTP.
pub fn protocol(app_protocol: Option<&str>, name: &str) -> String {
    let known = |p: &str| -> Option<&'static str> {
        Some(match p.to_ascii_lowercase().as_str() {
            "http" => "HTTP",
            "http2" | "kubernetes.io/h2c" => "HTTP2",
            "grpc" => "GRPC",
            "grpc-web" => "GRPC-Web",
            "https" => "HTTPS",
            "tls" => "TLS",
            "tcp" => "TCP",
            "udp" => "UDP",
            "mongo" => "Mongo",
            "redis" => "Redis",
            "mysql" => "MySQL",
            _ => return None,
        })
    };
    app_protocol
        .and_then(known)
        .or_else(|| known(name.split('-').next().unwrap_or(name)))
        .unwrap_or("HTTP")
        .to_owned()
}

/// The Service's ports.
fn ports(service: &Service) -> Vec<ServicePort> {
    let spec_ports = service.spec.as_ref().and_then(|s| s.ports.as_ref());
    spec_ports
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let number = u16::try_from(p.port).ok()?;
            let name = p.name.clone().unwrap_or_default();
            let target_port = match &p.target_port {
                Some(IntOrString::Int(n)) => u16::try_from(*n).ok(),
                _ => None,
            };
            Some(ServicePort {
                number,
                protocol: protocol(p.app_protocol.as_deref(), &name),
                name,
                target_port,
            })
        })
        .collect()
}

/// Builds the service; endpoints whose Pod (named by `targetRef`) has not arrived yet are held
/// back until it does, so that subsets and identities are right from an endpoint's first
/// request.
pub fn build(
    service: &Service,
    slices: &BTreeMap<String, EndpointSlice>,
    pods: &BTreeMap<String, Pod>,
) -> KubeService {
    let name = service.metadata.name.clone().unwrap_or_default();
    let namespace = service
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let spec = service.spec.as_ref();
    let publish_not_ready = spec
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let has_selector = spec
        .and_then(|s| s.selector.as_ref())
        .is_some_and(|s| !s.is_empty());
    let mut seen = BTreeSet::new();
    let mut endpoints = Vec::new();
    for (slice_name, slice) in slices {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            tracing::debug!(slice = %slice_name, address_type = %slice.address_type, "endpoint slice of another address type skipped");
            continue;
        }
        let slice_ports: BTreeMap<String, u16> = slice
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                let port = u16::try_from(p.port?).ok()?;
                Some((p.name.clone().unwrap_or_default(), port))
            })
            .collect();
        for e in slice.endpoints.iter().flatten() {
            let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready && !publish_not_ready {
                continue;
            }
            let pod_name = e
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| r.name.clone());
            let pod = pod_name.as_ref().and_then(|n| pods.get(n));
            if pod_name.is_some() && pod.is_none() && has_selector {
                tracing::debug!(service = %name, pod = ?pod_name, "endpoint waits for its pod");
                continue;
            }
            let labels: Labels = pod
                .and_then(|p| p.metadata.labels.clone())
                .unwrap_or_default();
            let service_account = pod
                .and_then(|p| p.spec.as_ref())
                .and_then(|s| s.service_account_name.clone());
            let tls_mode = labels.get(TLS_MODE_LABEL).cloned();
            let labels = Arc::new(labels);
            for address in &e.addresses {
                let Ok(ip) = address.parse::<IpAddr>() else {
                    tracing::warn!(slice = %slice_name, %address, "endpoint address is not an ip; skipped");
                    continue;
                };
                if !seen.insert(ip) {
                    continue;
                }
                endpoints.push(KubeEndpoint {
                    ip,
                    ports: slice_ports.clone(),
                    labels: labels.clone(),
                    pod: pod_name.clone(),
                    service_account: service_account.clone(),
                    tls_mode: tls_mode.clone(),
                });
            }
        }
    }
    endpoints.sort_by_key(|e| e.ip);
    let export_to = service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(EXPORT_TO_ANNOTATION))
        .map(|list| {
            mesh_core::policy::ExportTo(
                list.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )
        })
        .unwrap_or_default();
    KubeService {
        name,
        namespace,
        ports: ports(service),
        endpoints,
        export_to,
    }
}

/// `(name, namespace)` of a Kubernetes service host: `name.ns.svc.cluster.local`, or a short
/// `name` in `namespace`. `None` for other hosts (ServiceEntries, external names).
pub fn service_of(host: &str, namespace: &str) -> Option<(String, String)> {
    let host = mesh_core::load::canonical_host(host, namespace);
    let rest = host.strip_suffix(&format!(".{CLUSTER_DOMAIN}"))?;
    let (name, ns) = rest.split_once('.')?;
    if name.is_empty() || ns.is_empty() || ns.contains('.') || name.contains('*') {
        return None;
    }
    Some((name.to_owned(), ns.to_owned()))
}

#[cfg(test)]
mod tests;
