//! The retry loop.
//!
//! Written as one `async` function behind a named, boxed future: the loop holds a buffered body,
//! a budget guard, a backoff timer and the attempt in flight, which an explicit state machine
//! would spell out at length for no gain in speed (one allocation per request).

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use mesh_core::classify::Outcome;
use tower::Service;
use tracing::Instrument as _;

use super::backoff;
use super::replay::{self, Buffered};
use super::tape::Tape;
use super::{PerTryTimeout, Settings, is_idempotent};
use crate::BoxError;
use crate::body::{self, BoxBody, BoxResponseFuture};
use crate::context::{AttemptDeadline, PreviousAttempts, Target, Upstream};
use crate::error::{ClusterError, outcome_of};
use crate::rescue::{add_flag, rescue};

/// Response future of [`Retry`](super::Retry).
pub struct ResponseFuture {
    inner: BoxResponseFuture,
}

impl ResponseFuture {
    pub(super) fn new<S>(service: S, request: Request<BoxBody>, settings: Arc<Settings>) -> Self
    where
        S: Service<Request<BoxBody>, Response = Response<BoxBody>> + Clone + Send + 'static,
        S::Error: Into<BoxError> + 'static,
        S::Future: Send + 'static,
    {
        Self {
            inner: Box::pin(run(service, request, settings)),
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("retry::ResponseFuture")
    }
}

/// The outcome an answer stands for (its status and any `grpc-status`).
pub fn outcome_of_response<B>(response: &Response<B>) -> Outcome {
    let grpc_status = response
        .headers()
        .get(&mesh_telemetry::message::GRPC_STATUS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Outcome::Response {
        status: response.status().as_u16(),
        grpc_status,
    }
}

async fn run<S>(
    mut service: S,
    request: Request<BoxBody>,
    settings: Arc<Settings>,
) -> Result<Response<BoxBody>, BoxError>
where
    S: Service<Request<BoxBody>, Response = Response<BoxBody>> + Clone + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    let policy = &settings.policy;
    let target = request.extensions().get::<Target>();
    let budget = settings.budgets.for_target(target);
    // The host is only needed to count retries: keep the shared target, name it when counting.
    let target = target.map(|t| Arc::clone(&t.destination));
    let _in_flight = budget.enter_request();

    if policy.attempts() == 0 {
        let result = attempt(&mut service, request, policy.per_try_timeout()).await;
        return finish(result, false, &settings);
    }

    let (mut parts, body) = request.into_parts();
    // The usual head carries no extension but the split's `Target`, which the loop keeps
    // anyway: the first attempt then takes the original extensions and a retry rebuilds them
    // from the target, instead of every attempt copying the map (three allocations).
    let mut first_extensions = match &target {
        Some(_) if parts.extensions.len() == 1 => Some(std::mem::take(&mut parts.extensions)),
        _ => None,
    };
    let host = || {
        target
            .as_deref()
            .map_or_else(|| parts.uri.host().unwrap_or(""), |d| d.host.as_str())
    };
    let grpc = mesh_core::grpc::is_grpc(&parts.headers);
    let (replay, mut first_body) = match replay::buffer(body, settings.max_replay_bytes).await? {
        Buffered::Bytes(bytes) => (Some(bytes), None),
        Buffered::Stream(body) => (None, Some(body)),
    };
    // A gRPC body has no length up front: record it as the first attempt streams it.
    let tape = match first_body.take() {
        Some(body) if grpc => Some(Tape::new(body, settings.max_replay_bytes)),
        other => {
            first_body = other;
            None
        }
    };
    // gRPC calls are POSTs; a `retryOn` naming their statuses says they may be sent again
    // (as gRPC's own retry policy does).
    let idempotent = is_idempotent(&parts.method) || grpc;
    let mut previous: Vec<SocketAddr> = Vec::new();
    let mut retry_guard = None;
    let mut retries_done = 0u32;

    loop {
        let body = match (&replay, first_body.take()) {
            // An empty body is boxed without an allocation.
            (Some(bytes), _) if bytes.is_empty() => body::empty(),
            (Some(bytes), _) => body::full(Bytes::clone(bytes)),
            (None, Some(body)) => body,
            (None, None) if tape.is_some() => tape.as_ref().map_or_else(body::empty, Tape::body),
            // Without a replayable body the loop ends after the first attempt (checked below).
            (None, None) => body::empty(),
        };
        let mut request = Request::from_parts(head(&parts, &mut first_extensions, &target), body);
        if !previous.is_empty() {
            request.extensions_mut().insert(PreviousAttempts {
                endpoints: previous.clone(),
            });
        }
        let span = if retries_done > 0 {
            service = service.clone();
            if let Err(e) = std::future::poll_fn(|cx| service.poll_ready(cx)).await {
                return Err(e.into());
            }
            retry_span(&mut request, retries_done)
        } else {
            tracing::Span::none()
        };
        let result = attempt(&mut service, request, policy.per_try_timeout())
            .instrument(span)
            .await;
        drop(retry_guard.take());

        let (outcome, endpoint) = match &result {
            Ok(response) => (
                outcome_of_response(response),
                response.extensions().get::<Upstream>().map(|u| u.endpoint),
            ),
            Err(error) if error.is::<PerTryTimeout>() => {
                settings.stats.per_try_timeouts.incr();
                (Outcome::Timeout, None)
            }
            Err(error) => (outcome_of(error), endpoint_of_error(error)),
        };
        if !outcome.is_retryable(policy.retry_on()) {
            return finish(result, false, &settings);
        }
        if retries_done >= policy.attempts() {
            settings.stats.retries_exhausted.incr();
            tracing::debug!(
                retries_exhausted = true,
                attempts = retries_done + 1,
                ?outcome,
                "retries exhausted"
            );
            return finish(result, true, &settings);
        }
        if !idempotent && !outcome.never_reached_server() {
            settings.stats.retries_skipped_non_idempotent.incr();
            tracing::debug!(retried = false, method = %parts.method, ?outcome, "not retrying a non-idempotent request that reached the server");
            return finish(result, false, &settings);
        }
        if replay.is_none() && !tape.as_ref().is_some_and(|t| t.replayable()) {
            settings.stats.retries_skipped_body.incr();
            tracing::debug!(
                retried = false,
                ?outcome,
                "not retrying: request body too large or streaming"
            );
            return finish(result, false, &settings);
        }
        let Some(guard) = budget.try_retry() else {
            settings.stats.budget_exhausted(host());
            tracing::debug!(
                retried = false,
                budget_exhausted = true,
                requests_in_flight = budget.requests_in_flight(),
                retries_in_flight = budget.retries_in_flight(),
                "retry budget exhausted"
            );
            return finish(result, false, &settings);
        };
        // Envoy's retry circuit breaker: `maxRetries` retries in flight across the cluster
        let permit = match (&settings.permits, target.as_deref()) {
            (Some(permits), Some(dest)) => match (permits.0)(dest) {
                Some(p) => Some(p),
                None => {
                    settings.stats.retries_overflow.incr();
                    tracing::debug!(
                        retried = false,
                        retry_overflow = true,
                        host = host(),
                        "retry refused: connectionPool.http.maxRetries retries in flight"
                    );
                    return finish(result, false, &settings);
                }
            },
            _ => None,
        };
        if let Some(endpoint) = endpoint.filter(|e| !previous.contains(e)) {
            previous.push(endpoint);
        }
        // Drop the failed answer (and its connection's body) before waiting.
        drop(result);
        let wait = backoff::delay(&policy.backoff(), retries_done, &settings.random);
        retries_done += 1;
        settings.stats.retried(host());
        tracing::debug!(
            retried = true,
            retry = retries_done,
            ?outcome,
            backoff_ms = wait.as_millis() as u64,
            "retrying"
        );
        tokio::time::sleep(wait).await;
        retry_guard = Some((guard, permit));
    }
}

/// The span of retry number `retry` (1 for the second attempt): a child of the call's
/// `outbound` span, whose context the attempt carries to the upstream.
fn retry_span(request: &mut Request<BoxBody>, retry: u32) -> tracing::Span {
    let span = tracing::info_span!(
        target: mesh_telemetry::REQUEST_SPANS,
        "retry",
        otel.kind = "client",
        http.request.method = %request.method(),
        retry.attempt = retry,
    );
    crate::telemetry::inject_child(&span, request.headers_mut());
    span
}

/// The head of the next attempt: a copy of `parts`, with the original extensions the first
/// time when they were only the target (then rebuilt from `target` for a retry).
fn head(
    parts: &http::request::Parts,
    first_extensions: &mut Option<http::Extensions>,
    target: &Option<Arc<mesh_core::policy::Destination>>,
) -> http::request::Parts {
    let (mut head, ()) = Request::new(()).into_parts();
    head.method = parts.method.clone();
    head.uri = parts.uri.clone();
    head.version = parts.version;
    head.headers = parts.headers.clone();
    head.extensions = match (first_extensions.take(), target) {
        (Some(original), _) => original,
        (None, Some(destination)) if parts.extensions.is_empty() => {
            let mut extensions = http::Extensions::new();
            extensions.insert(Target {
                destination: Arc::clone(destination),
            });
            extensions
        }
        (None, _) => parts.extensions.clone(),
    };
    head
}

/// How long after the attempt deadline the retry layer gives up on an attempt itself.
const BACKSTOP_SLACK: std::time::Duration = std::time::Duration::from_millis(10);

/// Sends one attempt. A plain function returning a future of a fixed type, so the retry loop's
/// own future never names `S::Future` (which trips rustc's higher-ranked `Send` check).
///
/// With a per-try timeout, the attempt carries an [`AttemptDeadline`] so the cluster ends it
/// itself (and tells outlier detection, as Envoy counts per-try timeouts against the endpoint);
/// a backstop a little later covers inner services that ignore the extension.
fn attempt<S, F, E>(
    service: &mut S,
    mut request: Request<BoxBody>,
    per_try: Option<std::time::Duration>,
) -> Attempt
where
    S: Service<Request<BoxBody>, Response = Response<BoxBody>, Error = E, Future = F>,
    F: Future<Output = Result<Response<BoxBody>, E>> + Send + 'static,
    E: Into<BoxError> + 'static,
{
    if let Some(limit) = per_try {
        request.extensions_mut().insert(AttemptDeadline {
            at: tokio::time::Instant::now() + limit,
        });
    }
    let future = boxed_once(service.call(request));
    match per_try {
        None => Attempt::Plain { future },
        Some(limit) => Attempt::Timed {
            future: tokio::time::timeout(limit + BACKSTOP_SLACK, future),
        },
    }
}

/// `future` as a [`BoxResponseFuture`]; one that is one already (the mesh's clusters answer
/// with one) is taken as it is instead of being boxed a second time.
fn boxed_once<F, E>(future: F) -> BoxResponseFuture
where
    F: Future<Output = Result<Response<BoxBody>, E>> + Send + 'static,
    E: Into<BoxError> + 'static,
{
    let mut slot = Some(future);
    let already = (&mut slot as &mut dyn std::any::Any)
        .downcast_mut::<Option<BoxResponseFuture>>()
        .and_then(Option::take);
    match (already, slot) {
        (Some(boxed), _) => boxed,
        (None, Some(future)) => Box::pin(async move { future.await.map_err(Into::into) }),
        // invariant: the slot is emptied only by the downcast, which then returned it.
        (None, None) => Box::pin(std::future::ready(Err("attempt future lost".into()))),
    }
}

pin_project_lite::pin_project! {
    /// One attempt in flight, with its per-try backstop when there is one.
    #[project = AttemptProj]
    enum Attempt {
        Plain { #[pin] future: BoxResponseFuture },
        Timed { #[pin] future: tokio::time::Timeout<BoxResponseFuture> },
    }
}

impl Future for Attempt {
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AttemptProj::Plain { future } => future.poll(cx),
            AttemptProj::Timed { future } => match std::task::ready!(future.poll(cx)) {
                Ok(result) => Poll::Ready(result),
                Err(_) => Poll::Ready(Err(Box::new(PerTryTimeout(())) as BoxError)),
            },
        }
    }
}

fn finish(
    result: Result<Response<BoxBody>, BoxError>,
    exhausted: bool,
    _settings: &Settings,
) -> Result<Response<BoxBody>, BoxError> {
    let mut response = match result {
        Ok(response) => response,
        Err(error) if error.is::<PerTryTimeout>() || outcome_of(&error) == Outcome::Timeout => {
            rescue(&PerTryTimeout(()))
        }
        Err(error) => return Err(error),
    };
    if exhausted {
        add_flag(&mut response, "URX");
    }
    Ok(response)
}

/// The endpoint a [`ClusterError`] in `error`'s source chain names.
fn endpoint_of_error(error: &BoxError) -> Option<SocketAddr> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    for _ in 0..16 {
        let e = current?;
        if let Some(c) = e.downcast_ref::<ClusterError>() {
            return c.endpoint;
        }
        current = e.source();
    }
    None
}
