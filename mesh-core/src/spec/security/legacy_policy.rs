//! `authentication.istio.io` Policy (`v1alpha1`, and `v1beta1` as the seed article writes it):
//! the pre-1.5 form of end-user authentication, shaped exactly like its YAML.
//!
//! ```yaml
//! spec:
//!   targets: [{ name: service1 }]
//!   origins:
//!     - jwt:
//!         issuer: https://issuer.example
//!         jwksUri: https://issuer.example/.well-known/jwks.json
//!   principalBinding: USE_ORIGIN
//! ```

use serde::Deserialize;

/// `authentication.istio.io` Policy `spec` (the article's legacy form).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LegacyPolicySpec {
    /// `targets`: the services (by name) the policy applies to; absent means every workload.
    #[serde(default)]
    pub targets: Vec<LegacyTargetSpec>,
    /// `peers`: peer (mTLS) authentication methods.
    #[serde(default)]
    pub peers: Vec<serde_json::Value>,
    /// `peerIsOptional`.
    #[serde(default)]
    pub peer_is_optional: Option<bool>,
    /// `origins`: the JWTs accepted from end users.
    #[serde(default)]
    pub origins: Vec<LegacyOriginSpec>,
    /// `originIsOptional`: when true a request without a token is let through.
    #[serde(default)]
    pub origin_is_optional: bool,
    /// `principalBinding`: `USE_PEER` (Istio's default) or `USE_ORIGIN`.
    #[serde(default)]
    pub principal_binding: Option<String>,
}

/// `targets[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LegacyTargetSpec {
    /// `name`: the service name (matched against the workload's `app` label).
    #[serde(default)]
    pub name: Option<String>,
    /// `ports`: restrict to some ports of the service.
    #[serde(default)]
    pub ports: Vec<LegacyPortSpec>,
}

/// `targets[].ports[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LegacyPortSpec {
    /// `number`.
    #[serde(default)]
    pub number: Option<u32>,
    /// `name`.
    #[serde(default)]
    pub name: Option<String>,
}

/// `origins[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LegacyOriginSpec {
    /// `jwt`.
    #[serde(default)]
    pub jwt: Option<LegacyJwtSpec>,
}

/// `origins[].jwt`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LegacyJwtSpec {
    /// `issuer`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// `audiences`.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// `jwksUri`.
    #[serde(default, alias = "jwks_uri")]
    pub jwks_uri: Option<String>,
    /// `jwks`: inline key set.
    #[serde(default)]
    pub jwks: Option<String>,
    /// `jwtHeaders`: headers carrying the bare token.
    #[serde(default, alias = "jwt_headers")]
    pub jwt_headers: Vec<String>,
    /// `jwtParams`: query parameters carrying the token.
    #[serde(default, alias = "jwt_params")]
    pub jwt_params: Vec<String>,
    /// `triggerRules`.
    #[serde(default, alias = "trigger_rules")]
    pub trigger_rules: Vec<LegacyTriggerRuleSpec>,
}

/// `triggerRules[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LegacyTriggerRuleSpec {
    /// `includedPaths`.
    #[serde(default, alias = "included_paths")]
    pub included_paths: Vec<LegacyStringMatchSpec>,
    /// `excludedPaths`.
    #[serde(default, alias = "excluded_paths")]
    pub excluded_paths: Vec<LegacyStringMatchSpec>,
}

/// The legacy `StringMatch`: exactly one of `exact`, `prefix`, `suffix`, `regex`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LegacyStringMatchSpec {
    /// `exact`.
    #[serde(default)]
    pub exact: Option<String>,
    /// `prefix`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// `suffix`.
    #[serde(default)]
    pub suffix: Option<String>,
    /// `regex`.
    #[serde(default)]
    pub regex: Option<String>,
}
