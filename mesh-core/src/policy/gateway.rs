//! Gateways.

use super::{Labels, Origin};

/// A checked Gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayPolicy {
    /// Where it came from.
    pub origin: Origin,
    /// `selector`.
    pub selector: Labels,
    /// `servers[]`.
    pub servers: Vec<GatewayServer>,
}

/// One `servers[]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayServer {
    /// `port.number`: the port this server represents.
    pub port: u16,
    /// `port.name`.
    pub port_name: Option<String>,
    /// `port.protocol` (HTTP, HTTP2, ...), upper case.
    pub protocol: String,
    /// `hosts`: `*`, `*.example.com`, `ns/host`.
    pub hosts: Vec<String>,
    /// `tls`.
    pub tls: Option<ServerTls>,
}

/// `servers[].tls`: how the gateway terminates TLS for a server, or redirects to HTTPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    /// `httpsRedirect`: answer plain HTTP requests with a 301 to `https://`.
    pub https_redirect: bool,
    /// `mode`: `None` when the block only redirects.
    pub mode: Option<ServerTlsMode>,
    /// `serverCertificate`: PEM chain file, leaf first.
    pub server_certificate: Option<std::path::PathBuf>,
    /// `privateKey`: PEM key file.
    pub private_key: Option<std::path::PathBuf>,
    /// `caCertificates`: PEM roots that client certificates must verify to (MUTUAL).
    pub ca_certificates: Option<std::path::PathBuf>,
    /// `credentialName`: a Kubernetes TLS Secret (`tls.crt`, `tls.key`, `ca.crt`).
    pub credential_name: Option<String>,
    /// `minProtocolVersion`: TLS 1.3 only when `true` (else TLS 1.2 and 1.3).
    pub tls13_only: bool,
}

/// `servers[].tls.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerTlsMode {
    /// `SIMPLE`: TLS with the server's certificate.
    Simple,
    /// `MUTUAL`: TLS, and clients present a certificate that verifies to the CA.
    Mutual,
}
