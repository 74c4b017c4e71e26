//! `networking.istio.io` VirtualService `spec`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{DestinationSpec, HeadersSpec, PercentSpec, RawYaml, StringMatchSpec};

/// VirtualService `spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    /// `hosts`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// `gateways`.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// `http[]`.
    #[serde(default)]
    pub http: Vec<HttpRouteSpec>,
    /// `tls[]` (unsupported: reported by the compile step).
    pub tls: Option<RawYaml>,
    /// `tcp[]` (unsupported: reported by the compile step).
    pub tcp: Option<RawYaml>,
    /// `exportTo`: the namespaces that see it (`*`, `.`, `~`, names; see `MeshConfig::visible_from`).
    #[serde(default)]
    pub export_to: Vec<String>,
}

/// `HTTPRoute`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// `name`.
    pub name: Option<String>,
    /// `match[]`.
    #[serde(default, rename = "match")]
    pub matches: Vec<HttpMatchRequestSpec>,
    /// `route[]`.
    #[serde(default)]
    pub route: Vec<HttpRouteDestinationSpec>,
    /// `redirect`.
    pub redirect: Option<HttpRedirectSpec>,
    /// `directResponse`.
    pub direct_response: Option<HttpDirectResponseSpec>,
    /// `delegate` (unsupported).
    pub delegate: Option<RawYaml>,
    /// `rewrite`.
    pub rewrite: Option<HttpRewriteSpec>,
    /// `timeout`.
    pub timeout: Option<String>,
    /// `retries`.
    pub retries: Option<HttpRetrySpec>,
    /// `fault`.
    pub fault: Option<HttpFaultInjectionSpec>,
    /// `mirror`.
    pub mirror: Option<DestinationSpec>,
    /// `mirrors[]`.
    #[serde(default)]
    pub mirrors: Vec<HttpMirrorPolicySpec>,
    /// `mirrorPercent` (deprecated integer form).
    pub mirror_percent: Option<i64>,
    /// `mirrorPercentage`.
    pub mirror_percentage: Option<PercentSpec>,
    /// `corsPolicy`.
    pub cors_policy: Option<CorsPolicySpec>,
    /// `headers`.
    pub headers: Option<HeadersSpec>,
}

/// `HTTPMatchRequest`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpMatchRequestSpec {
    /// `name`.
    pub name: Option<String>,
    /// `uri`.
    pub uri: Option<StringMatchSpec>,
    /// `scheme`.
    pub scheme: Option<StringMatchSpec>,
    /// `method`.
    pub method: Option<StringMatchSpec>,
    /// `authority`.
    pub authority: Option<StringMatchSpec>,
    /// `headers`.
    #[serde(default)]
    pub headers: BTreeMap<String, StringMatchSpec>,
    /// `port`.
    pub port: Option<i64>,
    /// `sourceLabels`.
    #[serde(default)]
    pub source_labels: BTreeMap<String, String>,
    /// `gateways`.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// `queryParams`.
    #[serde(default)]
    pub query_params: BTreeMap<String, StringMatchSpec>,
    /// `ignoreUriCase`.
    #[serde(default)]
    pub ignore_uri_case: bool,
    /// `withoutHeaders`.
    #[serde(default)]
    pub without_headers: BTreeMap<String, StringMatchSpec>,
    /// `sourceNamespace` (unsupported).
    pub source_namespace: Option<String>,
    /// `statPrefix` (unsupported).
    pub stat_prefix: Option<String>,
}

/// `HTTPRouteDestination`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRouteDestinationSpec {
    /// `destination`.
    pub destination: Option<DestinationSpec>,
    /// `weight`.
    pub weight: Option<i64>,
    /// `headers`.
    pub headers: Option<HeadersSpec>,
}

/// `HTTPRedirect`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRedirectSpec {
    /// `uri`.
    pub uri: Option<String>,
    /// `authority`.
    pub authority: Option<String>,
    /// `port`.
    pub port: Option<i64>,
    /// `derivePort`: `FROM_PROTOCOL_DEFAULT` or `FROM_REQUEST_PORT` (unsupported).
    pub derive_port: Option<String>,
    /// `scheme`.
    pub scheme: Option<String>,
    /// `redirectCode`.
    pub redirect_code: Option<i64>,
    /// `prefixRewrite` (unsupported).
    pub prefix_rewrite: Option<String>,
}

/// `HTTPDirectResponse`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpDirectResponseSpec {
    /// `status`.
    pub status: Option<i64>,
    /// `body`.
    pub body: Option<HttpBodySpec>,
}

/// `HTTPBody`: one of `string` or `bytes` (base64).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpBodySpec {
    /// `string`.
    pub string: Option<String>,
    /// `bytes`, base64-encoded.
    pub bytes: Option<String>,
}

/// `HTTPRewrite`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRewriteSpec {
    /// `uri`.
    pub uri: Option<String>,
    /// `authority`.
    pub authority: Option<String>,
    /// `uriRegexRewrite`.
    pub uri_regex_rewrite: Option<RegexRewriteSpec>,
}

/// `RegexRewrite`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegexRewriteSpec {
    /// `match`.
    #[serde(rename = "match")]
    pub pattern: Option<String>,
    /// `rewrite`.
    pub rewrite: Option<String>,
}

/// `HTTPRetry`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRetrySpec {
    /// `attempts`.
    pub attempts: Option<i64>,
    /// `perTryTimeout`.
    pub per_try_timeout: Option<String>,
    /// `retryOn`.
    pub retry_on: Option<String>,
    /// `retryRemoteLocalities`.
    pub retry_remote_localities: Option<bool>,
    /// `retryIgnorePreviousHosts` (only the default, `true`, is supported).
    pub retry_ignore_previous_hosts: Option<bool>,
    /// `backoff`.
    pub backoff: Option<String>,
}

/// `HTTPFaultInjection`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpFaultInjectionSpec {
    /// `delay`.
    pub delay: Option<FaultDelaySpec>,
    /// `abort`.
    pub abort: Option<FaultAbortSpec>,
}

/// `HTTPFaultInjection.Delay`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultDelaySpec {
    /// `fixedDelay`.
    pub fixed_delay: Option<String>,
    /// `exponentialDelay` (unsupported).
    pub exponential_delay: Option<String>,
    /// `percentage`.
    pub percentage: Option<PercentSpec>,
    /// `percent` (deprecated integer form).
    pub percent: Option<i64>,
}

/// `HTTPFaultInjection.Abort`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultAbortSpec {
    /// `httpStatus`.
    pub http_status: Option<i64>,
    /// `grpcStatus`: a gRPC status name (`UNAVAILABLE`).
    pub grpc_status: Option<String>,
    /// `http2Error` (unsupported).
    pub http2_error: Option<String>,
    /// `percentage`.
    pub percentage: Option<PercentSpec>,
}

/// `HTTPMirrorPolicy`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpMirrorPolicySpec {
    /// `destination`.
    pub destination: Option<DestinationSpec>,
    /// `percentage`.
    pub percentage: Option<PercentSpec>,
}

/// `CorsPolicy`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CorsPolicySpec {
    /// `allowOrigin` (deprecated exact strings).
    #[serde(default)]
    pub allow_origin: Vec<String>,
    /// `allowOrigins`.
    #[serde(default)]
    pub allow_origins: Vec<StringMatchSpec>,
    /// `allowMethods`.
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// `allowHeaders`.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// `exposeHeaders`.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// `maxAge`.
    pub max_age: Option<String>,
    /// `allowCredentials`.
    pub allow_credentials: Option<bool>,
    /// `unmatchedPreflights` (unsupported).
    pub unmatched_preflights: Option<String>,
}
