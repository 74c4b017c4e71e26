//! Workload certificates from Istio's CA, as Istio's agent gets them (feature `istio-ca`).
//!
//! [`CaClient`] sends a CSR to istiod's `IstioCertificateService/CreateCertificate` over gRPC
//! on TLS (HTTP/2 by ALPN, istiod's certificate verified against the mesh's roots), with the
//! pod's service account token as a bearer token and the `ClusterID` header. [`CaRenewer`]
//! keeps a [`CertSource`](crate::CertSource) supplied: a fresh EC P-256 key and a CSR holding
//! only the SPIFFE URI SAN, the answer checked like any credential set, renewal at half the
//! lifetime, retries with exponential backoff while the CA fails, and the old certificate kept
//! in force meanwhile. The gRPC messages are encoded by hand ([`wire`]), so no build needs protoc.

mod renew;
pub mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub use renew::{CaRenewer, RenewOptions};
pub use wire::WireError;

use crate::config::{ConfigError, UpstreamProtocol, simple_client_config};

/// The gRPC method istiod's CA answers.
pub const CREATE_CERTIFICATE: &str = "/istio.v1.auth.IstioCertificateService/CreateCertificate";

/// The largest response read.
const MAX_RESPONSE: usize = 1024 * 1024;

/// Where the bearer token comes from.
#[derive(Clone, Debug)]
pub enum Token {
    /// A file read at each request (Kubernetes rotates projected tokens), e.g.
    /// `/var/run/secrets/tokens/istio-token`.
    File(PathBuf),
    /// A fixed token.
    Static(String),
}

/// Why a certificate could not be obtained from the CA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The TLS settings for the CA were refused.
    #[error("CA client: {0}")]
    Config(#[from] ConfigError),
    /// The server name of the CA is not a valid name.
    #[error("CA server name {0:?} is invalid")]
    ServerName(String),
    /// The token file could not be read.
    #[error("service account token {}: {reason}", path.display())]
    Token {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        reason: String,
    },
    /// The CA could not be reached.
    #[error("connecting to the CA at {address}: {source}")]
    Connect {
        /// `host:port`.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS handshake with the CA failed.
    #[error("TLS handshake with the CA: {0}")]
    Tls(#[source] std::io::Error),
    /// HTTP/2 failed.
    #[error("HTTP/2 to the CA: {0}")]
    Http2(String),
    /// The CA answered with an HTTP status other than 200.
    #[error("the CA answered HTTP {0}")]
    HttpStatus(u16),
    /// The CA answered with a gRPC error.
    #[error("the CA answered gRPC status {code}: {message}")]
    Grpc {
        /// The gRPC status code (16: unauthenticated, 14: unavailable, ...).
        code: u32,
        /// `grpc-message`.
        message: String,
    },
    /// The answer could not be decoded.
    #[error("{0}")]
    Wire(#[from] WireError),
    /// No answer in time.
    #[error("no answer from the CA within {0:?}")]
    Timeout(Duration),
    /// The CSR could not be made.
    #[error("making the CSR: {0}")]
    Csr(String),
    /// The CA's answer is not a usable credential set.
    #[error("the certificate from the CA: {0}")]
    Credentials(#[from] crate::credentials::CredentialError),
}

/// A client of istiod's CA.
#[derive(Clone)]
pub struct CaClient {
    address: String,
    server_name: ServerName<'static>,
    tls: Arc<ClientConfig>,
    token: Token,
    cluster_id: String,
    timeout: Duration,
}

impl std::fmt::Debug for CaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaClient")
            .field("address", &self.address)
            .field("server_name", &self.server_name)
            .field("cluster_id", &self.cluster_id)
            .finish_non_exhaustive()
    }
}

impl CaClient {
    /// A client of the CA at `address` (`host:port`, istiod's 15012), whose certificate names
    /// `server_name` (e.g. `istiod.istio-system.svc`) and verifies to `roots`.
    pub fn new(
        address: impl Into<String>,
        server_name: &str,
        roots: &[CertificateDer<'static>],
        token: Token,
    ) -> Result<Self, CaError> {
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| CaError::ServerName(server_name.to_owned()))?;
        Ok(Self {
            address: address.into(),
            server_name,
            tls: simple_client_config(roots, None, UpstreamProtocol::Http2)?,
            token,
            cluster_id: "Kubernetes".to_owned(),
            timeout: Duration::from_secs(10),
        })
    }

    /// The `ClusterID` header (Istio's default: `Kubernetes`).
    pub fn with_cluster_id(mut self, cluster_id: impl Into<String>) -> Self {
        self.cluster_id = cluster_id.into();
        self
    }

    /// The time allowed for one request, connection included (10 s by default).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends `csr_pem` for a certificate valid `validity`; the chain, leaf first, PEM each.
    pub async fn create_certificate(
        &self,
        csr_pem: &str,
        validity: Duration,
    ) -> Result<Vec<String>, CaError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.call(csr_pem, validity))
            .await
            .unwrap_or(Err(CaError::Timeout(timeout)))
    }

    async fn call(&self, csr_pem: &str, validity: Duration) -> Result<Vec<String>, CaError> {
        let token = match &self.token {
            Token::Static(token) => token.clone(),
            Token::File(path) => std::fs::read_to_string(path)
                .map(|t| t.trim().to_owned())
                .map_err(|err| CaError::Token {
                    path: path.clone(),
                    reason: err.to_string(),
                })?,
        };
        let tcp = TcpStream::connect(&self.address)
            .await
            .map_err(|source| CaError::Connect {
                address: self.address.clone(),
                source,
            })?;
        let tls = TlsConnector::from(Arc::clone(&self.tls))
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(CaError::Tls)?;
        let (client, connection) = h2::client::handshake(tls).await.map_err(http2)?;
        let driver = tokio::spawn(connection);
        let result = self.exchange(client, &token, csr_pem, validity).await;
        driver.abort();
        result
    }

    async fn exchange(
        &self,
        client: h2::client::SendRequest<Bytes>,
        token: &str,
        csr_pem: &str,
        validity: Duration,
    ) -> Result<Vec<String>, CaError> {
        let authority = match &self.server_name {
            ServerName::DnsName(name) => name.as_ref().to_owned(),
            _ => self.address.clone(),
        };
        let request = http::Request::post(format!("https://{authority}{CREATE_CERTIFICATE}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", format!("Bearer {token}"))
            .header("clusterid", &self.cluster_id)
            .body(())
            .map_err(|err| CaError::Http2(err.to_string()))?;
        let mut client = client.ready().await.map_err(http2)?;
        let (response, mut body) = client.send_request(request, false).map_err(http2)?;
        let seconds = i64::try_from(validity.as_secs()).unwrap_or(i64::MAX);
        let message = wire::frame(&wire::encode_request(csr_pem, seconds));
        body.send_data(Bytes::from(message), true).map_err(http2)?;

        let response = response.await.map_err(http2)?;
        if response.status() != http::StatusCode::OK {
            return Err(CaError::HttpStatus(response.status().as_u16()));
        }
        let (parts, mut body) = response.into_parts();
        // A trailers-only answer carries grpc-status in the headers.
        grpc_status(&parts.headers)?;
        let mut received = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(http2)?;
            let _ = body.flow_control().release_capacity(chunk.len());
            if received.len() + chunk.len() > MAX_RESPONSE {
                return Err(CaError::Http2("the answer is larger than 1 MiB".to_owned()));
            }
            received.extend_from_slice(&chunk);
        }
        match body.trailers().await.map_err(http2)? {
            Some(trailers) => grpc_status(&trailers)?,
            None if parts.headers.contains_key("grpc-status") => {}
            None => return Err(CaError::Http2("the answer has no grpc-status".to_owned())),
        }
        Ok(wire::decode_response(wire::unframe(&received)?)?)
    }
}

fn http2(err: h2::Error) -> CaError {
    CaError::Http2(err.to_string())
}

fn grpc_status(headers: &http::HeaderMap) -> Result<(), CaError> {
    let Some(code) = headers.get("grpc-status") else {
        return Ok(());
    };
    let code = code
        .to_str()
        .ok()
        .and_then(|c| c.parse::<u32>().ok())
        .unwrap_or(2);
    if code == 0 {
        return Ok(());
    }
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Err(CaError::Grpc { code, message })
}

#[cfg(test)]
mod tests;
