//! Serde shapes of the security kinds (skeleton: filled by the security work).
//!
//! One file per kind; every struct uses `#[serde(deny_unknown_fields, rename_all = "camelCase")]`.

use serde::Deserialize;

pub mod legacy_policy;
pub mod request_authentication;

pub use legacy_policy::LegacyPolicySpec;
pub use request_authentication::RequestAuthenticationSpec;

/// `security.istio.io` AuthorizationPolicy `spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorizationPolicySpec {}

/// `policy.linkerd.io` HTTPLocalRateLimitPolicy `spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpLocalRateLimitPolicySpec {}
