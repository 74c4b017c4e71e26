//! Messages shared by several kinds: `StringMatch`, `PortSelector`, `Percent`, `Headers`,
//! `Destination`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Istio `StringMatch`: one of `exact`, `prefix`, `regex`; `{}` (none) means "present" for
/// headers and query parameters.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StringMatchSpec {
    /// `exact`.
    pub exact: Option<String>,
    /// `prefix`.
    pub prefix: Option<String>,
    /// `regex` (RE2 syntax).
    pub regex: Option<String>,
}

/// Istio `PortSelector`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortSelectorSpec {
    /// `number`.
    pub number: Option<i64>,
}

/// Istio `Percent`: `{value: 0.0..=100.0}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PercentSpec {
    /// `value`.
    pub value: Option<f64>,
}

/// Istio `Destination`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DestinationSpec {
    /// `host`.
    pub host: Option<String>,
    /// `subset`.
    pub subset: Option<String>,
    /// `port`.
    pub port: Option<PortSelectorSpec>,
}

/// Istio `Headers`: `request` and `response` operations.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeadersSpec {
    /// `request`.
    pub request: Option<HeaderOperationsSpec>,
    /// `response`.
    pub response: Option<HeaderOperationsSpec>,
}

/// Istio `Headers.HeaderOperations`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderOperationsSpec {
    /// `set`.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// `add`.
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    /// `remove`.
    #[serde(default)]
    pub remove: Vec<String>,
}
