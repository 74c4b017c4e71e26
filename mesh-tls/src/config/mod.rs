//! rustls configurations for the mesh, built with the aws-lc-rs provider.
//!
//! [`MeshTls`] turns a [`CertSource`] into a [`ServerConfig`] (client certificates optional
//! for PERMISSIVE, required for STRICT, verified against the current roots plus a SPIFFE check)
//! and into [`ClientConfig`]s for auto-mTLS / ISTIO_MUTUAL (our certificate presented, the
//! server's chain and SPIFFE ID checked against what the endpoint should be). Each config is
//! built once; its certificate resolver and verifiers read the source per handshake, so a
//! rotation applies to new handshakes and never touches an open connection (session
//! resumption forgets its sessions at a rotation, on both sides, so that no resumed handshake
//! carries the old certificate or roots over).
//! [`simple_client_config`] is DestinationRule `SIMPLE`/`MUTUAL`: a DNS name verified against
//! given roots, optionally with a client certificate; [`external_client_config`] the same with
//! `subjectAltNames` or `insecureSkipVerify` ([`ServerCheck`]).

pub mod alpn;
mod external;
mod peer;
mod sessions;
mod verify;

use std::sync::Arc;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

pub use alpn::UpstreamProtocol;
pub use external::{SanMismatch, ServerCheck};
pub use peer::{PeerRejected, TlsInfo, peer_identity};

use crate::identity::{SpiffeId, TrustDomain, TrustDomains};
use crate::source::CertSource;
use sessions::{ClientSessions, ServerSessions};
use verify::{CurrentCert, SpiffeClientVerifier, SpiffeServerVerifier, Trust};

/// Whether the server asks for client certificates and requires them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientAuth {
    /// Asked for, not required (PERMISSIVE): a client without a certificate has no identity.
    Optional,
    /// Required (STRICT): a client without a valid mesh certificate fails the handshake.
    Required,
}

/// Which server identities a mesh client accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedServer {
    /// Any of these (the endpoint's service account, DestinationRule `subjectAltNames`); the
    /// same workload under an alias trust domain also matches, and an identity written under
    /// `cluster.local` matches the workload under the local trust domain. An empty list accepts
    /// no server.
    Identities(Vec<SpiffeId>),
    /// Any workload of the mesh's trust domains (no service account known for the endpoint).
    AnyInMesh,
}

/// Why a configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// rustls refused the settings.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The given roots cannot verify anything.
    #[error("TLS roots: {0}")]
    Roots(String),
}

/// The mesh's TLS settings for one workload: its certificate source and trust domain aliases.
#[derive(Clone)]
pub struct MeshTls {
    trust: Trust,
}

impl std::fmt::Debug for MeshTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshTls")
            .field("aliases", &self.trust.aliases.load())
            .finish_non_exhaustive()
    }
}

impl MeshTls {
    /// Settings for the workload whose credentials `source` holds, with no trust domain aliases.
    pub fn new(source: CertSource) -> Self {
        Self {
            trust: Trust {
                source,
                aliases: Arc::default(),
                provider: crate::provider(),
            },
        }
    }

    /// Accepts peers under `aliases` as well as under our own certificate's trust domain.
    pub fn with_trust_domain_aliases(self, aliases: impl IntoIterator<Item = TrustDomain>) -> Self {
        self.set_trust_domain_aliases(aliases);
        self
    }

    /// Replaces the trust domain aliases, for this value and every clone of it (a new mesh
    /// config's `trustDomainAliases`): new handshakes and identity checks use them.
    pub fn set_trust_domain_aliases(&self, aliases: impl IntoIterator<Item = TrustDomain>) {
        let aliases: Vec<TrustDomain> = aliases.into_iter().collect();
        if **self.trust.aliases.load() != aliases {
            self.trust.aliases.store(Arc::new(aliases));
        }
    }

    /// The certificate source.
    pub fn source(&self) -> &CertSource {
        &self.trust.source
    }

    /// Our trust domain (from the current certificate) and the aliases; `None` before any
    /// credentials are loaded.
    pub fn trust_domains(&self) -> Option<TrustDomains> {
        let current = self.trust.source.current()?;
        Some(self.trust.trust_domains(&current))
    }

    /// The server side of a mesh port. Handshakes fail while no credentials are loaded.
    pub fn server_config(&self, auth: ClientAuth) -> Result<Arc<ServerConfig>, ConfigError> {
        let verifier = SpiffeClientVerifier::new(self.trust.clone(), auth == ClientAuth::Required);
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.trust.provider))
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_cert_resolver(Arc::new(CurrentCert(self.trust.source.clone())));
        config.alpn_protocols = alpn::server_protocols();
        config.session_storage = Arc::new(ServerSessions::new(self.trust.source.clone()));
        Ok(Arc::new(config))
    }

    /// A client for in-mesh endpoints (auto-mTLS, ISTIO_MUTUAL): presents our certificate and
    /// accepts a server whose chain verifies to our roots and whose SPIFFE ID is `expected`.
    pub fn client_config(
        &self,
        expected: ExpectedServer,
        protocol: UpstreamProtocol,
    ) -> Result<Arc<ClientConfig>, ConfigError> {
        let verifier = SpiffeServerVerifier {
            trust: self.trust.clone(),
            expected,
        };
        let mut config = ClientConfig::builder_with_provider(Arc::clone(&self.trust.provider))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(Arc::new(CurrentCert(self.trust.source.clone())));
        config.alpn_protocols = alpn::mesh_client_protocols(protocol);
        config.resumption =
            Resumption::store(Arc::new(ClientSessions::new(self.trust.source.clone())));
        Ok(Arc::new(config))
    }
}

/// A client for a TLS server outside the mesh (DestinationRule `SIMPLE`, or `MUTUAL` with
/// `client`): the server's certificate must verify to `roots` and name the TLS server name
/// the connection is made with.
pub fn simple_client_config(
    roots: &[CertificateDer<'static>],
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    protocol: UpstreamProtocol,
) -> Result<Arc<ClientConfig>, ConfigError> {
    external_client_config(roots, client, protocol, &ServerCheck::ServerName)
}

/// [`simple_client_config`] with the server checked as `check` says: its name, one of the
/// DestinationRule's `subjectAltNames`, or not at all (`insecureSkipVerify`, where `roots` may
/// be empty).
pub fn external_client_config(
    roots: &[CertificateDer<'static>],
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    protocol: UpstreamProtocol,
    check: &ServerCheck,
) -> Result<Arc<ClientConfig>, ConfigError> {
    let provider: Arc<CryptoProvider> = crate::provider();
    let mut store = RootCertStore::empty();
    for root in roots {
        store
            .add(root.clone())
            .map_err(|err| ConfigError::Roots(err.to_string()))?;
    }
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let builder = match check {
        ServerCheck::ServerName => {
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(store),
                Arc::clone(&provider),
            )
            .build()
            .map_err(|err| ConfigError::Roots(err.to_string()))?;
            builder.with_webpki_verifier(verifier)
        }
        ServerCheck::SubjectAltNames(_) | ServerCheck::SkipVerify => {
            if store.is_empty() && *check != ServerCheck::SkipVerify {
                return Err(ConfigError::Roots("no root certificates".to_owned()));
            }
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(external::ExternalVerifier {
                    roots: Arc::new(store),
                    check: check.clone(),
                    provider,
                }))
        }
    };
    let mut config = match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn::plain_client_protocols(protocol);
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests;
