//! One listening port under PeerAuthentication: PERMISSIVE, STRICT or DISABLE.
//!
//! [`Acceptor::accept`] takes a freshly accepted TCP connection and the mode in force for its
//! port. PERMISSIVE (Istio's default) peeks at the first byte without consuming it: `0x16`, a
//! TLS handshake record, means a TLS ClientHello (every HTTP/1 request starts with a letter and
//! HTTP/2's preface with `P`), and the connection is handshaken with client certificates
//! optional; anything else is served as plaintext. STRICT does the same with client
//! certificates required and refuses plaintext. DISABLE never does TLS. The whole step,
//! waiting for the first byte included, is bounded by a handshake timeout.

mod stream;

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

pub use stream::MeshStream;

use crate::config::{ClientAuth, ConfigError, MeshTls, TlsInfo};
use crate::identity::SpiffeId;
use crate::source::CertSource;

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// The mutual TLS mode in force on a port (PeerAuthentication `mtls.mode`, inheritance done).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// mTLS required; plaintext refused.
    Strict,
    /// mTLS and plaintext on one port (Istio's default).
    Permissive,
    /// Plaintext only.
    Disable,
}

/// Why a connection was not accepted; the connection is closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// The peer closed before sending anything.
    #[error("the peer closed the connection before sending anything")]
    Closed,
    /// Plaintext on a STRICT port.
    #[error("plaintext connection refused: mutual TLS is STRICT on this port")]
    PlaintextRefused,
    /// STRICT, and this workload has no certificate (fails closed).
    #[error("connection refused: mutual TLS is STRICT and no workload certificate is loaded")]
    NoCredentials,
    /// Nothing arrived, or the handshake did not finish, in time.
    #[error("TLS detection and handshake did not finish within {0:?}")]
    Timeout(Duration),
    /// Reading the first byte failed.
    #[error("reading the connection: {0}")]
    Io(#[source] io::Error),
    /// The TLS handshake failed (bad or missing client certificate, not TLS after all, ...).
    #[error("TLS handshake: {0}")]
    Handshake(#[source] io::Error),
}

/// A connection ready for HTTP: plaintext, or TLS with what the handshake established.
#[derive(Debug)]
pub enum Accepted {
    /// Plaintext; the peeked bytes are still to be read.
    Plain(TcpStream),
    /// TLS, with the peer's identity when it presented a certificate.
    Tls(Box<TlsStream<TcpStream>>, TlsInfo),
}

impl Accepted {
    /// The peer's identity, for mutual TLS.
    pub fn peer(&self) -> Option<&SpiffeId> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(_, info) => info.peer.as_ref(),
        }
    }

    /// Istio's `connection_security_policy` label: `mutual_tls` or `none`.
    pub fn security_policy(&self) -> &'static str {
        if self.peer().is_some() {
            "mutual_tls"
        } else {
            "none"
        }
    }

    /// One stream type for the HTTP server, and the TLS details if any.
    pub fn into_stream(self) -> (MeshStream, Option<TlsInfo>) {
        match self {
            Self::Plain(tcp) => (MeshStream::Plain(tcp), None),
            Self::Tls(tls, info) => (MeshStream::Tls(tls), Some(info)),
        }
    }
}

/// Accepts connections on mesh ports; cheap to clone.
#[derive(Clone)]
pub struct Acceptor {
    permissive: TlsAcceptor,
    strict: TlsAcceptor,
    source: CertSource,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl Acceptor {
    /// The default time allowed for the first byte and the TLS handshake.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

    /// An acceptor serving `tls`'s workload certificate.
    pub fn new(tls: &MeshTls) -> Result<Self, ConfigError> {
        Ok(Self {
            permissive: TlsAcceptor::from(tls.server_config(ClientAuth::Optional)?),
            strict: TlsAcceptor::from(tls.server_config(ClientAuth::Required)?),
            source: tls.source().clone(),
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// The same acceptor with another handshake timeout.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Accepts `tcp` under `mode`.
    pub async fn accept(&self, tcp: TcpStream, mode: Mode) -> Result<Accepted, AcceptError> {
        let (acceptor, strict) = match mode {
            Mode::Disable => return Ok(Accepted::Plain(tcp)),
            Mode::Permissive => (&self.permissive, false),
            Mode::Strict => (&self.strict, true),
        };
        if strict && self.source.current().is_none() {
            return Err(AcceptError::NoCredentials);
        }
        let timeout = self.handshake_timeout;
        tokio::time::timeout(timeout, Self::detect(acceptor, tcp, strict))
            .await
            .unwrap_or(Err(AcceptError::Timeout(timeout)))
    }

    async fn detect(
        acceptor: &TlsAcceptor,
        tcp: TcpStream,
        strict: bool,
    ) -> Result<Accepted, AcceptError> {
        let mut first = [0u8; 1];
        let n = tcp.peek(&mut first).await.map_err(AcceptError::Io)?;
        if n == 0 {
            return Err(AcceptError::Closed);
        }
        if first[0] != TLS_HANDSHAKE {
            return if strict {
                Err(AcceptError::PlaintextRefused)
            } else {
                Ok(Accepted::Plain(tcp))
            };
        }
        let tls = acceptor.accept(tcp).await.map_err(AcceptError::Handshake)?;
        let info = TlsInfo::from_server(tls.get_ref().1);
        Ok(Accepted::Tls(Box::new(tls), info))
    }
}

#[cfg(test)]
mod tests;
