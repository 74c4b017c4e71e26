//! The peer of a completed handshake, and why a peer certificate was refused.

use rustls::CommonState;

use crate::credentials::{CertIdentityError, spiffe_id_of};
use crate::identity::{SpiffeId, TrustDomain};

/// Why a peer's certificate was refused after its chain verified; carried inside rustls'
/// `CertificateError::Other`, so handshake errors name the identity.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerRejected {
    /// The certificate has no usable SPIFFE ID.
    #[error("peer certificate: {0}")]
    Identity(CertIdentityError),
    /// The peer is under a trust domain that is neither ours nor an alias.
    #[error("peer {peer} is not in the mesh's trust domains {}", list(trusted))]
    ForeignTrustDomain {
        /// The peer's identity.
        peer: SpiffeId,
        /// Ours, then the aliases.
        trusted: Vec<TrustDomain>,
    },
    /// The server is not one of the identities expected for the endpoint.
    #[error("server {peer} is not the expected {}", list(expected))]
    UnexpectedIdentity {
        /// The server's identity.
        peer: SpiffeId,
        /// What the endpoint's service account (or `subjectAltNames`) allows.
        expected: Vec<SpiffeId>,
    },
}

impl std::fmt::Debug for PeerRejected {
    /// The message itself: rustls shows the `Debug` form of a `CertificateError::Other`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn list(items: &[impl std::fmt::Display]) -> String {
    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
    items.join(", ")
}

/// The peer's SPIFFE ID on a completed connection (either side), if it sent a certificate.
///
/// For a tokio-rustls stream: `peer_identity(stream.get_ref().1)`.
pub fn peer_identity(connection: &CommonState) -> Option<SpiffeId> {
    let leaf = connection.peer_certificates()?.first()?;
    spiffe_id_of(leaf).ok()
}

/// What a TLS connection tells the layers above about itself.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TlsInfo {
    /// The peer's identity: `Some` for mutual TLS (`connection_security_policy="mutual_tls"`).
    pub peer: Option<SpiffeId>,
    /// The negotiated ALPN protocol.
    pub alpn: Option<Vec<u8>>,
    /// The server name the client asked for (SNI), on the server side.
    pub server_name: Option<String>,
}

impl TlsInfo {
    /// Reads a completed server-side connection.
    pub fn from_server(connection: &rustls::ServerConnection) -> Self {
        Self {
            peer: peer_identity(connection),
            alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
            server_name: connection.server_name().map(str::to_owned),
        }
    }

    /// Reads a completed client-side connection.
    pub fn from_client(connection: &rustls::ClientConnection) -> Self {
        Self {
            peer: peer_identity(connection),
            alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
            server_name: None,
        }
    }
}
