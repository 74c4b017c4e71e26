//! Traffic mirroring (shadowing): a copy of the request to another destination, fire and forget.
//!
//! As Envoy's `request_mirror_policies`: for each mirror, drawn with its `percent`, a copy of the
//! request goes to the mirror's destination (the [`Target`] extension names its host and
//! subset) with the authority's host suffixed `-shadow` (`service2:80` → `service2-shadow:80`),
//! so the receiver can tell shadow traffic apart. Its answer is discarded. The primary never
//! waits for the copy and never sees its failure:
//! - copies in flight are bounded (64 by default) with a non-waiting semaphore; a copy that
//!   finds no room is dropped and counted;
//! - the request body is buffered for the copy only when its length is known and at most the
//!   limit (64 KiB by default); otherwise the copy is skipped and counted;
//! - each copy has its own deadline (10 s by default), so a hung shadow frees its slot.
//!
//! ```
//! use mesh_client::mirror::MirrorLayer;
//! use mesh_core::policy::{Destination, Mirror};
//!
//! let shadow = tower::service_fn(|_req: http::Request<mesh_client::body::BoxBody>| async {
//!     Ok::<_, mesh_client::BoxError>(http::Response::new(mesh_client::body::empty()))
//! });
//! let mirror = Mirror {
//!     destination: Destination { host: "service2".into(), subset: Some("v2".into()), port: None },
//!     percent: 100.0,
//! };
//! let _layer = MirrorLayer::new(vec![mirror], shadow);
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Authority;
use http::{HeaderValue, Request, Response};
use mesh_core::policy::Mirror;
use tokio::sync::Semaphore;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};
use tracing::Instrument as _;

use crate::BoxError;
use crate::body::{self, BoxBody, BoxResponseFuture};
use crate::context::Target;
use crate::random::Random;
use crate::retry::replay::{self, Buffered};
use crate::route::matching::split_authority;
use crate::stats::ClientStats;

/// Default bound on mirror copies in flight.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// Default deadline of one mirror copy.
pub const DEFAULT_MIRROR_TIMEOUT: Duration = Duration::from_secs(10);

type Shadow = BoxCloneSyncService<Request<BoxBody>, Response<BoxBody>, BoxError>;

#[derive(Clone)]
struct Shared {
    mirrors: Arc<[Mirror]>,
    shadow: Shadow,
    permits: Arc<Semaphore>,
    max_body: u64,
    timeout: Duration,
    random: Random,
    stats: Arc<ClientStats>,
}

/// Layer copying requests to mirror destinations.
#[derive(Clone)]
pub struct MirrorLayer {
    shared: Shared,
}

impl fmt::Debug for MirrorLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MirrorLayer")
            .field("mirrors", &self.shared.mirrors)
            .finish()
    }
}

impl MirrorLayer {
    /// Mirrors to `mirrors`, sending copies through `shadow` (usually the same cluster service
    /// the primary uses: it reads the copy's [`Target`]).
    pub fn new<S>(mirrors: Vec<Mirror>, shadow: S) -> Self
    where
        S: Service<Request<BoxBody>, Response = Response<BoxBody>> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        let shadow = BoxCloneSyncService::new(shadow.map_err(Into::into));
        Self {
            shared: Shared {
                mirrors: mirrors.into(),
                shadow,
                permits: Arc::new(Semaphore::new(DEFAULT_MAX_IN_FLIGHT)),
                max_body: replay::DEFAULT_MAX_REPLAY_BYTES,
                timeout: DEFAULT_MIRROR_TIMEOUT,
                random: Random::thread(),
                stats: Arc::default(),
            },
        }
    }

    /// Bounds copies in flight to `max` (shared by every clone of this layer's services).
    pub fn with_max_in_flight(mut self, max: usize) -> Self {
        self.shared.permits = Arc::new(Semaphore::new(max));
        self
    }

    /// Shares the in-flight bound with other mirror layers (e.g. every route of a client).
    pub fn with_permits(mut self, permits: Arc<Semaphore>) -> Self {
        self.shared.permits = permits;
        self
    }

    /// Buffers bodies up to `bytes` for the copy (default 64 KiB).
    pub fn with_max_body_bytes(mut self, bytes: u64) -> Self {
        self.shared.max_body = bytes;
        self
    }

    /// Deadline of each copy (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.shared.timeout = timeout;
        self
    }

    /// Draws with `random` (seeded in tests).
    pub fn with_random(mut self, random: Random) -> Self {
        self.shared.random = random;
        self
    }

    /// Counts decisions in `stats`.
    pub fn with_stats(mut self, stats: Arc<ClientStats>) -> Self {
        self.shared.stats = stats;
        self
    }
}

impl<S> Layer<S> for MirrorLayer {
    type Service = MirrorService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MirrorService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Service sending the request to `inner` and copies to the mirrors.
#[derive(Clone)]
pub struct MirrorService<S> {
    inner: S,
    shared: Shared,
}

impl<S: fmt::Debug> fmt::Debug for MirrorService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MirrorService")
            .field("inner", &self.inner)
            .field("mirrors", &self.shared.mirrors)
            .finish()
    }
}

impl<S, F, E> Service<Request<BoxBody>> for MirrorService<S>
where
    S: Service<Request<BoxBody>, Response = Response<BoxBody>, Error = E, Future = F>
        + Clone
        + Send
        + 'static,
    F: Future<Output = Result<Response<BoxBody>, E>> + Send + 'static,
    E: Into<BoxError>,
{
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<BoxBody>) -> Self::Future {
        let chosen: Vec<Mirror> = self
            .shared
            .mirrors
            .iter()
            .filter(|m| self.shared.random.percent(m.percent))
            .cloned()
            .collect();
        if chosen.is_empty() {
            return ResponseFuture {
                inner: call_boxed(&mut self.inner, request),
            };
        }
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        let (parts, body) = request.into_parts();
        ResponseFuture {
            inner: Box::pin(async move {
                let body = match replay::buffer(body, shared.max_body).await? {
                    Buffered::Bytes(bytes) => {
                        for mirror in &chosen {
                            send_copy(&shared, mirror, &parts, bytes.clone());
                        }
                        body::full(bytes)
                    }
                    Buffered::Stream(body) => {
                        for mirror in &chosen {
                            shared.stats.mirror_dropped(&mirror.destination.host, false);
                        }
                        tracing::debug!(
                            mirrored = false,
                            mirror_dropped = "body",
                            "mirror skipped: body too large or streaming"
                        );
                        body
                    }
                };
                call_boxed(&mut ready, Request::from_parts(parts, body)).await
            }),
        }
    }
}

fn call_boxed<S, F, E>(service: &mut S, request: Request<BoxBody>) -> BoxResponseFuture
where
    S: Service<Request<BoxBody>, Response = Response<BoxBody>, Error = E, Future = F>,
    F: Future<Output = Result<Response<BoxBody>, E>> + Send + 'static,
    E: Into<BoxError>,
{
    let future = service.call(request);
    Box::pin(async move { future.await.map_err(Into::into) })
}

fn send_copy(shared: &Shared, mirror: &Mirror, parts: &http::request::Parts, body: Bytes) {
    let Ok(permit) = Arc::clone(&shared.permits).try_acquire_owned() else {
        shared.stats.mirror_dropped(&mirror.destination.host, true);
        tracing::debug!(mirrored = false, mirror_dropped = "in_flight", host = %mirror.destination.host, "mirror dropped: too many in flight");
        return;
    };
    let mut copy = Request::from_parts(parts.clone(), body::full(body));
    shadow_authority(&mut copy);
    copy.extensions_mut()
        .insert(Target::new(mirror.destination.clone()));
    let shadow = shared.shadow.clone();
    let stats = shared.stats.clone();
    let limit = shared.timeout;
    let host = mirror.destination.host.clone();
    stats.mirror_sent(&host);
    tracing::debug!(mirrored = true, %host, subset = mirror.destination.subset.as_deref().unwrap_or(""), "mirror sent");
    let span = tracing::info_span!(
        target: mesh_telemetry::REQUEST_SPANS,
        "mirror",
        otel.kind = "client",
        http.request.method = %copy.method(),
        server.address = %host,
        mirror = true,
    );
    crate::telemetry::inject_child(&span, copy.headers_mut());
    let copy: BoxResponseFuture = Box::pin(shadow.oneshot(copy));
    let copy = copy.instrument(span);
    tokio::spawn(async move {
        let _permit = permit;
        match tokio::time::timeout(limit, copy).await {
            Ok(Ok(response)) => {
                // Drain the answer so the connection can be reused; its content is discarded.
                let _ = http_body_util::BodyExt::collect(response.into_body()).await;
            }
            Ok(Err(error)) => {
                stats.mirrors_failed.incr();
                tracing::debug!(%host, %error, "mirror failed");
            }
            Err(_) => {
                stats.mirrors_failed.incr();
                tracing::debug!(%host, "mirror timed out");
            }
        }
    });
}

/// The host of `authority` with `-shadow` appended, port kept: `service2:80` → `service2-shadow:80`.
pub fn shadow_host(authority: &str) -> String {
    let (host, port) = split_authority(authority);
    match port {
        Some(p) => format!("{host}-shadow:{p}"),
        None => format!("{host}-shadow"),
    }
}

fn shadow_authority<B>(request: &mut Request<B>) {
    let current = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            request
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        });
    let Some(current) = current else { return };
    let shadow = shadow_host(&current);
    if let (Some(_), Ok(authority)) = (request.uri().authority(), shadow.parse::<Authority>()) {
        let mut parts = request.uri().clone().into_parts();
        parts.authority = Some(authority);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    if let Ok(value) = HeaderValue::from_str(&shadow) {
        request.headers_mut().insert(http::header::HOST, value);
    }
}

/// Response future of [`MirrorService`]: the primary's answer only.
pub struct ResponseFuture {
    inner: BoxResponseFuture,
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mirror::ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests;
