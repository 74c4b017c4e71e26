//! The pooled HTTP connection under the balancer: hyper-util's client, one per cluster.
//!
//! HTTP/1.1 by default, or HTTP/2 over cleartext (h2c, prior knowledge) for ports whose protocol
//! is `HTTP2` or `GRPC`. A gRPC request (`content-type: application/grpc`) always goes over
//! HTTP/2, whatever the port is named (a misnamed port is the commonest gRPC trouble in Istio),
//! with the time left before its deadline as its `grpc-timeout`. Connections are kept alive and reused per endpoint; an idle connection
//! is closed after `idleTimeout`; a connection attempt gives up after `connectTimeout`.
//! Failures become a [`ClusterError`] with the shared [`Outcome`]: no connection is
//! `ConnectFailure`, an HTTP/2 `REFUSED_STREAM` is `RefusedStream` (the server never processed
//! the request), anything else before the response head is `Reset`.
//!
//! `maxRequestsPerConnection` is supported for 0 (unlimited) and 1 (no reuse); other values
//! are refused with [`TransportError::Unsupported`]: hyper's pool does not count requests per
//! connection.
//!
//! TLS (auto-mTLS, DestinationRule `tls`) happens under the pool, per endpoint, as
//! [`TransportConfig::tls`] says ([`crate::tls`]): TLS connections are pooled like plaintext
//! ones, and each response carries what its connection's handshake proved
//! ([`ConnectionSecurity`](crate::context::ConnectionSecurity), in the [`Upstream`](crate::context::Upstream) extension).
//! A failed handshake is a connect failure whose error is a [`TlsError`].
//!
//! [`Transport::in_process`] answers from a function instead of the network: benchmarks and
//! tests measure the whole client stack without sockets.
//!
//! ```no_run
//! use mesh_client::transport::{Transport, TransportConfig};
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let transport = Transport::new(&TransportConfig::default())?;
//! let req = http::Request::get("/hello").body(mesh_client::body::empty())?;
//! let resp = transport.send("127.0.0.1:8080".parse()?, None, req).await?;
//! println!("{}", resp.status());
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::HOST;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use mesh_core::classify::Outcome;
use mesh_core::policy::ConnectionPool;

use crate::body::{BoxBody, BoxResponseFuture};
use crate::error::ClusterError;
use crate::tls::{MeshConnector, TlsError, TlsTable};

mod future;

pub use self::future::ResponseFuture;
pub(crate) use self::future::{AnswerBody, AnswerFuture};

/// How a cluster's connections are made and kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransportConfig {
    /// `tcp.connectTimeout`.
    pub connect_timeout: Duration,
    /// `tcp.idleTimeout` / `http.idleTimeout`: idle pooled connections are closed after it.
    pub idle_timeout: Duration,
    /// HTTP/2 over cleartext with prior knowledge, instead of HTTP/1.1.
    pub http2: bool,
    /// `http.maxRequestsPerConnection`: 0 (unlimited) or 1 (no reuse).
    pub max_requests_per_connection: u32,
    /// The endpoints spoken to over TLS, and how (empty: all plaintext).
    pub tls: Arc<TlsTable>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self::from_policy(&ConnectionPool::default(), false)
    }
}

impl TransportConfig {
    /// The transport settings of a `connectionPool`.
    pub fn from_policy(pool: &ConnectionPool, http2: bool) -> Self {
        Self {
            connect_timeout: pool.connect_timeout,
            idle_timeout: pool.idle_timeout,
            http2,
            max_requests_per_connection: pool.max_requests_per_connection,
            tls: Arc::default(),
        }
    }
}

/// Why a transport could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// A setting the transport cannot honour.
    #[error("{field}: {reason}")]
    Unsupported {
        /// The Istio field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// The cluster's client, and one speaking HTTP/2 only for gRPC calls on an HTTP/1.1 cluster
/// (the same client when the cluster speaks HTTP/2 already).
struct Clients {
    main: Client<MeshConnector, BoxBody>,
    h2: Option<Client<MeshConnector, BoxBody>>,
}

impl Clients {
    fn for_grpc(&self) -> &Client<MeshConnector, BoxBody> {
        self.h2.as_ref().unwrap_or(&self.main)
    }
}

type InProcessFn = Arc<dyn Fn(SocketAddr, Request<BoxBody>) -> BoxResponseFuture + Send + Sync>;

/// A pooled HTTP client that sends each request to a given endpoint.
#[derive(Clone)]
pub struct Transport {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    // Shared: each request clones the transport into its future (one reference count). The
    // version every request is sent with on these connections rides along.
    Hyper(Arc<Clients>, Version),
    InProcess(InProcessFn),
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.inner {
            Inner::Hyper(..) => "Transport::Hyper",
            Inner::InProcess(_) => "Transport::InProcess",
        })
    }
}

impl Transport {
    /// A transport with `config`'s settings.
    pub fn new(config: &TransportConfig) -> Result<Self, TransportError> {
        if config.max_requests_per_connection > 1 {
            return Err(TransportError::Unsupported {
                field: "connectionPool.http.maxRequestsPerConnection",
                reason: "only 0 (unlimited) and 1 (no connection reuse) are supported",
            });
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let connector =
            MeshConnector::new(connector, Arc::clone(&config.tls), config.connect_timeout);
        let client = |http2: bool| {
            let mut builder = Client::builder(TokioExecutor::new());
            builder
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .pool_idle_timeout(config.idle_timeout);
            if config.max_requests_per_connection == 1 {
                builder.pool_max_idle_per_host(0);
            }
            if http2 {
                builder.http2_only(true);
            }
            builder.build(connector.clone())
        };
        let version = if config.http2 {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        };
        // gRPC needs HTTP/2 whatever the port is named: an HTTP/1.1 cluster keeps a second,
        // HTTP/2-only client for its gRPC calls (no connection is made until one is sent).
        let clients = Clients {
            main: client(config.http2),
            h2: (!config.http2).then(|| client(true)),
        };
        Ok(Self {
            inner: Inner::Hyper(Arc::new(clients), version),
        })
    }

    /// A transport that hands each request, with its endpoint, to `answer` instead of the
    /// network: no sockets, no pool. For benchmarks and tests of the stack above it; an error
    /// from `answer` counts as a reset connection.
    ///
    /// ```
    /// use mesh_client::transport::Transport;
    /// let transport = Transport::in_process(|_endpoint, _req| {
    ///     Box::pin(async { Ok(http::Response::new(mesh_client::body::empty())) })
    /// });
    /// ```
    pub fn in_process(
        answer: impl Fn(SocketAddr, Request<BoxBody>) -> BoxResponseFuture + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner: Inner::InProcess(Arc::new(answer)),
        }
    }

    /// Sends `req` to `endpoint`. The request's URI keeps its path and query and gets the
    /// endpoint as authority; `host` (the service's name) becomes the `Host` header when the
    /// request has none. The request's HTTP version is the upstream connection's, whatever the
    /// downstream spoke (an HTTP/2 client of an HTTP/1.1 upstream, and the reverse, as Envoy
    /// does). The response carries the [`Upstream`](crate::context::Upstream) extension.
    pub fn send(
        &self,
        endpoint: SocketAddr,
        host: Option<&HeaderValue>,
        req: Request<BoxBody>,
    ) -> ResponseFuture {
        let authority = endpoint_authority(endpoint);
        self.send_to(endpoint, authority.as_ref(), host, req)
    }

    /// [`Transport::send`] with the endpoint's authority made in advance
    /// ([`endpoint_authority`]), so that rewriting the URI allocates nothing.
    pub fn send_to(
        &self,
        endpoint: SocketAddr,
        authority: Option<&Authority>,
        host: Option<&HeaderValue>,
        req: Request<BoxBody>,
    ) -> ResponseFuture {
        let (mut parts, body) = req.into_parts();
        // One hash of the name: the entry is looked up once, filled when vacant.
        if let http::header::Entry::Vacant(vacant) = parts.headers.entry(HOST) {
            let from_uri = match (parts.uri.authority(), host) {
                // The usual case: the URI names the service itself, whose header value is ready.
                (Some(a), Some(h)) if a.as_str().as_bytes() == h.as_bytes() => Some(h.clone()),
                (Some(a), _) => HeaderValue::from_str(a.as_str()).ok(),
                (None, _) => None,
            };
            if let Some(h) = from_uri.or_else(|| host.cloned()) {
                vacant.insert(h);
            }
        }
        let grpc = mesh_core::grpc::is_grpc(&parts.headers);
        if let Inner::Hyper(_, version) = &self.inner {
            parts.version = if grpc { Version::HTTP_2 } else { *version };
        }
        if grpc {
            propagate_deadline(&mut parts);
        }
        let spare = spare_extensions(&mut parts.extensions);
        match endpoint_uri(std::mem::take(&mut parts.uri), endpoint, authority) {
            Ok(uri) => parts.uri = uri,
            Err(e) => {
                return ResponseFuture::failed(
                    endpoint,
                    ClusterError::transport(Outcome::Reset, endpoint, e),
                );
            }
        }
        let req = Request::from_parts(parts, body);
        match &self.inner {
            Inner::Hyper(clients, _) => {
                let client = if grpc {
                    clients.for_grpc()
                } else {
                    &clients.main
                };
                ResponseFuture::hyper(endpoint, client.request(req), spare)
            }
            Inner::InProcess(answer) => {
                ResponseFuture::in_process(endpoint, answer(endpoint, req), spare)
            }
        }
    }
}

/// The request's extension map, taken for the answer's [`Upstream`](crate::context::Upstream)
/// when it holds nothing but the mesh's own per-call values (the split's target, the call's and
/// the try's deadlines, the caller's address, tonic's method), which no upstream reads: an
/// upstream over the network never sees a request's extensions. The answer of a connection
/// comes with no map of its own, so the `Upstream` goes into this one, emptied, instead of into
/// a new one (two allocations and a table set-up fewer per call). A map that carries anything
/// else goes with the request, untouched.
fn spare_extensions(ext: &mut http::Extensions) -> Option<http::Extensions> {
    use crate::context::{AttemptDeadline, SourceAddr, Target};
    use mesh_core::grpc::Deadline;
    let only_known = match ext.len() {
        0 => false,
        // The usual request: the split's target alone.
        1 => ext.get::<Target>().is_some(),
        // A gRPC call: the target, its deadline and tonic's method, looked up in that order
        // until every value is accounted for.
        n => {
            let mut known = usize::from(ext.get::<Target>().is_some())
                + usize::from(ext.get::<Deadline>().is_some());
            if known < n {
                known += tonic_method(ext);
            }
            if known < n {
                known += usize::from(ext.get::<SourceAddr>().is_some());
            }
            if known < n {
                known += usize::from(ext.get::<AttemptDeadline>().is_some());
            }
            known == n
        }
    };
    if !only_known {
        return None;
    }
    // Emptied in place: the map keeps its table for the answer's value.
    ext.clear();
    Some(std::mem::take(ext))
}

/// Whether tonic's method rides on a request (tonic puts it on every call it makes).
#[cfg(feature = "tonic")]
fn tonic_method(ext: &http::Extensions) -> usize {
    usize::from(ext.get::<tonic::GrpcMethod<'static>>().is_some())
}

#[cfg(not(feature = "tonic"))]
fn tonic_method(_: &http::Extensions) -> usize {
    0
}

/// Sends the time left before the call's deadline (the caller's `grpc-timeout`, capped by the
/// route timeout, and the try's `perTryTimeout`) as the upstream's `grpc-timeout`.
fn propagate_deadline(parts: &mut http::request::Parts) {
    let call = parts
        .extensions
        .get::<mesh_core::grpc::Deadline>()
        .map(|d| d.at);
    let attempt = parts
        .extensions
        .get::<crate::context::AttemptDeadline>()
        .map(|d| d.at);
    let at = match (call, attempt) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => match a.or(b) {
            Some(at) => at,
            None => return,
        },
    };
    let left = at.saturating_duration_since(tokio::time::Instant::now());
    parts.headers.insert(
        mesh_core::grpc::GRPC_TIMEOUT,
        mesh_core::grpc::encode_timeout(left),
    );
}

/// `ip:port` of `endpoint` as a URI authority (`None` cannot happen for a socket address).
pub fn endpoint_authority(endpoint: SocketAddr) -> Option<Authority> {
    Authority::try_from(endpoint.to_string()).ok()
}

/// `uri`'s path and query under `http://{endpoint}` (no copy of the path).
fn endpoint_uri(
    uri: Uri,
    endpoint: SocketAddr,
    authority: Option<&Authority>,
) -> Result<Uri, http::Error> {
    let mut parts = uri.into_parts();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(match authority {
        Some(a) => a.clone(),
        None => Authority::try_from(endpoint.to_string())?,
    });
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    Ok(Uri::from_parts(parts)?)
}

/// A failed request as a [`ClusterError`]. A TLS alert from the server after our side of the
/// handshake completed (TLS 1.3 servers refuse a client certificate that way) is a failed
/// handshake too: a connect failure with a [`TlsError`], not a reset.
fn transport_error(endpoint: SocketAddr, err: hyper_util::client::legacy::Error) -> ClusterError {
    if TlsError::find(&err).is_none()
        && let Some(reason) = tls_alert(&err)
    {
        let tls = TlsError::new(endpoint, reason);
        return ClusterError::transport(Outcome::ConnectFailure, endpoint, tls);
    }
    ClusterError::transport(classify(&err), endpoint, err)
}

/// The rustls error inside `err`'s chain, if any.
fn tls_alert(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(err);
    for _ in 0..16 {
        let e = cur?;
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(tls.to_string());
        }
        cur = e.source();
    }
    None
}

/// The outcome of a failed request.
///
/// The request body is the downstream's: when reading it fails (broken chunked framing, a body
/// shorter than its `content-length`, a client that went away), hyper reports a *user* error
/// (HTTP/1) or resets the stream itself (HTTP/2). That is the client's failure, not the
/// upstream's: [`Outcome::DownstreamError`], which is neither retried nor counted by outlier
/// detection.
fn classify(err: &hyper_util::client::legacy::Error) -> Outcome {
    if err.is_connect() {
        return Outcome::ConnectFailure;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    for _ in 0..16 {
        let Some(e) = cur else { break };
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && h.is_user()
        {
            return Outcome::DownstreamError;
        }
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            if h2.reason() == Some(h2::Reason::REFUSED_STREAM) {
                return Outcome::RefusedStream;
            }
            // A reset this side sent (not the peer, not a protocol violation h2 detected):
            // hyper resets the stream when the request body fails.
            if h2.is_reset() && !h2.is_remote() && !h2.is_library() {
                return Outcome::DownstreamError;
            }
        }
        cur = e.source();
    }
    Outcome::Reset
}

#[cfg(test)]
mod tests;
