//! The retry loop, as an explicit state machine (tower's `retry/future.rs` pattern).
//!
//! The future is named and holds the inner service's future inline: no allocation of its own.
//! The first attempt is sent from [`Retry::call`](super::Retry) itself when the body needs no
//! buffering (the usual GET), with the ready service the call was given; a retry clones the
//! service, waits for its readiness, and gets its own span (none is made for the first try).
//!
//! ```text
//! Buffering ──▶ Attempt ──▶ (done)
//!                  ▲  │
//!  Readying ───────┘  ▼
//!      ▲           Backoff
//!      └──────────────┘
//! ```

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use http_body_util::combinators::Collect;
use mesh_core::classify::Outcome;
use mesh_core::policy::Destination;
use tower::Service;

use self::replay_box::ReplayBox;
#[cfg(test)]
pub(super) use self::replay_box::spare_replays;
use super::attempt::{Attempt, attempt};
use super::budget::{Budget, RequestGuard, RetryGuard};
use super::head::{Carried, SavedHeaders, head};
use super::tape::{self, Ready, Tape};
use super::{PerTryTimeout, Settings, backoff, is_idempotent};
use crate::BoxError;
use crate::body::{self, BoxBody};
use crate::context::{PreviousAttempts, Target, Upstream};
use crate::error::{ClusterError, outcome_of};
use crate::pool::RetryPermit;
use crate::rescue::{add_flag, rescue};

mod replay_box;

pin_project_lite::pin_project! {
    /// Response future of [`Retry`](super::Retry); see the [module docs](self).
    pub struct ResponseFuture<S>
    where
        S: Service<Request<BoxBody>>,
    {
        #[pin]
        state: State<S::Future>,
        service: S,
        settings: Arc<Settings>,
        // `None` without retries (`attempts: 0`): the request was sent as it came. Boxed: the
        // loop's state is the larger part of the retry's future, which every future above it
        // holds and moves; out of line, the client's future stays small enough (under 1 KiB)
        // that a caller's box of it comes from the allocator's per-thread cache. The box's
        // memory is reused from call to call (see `ReplayBox`).
        replay: Option<ReplayBox>,
        _in_flight: RequestGuard,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F> {
        // Reading a body of known, small size before the first attempt.
        Buffering { #[pin] collect: Collect<BoxBody> },
        // A retry: the fresh clone of the service is driven to readiness, then called.
        Readying,
        Attempt {
            #[pin] attempt: Attempt<F>,
            // The retry's span, entered while the attempt is polled (none on the first try).
            span: Option<tracing::Span>,
        },
        Backoff { #[pin] sleep: tokio::time::Sleep },
        Done,
    }
}

/// What the loop keeps to send the request again.
struct Replay {
    /// The head as it came: its headers and, when they are all of known types, its extensions
    /// are taken by the first attempt (see `head`).
    parts: http::request::Parts,
    /// The headers, saved for a retry before the first attempt takes them.
    saved: SavedHeaders,
    /// Whether an attempt has been sent (a retry's headers are then the saved ones).
    sent: bool,
    first_extensions: Option<http::Extensions>,
    /// What a retry rebuilds the extensions from (`None`: they are copied from `parts`).
    carried: Option<Carried>,
    target: Option<Arc<Destination>>,
    budget: Budget,
    /// The whole body, when it was small enough and of known size.
    bytes: Option<Bytes>,
    /// A body that could not be buffered, for the first attempt.
    first_body: Option<BoxBody>,
    /// A gRPC body recorded as the first attempt streams it.
    tape: Option<Arc<Tape>>,
    idempotent: bool,
    previous: Vec<SocketAddr>,
    /// The retry in flight's budget share and `maxRetries` permit (held from the decision to
    /// retry, through the backoff, to the retried attempt's answer).
    retry_guard: Option<(RetryGuard, Option<RetryPermit>)>,
    retries_done: u32,
}

impl<S> ResponseFuture<S>
where
    S: Service<Request<BoxBody>, Response = Response<BoxBody>> + Clone,
    S::Error: Into<BoxError>,
{
    pub(super) fn new(mut service: S, request: Request<BoxBody>, settings: Arc<Settings>) -> Self {
        let policy = &settings.policy;
        let target = request.extensions().get::<Target>();
        let budget = settings.budgets.for_target(target);
        let in_flight = budget.enter_request();
        if policy.attempts() == 0 {
            let attempt = attempt(&mut service, request, &settings);
            return Self {
                state: State::Attempt {
                    attempt,
                    span: None,
                },
                service,
                settings,
                replay: None,
                _in_flight: in_flight,
            };
        }
        // The host is only needed to count retries: keep the shared target, name it then.
        let target = target.map(|t| Arc::clone(&t.destination));
        let (mut parts, body) = request.into_parts();
        // The usual head carries only extensions the loop can rebuild (the split's `Target`, a
        // gRPC call's `Deadline` and tonic's method): the first attempt then takes the original
        // map and a retry rebuilds it, instead of every attempt copying the map (two allocations
        // and one per value).
        let carried = Carried::of(&parts.extensions);
        let first_extensions = carried
            .is_some()
            .then(|| std::mem::take(&mut parts.extensions));
        let grpc = mesh_core::grpc::is_grpc(&parts.headers);
        // The first attempt is sent the request's own headers; a retry gets a map of the saved
        // ones (see `head`).
        let saved = SavedHeaders::of(&parts.headers);
        // gRPC calls are POSTs; a `retryOn` naming their statuses says they may be sent again
        // (as gRPC's own retry policy does).
        let idempotent = is_idempotent(&parts.method) || grpc;
        let mut replay = ReplayBox::new(Replay {
            parts,
            saved,
            sent: false,
            first_extensions,
            carried,
            target,
            budget,
            bytes: None,
            first_body: None,
            tape: None,
            idempotent,
            previous: Vec::new(),
            retry_guard: None,
            retries_done: 0,
        });
        // Bodies of known size within the limit are buffered (`replay::buffer`'s rule); a gRPC
        // body, of no length up front, is taken as far as it is ready, and recorded as the
        // first attempt streams the rest (see `tape`).
        let limit = settings.max_replay_bytes;
        let state = if body.is_end_stream() {
            replay.bytes = Some(Bytes::new());
            replay.first_attempt(&mut service, &settings)
        } else if body.size_hint().upper().is_some_and(|upper| upper <= limit) {
            State::Buffering {
                collect: body.collect(),
            }
        } else {
            if grpc {
                // A unary call's message is ready now: replayed as bytes, with no tape.
                match tape::read_ready(body, limit) {
                    Ready::Whole(bytes) => replay.bytes = Some(bytes),
                    Ready::Tape(tape) => replay.tape = Some(tape),
                }
            } else {
                replay.first_body = Some(body);
            }
            replay.first_attempt(&mut service, &settings)
        };
        Self {
            state,
            service,
            settings,
            replay: Some(replay),
            _in_flight: in_flight,
        }
    }
}

impl Replay {
    /// The next attempt's request: a copy of the head, and the body again.
    fn request(&mut self) -> Request<BoxBody> {
        let body = match (&self.bytes, self.first_body.take(), &self.tape) {
            // An empty body is boxed without an allocation.
            (Some(bytes), _, _) if bytes.is_empty() => body::empty(),
            (Some(bytes), _, _) => body::full(Bytes::clone(bytes)),
            (None, Some(body), _) => body,
            (None, None, Some(tape)) => tape.body(),
            // Without a replayable body the loop ends after the first attempt (checked later).
            (None, None, None) => body::empty(),
        };
        let mut request = Request::from_parts(
            head(
                &mut self.parts,
                &mut self.sent,
                &self.saved,
                &mut self.first_extensions,
                &self.target,
                self.carried.as_ref(),
            ),
            body,
        );
        if !self.previous.is_empty() {
            request.extensions_mut().insert(PreviousAttempts {
                endpoints: self.previous.clone(),
            });
        }
        request
    }

    fn first_attempt<S>(&mut self, service: &mut S, settings: &Settings) -> State<S::Future>
    where
        S: Service<Request<BoxBody>>,
    {
        let request = self.request();
        State::Attempt {
            attempt: attempt(service, request, settings),
            span: None,
        }
    }

    fn host(&self) -> &str {
        self.target
            .as_deref()
            .map_or_else(|| self.parts.uri.host().unwrap_or(""), |d| d.host.as_str())
    }
}

impl<S> Future for ResponseFuture<S>
where
    S: Service<Request<BoxBody>, Response = Response<BoxBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let this = self.as_mut().project();
            let next = match this.state.project() {
                StateProj::Buffering { collect } => {
                    let collected = ready!(collect.poll(cx));
                    let Some(replay) = this.replay.as_mut() else {
                        return Poll::Ready(Err(lost()));
                    };
                    match collected {
                        Ok(collected) => replay.bytes = Some(collected.to_bytes()),
                        // The body is the downstream's: if it fails (cut short, malformed),
                        // that is its fault.
                        Err(e) => {
                            self.as_mut().project().state.set(State::Done);
                            return Poll::Ready(Err(ClusterError::downstream(e).into()));
                        }
                    }
                    replay.first_attempt(this.service, this.settings)
                }
                StateProj::Readying => {
                    if let Err(e) = ready!(this.service.poll_ready(cx)) {
                        self.as_mut().project().state.set(State::Done);
                        return Poll::Ready(Err(e.into()));
                    }
                    let Some(replay) = this.replay.as_mut() else {
                        return Poll::Ready(Err(lost()));
                    };
                    let mut request = replay.request();
                    let span = retry_span(&mut request, replay.retries_done);
                    State::Attempt {
                        attempt: attempt(this.service, request, this.settings),
                        span: Some(span),
                    }
                }
                StateProj::Attempt { attempt, span } => {
                    let _entered = span.as_ref().map(tracing::Span::enter);
                    let result = ready!(attempt.poll(cx));
                    drop(_entered);
                    match decide(result, this.replay.as_mut(), this.settings) {
                        Decision::Finish(result) => {
                            self.as_mut().project().state.set(State::Done);
                            return Poll::Ready(result);
                        }
                        Decision::Retry(wait) => State::Backoff {
                            sleep: tokio::time::sleep(wait),
                        },
                    }
                }
                StateProj::Backoff { sleep } => {
                    ready!(sleep.poll(cx));
                    // The service that took the last attempt is spent: a fresh clone retries.
                    *this.service = this.service.clone();
                    State::Readying
                }
                StateProj::Done => return Poll::Ready(Err(lost())),
            };
            self.as_mut().project().state.set(next);
        }
    }
}

impl<S: Service<Request<BoxBody>>> fmt::Debug for ResponseFuture<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("retry::ResponseFuture")
    }
}

fn lost() -> BoxError {
    "retry future polled after completion".into()
}

enum Decision {
    Finish(Result<Response<BoxBody>, BoxError>),
    Retry(std::time::Duration),
}

/// What to do after an attempt's `result`: answer, or retry after a backoff (the retry's
/// budget share and permit then taken).
fn decide(
    result: Result<Response<BoxBody>, BoxError>,
    replay: Option<&mut ReplayBox>,
    settings: &Settings,
) -> Decision {
    let Some(replay) = replay else {
        return Decision::Finish(finish(result, false));
    };
    drop(replay.retry_guard.take());
    let policy = &settings.policy;
    let (outcome, endpoint) = match &result {
        Ok(response) => {
            // One lookup: the cluster's classification of the head, when it sent the attempt.
            let upstream = response.extensions().get::<Upstream>();
            (
                upstream
                    .and_then(|u| u.outcome)
                    .unwrap_or_else(|| outcome_of_response(response)),
                upstream.map(|u| u.endpoint),
            )
        }
        Err(error) if error.is::<PerTryTimeout>() => {
            settings.stats.per_try_timeouts.incr();
            (Outcome::Timeout, None)
        }
        Err(error) => (outcome_of(error), endpoint_of_error(error)),
    };
    if !outcome.is_retryable(policy.retry_on()) {
        return Decision::Finish(finish(result, false));
    }
    if replay.retries_done >= policy.attempts() {
        settings.stats.retries_exhausted.incr();
        tracing::debug!(
            retries_exhausted = true,
            attempts = replay.retries_done + 1,
            ?outcome,
            "retries exhausted"
        );
        return Decision::Finish(finish(result, true));
    }
    if !replay.idempotent && !outcome.never_reached_server() {
        settings.stats.retries_skipped_non_idempotent.incr();
        tracing::debug!(retried = false, method = %replay.parts.method, ?outcome, "not retrying a non-idempotent request that reached the server");
        return Decision::Finish(finish(result, false));
    }
    if replay.bytes.is_none() && !replay.tape.as_ref().is_some_and(|t| t.replayable()) {
        settings.stats.retries_skipped_body.incr();
        tracing::debug!(
            retried = false,
            ?outcome,
            "not retrying: request body too large or streaming"
        );
        return Decision::Finish(finish(result, false));
    }
    let Some(guard) = replay.budget.try_retry() else {
        settings.stats.budget_exhausted(replay.host());
        tracing::debug!(
            retried = false,
            budget_exhausted = true,
            requests_in_flight = replay.budget.requests_in_flight(),
            retries_in_flight = replay.budget.retries_in_flight(),
            "retry budget exhausted"
        );
        return Decision::Finish(finish(result, false));
    };
    // Envoy's retry circuit breaker: `maxRetries` retries in flight across the cluster
    let permit = match (&settings.permits, replay.target.as_deref()) {
        (Some(permits), Some(dest)) => match (permits.0)(dest) {
            Some(p) => Some(p),
            None => {
                settings.stats.retries_overflow.incr();
                tracing::debug!(
                    retried = false,
                    retry_overflow = true,
                    host = replay.host(),
                    "retry refused: connectionPool.http.maxRetries retries in flight"
                );
                return Decision::Finish(finish(result, false));
            }
        },
        _ => None,
    };
    if let Some(endpoint) = endpoint.filter(|e| !replay.previous.contains(e)) {
        replay.previous.push(endpoint);
    }
    // Drop the failed answer (and its connection's body) before waiting.
    drop(result);
    let wait = backoff::delay(&policy.backoff(), replay.retries_done, &settings.random);
    replay.retries_done += 1;
    replay.retry_guard = Some((guard, permit));
    settings.stats.retried(replay.host());
    tracing::debug!(
        retried = true,
        retry = replay.retries_done,
        ?outcome,
        backoff_ms = wait.as_millis() as u64,
        "retrying"
    );
    Decision::Retry(wait)
}

/// The outcome an answer stands for (its status and any `grpc-status` in its head); the
/// cluster classifies each attempt's answer with it too.
pub fn outcome_of_response<B>(response: &Response<B>) -> Outcome {
    Outcome::Response {
        status: response.status().as_u16(),
        grpc_status: mesh_core::grpc::status_of(response.headers()),
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

fn finish(
    result: Result<Response<BoxBody>, BoxError>,
    exhausted: bool,
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
