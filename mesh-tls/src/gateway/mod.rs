//! TLS at the ingress gateway: Gateway `servers[].tls` SIMPLE and MUTUAL, chosen by SNI.
//!
//! Each [`GatewayServer`] is one Gateway server with TLS: its `hosts`, its certificate and key
//! (`serverCertificate`, `privateKey`), for MUTUAL the roots client certificates must verify
//! to (`caCertificates`), and `minProtocolVersion`. [`GatewayTls::accept`] reads the
//! ClientHello first and picks the server whose hosts match the requested name most
//! specifically (an exact host, then the longest `*.suffix`, then `*`), as Envoy picks a filter
//! chain by `server_names`; a ClientHello without SNI gets the `*` server, if any. ALPN offers
//! `h2` then `http/1.1`.

use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::TlsInfo;
use crate::config::alpn;

/// Gateway `tls.minProtocolVersion`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MinVersion {
    /// `TLS_AUTO` or `TLSV1_2` (also the floor for `TLSV1_0`/`TLSV1_1`, which rustls does not
    /// speak).
    #[default]
    Tls12,
    /// `TLSV1_3`.
    Tls13,
}

/// Why a gateway server's TLS settings were refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayTlsError {
    /// A PEM input could not be read.
    #[error("{what}: {reason}")]
    Pem {
        /// `serverCertificate`, `privateKey` or `caCertificates`.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The key is not the certificate's, or is unusable.
    #[error("privateKey: {0}")]
    Key(String),
    /// rustls refused the settings.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Why a gateway connection was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayAcceptError {
    /// No server's hosts match the requested name.
    #[error("no Gateway server for TLS server name {0:?}")]
    NoServer(Option<String>),
    /// The handshake failed.
    #[error("TLS handshake: {0}")]
    Handshake(#[source] std::io::Error),
    /// The ClientHello or the handshake did not finish in time.
    #[error("TLS handshake did not finish within {0:?}")]
    Timeout(Duration),
}

/// One Gateway server with TLS.
#[derive(Clone)]
pub struct GatewayServer {
    hosts: Vec<String>,
    serial: Option<String>,
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for GatewayServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayServer")
            .field("hosts", &self.hosts)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl GatewayServer {
    /// `mode: SIMPLE`: serves `chain` (leaf first) and `key` for `hosts` (as the Gateway writes
    /// them; a `namespace/` prefix is ignored).
    pub fn simple(
        hosts: &[String],
        chain_pem: &[u8],
        key_pem: &[u8],
        min: MinVersion,
    ) -> Result<Self, GatewayTlsError> {
        Self::build(hosts, chain_pem, key_pem, None, min)
    }

    /// `mode: MUTUAL`: as SIMPLE, and clients must present a certificate that verifies to
    /// `ca_pem`.
    pub fn mutual(
        hosts: &[String],
        chain_pem: &[u8],
        key_pem: &[u8],
        ca_pem: &[u8],
        min: MinVersion,
    ) -> Result<Self, GatewayTlsError> {
        Self::build(hosts, chain_pem, key_pem, Some(ca_pem), min)
    }

    fn build(
        hosts: &[String],
        chain_pem: &[u8],
        key_pem: &[u8],
        ca_pem: Option<&[u8]>,
        min: MinVersion,
    ) -> Result<Self, GatewayTlsError> {
        let provider = crate::provider();
        let chain = certificates(chain_pem, "serverCertificate")?;
        let serial = chain.first().and_then(crate::credentials::serial_of);
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| GatewayTlsError::Pem {
            what: "privateKey",
            reason: err.to_string(),
        })?;
        let key = CertifiedKey::from_der(chain, key, &provider)
            .map_err(|err| GatewayTlsError::Key(err.to_string()))?;
        let versions: &[&'static SupportedProtocolVersion] = match min {
            MinVersion::Tls12 => &[&TLS13, &TLS12],
            MinVersion::Tls13 => &[&TLS13],
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(|err| GatewayTlsError::Config(err.to_string()))?;
        let builder = match ca_pem {
            None => builder.with_no_client_auth(),
            Some(ca_pem) => {
                let mut roots = RootCertStore::empty();
                for root in certificates(ca_pem, "caCertificates")? {
                    roots.add(root).map_err(|err| GatewayTlsError::Pem {
                        what: "caCertificates",
                        reason: err.to_string(),
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|err| GatewayTlsError::Config(err.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(Arc::new(Fixed(Arc::new(key))));
        config.alpn_protocols = vec![alpn::H2.to_vec(), alpn::HTTP_1_1.to_vec()];
        let hosts = hosts
            .iter()
            .map(|h| {
                h.rsplit_once('/')
                    .map_or(h.as_str(), |(_, host)| host)
                    .to_ascii_lowercase()
            })
            .collect();
        Ok(Self {
            hosts,
            serial,
            config: Arc::new(config),
        })
    }

    /// The hosts, lowercase, without namespace prefixes.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The serial number of the server's leaf certificate (hex), when it parses.
    pub fn serial(&self) -> Option<&str> {
        self.serial.as_deref()
    }

    /// How well this server's hosts match `name`: `None` for not at all, higher is more specific.
    fn specificity(&self, name: Option<&str>) -> Option<(u8, usize)> {
        self.hosts
            .iter()
            .filter_map(|host| match (host.as_str(), name) {
                ("*", _) => Some((0, 0)),
                (_, None) => None,
                (host, Some(name)) if host == name => Some((2, host.len())),
                (host, Some(name)) => host
                    .strip_prefix('*')
                    .filter(|suffix| suffix.starts_with('.') && name.ends_with(suffix))
                    .map(|suffix| (1, suffix.len())),
            })
            .max()
    }
}

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for Fixed {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

fn certificates(
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, GatewayTlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| GatewayTlsError::Pem {
            what,
            reason: err.to_string(),
        })?;
    if certs.is_empty() {
        return Err(GatewayTlsError::Pem {
            what,
            reason: "no PEM CERTIFICATE block".to_owned(),
        });
    }
    Ok(certs)
}

/// The TLS servers of one gateway port.
#[derive(Clone, Debug)]
pub struct GatewayTls {
    servers: Vec<GatewayServer>,
    handshake_timeout: Duration,
}

impl GatewayTls {
    /// The servers of one port, in the Gateway's order (the first wins a tie).
    pub fn new(servers: Vec<GatewayServer>) -> Self {
        Self {
            servers,
            handshake_timeout: Duration::from_secs(10),
        }
    }

    /// The same with another handshake timeout (10 s by default).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The servers, in the Gateway's order.
    pub fn servers(&self) -> &[GatewayServer] {
        &self.servers
    }

    /// The index of the server for TLS server name `name` (SNI), if any.
    pub fn select(&self, name: Option<&str>) -> Option<usize> {
        let name = name.map(str::to_ascii_lowercase);
        let mut best: Option<(usize, (u8, usize))> = None;
        for (index, server) in self.servers.iter().enumerate() {
            if let Some(score) = server.specificity(name.as_deref())
                && best.is_none_or(|(_, top)| score > top)
            {
                best = Some((index, score));
            }
        }
        best.map(|(index, _)| index)
    }

    /// Reads the ClientHello, picks the server by SNI, and completes the handshake. Returns the
    /// stream, what the handshake established, and the index of the server chosen.
    pub async fn accept(
        &self,
        tcp: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, TlsInfo, usize), GatewayAcceptError> {
        let timeout = self.handshake_timeout;
        tokio::time::timeout(timeout, self.handshake(tcp))
            .await
            .unwrap_or(Err(GatewayAcceptError::Timeout(timeout)))
    }

    async fn handshake(
        &self,
        tcp: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, TlsInfo, usize), GatewayAcceptError> {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp)
            .await
            .map_err(GatewayAcceptError::Handshake)?;
        let name = start.client_hello().server_name().map(str::to_owned);
        let index = self
            .select(name.as_deref())
            .ok_or(GatewayAcceptError::NoServer(name))?;
        let config = Arc::clone(&self.servers[index].config);
        let tls = start
            .into_stream(config)
            .await
            .map_err(GatewayAcceptError::Handshake)?;
        let info = TlsInfo::from_server(tls.get_ref().1);
        Ok((tls, info, index))
    }
}

#[cfg(test)]
mod tests;
