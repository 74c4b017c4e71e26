//! Istio's mesh-wide settings: ConfigMap `istio` in `istio-system`, whose `data.mesh` is Istio's
//! `MeshConfig` as YAML text (what `istioctl` and the Helm chart write).
//!
//! Only the fields this mesh uses are typed; the rest of `MeshConfig` (there are many, and a real
//! ConfigMap sets a lot of them) is kept as raw YAML and reported as not used, by name.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::RawYaml;

/// The ConfigMap's `data`: `mesh` holds the MeshConfig; other keys (`meshNetworks`, ...) are
/// not mesh settings this mesh reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct MeshConfigMapData {
    /// `data.mesh`: MeshConfig as YAML text.
    pub mesh: Option<String>,
    /// Every other key of `data`.
    #[serde(flatten)]
    pub other: BTreeMap<String, RawYaml>,
}

/// The parts of Istio's `MeshConfig` this mesh uses.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshConfigSpec {
    /// `pathNormalization`: how request paths are normalized before policy and routing.
    pub path_normalization: Option<ProxyPathNormalizationSpec>,
    /// `trustDomain`.
    pub trust_domain: Option<String>,
    /// `trustDomainAliases`.
    #[serde(default)]
    pub trust_domain_aliases: Vec<String>,
    /// Every other MeshConfig field, by name.
    #[serde(flatten)]
    pub other: BTreeMap<String, RawYaml>,
}

/// `MeshConfig.pathNormalization`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProxyPathNormalizationSpec {
    /// `NONE`, `BASE` (`DEFAULT`), `MERGE_SLASHES` or `DECODE_AND_MERGE_SLASHES`.
    pub normalization: Option<String>,
}
