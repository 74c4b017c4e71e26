//! A workload's credentials, checked: certificate chain, private key and root certificates.
//!
//! [`Credentials::from_pem`] takes the three PEM files of Istio's layout (`cert-chain.pem`,
//! leaf first; `key.pem`; `root-cert.pem`) and refuses anything the mesh could not serve with:
//! unreadable PEM, a key (PKCS#8, SEC1 `EC PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`) that is
//! not the leaf's, a leaf without exactly one SPIFFE URI SAN, a chain that does not verify to
//! the roots, or a leaf outside its validity period. Every failure is a [`CredentialError`];
//! nothing here panics on bad input.

pub(crate) mod x509;

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::RootCertStore;
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

pub use x509::{CertIdentityError, spiffe_id_of};

use crate::identity::SpiffeId;

/// Which of the three inputs an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// The certificate chain (`cert-chain.pem`).
    Chain,
    /// The private key (`key.pem`).
    Key,
    /// The root certificates (`root-cert.pem`).
    Roots,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Chain => "certificate chain",
            Self::Key => "private key",
            Self::Roots => "root certificates",
        })
    }
}

/// Why a credential set was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// A PEM file could not be read (truncated, bad base64, ...).
    #[error("{part}: bad PEM: {reason}")]
    Pem {
        /// Which input.
        part: Part,
        /// What the PEM reader said.
        reason: String,
    },
    /// A certificate file holds no `CERTIFICATE` block.
    #[error("{0}: no PEM CERTIFICATE block")]
    NoCertificate(Part),
    /// The key file holds no private key block.
    #[error("private key: no PEM PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block")]
    NoKey,
    /// The leaf could not be parsed as X.509.
    #[error("certificate chain: the leaf: {0}")]
    Leaf(String),
    /// The key could not be loaded (unsupported algorithm, corrupt DER).
    #[error("private key: {0}")]
    Key(String),
    /// The key is not the leaf certificate's.
    #[error("the private key does not match the leaf certificate")]
    KeyMismatch,
    /// The leaf does not carry exactly one Istio SPIFFE ID.
    #[error("certificate chain: the leaf: {0}")]
    Identity(CertIdentityError),
    /// The leaf's validity starts later.
    #[error("the leaf certificate (serial {serial}) is not valid yet")]
    NotYetValid {
        /// The leaf's serial, hex.
        serial: String,
        /// When it becomes valid.
        not_before: SystemTime,
    },
    /// The leaf has expired.
    #[error("the leaf certificate (serial {serial}) has expired")]
    Expired {
        /// The leaf's serial, hex.
        serial: String,
        /// When it expired.
        not_after: SystemTime,
    },
    /// A root certificate is unusable as a trust anchor.
    #[error("root certificates: {0}")]
    Roots(String),
    /// The chain does not lead from the leaf to one of the roots.
    #[error("the certificate chain does not verify to the root certificates: {0}")]
    Chain(String),
}

/// A checked credential set: what a workload presents and what it trusts.
#[derive(Clone)]
pub struct Credentials {
    identity: SpiffeId,
    serial: String,
    not_before: SystemTime,
    not_after: SystemTime,
    certified_key: Arc<CertifiedKey>,
    roots: Arc<RootCertStore>,
    root_certs: Vec<CertificateDer<'static>>,
}

impl Credentials {
    /// Reads and checks `cert-chain.pem`, `key.pem` and `root-cert.pem` contents, now.
    pub fn from_pem(chain: &[u8], key: &[u8], roots: &[u8]) -> Result<Self, CredentialError> {
        Self::from_pem_at(chain, key, roots, SystemTime::now())
    }

    /// As [`Credentials::from_pem`], checking validity at `now`.
    pub fn from_pem_at(
        chain: &[u8],
        key: &[u8],
        roots: &[u8],
        now: SystemTime,
    ) -> Result<Self, CredentialError> {
        let chain = certificates(chain, Part::Chain)?;
        let root_certs = certificates(roots, Part::Roots)?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|err| match err {
            pem::Error::NoItemsFound => CredentialError::NoKey,
            other => CredentialError::Pem {
                part: Part::Key,
                reason: other.to_string(),
            },
        })?;
        let leaf = chain
            .first()
            .ok_or(CredentialError::NoCertificate(Part::Chain))?;
        let info =
            x509::parse(leaf.as_ref()).map_err(|err| CredentialError::Leaf(err.to_string()))?;
        let identity = info.identity.map_err(CredentialError::Identity)?;
        if now < info.not_before {
            return Err(CredentialError::NotYetValid {
                serial: info.serial,
                not_before: info.not_before,
            });
        }
        if now > info.not_after {
            return Err(CredentialError::Expired {
                serial: info.serial,
                not_after: info.not_after,
            });
        }

        let provider = crate::provider();
        let certified_key =
            CertifiedKey::from_der(chain.clone(), key, &provider).map_err(|err| match err {
                rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                    CredentialError::KeyMismatch
                }
                other => CredentialError::Key(other.to_string()),
            })?;

        let mut store = RootCertStore::empty();
        for root in &root_certs {
            store
                .add(root.clone())
                .map_err(|err| CredentialError::Roots(err.to_string()))?;
        }
        let parsed = ParsedCertificate::try_from(leaf)
            .map_err(|err| CredentialError::Leaf(err.to_string()))?;
        let now = UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).unwrap_or_default());
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &store,
            &chain[1..],
            now,
            provider.signature_verification_algorithms.all,
        )
        .map_err(|err| CredentialError::Chain(err.to_string()))?;

        Ok(Self {
            identity,
            serial: info.serial,
            not_before: info.not_before,
            not_after: info.not_after,
            certified_key: Arc::new(certified_key),
            roots: Arc::new(store),
            root_certs,
        })
    }

    /// The workload's identity, from the leaf's URI SAN.
    pub fn identity(&self) -> &SpiffeId {
        &self.identity
    }

    /// The leaf's serial number, lowercase hex without leading zeros.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// When the leaf becomes valid.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// When the leaf expires (the `cert expiry` metric).
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The chain and signing key, as rustls serves them.
    pub fn certified_key(&self) -> &Arc<CertifiedKey> {
        &self.certified_key
    }

    /// The chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.certified_key.cert
    }

    /// The trust anchors peers are verified against.
    pub fn roots(&self) -> &Arc<RootCertStore> {
        &self.roots
    }

    /// The root certificates as read.
    pub fn root_certs(&self) -> &[CertificateDer<'static>] {
        &self.root_certs
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("identity", &self.identity.to_string())
            .field("serial", &self.serial)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("chain_len", &self.chain().len())
            .field("roots", &self.root_certs.len())
            .finish_non_exhaustive()
    }
}

/// The serial number of a certificate (e.g. a peer's), lowercase hex; `None` if it does not
/// parse.
pub fn serial_of(cert: &CertificateDer<'_>) -> Option<String> {
    x509::parse(cert.as_ref()).ok().map(|info| info.serial)
}

fn certificates(pem: &[u8], part: Part) -> Result<Vec<CertificateDer<'static>>, CredentialError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| CredentialError::Pem {
            part,
            reason: err.to_string(),
        })?;
    if certs.is_empty() {
        return Err(CredentialError::NoCertificate(part));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests;
