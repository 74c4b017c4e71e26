//! Verifiers and certificate resolvers that read the current credentials per handshake.
//!
//! Both sides verify the peer's chain against the roots of the credentials in force when the
//! handshake starts (webpki through rustls), then its SPIFFE ID: exactly one URI SAN, an Istio
//! identity, under one of the mesh's trust domains (our own certificate's, plus aliases), and
//! on the client side one of the identities expected for the endpoint.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, RootCertStore,
    SignatureScheme,
};

use super::ExpectedServer;
use super::peer::PeerRejected;
use crate::credentials::{Credentials, spiffe_id_of};
use crate::identity::{SpiffeId, TrustDomain, TrustDomains};
use crate::source::CertSource;

/// What the verifiers share: the source, the aliases, the provider.
#[derive(Clone)]
pub(crate) struct Trust {
    pub(crate) source: CertSource,
    /// Shared by every clone, so a new mesh config's aliases reach every verifier at once.
    pub(crate) aliases: Arc<arc_swap::ArcSwap<Vec<TrustDomain>>>,
    pub(crate) provider: Arc<CryptoProvider>,
}

impl Trust {
    fn current(&self) -> Result<Arc<Credentials>, Error> {
        self.source
            .current()
            .ok_or_else(|| Error::General("no workload certificate loaded".to_owned()))
    }

    pub(crate) fn trust_domains(&self, credentials: &Credentials) -> TrustDomains {
        TrustDomains::new(
            credentials.identity().trust_domain().clone(),
            self.aliases.load().iter().cloned(),
        )
    }

    /// The peer leaf's SPIFFE ID, if it is under one of our trust domains.
    fn peer_identity(
        &self,
        credentials: &Credentials,
        leaf: &CertificateDer<'_>,
    ) -> Result<SpiffeId, Error> {
        let id = spiffe_id_of(leaf).map_err(|err| reject(PeerRejected::Identity(err)))?;
        let domains = self.trust_domains(credentials);
        if !domains.contains(id.trust_domain()) {
            return Err(reject(PeerRejected::ForeignTrustDomain {
                peer: id,
                trusted: domains.all().to_vec(),
            }));
        }
        Ok(id)
    }
}

/// A server's chain verified to `roots` with the provider's algorithms, as webpki checks it
/// (names are each verifier's own check).
pub(super) fn server_chain_verifies(
    provider: &CryptoProvider,
    roots: &RootCertStore,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
) -> Result<(), Error> {
    let parsed = ParsedCertificate::try_from(end_entity)?;
    verify_server_cert_signed_by_trust_anchor(
        &parsed,
        roots,
        intermediates,
        now,
        provider.signature_verification_algorithms.all,
    )
}

/// The handshake signature checks every verifier of this crate makes alike: the TLS 1.2 one with
/// the provider's algorithms.
pub(super) fn tls12_signature(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    verify_tls12_signature(
        message,
        cert,
        dss,
        &provider.signature_verification_algorithms,
    )
}

/// The TLS 1.3 signature check, with the provider's algorithms.
pub(super) fn tls13_signature(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    verify_tls13_signature(
        message,
        cert,
        dss,
        &provider.signature_verification_algorithms,
    )
}

/// The signature schemes the provider verifies.
pub(super) fn signature_schemes(provider: &CryptoProvider) -> Vec<SignatureScheme> {
    provider
        .signature_verification_algorithms
        .supported_schemes()
}

fn reject(why: PeerRejected) -> Error {
    Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(why))))
}

/// Verifies client certificates on the server side.
pub(crate) struct SpiffeClientVerifier {
    trust: Trust,
    mandatory: bool,
    // The webpki verifier for the credentials in force, rebuilt when they change.
    webpki: ArcSwapOption<(Arc<Credentials>, Arc<dyn ClientCertVerifier>)>,
}

impl SpiffeClientVerifier {
    pub(crate) fn new(trust: Trust, mandatory: bool) -> Self {
        Self {
            trust,
            mandatory,
            webpki: ArcSwapOption::empty(),
        }
    }

    fn webpki(&self, credentials: &Arc<Credentials>) -> Result<Arc<dyn ClientCertVerifier>, Error> {
        if let Some(cached) = self.webpki.load().as_ref()
            && Arc::ptr_eq(&cached.0, credentials)
        {
            return Ok(Arc::clone(&cached.1));
        }
        let built = WebPkiClientVerifier::builder_with_provider(
            Arc::clone(credentials.roots()),
            Arc::clone(&self.trust.provider),
        )
        .build()
        .map_err(|err| Error::General(format!("client certificate verifier: {err}")))?;
        self.webpki.store(Some(Arc::new((
            Arc::clone(credentials),
            Arc::clone(&built),
        ))));
        Ok(built)
    }
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The roots can change per handshake; clients send their one workload certificate anyway.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let credentials = self.trust.current()?;
        self.webpki(&credentials)?
            .verify_client_cert(end_entity, intermediates, now)?;
        self.trust.peer_identity(&credentials, end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls12_signature(&self.trust.provider, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls13_signature(&self.trust.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        signature_schemes(&self.trust.provider)
    }
}

impl fmt::Debug for SpiffeClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiffeClientVerifier")
            .field("mandatory", &self.mandatory)
            .finish_non_exhaustive()
    }
}

/// Verifies an in-mesh server's certificate on the client side: chain, trust domain, identity.
/// The TLS server name is not checked: mesh certificates carry no DNS names.
pub(crate) struct SpiffeServerVerifier {
    pub(crate) trust: Trust,
    pub(crate) expected: ExpectedServer,
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let credentials = self.trust.current()?;
        server_chain_verifies(
            &self.trust.provider,
            credentials.roots(),
            end_entity,
            intermediates,
            now,
        )?;
        let peer = self.trust.peer_identity(&credentials, end_entity)?;
        if let ExpectedServer::Identities(expected) = &self.expected {
            let domains = self.trust.trust_domains(&credentials);
            let known = expected
                .iter()
                .any(|want| same_workload(want, &peer, &domains));
            if !known {
                return Err(reject(PeerRejected::UnexpectedIdentity {
                    peer,
                    expected: expected.clone(),
                }));
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls12_signature(&self.trust.provider, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls13_signature(&self.trust.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        signature_schemes(&self.trust.provider)
    }
}

/// Equal, or the same namespace and service account under two of the mesh's trust domains.
/// An expected identity under `cluster.local` means "under the local trust domain" (as Istio
/// reads `cluster.local` in a policy): the client names an endpoint's service account that way
/// before it knows its own certificate's trust domain.
fn same_workload(expected: &SpiffeId, peer: &SpiffeId, domains: &TrustDomains) -> bool {
    let expected_in_mesh = domains.contains(expected.trust_domain())
        || expected.trust_domain() == &TrustDomain::cluster_local();
    expected == peer
        || (expected_in_mesh
            && domains.contains(peer.trust_domain())
            && expected.namespace() == peer.namespace()
            && expected.service_account() == peer.service_account())
}

impl fmt::Debug for SpiffeServerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiffeServerVerifier")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

/// Presents the current workload certificate, on either side.
#[derive(Debug)]
pub(crate) struct CurrentCert(pub(crate) CertSource);

impl CurrentCert {
    fn key(&self) -> Option<Arc<CertifiedKey>> {
        self.0.current().map(|c| Arc::clone(c.certified_key()))
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.key()
    }
}

impl ResolvesClientCert for CurrentCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.key()
    }

    fn has_certs(&self) -> bool {
        self.0.current().is_some()
    }
}
