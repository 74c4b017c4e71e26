//! `policy.linkerd.io/v1alpha1` HTTPLocalRateLimitPolicy, shaped exactly like Linkerd's YAML.

use serde::Deserialize;

/// `policy.linkerd.io` HTTPLocalRateLimitPolicy `spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpLocalRateLimitPolicySpec {
    /// `targetRef`: in Linkerd a `Server`; here it names the workload (its service name, the
    /// `app` label) whose inbound traffic is limited.
    pub target_ref: Option<RateLimitTargetRefSpec>,
    /// `total`: one limit for all traffic to the target.
    pub total: Option<RateLimitSpec>,
    /// `identity`: a limit for each client identity.
    pub identity: Option<RateLimitSpec>,
    /// `overrides[]`: limits for named clients.
    pub overrides: Option<Vec<RateLimitOverrideSpec>>,
}

/// `targetRef`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitTargetRefSpec {
    /// `group` (`policy.linkerd.io` for a Server, empty for core kinds).
    pub group: Option<String>,
    /// `kind`: `Server`, `Service` or `Deployment`.
    pub kind: Option<String>,
    /// `name`.
    pub name: Option<String>,
}

/// `total` / `identity`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitSpec {
    /// `requestsPerSecond`.
    pub requests_per_second: Option<i64>,
}

/// `overrides[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitOverrideSpec {
    /// `requestsPerSecond`.
    pub requests_per_second: Option<i64>,
    /// `clientRefs[]`.
    pub client_refs: Option<Vec<RateLimitClientRefSpec>>,
}

/// `overrides[].clientRefs[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitClientRefSpec {
    /// `group`.
    pub group: Option<String>,
    /// `kind`: `ServiceAccount` (the only kind Linkerd supports).
    pub kind: Option<String>,
    /// `namespace`.
    pub namespace: Option<String>,
    /// `name`.
    pub name: Option<String>,
}
