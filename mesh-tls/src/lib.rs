//! # mesh-tls
//!
//! Workload identity and mutual TLS for the proxyless mesh, as Istio's sidecars do it:
//! SPIFFE identities and Istio's matching rules ([`identity`]), a checked credential set read
//! from PEM ([`credentials`]), the current credentials published lock-free and kept fresh from
//! Istio's file layout ([`source`]), rustls server and client configurations with SPIFFE
//! verification ([`config`]), and an acceptor that serves PERMISSIVE, STRICT or DISABLE on one
//! port ([`sniff`]); and TLS at the ingress gateway, chosen by SNI ([`gateway`]).
//!
//! Every rustls configuration here is built with the aws-lc-rs provider passed explicitly
//! ([`provider`]), never rustls' process-wide default, so that a second provider elsewhere in
//! the dependency tree cannot make the first handshake panic.
//!
//! ```no_run
//! use mesh_tls::config::{ExpectedServer, UpstreamProtocol};
//! use mesh_tls::source::WatchOptions;
//! use mesh_tls::{Acceptor, CertSource, DirWatcher, MeshTls, Mode};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let source = CertSource::empty();
//! let _watcher = DirWatcher::spawn("/etc/certs", source.clone(), WatchOptions::default());
//! let tls = MeshTls::new(source);
//!
//! // Inbound: one port, the PeerAuthentication mode in force for it.
//! let acceptor = Acceptor::new(&tls)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let (tcp, _) = listener.accept().await?;
//! let accepted = acceptor.accept(tcp, Mode::Permissive).await?;
//! let caller = accepted.peer().map(|id| id.principal()); // e.g. cluster.local/ns/default/sa/service1
//! let (io, _info) = accepted.into_stream(); // plaintext or TLS, one type for hyper
//! # drop((caller, io));
//!
//! // Outbound: an in-mesh endpoint whose service account is known.
//! let expected = ExpectedServer::Identities(vec!["spiffe://cluster.local/ns/default/sa/service2".parse()?]);
//! let client_config = tls.client_config(expected, UpstreamProtocol::Http2)?;
//! # drop(client_config);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "istio-ca"))]
pub mod ca;
pub mod config;
pub mod credentials;
pub mod gateway;
pub mod identity;
pub mod sniff;
pub mod source;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::sync::Arc;

pub use config::{ClientAuth, ExpectedServer, MeshTls, TlsInfo, peer_identity};
pub use credentials::{CredentialError, Credentials};
pub use identity::{IdentityError, SpiffeId, TrustDomain, TrustDomains};
pub use sniff::{AcceptError, Accepted, Acceptor, MeshStream, Mode};
pub use source::{CertSource, DirWatcher, SourceError, SourceStatus};

/// The crypto provider every configuration in this crate is built with: aws-lc-rs.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
