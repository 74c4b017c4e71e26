//! Serde shapes of the security kinds (skeleton: filled by the security work).
//!
//! One file per kind; every struct uses `#[serde(deny_unknown_fields, rename_all = "camelCase")]`.

use serde::Deserialize;

/// `security.istio.io` RequestAuthentication `spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestAuthenticationSpec {}

/// `security.istio.io` AuthorizationPolicy `spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorizationPolicySpec {}

/// `authentication.istio.io` Policy `spec` (the article's legacy form).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LegacyPolicySpec {}

/// `policy.linkerd.io` HTTPLocalRateLimitPolicy `spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpLocalRateLimitPolicySpec {}
