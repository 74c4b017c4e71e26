//! Security kinds: RequestAuthentication, AuthorizationPolicy, the legacy authentication Policy,
//! and Linkerd's HTTPLocalRateLimitPolicy. (Skeleton: filled by the security work.)

mod authn;
mod legacy;

use super::Cx;
use crate::policy::{AuthnPolicy, AuthzPolicy, RateLimitPolicy};
use crate::spec::security::{
    AuthorizationPolicySpec, HttpLocalRateLimitPolicySpec, LegacyPolicySpec,
    RequestAuthenticationSpec,
};

/// RequestAuthentication → authentication policy.
pub(crate) fn request_authentication(
    spec: &RequestAuthenticationSpec,
    cx: &mut Cx<'_>,
) -> Option<AuthnPolicy> {
    authn::request_authentication(spec, cx)
}

/// AuthorizationPolicy → authorization policy.
///
/// The rules live in `compile/authz.rs` (Istio's validation: actions, wildcards, CIDRs, ports,
/// condition keys) so that this shared file stays small.
pub(crate) fn authorization_policy(
    spec: &AuthorizationPolicySpec,
    cx: &mut Cx<'_>,
) -> Option<AuthzPolicy> {
    super::authz::compile(spec, cx)
}

/// The legacy `authentication.istio.io` Policy → the RequestAuthentication-like policies it
/// means: one per `targets[]` entry (selecting `app: <name>`), or one for every workload when
/// `targets` is absent, each with a token required unless `originIsOptional`. The authorization
/// part is `None`: the required token is enforced (401) by the JWT layer itself, as Istio 1.x did.
pub(crate) fn legacy_policy(
    spec: &LegacyPolicySpec,
    cx: &mut Cx<'_>,
) -> Option<(Vec<AuthnPolicy>, Option<AuthzPolicy>)> {
    authn::legacy_policy(spec, cx).map(|p| (p, None))
}

/// HTTPLocalRateLimitPolicy → rate limit policy.
///
/// The rules live in `compile/rate_limit.rs` (Linkerd's validation of limits and client refs).
pub(crate) fn rate_limit(
    spec: &HttpLocalRateLimitPolicySpec,
    cx: &mut Cx<'_>,
) -> Option<RateLimitPolicy> {
    super::rate_limit::compile(spec, cx)
}
