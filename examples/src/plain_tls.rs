//! `--plain --certs DIR`: the bare apps over mutual TLS with plain rustls, the benchmark's TLS
//! baseline. The workload certificate (Istio's layout) is read once; the listen port serves
//! TLS (told from plaintext by the first byte, so a plaintext client still reaches the chain's
//! first app) with client certificates required, and the upstream is called over TLS on pooled
//! HTTP/1 connections. The rustls configurations are mesh-tls's (the same certificates and
//! SPIFFE checks as the mesh), without any mesh layer, routing, or watching.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use http::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use mesh_tls::config::{ExpectedServer, UpstreamProtocol};
use mesh_tls::{CertSource, ClientAuth, Credentials, MeshTls};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, ServerConfig};

use crate::mesh::StartError;
use crate::run::Shutdown;
use crate::upstream::{BoxError, Upstream, UpstreamFuture, forward};

/// The rustls configurations of one plain app.
#[derive(Clone)]
pub struct PlainTls {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl std::fmt::Debug for PlainTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainTls").finish_non_exhaustive()
    }
}

impl PlainTls {
    /// Reads `cert-chain.pem`, `key.pem` and `root-cert.pem` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, StartError> {
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .map_err(|e| StartError::PlainTls(format!("{}: {e}", dir.join(name).display())))
        };
        let credentials = Credentials::from_pem(
            &read("cert-chain.pem")?,
            &read("key.pem")?,
            &read("root-cert.pem")?,
        )
        .map_err(|e| StartError::PlainTls(format!("{}: {e}", dir.display())))?;
        let tls = MeshTls::new(CertSource::new(credentials));
        let failed = |e: mesh_tls::config::ConfigError| StartError::PlainTls(e.to_string());
        Ok(Self {
            server: tls.server_config(ClientAuth::Required).map_err(failed)?,
            client: tls
                .client_config(ExpectedServer::AnyInMesh, UpstreamProtocol::Http1)
                .map_err(failed)?,
        })
    }

    /// A bare client for `addr` over TLS.
    pub fn upstream(&self, addr: SocketAddr) -> TlsUpstream {
        let connect = Connect {
            addr,
            tls: tokio_rustls::TlsConnector::from(Arc::clone(&self.client)),
        };
        TlsUpstream {
            addr,
            client: Client::builder(TokioExecutor::new()).build(connect),
        }
    }
}

/// Serves `router` on `listener` (TLS, or plaintext when the first byte is not a TLS record)
/// until `shutdown`, then lets in-flight requests finish.
pub fn spawn_serve(
    listener: TcpListener,
    router: Router,
    tls: &PlainTls,
    shutdown: &Shutdown,
) -> JoinHandle<()> {
    let stop = shutdown.wait();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.server));
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        let builder = auto::Builder::new(TokioExecutor::new());
        tokio::pin!(stop);
        loop {
            let tcp = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut stop => break,
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, builder, watcher) =
                (acceptor.clone(), builder.clone(), graceful.watcher());
            let svc = hyper_util::service::TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                let served = match tcp.peek(&mut first).await {
                    Ok(1) if first[0] == 0x16 => match acceptor.accept(tcp).await {
                        Ok(stream) => {
                            let conn = builder.serve_connection(TokioIo::new(stream), svc);
                            watcher.watch(conn.into_owned()).await
                        }
                        Err(error) => {
                            tracing::debug!(%error, "TLS handshake failed");
                            return;
                        }
                    },
                    Ok(_) => {
                        let conn = builder.serve_connection(TokioIo::new(tcp), svc);
                        watcher.watch(conn.into_owned()).await
                    }
                    Err(_) => return,
                };
                if let Err(error) = served {
                    tracing::debug!(%error, "connection ended with an error");
                }
            });
        }
        drop(listener);
        graceful.shutdown().await;
    })
}

/// A bare hyper client over TLS that sends every call to one address.
#[derive(Clone)]
pub struct TlsUpstream {
    addr: SocketAddr,
    client: Client<Connect, Body>,
}

impl Upstream for TlsUpstream {
    fn call(&self, req: Request<Body>) -> UpstreamFuture {
        forward(&self.client, self.addr, req)
    }
}

/// Connects to the one upstream address over TLS.
#[derive(Clone)]
pub struct Connect {
    addr: SocketAddr,
    tls: tokio_rustls::TlsConnector,
}

impl tower::Service<Uri> for Connect {
    type Response = TlsIo;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TlsIo, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let (addr, tls) = (self.addr, self.tls.clone());
        Box::pin(async move {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            // The server's SPIFFE ID is verified, not this name.
            let name = ServerName::try_from("upstream.mesh")?;
            Ok(TlsIo(TokioIo::new(tls.connect(name, tcp).await?)))
        })
    }
}

/// A client TLS stream as hyper's pooled client wants it.
pub struct TlsIo(TokioIo<tokio_rustls::client::TlsStream<TcpStream>>);

impl Connection for TlsIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for TlsIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for TlsIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
