//! `security.istio.io` PeerAuthentication, shaped exactly like Istio's YAML.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::AuthzSelectorSpec;

/// `security.istio.io` PeerAuthentication `spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PeerAuthenticationSpec {
    /// `selector`: the workloads it applies to; absent or empty: the whole namespace (the whole
    /// mesh in the root namespace).
    pub selector: Option<AuthzSelectorSpec>,
    /// `mtls`: the mode for the workload's ports.
    pub mtls: Option<MutualTlsSpec>,
    /// `portLevelMtls`: per workload port (the container port, not the Service port).
    pub port_level_mtls: Option<BTreeMap<PortKey, Option<MutualTlsSpec>>>,
}

/// `mtls` and `portLevelMtls` values.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MutualTlsSpec {
    /// `mode`: `UNSET`, `DISABLE`, `PERMISSIVE` or `STRICT`; kept as text so an unknown mode is
    /// reported by name.
    pub mode: Option<String>,
}

/// A `portLevelMtls` key as written: a number (`8080:`) or a quoted number (`"8080":`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortKey(pub String);

impl<'de> Deserialize<'de> for PortKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(i64),
            Text(String),
        }
        Ok(match Written::deserialize(deserializer)? {
            Written::Number(n) => Self(n.to_string()),
            Written::Text(text) => Self(text),
        })
    }
}
