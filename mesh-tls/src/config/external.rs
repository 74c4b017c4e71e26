//! Verifying a TLS server outside the mesh (DestinationRule `SIMPLE`/`MUTUAL`), as Envoy's
//! upstream validation context does under Istio's settings:
//! - no `subjectAltNames`: the chain verifies to the roots and the certificate names the TLS
//!   server name (`sni`, else the host), as webpki checks it;
//! - `subjectAltNames`: the chain verifies to the roots and the certificate carries one of them
//!   (a DNS SAN, `*.suffix` covering one label, a URI SAN or an IP SAN, exact match), the server
//!   name not checked (Envoy matches the configured SANs only);
//! - `insecureSkipVerify`: neither the chain nor the names are checked (only that the server
//!   holds the key of the certificate it showed).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use super::verify::{server_chain_verifies, signature_schemes, tls12_signature, tls13_signature};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use crate::credentials::x509::{San, subject_alt_names};

/// How a client checks a server outside the mesh.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ServerCheck {
    /// The chain verifies to the roots and names the TLS server name.
    ServerName,
    /// The chain verifies to the roots and carries one of these SANs (DestinationRule
    /// `subjectAltNames`).
    SubjectAltNames(Vec<String>),
    /// Nothing is verified (DestinationRule `insecureSkipVerify: true`).
    SkipVerify,
}

/// Why a server's certificate names none of the expected SANs.
#[derive(Debug, thiserror::Error)]
#[error("the server's certificate names none of subjectAltNames {expected:?} (it names {found:?})")]
pub struct SanMismatch {
    expected: Vec<String>,
    found: Vec<String>,
}

/// The verifier of [`ServerCheck::SubjectAltNames`] and [`ServerCheck::SkipVerify`].
pub(crate) struct ExternalVerifier {
    pub(crate) roots: Arc<RootCertStore>,
    pub(crate) check: ServerCheck,
    pub(crate) provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ExternalVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let ServerCheck::SubjectAltNames(expected) = &self.check else {
            return Ok(ServerCertVerified::assertion());
        };
        server_chain_verifies(&self.provider, &self.roots, end_entity, intermediates, now)?;
        let sans = subject_alt_names(end_entity.as_ref())
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if expected
            .iter()
            .any(|want| sans.iter().any(|san| matches(san, want)))
        {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = SanMismatch {
            expected: expected.clone(),
            found: sans.iter().map(ToString::to_string).collect(),
        };
        Err(Error::InvalidCertificate(CertificateError::Other(
            rustls::OtherError(Arc::new(mismatch)),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls12_signature(&self.provider, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls13_signature(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        signature_schemes(&self.provider)
    }
}

impl fmt::Debug for ExternalVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalVerifier")
            .field("check", &self.check)
            .finish_non_exhaustive()
    }
}

/// Whether the certificate's `san` satisfies the configured `want`.
pub(crate) fn matches(san: &San, want: &str) -> bool {
    match san {
        San::Dns(dns) => {
            let (dns, want) = (dns.to_ascii_lowercase(), want.to_ascii_lowercase());
            match dns.strip_prefix("*.") {
                // A wildcard certificate covers exactly one label.
                Some(suffix) => want
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
                None => dns == want,
            }
        }
        San::Uri(uri) => uri == want,
        San::Ip(ip) => want.parse::<IpAddr>().is_ok_and(|w| w == *ip),
    }
}
