//! Outbound TLS: Istio's auto-mTLS and DestinationRule `tls`, under the pooled connection.
//!
//! Each cluster decides per endpoint how to connect ([`plan`]), as Istio does:
//!
//! | DestinationRule `tls.mode` in force (subset > port > rule) | connection |
//! | --- | --- |
//! | none, endpoint labelled `security.istio.io/tlsMode: istio` of a `MESH_INTERNAL` service, workload certificate present | mutual TLS (auto-mTLS) |
//! | none, otherwise | plaintext |
//! | `DISABLE` | plaintext, even where auto-mTLS would apply |
//! | `ISTIO_MUTUAL` | mutual TLS with the workload certificate (a TLS error without one) |
//! | `SIMPLE` | TLS; the server's certificate verified for `sni` (else the host) against `caCertificates` (else the system's roots) |
//! | `MUTUAL` | `SIMPLE` presenting `clientCertificate`/`privateKey` |
//!
//! Mutual TLS presents the workload's current certificate (from the same
//! [`CertSource`](mesh_tls::CertSource) as the inbound side: a rotation applies to the next
//! handshake) and accepts a server whose chain verifies to the mesh's roots and whose SPIFFE ID
//! is one of DestinationRule `subjectAltNames` when given, else the endpoint's service account,
//! else any workload of the mesh's trust domains. SNI is Istio's
//! `outbound_.PORT_.SUBSET_.HOST` (or `sni`); ALPN offers what a sidecar offers
//! (`istio-h2, istio, h2` or `istio-http/1.1, istio, http/1.1`, by the port's protocol).
//!
//! Connections are pooled like plaintext ones: a handshake per new connection, never per
//! request ([`TlsStats`] counts them). A failed handshake is a [`TlsError`]: a connect failure
//! (`UF`, counted by outlier detection like a refused connection) whose local reply says
//! `TLS error: ...`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use mesh_client::cluster::Clusters;
//! use mesh_core::policy::MeshConfig;
//! use mesh_core::registry::Registry;
//! use mesh_tls::{CertSource, MeshTls};
//!
//! let config = Arc::new(MeshConfig::default());
//! let registry = Arc::new(Registry::from_config(&config));
//! // The workload certificate (normally kept fresh by a `DirWatcher` on `--certs`).
//! let tls = MeshTls::new(CertSource::empty());
//! let clusters = Clusters::new(move || Arc::clone(&config), registry).with_tls(tls);
//! println!("{} handshakes", clusters.tls_stats().handshakes());
//! ```

mod connector;
mod plan;

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mesh_tls::MeshTls;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;

pub use connector::{MeshConn, MeshConnector};
pub(crate) use plan::Planner;
pub use plan::{TlsPlan, plan};

/// A TLS handshake to an upstream failed (or could not be attempted): a connect failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("TLS error: {reason} (endpoint {endpoint})")]
pub struct TlsError {
    endpoint: SocketAddr,
    reason: String,
}

impl TlsError {
    pub(crate) fn new(endpoint: SocketAddr, reason: String) -> Self {
        Self { endpoint, reason }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> SocketAddr {
        self.endpoint
    }

    /// Why, in rustls' words (e.g. `invalid peer certificate: ...`).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The first `TlsError` in `error`'s source chain.
    pub fn find<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a TlsError> {
        let mut cur = Some(error);
        for _ in 0..16 {
            let e = cur?;
            if let Some(tls) = e.downcast_ref::<TlsError>() {
                return Some(tls);
            }
            cur = e.source();
        }
        None
    }
}

/// Upstream handshakes of a client: completed and failed (shared by its clusters).
#[derive(Debug, Default)]
pub struct TlsStats {
    handshakes: AtomicU64,
    failures: AtomicU64,
}

impl TlsStats {
    /// Completed handshakes.
    pub fn handshakes(&self) -> u64 {
        self.handshakes.load(Ordering::Relaxed)
    }

    /// Failed handshakes.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn completed(&self) {
        self.handshakes.fetch_add(1, Ordering::Relaxed);
    }

    fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// How to speak TLS to one endpoint, ready for handshakes.
pub(crate) enum TlsTarget {
    /// A client configuration and the server name to send.
    Tls {
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        /// The workload's TLS settings for mesh mutual TLS (our identity, for metrics).
        mesh: Option<MeshTls>,
    },
    /// The settings could not be built (a missing file, no workload certificate for
    /// ISTIO_MUTUAL): every connection fails with this reason.
    Broken(Arc<str>),
}

/// The TLS plan of every endpoint of a cluster that is not plaintext.
#[derive(Default)]
pub struct TlsTable {
    plans: Vec<(SocketAddr, TlsPlan)>,
    targets: HashMap<SocketAddr, Arc<TlsTarget>>,
    stats: Arc<TlsStats>,
}

impl TlsTable {
    /// Whether every endpoint is plaintext.
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    /// The plans, by endpoint.
    pub fn plans(&self) -> &[(SocketAddr, TlsPlan)] {
        &self.plans
    }

    pub(crate) fn get(&self, endpoint: SocketAddr) -> Option<&Arc<TlsTarget>> {
        self.targets.get(&endpoint)
    }

    /// Where its handshakes are counted.
    pub fn stats(&self) -> &Arc<TlsStats> {
        &self.stats
    }

    pub(crate) fn from_parts(
        plans: Vec<(SocketAddr, TlsPlan)>,
        targets: HashMap<SocketAddr, Arc<TlsTarget>>,
        stats: Arc<TlsStats>,
    ) -> Self {
        Self {
            plans,
            targets,
            stats,
        }
    }
}

impl fmt::Debug for TlsTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTable")
            .field("plans", &self.plans)
            .finish()
    }
}

/// Equal plans: the same connections (the built configurations follow from the plans).
impl PartialEq for TlsTable {
    fn eq(&self, other: &Self) -> bool {
        self.plans == other.plans
    }
}

impl Eq for TlsTable {}

impl Hash for TlsTable {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.plans.hash(state);
    }
}

#[cfg(test)]
mod tests;
