//! Static discovery: checked ServiceEntries.

use std::collections::BTreeMap;

use super::{Labels, Origin};

/// A checked ServiceEntry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEntryPolicy {
    /// Where it came from.
    pub origin: Origin,
    /// `hosts`.
    pub hosts: Vec<String>,
    /// `ports[]`.
    pub ports: Vec<ServicePort>,
    /// `resolution`.
    pub resolution: Resolution,
    /// `endpoints[]`.
    pub endpoints: Vec<WorkloadEndpoint>,
    /// `location` is `MESH_INTERNAL` (default `MESH_EXTERNAL` is false).
    pub mesh_internal: bool,
}

/// `ports[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    /// `number`.
    pub number: u16,
    /// `name`.
    pub name: String,
    /// `protocol`, upper case.
    pub protocol: String,
    /// `targetPort`.
    pub target_port: Option<u16>,
}

/// `resolution`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// `NONE`.
    None,
    /// `STATIC`: the endpoints' addresses are IPs.
    Static,
    /// `DNS`: endpoints' addresses (or the hosts) are resolved by DNS.
    Dns,
    /// `DNS_ROUND_ROBIN`.
    DnsRoundRobin,
}

/// `endpoints[]` (a WorkloadEntry spec).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadEndpoint {
    /// `address`: an IP, or a host name with DNS resolution.
    pub address: String,
    /// `ports`: port name to port number.
    pub ports: BTreeMap<String, u16>,
    /// `labels`.
    pub labels: Labels,
    /// `weight` (1 when absent).
    pub weight: u32,
    /// `locality`.
    pub locality: Option<String>,
    /// `serviceAccount`: the workload's identity, in the ServiceEntry's namespace.
    pub service_account: Option<ServiceAccount>,
}

/// The label that marks an endpoint as able to take Istio's mutual TLS (value `istio`).
pub const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";

/// A workload's service account, as a ServiceEntry endpoint's `serviceAccount` names it: a bare
/// name in the ServiceEntry's namespace. The trust domain is the caller's own (the one in its
/// certificate), so the SPIFFE ID is made with [`ServiceAccount::spiffe_id`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceAccount {
    /// The namespace (the ServiceEntry's).
    pub namespace: String,
    /// The service account's name.
    pub name: String,
}

impl ServiceAccount {
    /// `spiffe://<trust_domain>/ns/<namespace>/sa/<name>`.
    pub fn spiffe_id(&self, trust_domain: &str) -> String {
        format!(
            "spiffe://{trust_domain}/ns/{}/sa/{}",
            self.namespace, self.name
        )
    }
}
