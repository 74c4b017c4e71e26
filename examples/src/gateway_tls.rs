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

use std::sync::Arc;

use crate::gateway_ports::{PortMode, PortSlot};
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
    build_port_tls(
        &gateway.origin.name,
        &port_inputs(gateway, port, credentials)?,
    )
}

/// What one TLS server of a port is built from: its settings and the PEM they name, read.
/// Two equal inputs build the same server, so a watcher rebuilds only when they differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInputs {
    /// The server's index in `servers[]` (for messages).
    pub index: usize,
    /// `hosts`.
    pub hosts: Vec<String>,
    /// `mode`.
    pub mode: ServerTlsMode,
    /// `minProtocolVersion`.
    pub min: MinVersion,
    /// The certificate chain (PEM).
    pub chain: Vec<u8>,
    /// The private key (PEM).
    pub key: Vec<u8>,
    /// The roots client certificates verify to (MUTUAL).
    pub ca: Option<Vec<u8>>,
}

/// Reads what the TLS servers of `gateway` on `port` are built from: their files now, their
/// `credentialName` through `credentials`. Empty: the port serves plaintext.
pub fn port_inputs(
    gateway: &GatewayPolicy,
    port: u16,
    credentials: Option<CredentialReader<'_>>,
) -> Result<Vec<ServerInputs>, String> {
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
        let (chain, key, ca) = match (&tls.credential_name, credentials) {
            (Some(secret), Some(resolve)) => {
                let (chain, key, ca) =
                    resolve(secret).map_err(|e| format!("{}: {e}", field("credentialName")))?;
                if mode == ServerTlsMode::Mutual && ca.is_none() {
                    return Err(format!(
                        "{}: MUTUAL needs the client CA: Secret {secret} has no `ca.crt` (nor `cacert`) and there is no Secret {secret}-cacert",
                        field("credentialName")
                    ));
                }
                (chain, key, ca)
            }
            (Some(_), None) => {
                return Err(format!(
                    "{}: names a Kubernetes TLS Secret, which only the gateway in --kube mode reads; in a folder give serverCertificate and privateKey file paths",
                    field("credentialName")
                ));
            }
            (None, _) => {
                let chain = read("serverCertificate", tls.server_certificate.as_deref())?;
                let key = read("privateKey", tls.private_key.as_deref())?;
                let ca = match mode {
                    ServerTlsMode::Simple => None,
                    ServerTlsMode::Mutual => {
                        Some(read("caCertificates", tls.ca_certificates.as_deref())?)
                    }
                };
                (chain, key, ca)
            }
        };
        let min = if tls.tls13_only {
            MinVersion::Tls13
        } else {
            MinVersion::Tls12
        };
        servers.push(ServerInputs {
            index: i,
            hosts: server.hosts.clone(),
            mode,
            min,
            chain,
            key,
            ca,
        });
    }
    Ok(servers)
}

/// Builds the TLS servers of a port of Gateway `gateway` (its name, for messages) from
/// `inputs`; `None` when there are none (the port serves plaintext). An error names the field.
pub fn build_port_tls(
    gateway: &str,
    inputs: &[ServerInputs],
) -> Result<Option<GatewayTls>, String> {
    let mut servers = Vec::new();
    for input in inputs {
        let built = match (input.mode, &input.ca) {
            (ServerTlsMode::Mutual, Some(ca)) => {
                GatewayServer::mutual(&input.hosts, &input.chain, &input.key, ca, input.min)
            }
            _ => GatewayServer::simple(&input.hosts, &input.chain, &input.key, input.min),
        };
        servers.push(built.map_err(|e| {
            format!(
                "Gateway/{gateway}: spec.servers[{}].tls.mode: {e}",
                input.index
            )
        })?);
    }
    Ok((!servers.is_empty()).then(|| GatewayTls::new(servers)))
}

/// Serves `service` on `listener` as `slot` says at each new connection: plaintext, TLS with
/// the slot's current servers (a failed handshake — no server for the SNI, a client without the
/// certificate MUTUAL asks for — closes the connection before any HTTP), or refused (TLS is
/// configured but no certificate could be read yet). Open connections keep the TLS they were
/// accepted with. Runs until `shutdown`, then lets in-flight requests finish.
pub fn spawn_serve_port(
    listener: TcpListener,
    service: InboundStack,
    slot: Arc<PortSlot>,
    shutdown: &Shutdown,
) -> JoinHandle<()> {
    let stop = shutdown.wait();
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
            let mode = slot.mode();
            let (builder, watcher) = (builder.clone(), graceful.watcher());
            let service = service.clone();
            tokio::spawn(async move {
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
                let served = match &*mode {
                    PortMode::Plain => {
                        let conn = builder
                            .serve_connection(TokioIo::new(tcp), svc)
                            .into_owned();
                        watcher.watch(conn).await
                    }
                    PortMode::Tls(tls) => {
                        let (stream, _, _) = match tls.accept(tcp).await {
                            Ok(accepted) => accepted,
                            Err(error) => {
                                tracing::debug!(%error, %remote, "gateway TLS handshake refused");
                                return;
                            }
                        };
                        let conn = builder
                            .serve_connection(TokioIo::new(stream), svc)
                            .into_owned();
                        watcher.watch(conn).await
                    }
                    PortMode::Refused(reason) => {
                        tracing::debug!(%reason, %remote, "gateway port has no usable certificate: connection refused");
                        return;
                    }
                };
                if let Err(error) = served {
                    tracing::debug!(%error, %remote, "connection ended with an error");
                }
            });
        }
        drop(listener);
        graceful.shutdown().await;
    })
}
