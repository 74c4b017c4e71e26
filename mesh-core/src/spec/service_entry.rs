//! `networking.istio.io` ServiceEntry `spec`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::RawYaml;

/// ServiceEntry `spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceEntrySpec {
    /// `hosts`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// `addresses` (virtual IPs; unsupported).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// `ports[]`.
    #[serde(default)]
    pub ports: Vec<ServicePortSpec>,
    /// `location`: `MESH_EXTERNAL` or `MESH_INTERNAL`.
    pub location: Option<String>,
    /// `resolution`: `NONE`, `STATIC`, `DNS`, `DNS_ROUND_ROBIN`.
    pub resolution: Option<String>,
    /// `endpoints[]`.
    #[serde(default)]
    pub endpoints: Vec<WorkloadEntrySpec>,
    /// `workloadSelector` (unsupported).
    pub workload_selector: Option<RawYaml>,
    /// `exportTo`: the namespaces that see it (`*`, `.`, `~`, names; see `MeshConfig::visible_from`).
    #[serde(default)]
    pub export_to: Vec<String>,
    /// `subjectAltNames` (unsupported: no mTLS yet).
    #[serde(default)]
    pub subject_alt_names: Vec<String>,
}

/// `ServicePort`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServicePortSpec {
    /// `number`.
    pub number: Option<i64>,
    /// `protocol`.
    pub protocol: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `targetPort`.
    pub target_port: Option<i64>,
}

/// `WorkloadEntry` (a ServiceEntry endpoint).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadEntrySpec {
    /// `address`.
    pub address: Option<String>,
    /// `ports`: port name to number.
    #[serde(default)]
    pub ports: BTreeMap<String, i64>,
    /// `labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `network` (unsupported).
    pub network: Option<String>,
    /// `locality`.
    pub locality: Option<String>,
    /// `weight`.
    pub weight: Option<i64>,
    /// `serviceAccount`: a bare name in the ServiceEntry's namespace.
    pub service_account: Option<String>,
}
