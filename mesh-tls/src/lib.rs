//! # mesh-tls
//!
//! Workload identity and mutual TLS for the proxyless mesh, as Istio's sidecars do it:
//! SPIFFE identities and Istio's matching rules ([`identity`]), a checked credential set read
//! from PEM ([`credentials`]), the current credentials published lock-free and kept fresh from
//! Istio's file layout ([`source`]), rustls server and client configurations with SPIFFE
//! verification ([`config`]), and an acceptor that serves PERMISSIVE, STRICT or DISABLE on one
//! port ([`sniff`]).
//!
//! Every rustls configuration here is built with the aws-lc-rs provider passed explicitly
//! ([`provider`]), never rustls' process-wide default, so that a second provider elsewhere in
//! the dependency tree cannot make the first handshake panic.
#![forbid(unsafe_code)]

pub mod config;
pub mod credentials;
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
