//! `networking.istio.io` Gateway `spec`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::RawYaml;

/// Gateway `spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewaySpec {
    /// `servers[]`.
    #[serde(default)]
    pub servers: Vec<ServerSpec>,
    /// `selector`.
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
}

/// `Server`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerSpec {
    /// `port`.
    pub port: Option<GatewayPortSpec>,
    /// `bind` (unsupported).
    pub bind: Option<String>,
    /// `hosts`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// `tls`.
    pub tls: Option<ServerTlsSpec>,
    /// `defaultEndpoint` (unsupported).
    pub default_endpoint: Option<String>,
    /// `name` (accepted: a label only).
    pub name: Option<String>,
}

/// Gateway `Port`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayPortSpec {
    /// `number`.
    pub number: Option<i64>,
    /// `protocol`.
    pub protocol: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `targetPort` (unsupported).
    pub target_port: Option<i64>,
}

/// Gateway `ServerTLSSettings`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerTlsSpec {
    /// `httpsRedirect`.
    pub https_redirect: Option<bool>,
    /// `mode`.
    pub mode: Option<String>,
    /// `serverCertificate`.
    pub server_certificate: Option<String>,
    /// `privateKey`.
    pub private_key: Option<String>,
    /// `caCertificates`.
    pub ca_certificates: Option<String>,
    /// `caCrl` (unsupported).
    pub ca_crl: Option<String>,
    /// `credentialName`.
    pub credential_name: Option<String>,
    /// `credentialNames` (unsupported).
    pub credential_names: Option<RawYaml>,
    /// `tlsCertificates` (unsupported).
    pub tls_certificates: Option<RawYaml>,
    /// `subjectAltNames` (unsupported).
    pub subject_alt_names: Option<RawYaml>,
    /// `verifyCertificateSpki` (unsupported).
    pub verify_certificate_spki: Option<RawYaml>,
    /// `verifyCertificateHash` (unsupported).
    pub verify_certificate_hash: Option<RawYaml>,
    /// `minProtocolVersion`.
    pub min_protocol_version: Option<String>,
    /// `maxProtocolVersion` (unsupported).
    pub max_protocol_version: Option<String>,
    /// `cipherSuites` (unsupported).
    pub cipher_suites: Option<RawYaml>,
}
