//! `networking.istio.io` DestinationRule `spec`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{PortSelectorSpec, RawYaml};

/// DestinationRule `spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    /// `host`.
    pub host: Option<String>,
    /// `trafficPolicy`.
    pub traffic_policy: Option<TrafficPolicySpec>,
    /// `subsets[]`.
    #[serde(default)]
    pub subsets: Vec<SubsetSpec>,
    /// `exportTo`: the namespaces that see it (`*`, `.`, `~`, names; see `MeshConfig::visible_from`).
    #[serde(default)]
    pub export_to: Vec<String>,
    /// `workloadSelector` (unsupported).
    pub workload_selector: Option<RawYaml>,
}

/// `TrafficPolicy`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrafficPolicySpec {
    /// `loadBalancer`.
    pub load_balancer: Option<LoadBalancerSpec>,
    /// `connectionPool`.
    pub connection_pool: Option<ConnectionPoolSpec>,
    /// `outlierDetection`.
    pub outlier_detection: Option<OutlierDetectionSpec>,
    /// `tls`.
    pub tls: Option<ClientTlsSettingsSpec>,
    /// `portLevelSettings[]`.
    #[serde(default)]
    pub port_level_settings: Vec<PortTrafficPolicySpec>,
    /// `tunnel` (unsupported).
    pub tunnel: Option<RawYaml>,
    /// `proxyProtocol` (unsupported).
    pub proxy_protocol: Option<RawYaml>,
    /// `retryBudget`.
    pub retry_budget: Option<RetryBudgetSpec>,
}

/// `TrafficPolicy.PortTrafficPolicy`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortTrafficPolicySpec {
    /// `port`.
    pub port: Option<PortSelectorSpec>,
    /// `loadBalancer`.
    pub load_balancer: Option<LoadBalancerSpec>,
    /// `connectionPool`.
    pub connection_pool: Option<ConnectionPoolSpec>,
    /// `outlierDetection`.
    pub outlier_detection: Option<OutlierDetectionSpec>,
    /// `tls`.
    pub tls: Option<ClientTlsSettingsSpec>,
}

/// `TrafficPolicy.RetryBudget` (Istio 1.27).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryBudgetSpec {
    /// `percent`.
    pub percent: Option<f64>,
    /// `minRetryConcurrency`.
    pub min_retry_concurrency: Option<i64>,
    /// `budgetInterval` (unsupported).
    pub budget_interval: Option<String>,
}

/// `Subset`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubsetSpec {
    /// `name`.
    pub name: Option<String>,
    /// `labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `trafficPolicy`.
    pub traffic_policy: Option<TrafficPolicySpec>,
}

/// `LoadBalancerSettings`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadBalancerSpec {
    /// `simple`.
    pub simple: Option<String>,
    /// `consistentHash`.
    pub consistent_hash: Option<ConsistentHashSpec>,
    /// `localityLbSetting` (unsupported).
    pub locality_lb_setting: Option<RawYaml>,
    /// `zoneAwareLbSetting` (unsupported).
    pub zone_aware_lb_setting: Option<RawYaml>,
    /// `warmupDurationSecs` (deprecated; unsupported).
    pub warmup_duration_secs: Option<RawYaml>,
    /// `warmup` (unsupported).
    pub warmup: Option<RawYaml>,
}

/// `LoadBalancerSettings.ConsistentHashLB`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConsistentHashSpec {
    /// `httpHeaderName`.
    pub http_header_name: Option<String>,
    /// `httpCookie`.
    pub http_cookie: Option<HttpCookieSpec>,
    /// `useSourceIp`.
    pub use_source_ip: Option<bool>,
    /// `httpQueryParameterName`.
    pub http_query_parameter_name: Option<String>,
    /// `ringHash`.
    pub ring_hash: Option<RingHashSpec>,
    /// `maglev`.
    pub maglev: Option<MaglevSpec>,
    /// `minimumRingSize` (deprecated form of `ringHash.minimumRingSize`).
    pub minimum_ring_size: Option<i64>,
}

/// `ConsistentHashLB.HTTPCookie`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpCookieSpec {
    /// `name`.
    pub name: Option<String>,
    /// `path`.
    pub path: Option<String>,
    /// `ttl`.
    pub ttl: Option<String>,
    /// `attributes` (unsupported).
    pub attributes: Option<RawYaml>,
}

/// `ConsistentHashLB.RingHash`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RingHashSpec {
    /// `minimumRingSize`.
    pub minimum_ring_size: Option<i64>,
}

/// `ConsistentHashLB.MagLev`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MaglevSpec {
    /// `tableSize`.
    pub table_size: Option<i64>,
}

/// `ConnectionPoolSettings`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectionPoolSpec {
    /// `tcp`.
    pub tcp: Option<TcpSettingsSpec>,
    /// `http`.
    pub http: Option<HttpSettingsSpec>,
}

/// `ConnectionPoolSettings.TCPSettings`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpSettingsSpec {
    /// `maxConnections`.
    pub max_connections: Option<i64>,
    /// `connectTimeout`.
    pub connect_timeout: Option<String>,
    /// `tcpKeepalive` (unsupported).
    pub tcp_keepalive: Option<RawYaml>,
    /// `maxConnectionDuration` (unsupported).
    pub max_connection_duration: Option<String>,
    /// `idleTimeout`.
    pub idle_timeout: Option<String>,
}

/// `ConnectionPoolSettings.HTTPSettings`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpSettingsSpec {
    /// `http1MaxPendingRequests`.
    pub http1_max_pending_requests: Option<i64>,
    /// `http2MaxRequests`.
    pub http2_max_requests: Option<i64>,
    /// `maxRequestsPerConnection`.
    pub max_requests_per_connection: Option<i64>,
    /// `maxRetries`.
    pub max_retries: Option<i64>,
    /// `idleTimeout`.
    pub idle_timeout: Option<String>,
    /// `h2UpgradePolicy` (only `DEFAULT` is supported).
    pub h2_upgrade_policy: Option<String>,
    /// `useClientProtocol` (unsupported when `true`).
    pub use_client_protocol: Option<bool>,
    /// `maxConcurrentStreams` (unsupported).
    pub max_concurrent_streams: Option<i64>,
    /// `http2KeepAlive` (unsupported).
    #[serde(rename = "http2KeepAlive")]
    pub http2_keep_alive: Option<RawYaml>,
}

/// `OutlierDetection`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutlierDetectionSpec {
    /// `consecutiveErrors` (deprecated: gateway errors).
    pub consecutive_errors: Option<i64>,
    /// `splitExternalLocalOriginErrors`.
    pub split_external_local_origin_errors: Option<bool>,
    /// `consecutiveLocalOriginFailures`.
    pub consecutive_local_origin_failures: Option<i64>,
    /// `consecutiveGatewayErrors`.
    pub consecutive_gateway_errors: Option<i64>,
    /// `consecutive5xxErrors`.
    #[serde(rename = "consecutive5xxErrors")]
    pub consecutive_5xx_errors: Option<i64>,
    /// `interval`.
    pub interval: Option<String>,
    /// `baseEjectionTime`.
    pub base_ejection_time: Option<String>,
    /// `maxEjectionPercent`.
    pub max_ejection_percent: Option<i64>,
    /// `minHealthPercent`.
    pub min_health_percent: Option<i64>,
    /// `outlierDetectionHttpErrorCodes` (unsupported).
    pub outlier_detection_http_error_codes: Option<RawYaml>,
}

/// `ClientTLSSettings`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientTlsSettingsSpec {
    /// `mode`: `DISABLE`, `SIMPLE`, `MUTUAL` or `ISTIO_MUTUAL`; kept as text so an unknown mode
    /// is reported by name.
    pub mode: Option<String>,
    /// `clientCertificate`: a file path.
    pub client_certificate: Option<String>,
    /// `privateKey`: a file path.
    pub private_key: Option<String>,
    /// `caCertificates`: a file path.
    pub ca_certificates: Option<String>,
    /// `credentialName` (a Kubernetes Secret; unsupported in folder mode).
    pub credential_name: Option<String>,
    /// `subjectAltNames`.
    #[serde(default)]
    pub subject_alt_names: Vec<String>,
    /// `sni`.
    pub sni: Option<String>,
    /// `insecureSkipVerify`.
    pub insecure_skip_verify: Option<bool>,
    /// `caCrl` (unsupported).
    pub ca_crl: Option<String>,
}
