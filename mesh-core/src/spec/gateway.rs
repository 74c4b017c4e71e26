//! `networking.istio.io` Gateway `spec`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::RawYaml;

/// Gateway `spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewaySpec {
    /// `servers[]`.
    #[serde(default)]
    pub servers: Vec<ServerSpec>,
    /// `selector`.
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
}

/// `Server`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerSpec {
    /// `port`.
    pub port: Option<GatewayPortSpec>,
    /// `bind` (unsupported).
    pub bind: Option<String>,
    /// `hosts`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// `tls` (unsupported).
    pub tls: Option<RawYaml>,
    /// `defaultEndpoint` (unsupported).
    pub default_endpoint: Option<String>,
    /// `name` (accepted: a label only).
    pub name: Option<String>,
}

/// Gateway `Port`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayPortSpec {
    /// `number`.
    pub number: Option<i64>,
    /// `protocol`.
    pub protocol: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `targetPort` (unsupported).
    pub target_port: Option<i64>,
}
