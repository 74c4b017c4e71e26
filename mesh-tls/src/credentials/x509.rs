//! What we read from an X.509 certificate: its SPIFFE ID, serial and validity.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::{IdentityError, SpiffeId};

/// Why a certificate does not carry a usable Istio identity.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertIdentityError {
    /// The bytes are not an X.509 certificate.
    #[error("not an X.509 certificate: {0}")]
    Parse(String),
    /// The certificate has no URI SAN.
    #[error("the certificate has no URI SAN, so no SPIFFE ID")]
    NoSpiffeId,
    /// A SPIFFE certificate carries exactly one URI SAN.
    #[error("the certificate has {0} URI SANs; a SPIFFE certificate has exactly one")]
    SeveralUris(usize),
    /// The URI SAN is not an Istio SPIFFE ID.
    #[error("the certificate's URI SAN: {0}")]
    Identity(#[from] IdentityError),
}

/// The fields of a certificate the mesh uses.
#[derive(Clone, Debug)]
pub(crate) struct CertInfo {
    pub(crate) identity: Result<SpiffeId, CertIdentityError>,
    pub(crate) serial: String,
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
}

pub(crate) fn parse(der: &[u8]) -> Result<CertInfo, CertIdentityError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|err| CertIdentityError::Parse(err.to_string()))?;
    let validity = cert.validity();
    Ok(CertInfo {
        identity: identity_of_parsed(&cert),
        serial: format!("{:x}", cert.tbs_certificate.serial),
        not_before: system_time(validity.not_before.timestamp()),
        not_after: system_time(validity.not_after.timestamp()),
    })
}

/// The SPIFFE ID in a certificate's single URI SAN.
pub fn spiffe_id_of(cert: &CertificateDer<'_>) -> Result<SpiffeId, CertIdentityError> {
    let (_, cert) = X509Certificate::from_der(cert.as_ref())
        .map_err(|err| CertIdentityError::Parse(err.to_string()))?;
    identity_of_parsed(&cert)
}

fn identity_of_parsed(cert: &X509Certificate<'_>) -> Result<SpiffeId, CertIdentityError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|err| CertIdentityError::Parse(err.to_string()))?;
    let uris: Vec<&str> = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [] => Err(CertIdentityError::NoSpiffeId),
        [uri] => Ok(uri.parse()?),
        several => Err(CertIdentityError::SeveralUris(several.len())),
    }
}

fn system_time(unix_seconds: i64) -> SystemTime {
    match u64::try_from(unix_seconds) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => UNIX_EPOCH - Duration::from_secs(unix_seconds.unsigned_abs()),
    }
}

/// A subject alternative name of a certificate, as DestinationRule `subjectAltNames` match it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum San {
    /// A DNS name (possibly `*.suffix`).
    Dns(String),
    /// A URI (a SPIFFE ID, for one).
    Uri(String),
    /// An IP address.
    Ip(std::net::IpAddr),
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dns(name) => write!(f, "DNS:{name}"),
            Self::Uri(uri) => write!(f, "URI:{uri}"),
            Self::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

/// The DNS, URI and IP SANs of a certificate.
pub(crate) fn subject_alt_names(der: &[u8]) -> Result<Vec<San>, CertIdentityError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|err| CertIdentityError::Parse(err.to_string()))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|err| CertIdentityError::Parse(err.to_string()))?;
    Ok(san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(San::Dns((*dns).to_owned())),
            GeneralName::URI(uri) => Some(San::Uri((*uri).to_owned())),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).ok().map(|b| San::Ip(b.into())),
                16 => <[u8; 16]>::try_from(*bytes).ok().map(|b| San::Ip(b.into())),
                _ => None,
            },
            _ => None,
        })
        .collect())
}
