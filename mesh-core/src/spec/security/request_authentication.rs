//! `security.istio.io` RequestAuthentication, shaped exactly like Istio's YAML.
//!
//! ```yaml
//! spec:
//!   selector: { matchLabels: { app: service1 } }
//!   jwtRules:
//!     - issuer: https://issuer.example
//!       jwksUri: https://issuer.example/.well-known/jwks.json
//!       audiences: [service1]
//!       fromHeaders: [{ name: x-jwt, prefix: "Bearer " }]
//!       outputClaimToHeaders: [{ header: x-sub, claim: sub }]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

/// `security.istio.io` RequestAuthentication `spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestAuthenticationSpec {
    /// `selector`: the workloads the policy applies to (absent: every workload).
    #[serde(default)]
    pub selector: Option<WorkloadSelectorSpec>,
    /// `targetRef` (deprecated in Istio for `targetRefs`).
    #[serde(default)]
    pub target_ref: Option<PolicyTargetRefSpec>,
    /// `targetRefs`.
    #[serde(default)]
    pub target_refs: Vec<PolicyTargetRefSpec>,
    /// `jwtRules`.
    #[serde(default)]
    pub jwt_rules: Vec<JwtRuleSpec>,
}

/// `selector`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSelectorSpec {
    /// `matchLabels`.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

/// `targetRef` / `targetRefs[]`: a Kubernetes resource the policy attaches to.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyTargetRefSpec {
    /// `group` (`""` for core resources such as Service).
    #[serde(default)]
    pub group: Option<String>,
    /// `kind` (`Service`, `Gateway`, ...).
    #[serde(default)]
    pub kind: Option<String>,
    /// `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// `namespace` (must be the policy's own).
    #[serde(default)]
    pub namespace: Option<String>,
}

/// One `jwtRules[]` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtRuleSpec {
    /// `issuer` (required): must equal the token's `iss`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// `audiences`: when set, the token's `aud` must contain one of them.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// `jwksUri`: an http(s) URL of the key set.
    #[serde(default, alias = "jwks_uri")]
    pub jwks_uri: Option<String>,
    /// `jwks`: an inline JWKS document (JSON text).
    #[serde(default)]
    pub jwks: Option<String>,
    /// `fromHeaders`.
    #[serde(default)]
    pub from_headers: Vec<JwtHeaderSpec>,
    /// `fromParams`.
    #[serde(default)]
    pub from_params: Vec<String>,
    /// `fromCookies`.
    #[serde(default)]
    pub from_cookies: Vec<String>,
    /// `outputPayloadToHeader`.
    #[serde(default)]
    pub output_payload_to_header: Option<String>,
    /// `outputClaimToHeaders`.
    #[serde(default)]
    pub output_claim_to_headers: Vec<ClaimToHeaderSpec>,
    /// `forwardOriginalToken`.
    #[serde(default)]
    pub forward_original_token: bool,
    /// `timeout` for fetching the JWKS (`5s` when absent).
    #[serde(default)]
    pub timeout: Option<String>,
    /// `spaceDelimitedClaims`.
    #[serde(default)]
    pub space_delimited_claims: Vec<String>,
}

/// `fromHeaders[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtHeaderSpec {
    /// `name`: the header.
    #[serde(default)]
    pub name: Option<String>,
    /// `prefix`: stripped before the token (e.g. `"Bearer "`).
    #[serde(default)]
    pub prefix: Option<String>,
}

/// `outputClaimToHeaders[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimToHeaderSpec {
    /// `header`: the header to set.
    #[serde(default)]
    pub header: Option<String>,
    /// `claim`: the claim copied (nested claims with `.`).
    #[serde(default)]
    pub claim: Option<String>,
}
