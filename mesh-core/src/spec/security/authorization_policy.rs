//! `security.istio.io` AuthorizationPolicy, shaped exactly like Istio's YAML.
//!
//! Lists are `Option<Vec<..>>` where Istio gives an absent list a meaning different from an empty
//! one (`rules` absent matches nothing; `from: []` is refused), so the compiler can tell them apart.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `security.istio.io` AuthorizationPolicy `spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorizationPolicySpec {
    /// `selector`: the workloads the policy applies to.
    pub selector: Option<AuthzSelectorSpec>,
    /// `targetRef` (Gateway API attachment): refused as unsupported.
    pub target_ref: Option<AuthzTargetRefSpec>,
    /// `targetRefs`: refused as unsupported.
    pub target_refs: Option<Vec<AuthzTargetRefSpec>>,
    /// `action`: `ALLOW` (default), `DENY`, `AUDIT` or `CUSTOM`; kept as text so an unknown
    /// action is reported by name.
    pub action: Option<String>,
    /// `provider`, for `CUSTOM`.
    pub provider: Option<AuthzProviderSpec>,
    /// `rules`.
    pub rules: Option<Vec<AuthzRuleSpec>>,
}

/// `selector`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthzSelectorSpec {
    /// `matchLabels`.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

/// `targetRef` / `targetRefs[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthzTargetRefSpec {
    /// `group`.
    pub group: Option<String>,
    /// `kind`.
    pub kind: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `namespace`.
    pub namespace: Option<String>,
}

/// `provider`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthzProviderSpec {
    /// `name`: the extension provider.
    pub name: Option<String>,
}

/// `rules[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthzRuleSpec {
    /// `from[]`.
    pub from: Option<Vec<AuthzFromSpec>>,
    /// `to[]`.
    pub to: Option<Vec<AuthzToSpec>>,
    /// `when[]`.
    pub when: Option<Vec<AuthzConditionSpec>>,
}

/// `from[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthzFromSpec {
    /// `source`.
    pub source: Option<AuthzSourceSpec>,
}

/// `from[].source`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthzSourceSpec {
    /// `principals`.
    pub principals: Option<Vec<String>>,
    /// `notPrincipals`.
    pub not_principals: Option<Vec<String>>,
    /// `requestPrincipals`.
    pub request_principals: Option<Vec<String>>,
    /// `notRequestPrincipals`.
    pub not_request_principals: Option<Vec<String>>,
    /// `namespaces`.
    pub namespaces: Option<Vec<String>>,
    /// `notNamespaces`.
    pub not_namespaces: Option<Vec<String>>,
    /// `serviceAccounts` (`ns/name`, or `name` in the policy's namespace).
    pub service_accounts: Option<Vec<String>>,
    /// `notServiceAccounts`.
    pub not_service_accounts: Option<Vec<String>>,
    /// `ipBlocks`.
    pub ip_blocks: Option<Vec<String>>,
    /// `notIpBlocks`.
    pub not_ip_blocks: Option<Vec<String>>,
    /// `remoteIpBlocks`.
    pub remote_ip_blocks: Option<Vec<String>>,
    /// `notRemoteIpBlocks`.
    pub not_remote_ip_blocks: Option<Vec<String>>,
}

/// `to[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthzToSpec {
    /// `operation`.
    pub operation: Option<AuthzOperationSpec>,
}

/// `to[].operation`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthzOperationSpec {
    /// `hosts`.
    pub hosts: Option<Vec<String>>,
    /// `notHosts`.
    pub not_hosts: Option<Vec<String>>,
    /// `ports` (strings in Istio's schema; numbers accepted too).
    pub ports: Option<Vec<PortText>>,
    /// `notPorts`.
    pub not_ports: Option<Vec<PortText>>,
    /// `methods`.
    pub methods: Option<Vec<String>>,
    /// `notMethods`.
    pub not_methods: Option<Vec<String>>,
    /// `paths`.
    pub paths: Option<Vec<String>>,
    /// `notPaths`.
    pub not_paths: Option<Vec<String>>,
}

/// A port as written: Istio's schema says string (`"8080"`), YAML users often write a number.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum PortText {
    /// `8080`.
    Number(i64),
    /// `"8080"`.
    Text(String),
}

/// `when[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthzConditionSpec {
    /// `key`, e.g. `request.auth.claims[groups]`.
    pub key: Option<String>,
    /// `values`.
    pub values: Option<Vec<String>>,
    /// `notValues`.
    pub not_values: Option<Vec<String>>,
}
