//! Serde shapes of the security kinds: RequestAuthentication, AuthorizationPolicy, the legacy
//! authentication Policy and Linkerd's HTTPLocalRateLimitPolicy.
//!
//! One file per kind; every struct uses `#[serde(deny_unknown_fields, rename_all = "camelCase")]`.

pub mod authorization_policy;
pub mod legacy_policy;
pub mod peer_authentication;
pub mod rate_limit;
pub mod request_authentication;

pub use authorization_policy::{
    AuthorizationPolicySpec, AuthzConditionSpec, AuthzFromSpec, AuthzOperationSpec,
    AuthzProviderSpec, AuthzRuleSpec, AuthzSelectorSpec, AuthzSourceSpec, AuthzTargetRefSpec,
    AuthzToSpec, PortText,
};
pub use legacy_policy::LegacyPolicySpec;
pub use peer_authentication::{MutualTlsSpec, PeerAuthenticationSpec, PortKey};
pub use rate_limit::{
    HttpLocalRateLimitPolicySpec, RateLimitClientRefSpec, RateLimitOverrideSpec, RateLimitSpec,
    RateLimitTargetRefSpec,
};
pub use request_authentication::RequestAuthenticationSpec;
