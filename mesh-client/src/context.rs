//! Request and response extensions that carry decisions between layers.
//!
//! Layers above the balancer (route, split, retry) and below it (cluster, balancer, outlier
//! detection, transport) talk through these small typed values instead of knowing each other.

use std::net::SocketAddr;
use std::sync::Arc;

use mesh_core::policy::{Destination, Labels};
use mesh_telemetry::TraceContext;

/// Request extension: the destination a request was routed to (set by the split layer, read by
/// the cluster that sends it). Shared (`Arc`), so copying it between layers costs no allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The chosen destination (host, subset, port).
    pub destination: Arc<Destination>,
}

impl Target {
    /// A target naming `destination`.
    pub fn new(destination: Destination) -> Self {
        Target {
            destination: Arc::new(destination),
        }
    }
}

impl From<Destination> for Target {
    fn from(destination: Destination) -> Self {
        Target::new(destination)
    }
}

/// Request extension: endpoints already tried for this request (set by the retry layer before
/// each retry), so the balancer picks a different endpoint where one exists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreviousAttempts {
    /// Endpoints tried so far, oldest first.
    pub endpoints: Vec<SocketAddr>,
}

/// Response extension: the endpoint that served an attempt.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Upstream {
    /// The endpoint's address.
    pub endpoint: SocketAddr,
    /// The endpoint's labels (set by the cluster that picked it; `None` from a bare
    /// transport): the source-side metrics name the destination workload from them, as Envoy
    /// does from the upstream host's metadata.
    pub labels: Option<Arc<Labels>>,
    /// What the connection the answer came on proved (set by the transport on TLS
    /// connections): the source-side metrics' `connection_security_policy` and principals.
    pub security: Option<Arc<ConnectionSecurity>>,
    /// The destination the attempt was sent for (the request's [`Target`], set by the cluster
    /// that sent it): the split then need not copy its `Target` onto the answer (one extension
    /// insert fewer per request), and the metrics read the destination here.
    pub destination: Option<Arc<Destination>>,
    /// How the cluster that sent the attempt classified the answer's head (its status and
    /// `grpc-status`; `None` from a bare transport): the retry layer reads it here instead of
    /// reading the head again.
    pub outcome: Option<mesh_core::classify::Outcome>,
    /// The client span's trace context (set by the client telemetry layer on the way up), where
    /// an answer with an `Upstream` carries it instead of a [`TraceContext`] extension of its own
    /// (one extension insert fewer per call): read it with [`client_span`].
    pub client_span: Option<TraceContext>,
}

/// The client span's trace context on an outbound call's answer: the [`Upstream`]'s, else a
/// bare [`TraceContext`] response extension (an answer without an `Upstream`, from a transport
/// that is not the mesh's).
pub fn client_span(ext: &http::Extensions) -> Option<&TraceContext> {
    ext.get::<Upstream>()
        .and_then(|u| u.client_span.as_ref())
        .or_else(|| ext.get::<TraceContext>())
}

impl Upstream {
    /// The endpoint at `endpoint`, labels unknown.
    pub fn new(endpoint: SocketAddr) -> Self {
        Self {
            endpoint,
            labels: None,
            security: None,
            destination: None,
            outcome: None,
            client_span: None,
        }
    }
}

/// The security of one upstream TLS connection, made once per handshake and shared by every
/// response on the connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionSecurity {
    /// The server's SPIFFE ID (`spiffe://td/ns/NS/sa/SA`) when it proved one: mutual TLS.
    pub peer: Option<Arc<str>>,
    /// Our own SPIFFE ID presented in the handshake (mutual TLS), when we have one.
    pub local: Option<Arc<str>>,
}

impl ConnectionSecurity {
    /// Whether this is Istio's `mutual_tls`: both sides proved a mesh identity.
    pub fn is_mutual(&self) -> bool {
        self.peer.is_some() && self.local.is_some()
    }
}

/// Request extension: the caller's identity, for `sourceLabels` matching and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceWorkload {
    /// Workload name (the `app` label), e.g. `service1`.
    pub name: Arc<str>,
    /// The workload's labels.
    pub labels: Arc<mesh_core::policy::Labels>,
}

/// Request extension: the address of the caller that sent the request this call serves (the
/// downstream peer), read by consistent hashing on `useSourceIp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceAddr {
    /// The caller's IP address.
    pub ip: std::net::IpAddr,
}

/// Request extension: when the current attempt must be over (the retry layer's `perTryTimeout`).
///
/// The cluster stops the attempt at this instant with [`mesh_core::classify::Outcome::Timeout`]
/// and feeds that to outlier detection, as Envoy counts per-try timeouts against the endpoint.
/// A timeout outside the cluster (dropping the attempt) cannot tell the endpoint's detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptDeadline {
    /// The deadline.
    pub at: tokio::time::Instant,
}
