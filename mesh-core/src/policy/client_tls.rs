//! DestinationRule `tls`: how a client speaks TLS to a destination.

use std::path::PathBuf;

/// `tls.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientTlsMode {
    /// `DISABLE`: plaintext, even where auto-mTLS would apply.
    Disable,
    /// `SIMPLE`: TLS to a server, verified against system or given roots, no client certificate.
    Simple,
    /// `MUTUAL`: TLS with the client certificate given in the rule.
    Mutual,
    /// `ISTIO_MUTUAL`: mutual TLS with the workload's own certificate, the server's SPIFFE ID
    /// checked.
    IstioMutual,
}

/// A checked `tls` block (DestinationRule `trafficPolicy.tls`, port-level and subset-level).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientTls {
    /// `mode`.
    pub mode: ClientTlsMode,
    /// `clientCertificate`: PEM chain file (MUTUAL).
    pub client_certificate: Option<PathBuf>,
    /// `privateKey`: PEM key file (MUTUAL).
    pub private_key: Option<PathBuf>,
    /// `caCertificates`: PEM roots to verify the server with (SIMPLE, MUTUAL); the system's
    /// roots when absent.
    pub ca_certificates: Option<PathBuf>,
    /// `subjectAltNames`: identities the server's certificate may carry (any one suffices).
    pub subject_alt_names: Vec<String>,
    /// `sni`: the server name sent in the handshake.
    pub sni: Option<String>,
    /// `insecureSkipVerify`: do not verify the server's certificate.
    pub insecure_skip_verify: bool,
}

impl ClientTls {
    /// A block with only `mode` set.
    pub fn mode(mode: ClientTlsMode) -> Self {
        Self {
            mode,
            client_certificate: None,
            private_key: None,
            ca_certificates: None,
            subject_alt_names: Vec::new(),
            sni: None,
            insecure_skip_verify: false,
        }
    }
}
