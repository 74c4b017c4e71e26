//! The gateway's TLS ports: Gateway `servers[].tls` SIMPLE and MUTUAL, served with mesh-tls's
//! [`GatewayTls`] (the server chosen by SNI among the port's servers by their `hosts`, HTTP/2
//! or HTTP/1.1 by ALPN, `minProtocolVersion`), and `httpsRedirect`.

use std::net::SocketAddr;
use std::path::Path;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use mesh_core::policy::{GatewayPolicy, ServerTlsMode};
use mesh_tls::gateway::{GatewayServer, GatewayTls, MinVersion};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::mesh::InboundStack;
use crate::run::Shutdown;

/// PEM of a `credentialName` (a Kubernetes TLS Secret, e.g. read with
/// `mesh_kube::secrets::read_tls_secret`): the chain, the key, the CA when there is one.
pub type CredentialPem = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);

/// Resolves a `credentialName` to its PEM (the gateway in `--kube` mode).
pub type CredentialReader<'a> = &'a dyn Fn(&str) -> Result<CredentialPem, String>;

/// The TLS servers of `gateway` on port `port` (`None`: the port serves plaintext), their
/// certificate files read now. An error names the Gateway field; `credentialName` is one (a
/// folder has no Secrets): see [`port_tls_with`].
pub fn port_tls(gateway: &GatewayPolicy, port: u16) -> Result<Option<GatewayTls>, String> {
    port_tls_with(gateway, port, None)
}

/// [`port_tls`] resolving `credentialName` through `credentials` when given.
pub fn port_tls_with(
    gateway: &GatewayPolicy,
    port: u16,
    credentials: Option<CredentialReader<'_>>,
) -> Result<Option<GatewayTls>, String> {
    let mut servers = Vec::new();
    for (i, server) in gateway.servers.iter().enumerate() {
        let Some(tls) = server.tls.as_ref().filter(|_| server.port == port) else {
            continue;
        };
        let Some(mode) = tls.mode else { continue };
        let field = |name: &str| {
            format!(
                "Gateway/{}: spec.servers[{i}].tls.{name}",
                gateway.origin.name
            )
        };
        let read = |name: &str, path: Option<&Path>| -> Result<Vec<u8>, String> {
            let path = path.ok_or_else(|| format!("{}: is required", field(name)))?;
            std::fs::read(path).map_err(|e| format!("{}: {}: {e}", field(name), path.display()))
        };
        let (chain, key, secret_ca) = match (&tls.credential_name, credentials) {
            (Some(secret), Some(resolve)) => {
                resolve(secret).map_err(|e| format!("{}: {e}", field("credentialName")))?
            }
            (Some(_), None) => {
                return Err(format!(
                    "{}: names a Kubernetes TLS Secret, which only the gateway in --kube mode reads; in a folder give serverCertificate and privateKey file paths",
                    field("credentialName")
                ));
            }
            (None, _) => (
                read("serverCertificate", tls.server_certificate.as_deref())?,
                read("privateKey", tls.private_key.as_deref())?,
                None,
            ),
        };
        let min = if tls.tls13_only {
            MinVersion::Tls13
        } else {
            MinVersion::Tls12
        };
        let built = match mode {
            ServerTlsMode::Simple => GatewayServer::simple(&server.hosts, &chain, &key, min),
            ServerTlsMode::Mutual => {
                let ca = match secret_ca {
                    Some(ca) => ca,
                    None => read("caCertificates", tls.ca_certificates.as_deref())?,
                };
                GatewayServer::mutual(&server.hosts, &chain, &key, &ca, min)
            }
        };
        servers.push(built.map_err(|e| format!("{}: {e}", field("mode")))?);
    }
    Ok((!servers.is_empty()).then(|| GatewayTls::new(servers)))
}

/// Serves `service` on `listener` over TLS per `tls` until `shutdown`, then lets in-flight
/// requests finish. A failed handshake (no server for the SNI, a client without the
/// certificate MUTUAL asks for) closes the connection before any HTTP.
pub fn spawn_serve_tls(
    listener: TcpListener,
    service: InboundStack,
    tls: GatewayTls,
    shutdown: &Shutdown,
) -> JoinHandle<()> {
    let stop = shutdown.wait();
    let tls = std::sync::Arc::new(tls);
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        let builder = auto::Builder::new(TokioExecutor::new());
        tokio::pin!(stop);
        loop {
            let (tcp, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut stop => break,
            };
            let _ = tcp.set_nodelay(true);
            let local = tcp.local_addr().ok();
            let (tls, builder, watcher) = (tls.clone(), builder.clone(), graceful.watcher());
            let service = service.clone();
            tokio::spawn(async move {
                let (stream, _, _) = match tls.accept(tcp).await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::debug!(%error, %remote, "gateway TLS handshake refused");
                        return;
                    }
                };
                let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let mut req = req.map(Body::new);
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo::<SocketAddr>(remote));
                    if let Some(local) = local {
                        req.extensions_mut()
                            .insert(mesh_server::context::LocalAddr(local));
                    }
                    service.clone().oneshot(req)
                });
                let conn = builder
                    .serve_connection(TokioIo::new(stream), svc)
                    .into_owned();
                if let Err(error) = watcher.watch(conn).await {
                    tracing::debug!(%error, %remote, "connection ended with an error");
                }
            });
        }
        drop(listener);
        graceful.shutdown().await;
    })
}
