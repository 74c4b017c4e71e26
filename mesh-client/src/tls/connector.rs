//! The connector under hyper's pool: TCP, then TLS where the cluster's [`TlsTable`] says so.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use mesh_tls::config::alpn;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{TlsError, TlsTable, TlsTarget};
use crate::BoxError;
use crate::context::ConnectionSecurity;

/// Connects to the endpoint a URI names, over TLS when the cluster's table says so; see
/// [the module docs](super).
#[derive(Clone, Debug)]
pub struct MeshConnector {
    http: HttpConnector,
    table: Arc<TlsTable>,
    handshake_timeout: Duration,
}

impl MeshConnector {
    /// TCP through `http`, then TLS per `table`, each handshake bounded by `handshake_timeout`
    /// and counted in the table's [`TlsStats`](super::TlsStats).
    pub fn new(http: HttpConnector, table: Arc<TlsTable>, handshake_timeout: Duration) -> Self {
        Self {
            http,
            table,
            handshake_timeout,
        }
    }
}

type ConnectFuture = Pin<Box<dyn Future<Output = Result<MeshConn, BoxError>> + Send>>;

impl tower_service::Service<Uri> for MeshConnector {
    type Response = MeshConn;
    type Error = BoxError;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> ConnectFuture {
        let endpoint: Option<SocketAddr> = uri.authority().and_then(|a| a.as_str().parse().ok());
        let target = endpoint.and_then(|e| self.table.get(e)).cloned();
        let tcp = self.http.call(uri);
        let timeout = self.handshake_timeout;
        let stats = Arc::clone(self.table.stats());
        Box::pin(async move {
            let tcp = tcp.await?;
            let Some(target) = target else {
                return Ok(MeshConn::Plain(tcp));
            };
            // invariant: a target is only found for an endpoint parsed from the URI
            let endpoint = endpoint.ok_or("TLS target without an endpoint")?;
            let (config, server_name, local) = match &*target {
                TlsTarget::Broken(reason) => {
                    stats.failed();
                    return Err(TlsError::new(endpoint, reason.to_string()).into());
                }
                TlsTarget::Tls {
                    config,
                    server_name,
                    mesh,
                } => (
                    Arc::clone(config),
                    server_name.clone(),
                    mesh.as_ref().and_then(|m| m.source().current()),
                ),
            };
            let connector = tokio_rustls::TlsConnector::from(config);
            let handshake = connector.connect(server_name, tcp.into_inner());
            let stream = match tokio::time::timeout(timeout, handshake).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    stats.failed();
                    return Err(TlsError::new(endpoint, describe_io(&e)).into());
                }
                Err(_) => {
                    stats.failed();
                    return Err(TlsError::new(endpoint, "handshake timed out".to_owned()).into());
                }
            };
            stats.completed();
            let connection = stream.get_ref().1;
            let peer = mesh_tls::peer_identity(connection).map(|id| Arc::from(id.to_string()));
            let security = ConnectionSecurity {
                local: peer
                    .is_some()
                    .then(|| local.map(|c| Arc::from(c.identity().to_string())))
                    .flatten(),
                peer,
            };
            let h2 = matches!(
                alpn::negotiated_http(connection.alpn_protocol()),
                Some(alpn::UpstreamProtocol::Http2)
            );
            Ok(MeshConn::Tls {
                io: Box::new(TokioIo::new(stream)),
                security: Arc::new(security),
                h2,
            })
        })
    }
}

/// The handshake's error as Envoy would word its cause: rustls' own message when there is one.
fn describe_io(e: &io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None => e.to_string(),
    }
}

/// A connection to an endpoint: plaintext TCP or TLS over it.
#[derive(Debug)]
pub enum MeshConn {
    /// Plaintext.
    Plain(TokioIo<TcpStream>),
    /// TLS, with what the handshake proved.
    Tls {
        /// The stream.
        io: Box<TokioIo<TlsStream<TcpStream>>>,
        /// The identities of the handshake.
        security: Arc<ConnectionSecurity>,
        /// ALPN chose HTTP/2.
        h2: bool,
    },
}

impl Connection for MeshConn {
    fn connected(&self) -> Connected {
        match self {
            MeshConn::Plain(tcp) => tcp.connected(),
            MeshConn::Tls { io, security, h2 } => {
                let connected = io
                    .inner()
                    .get_ref()
                    .0
                    .connected()
                    .extra(Arc::clone(security));
                if *h2 {
                    connected.negotiated_h2()
                } else {
                    connected
                }
            }
        }
    }
}

impl Read for MeshConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MeshConn::Plain(io) => Pin::new(io).poll_read(cx, buf),
            MeshConn::Tls { io, .. } => Pin::new(&mut **io).poll_read(cx, buf),
        }
    }
}

impl Write for MeshConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MeshConn::Plain(io) => Pin::new(io).poll_write(cx, buf),
            MeshConn::Tls { io, .. } => Pin::new(&mut **io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MeshConn::Plain(io) => Pin::new(io).poll_flush(cx),
            MeshConn::Tls { io, .. } => Pin::new(&mut **io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MeshConn::Plain(io) => Pin::new(io).poll_shutdown(cx),
            MeshConn::Tls { io, .. } => Pin::new(&mut **io).poll_shutdown(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MeshConn::Plain(io) => io.is_write_vectored(),
            MeshConn::Tls { io, .. } => io.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MeshConn::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            MeshConn::Tls { io, .. } => Pin::new(&mut **io).poll_write_vectored(cx, bufs),
        }
    }
}
