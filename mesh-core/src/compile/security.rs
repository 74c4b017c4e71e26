//! Security kinds: RequestAuthentication, AuthorizationPolicy, the legacy authentication Policy,
//! and Linkerd's HTTPLocalRateLimitPolicy. (Skeleton: filled by the security work.)

use super::Cx;
use crate::policy::{AuthnPolicy, AuthzPolicy, RateLimitPolicy};
use crate::spec::security::{
    AuthorizationPolicySpec, HttpLocalRateLimitPolicySpec, LegacyPolicySpec, RequestAuthenticationSpec,
};

/// RequestAuthentication → authentication policy.
pub(crate) fn request_authentication(spec: &RequestAuthenticationSpec, cx: &mut Cx<'_>) -> Option<AuthnPolicy> {
    let _ = spec;
    cx.error("spec", "RequestAuthentication is not supported yet by this mesh");
    None
}

/// AuthorizationPolicy → authorization policy.
pub(crate) fn authorization_policy(spec: &AuthorizationPolicySpec, cx: &mut Cx<'_>) -> Option<AuthzPolicy> {
    let _ = spec;
    cx.error("spec", "AuthorizationPolicy is not supported yet by this mesh");
    None
}

/// The legacy `authentication.istio.io` Policy → the RequestAuthentication-like policy it means
/// (with a token required) and, optionally, an authorization policy.
pub(crate) fn legacy_policy(
    spec: &LegacyPolicySpec,
    cx: &mut Cx<'_>,
) -> Option<(AuthnPolicy, Option<AuthzPolicy>)> {
    let _ = spec;
    cx.error("spec", "Policy is not supported yet by this mesh");
    None
}

/// HTTPLocalRateLimitPolicy → rate limit policy.
pub(crate) fn rate_limit(spec: &HttpLocalRateLimitPolicySpec, cx: &mut Cx<'_>) -> Option<RateLimitPolicy> {
    let _ = spec;
    cx.error("spec", "HTTPLocalRateLimitPolicy is not supported yet by this mesh");
    None
}
