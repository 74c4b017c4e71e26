//! [`InboundTls`]: mutual TLS on a workload's listen port, as PeerAuthentication says.
//!
//! Per connection: the mode in force for the workload and the port it was accepted on
//! (mesh-core's [`effective_mtls`], read from the current config, so a changed policy applies
//! to new connections), then mesh-tls's [`Acceptor`] (PERMISSIVE tells TLS from plaintext by
//! the first byte; STRICT refuses plaintext and, without a workload certificate, everything).
//! The caller's identity goes into every request of the connection as [`PeerIdentity`].

use std::sync::Arc;

use mesh_core::policy::{PeerMtls, ROOT_NAMESPACE, effective_mtls};
use mesh_core::watch::ConfigSource;
use mesh_tls::{AcceptError, Acceptor, MeshStream, MeshTls, Mode, SpiffeId, TrustDomain};

use super::Workload;
use crate::context::{LocalIdentity, LocalPeerAlias, PeerIdentity, PeerTrustDomains};

/// Mutual TLS for one workload's listen port(s); cheap to clone.
#[derive(Clone, Debug)]
pub struct InboundTls {
    acceptor: Acceptor,
    tls: MeshTls,
    workload: Arc<Workload>,
    config: ConfigSource,
}

/// What the handshake established, handed to every request of the connection.
#[derive(Clone, Debug)]
pub(crate) struct PeerContext {
    pub(crate) identity: PeerIdentity,
    pub(crate) alias: Option<LocalPeerAlias>,
    pub(crate) domains: Option<PeerTrustDomains>,
    pub(crate) local: Option<LocalIdentity>,
}

impl InboundTls {
    /// Mutual TLS with `tls`'s workload certificate for `workload`, whose PeerAuthentication
    /// policies are read from `config` at each new connection.
    pub fn new(
        tls: &MeshTls,
        workload: &Workload,
        config: impl Into<ConfigSource>,
    ) -> Result<Self, mesh_tls::config::ConfigError> {
        Ok(Self {
            acceptor: Acceptor::new(tls)?,
            tls: tls.clone(),
            workload: Arc::new(workload.clone()),
            config: config.into(),
        })
    }

    /// The same with another handshake timeout (see [`Acceptor::with_handshake_timeout`]).
    pub fn with_handshake_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.acceptor = self.acceptor.with_handshake_timeout(timeout);
        self
    }

    /// The PeerAuthentication mode in force now on workload port `port`.
    pub fn mode(&self, port: u16) -> PeerMtls {
        let config = self.config.snapshot();
        effective_mtls(
            &config.peer_authentication,
            ROOT_NAMESPACE,
            &self.workload.namespace,
            &self.workload.labels,
        )
        .for_port(port)
    }

    /// Why the workload cannot serve on `port` right now, if it cannot: STRICT without a
    /// workload certificate refuses every connection (for `/healthz`).
    pub fn unready_reason(&self, port: u16) -> Option<String> {
        if self.mode(port) == PeerMtls::Strict && self.tls.source().current().is_none() {
            let why = self
                .tls
                .source()
                .status()
                .last_error
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default();
            return Some(format!(
                "mutual TLS is STRICT on port {port} and no workload certificate is loaded{why}: every connection is refused"
            ));
        }
        None
    }

    /// The TLS settings.
    pub fn mesh_tls(&self) -> &MeshTls {
        &self.tls
    }

    /// Accepts one connection on workload port `port`.
    pub(crate) async fn accept(
        &self,
        tcp: tokio::net::TcpStream,
        port: u16,
    ) -> Result<(MeshStream, Option<PeerContext>), AcceptError> {
        let mode = match self.mode(port) {
            PeerMtls::Strict => Mode::Strict,
            PeerMtls::Permissive => Mode::Permissive,
            PeerMtls::Disable => Mode::Disable,
        };
        let accepted = self.acceptor.accept(tcp, mode).await?;
        let peer = accepted.peer().map(|id| self.peer_context(id));
        let (stream, _) = accepted.into_stream();
        Ok((stream, peer))
    }

    fn peer_context(&self, id: &SpiffeId) -> PeerContext {
        // Istio reads `cluster.local/...` in a policy as the local trust domain (and its
        // aliases): a peer of ours under another name also answers to that spelling.
        let domains = self
            .tls
            .trust_domains()
            .filter(|domains| domains.contains(id.trust_domain()));
        let ours = domains.is_some();
        let domains = domains
            .map(|d| PeerTrustDomains(d.all().iter().map(|t| t.as_str().to_owned()).collect()));
        let default = TrustDomain::cluster_local();
        let alias = (ours && *id.trust_domain() != default)
            .then(|| LocalPeerAlias(id.with_trust_domain(default).principal()));
        let local = self
            .tls
            .source()
            .current()
            .map(|c| LocalIdentity(Arc::from(c.identity().to_string())));
        PeerContext {
            identity: PeerIdentity(id.principal()),
            alias,
            domains,
            local,
        }
    }
}

#[cfg(test)]
mod tests;
