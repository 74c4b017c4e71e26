//! Inbound security and limits: JWT authentication, authorization and rate limits.

use std::time::Duration;

use ipnet::IpNet;

use super::{Labels, Origin};

/// Which workloads a policy applies to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct WorkloadSelector {
    /// `selector.matchLabels`; empty selects every workload in scope.
    pub match_labels: Labels,
}

impl WorkloadSelector {
    /// Whether a workload with `labels` is selected.
    pub fn selects(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// A checked RequestAuthentication (or the legacy Policy's origins, translated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthnPolicy {
    /// Where it came from.
    pub origin: Origin,
    /// Which workloads it applies to.
    pub selector: WorkloadSelector,
    /// `jwtRules` (or `origins[].jwt`).
    pub rules: Vec<JwtRule>,
    /// Legacy Policy semantics: a request without a valid token is refused with 401
    /// (`originIsOptional: false`). RequestAuthentication leaves that to authorization.
    pub require_token: bool,
    /// Legacy `triggerRules`: when non-empty, the policy applies only to matching paths.
    pub trigger_rules: Vec<TriggerRule>,
}

/// One JWT rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtRule {
    /// `issuer`.
    pub issuer: String,
    /// `audiences`; empty accepts any audience.
    pub audiences: Vec<String>,
    /// `jwksUri` or inline `jwks`.
    pub jwks: JwksSource,
    /// `fromHeaders`: header name (lowercase) and value prefix. Empty with no params and no
    /// cookies means the default: `Authorization: Bearer`, then `access_token` query param.
    pub from_headers: Vec<(String, String)>,
    /// `fromParams`.
    pub from_params: Vec<String>,
    /// `fromCookies`.
    pub from_cookies: Vec<String>,
    /// `outputPayloadToHeader`.
    pub output_payload_to_header: Option<String>,
    /// `outputClaimToHeaders`: header and claim name.
    pub output_claim_to_headers: Vec<(String, String)>,
    /// `forwardOriginalToken`.
    pub forward_original_token: bool,
    /// `timeout` for fetching the JWKS (Istio's 5 s default).
    pub timeout: Duration,
    /// `spaceDelimitedClaims`: claims (dotted paths, `provider.login.scope`) whose string value
    /// AuthorizationPolicy matches word by word, on top of `scope` and `permission`, which
    /// always are.
    pub space_delimited_claims: Vec<String>,
}

/// Where a rule's keys come from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum JwksSource {
    /// `jwksUri`: an http(s) URL, fetched and refreshed.
    Uri(String),
    /// `jwks`: an inline JWKS document.
    Inline(String),
    /// Neither: the issuer (an http(s) URL) is asked through OpenID discovery,
    /// `<issuer>/.well-known/openid-configuration` → `jwks_uri`, and that key set is fetched and
    /// refreshed as a `jwksUri` is.
    Discovery(String),
}

/// Legacy `triggerRules[]`: paths included or excluded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TriggerRule {
    /// `includedPaths`.
    pub included_paths: Vec<super::StringMatch>,
    /// `excludedPaths`.
    pub excluded_paths: Vec<super::StringMatch>,
}

/// `action`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AuthzAction {
    /// `ALLOW` (the default).
    #[default]
    Allow,
    /// `DENY`.
    Deny,
    /// `AUDIT`: marks matching requests for audit logging; never decides.
    Audit,
    /// `CUSTOM`: delegated to a provider (a Rust hook here).
    Custom,
}

impl AuthzAction {
    /// The action as Istio writes it (`ALLOW`, `DENY`, `AUDIT`, `CUSTOM`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthzAction::Allow => "ALLOW",
            AuthzAction::Deny => "DENY",
            AuthzAction::Audit => "AUDIT",
            AuthzAction::Custom => "CUSTOM",
        }
    }
}

/// A checked AuthorizationPolicy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthzPolicy {
    /// Where it came from.
    pub origin: Origin,
    /// Which workloads it applies to.
    pub selector: WorkloadSelector,
    /// `action`.
    pub action: AuthzAction,
    /// `provider.name` for CUSTOM.
    pub provider: Option<String>,
    /// `rules`: a request matches the policy when any rule matches. Empty (`rules` absent)
    /// matches nothing, so an ALLOW policy without rules denies all; `rules: [{}]` is one empty
    /// rule, which matches everything.
    pub rules: Vec<AuthzRule>,
    /// The `istio.io/dry-run: "true"` annotation: the policy is evaluated in shadow (its result
    /// logged and counted) and never enforced.
    pub dry_run: bool,
}

/// One rule: every `from`, `to` and `when` given must match (each list: any entry).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthzRule {
    /// `from[].source`.
    pub from: Vec<Source>,
    /// `to[].operation`.
    pub to: Vec<Operation>,
    /// `when[]`.
    pub when: Vec<Condition>,
}

/// `source`. Values support Istio's prefix/suffix `*` matching.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    /// `principals`.
    pub principals: Vec<String>,
    /// `notPrincipals`.
    pub not_principals: Vec<String>,
    /// `requestPrincipals` (`iss/sub`).
    pub request_principals: Vec<String>,
    /// `notRequestPrincipals`.
    pub not_request_principals: Vec<String>,
    /// `namespaces`.
    pub namespaces: Vec<String>,
    /// `notNamespaces`.
    pub not_namespaces: Vec<String>,
    /// `ipBlocks`.
    pub ip_blocks: Vec<IpNet>,
    /// `notIpBlocks`.
    pub not_ip_blocks: Vec<IpNet>,
    /// `remoteIpBlocks`.
    pub remote_ip_blocks: Vec<IpNet>,
    /// `notRemoteIpBlocks`.
    pub not_remote_ip_blocks: Vec<IpNet>,
}

/// `operation`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Operation {
    /// `hosts`.
    pub hosts: Vec<String>,
    /// `notHosts`.
    pub not_hosts: Vec<String>,
    /// `ports`.
    pub ports: Vec<u16>,
    /// `notPorts`.
    pub not_ports: Vec<u16>,
    /// `methods`.
    pub methods: Vec<String>,
    /// `notMethods`.
    pub not_methods: Vec<String>,
    /// `paths`.
    pub paths: Vec<String>,
    /// `notPaths`.
    pub not_paths: Vec<String>,
}

/// `when[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// `key`, parsed.
    pub key: ConditionKey,
    /// `values`.
    pub values: Vec<String>,
    /// `notValues`.
    pub not_values: Vec<String>,
}

/// The attribute a condition reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConditionKey {
    /// `request.auth.claims[a][b]`: a path into nested claims.
    Claim(Vec<String>),
    /// `request.auth.principal`.
    RequestPrincipal,
    /// `request.auth.audiences`.
    Audiences,
    /// `request.auth.presenter`.
    Presenter,
    /// `request.headers[name]` (lowercase); a pseudo-header (`:method`, `:path` with its query,
    /// `:authority`, `:scheme`) reads the request line.
    Header(String),
    /// `source.ip`.
    SourceIp,
    /// `remote.ip`.
    RemoteIp,
    /// `source.namespace`.
    SourceNamespace,
    /// `source.principal`.
    SourcePrincipal,
    /// `destination.ip`.
    DestinationIp,
    /// `destination.port`.
    DestinationPort,
    /// `connection.sni`.
    ConnectionSni,
}

/// A checked `policy.linkerd.io` HTTPLocalRateLimitPolicy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitPolicy {
    /// Where it came from.
    pub origin: Origin,
    /// `targetRef.name`: the workload (service name / `app` label) it limits.
    pub target: String,
    /// `total.requestsPerSecond`.
    pub total_rps: Option<u32>,
    /// `identity.requestsPerSecond`: per authenticated principal.
    pub identity_rps: Option<u32>,
    /// `overrides[]`: a limit and the client identities it applies to.
    pub overrides: Vec<RateLimitOverride>,
}

/// One `overrides[]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitOverride {
    /// `requestsPerSecond`.
    pub rps: u32,
    /// `clientRefs[].name`: identities this limit applies to.
    pub clients: Vec<String>,
}
