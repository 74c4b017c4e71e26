//! Retries: attempts, per-try timeout, `retryOn`, jittered backoff, and a retry budget.
//!
//! Each attempt's [`Outcome`](mesh_core::classify::Outcome) (from the status, or from the
//! cluster's error through [`outcome_of`](crate::error::outcome_of)) decides, through
//! `Outcome::is_retryable`, whether to try again. A retry is sent only when:
//! - attempts remain (`attempts` counts retries after the first try);
//! - the method is idempotent (RFC 9110: GET, HEAD, OPTIONS, TRACE, PUT, DELETE), or the failed
//!   attempt certainly never reached the server (`Outcome::never_reached_server`), so a POST is
//!   never sent twice to an application; gRPC calls (POSTs) are the exception: `retryOn`'s gRPC
//!   statuses (`unavailable`, `cancelled`...) are read from a trailers-only answer's head, never
//!   from trailers after a body has started, and say the call may be sent again;
//! - the body could be buffered (at most 64 KiB by default, known length; streaming bodies are
//!   sent once, see [`replay`]); a gRPC body, which has no length up front, is taken as far as
//!   it is ready when the call is made (a unary call's whole message), recorded while the first
//!   attempt streams the rest, and replayed when it was at most the limit;
//! - the destination's [`Budget`] has room.
//!
//! Before each retry the endpoints that failed are listed in the
//! [`PreviousAttempts`](crate::context::PreviousAttempts) extension, so the balancer picks
//! another endpoint where one exists, and the layer waits a jittered backoff. When every attempt
//! was used on retryable failures the last answer gets the `URX` flag; a per-try timeout on the
//! last attempt answers `504 upstream request timeout` with `UT`.
//!
//! ```
//! use mesh_client::retry::{Budget, RetryLayer};
//! use mesh_core::policy::RetryPolicy;
//!
//! let _layer = RetryLayer::new(RetryPolicy::default(), Budget::default());
//! ```

mod attempt;
pub mod backoff;
pub mod budget;
mod error;
mod future;
mod head;
pub mod replay;
mod tape;

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use mesh_core::policy::{Destination, RetryPolicy};
use tower::{Layer, Service};

pub use self::backoff::Backoff;
pub use self::budget::Budget;
pub use self::error::PerTryTimeout;
pub use self::future::{ResponseFuture, outcome_of_response};
use crate::BoxError;
use crate::body::BoxBody;
use crate::context::Target;
use crate::random::Random;
use crate::stats::ClientStats;

/// Which [`Budget`] a request counts against: one for all, one per destination, or resolved
/// per request (e.g. from a registry shared across config reloads).
#[derive(Clone)]
pub struct Budgets {
    kind: BudgetsKind,
}

type Resolver = Arc<dyn Fn(Option<&Target>) -> Budget + Send + Sync>;

#[derive(Clone)]
enum BudgetsKind {
    Single(Budget),
    PerDestination(Arc<[(Destination, Budget)]>, Budget),
    Resolve(Resolver),
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            BudgetsKind::Single(b) => f.debug_tuple("Budgets::Single").field(b).finish(),
            BudgetsKind::PerDestination(list, _) => f
                .debug_tuple("Budgets::PerDestination")
                .field(&list.len())
                .finish(),
            BudgetsKind::Resolve(_) => f.write_str("Budgets::Resolve"),
        }
    }
}

impl Default for Budgets {
    fn default() -> Self {
        Self::single(Budget::default())
    }
}

impl Budgets {
    /// One budget for every request.
    pub fn single(budget: Budget) -> Self {
        Self {
            kind: BudgetsKind::Single(budget),
        }
    }

    /// A budget per destination, and `fallback` for requests to any other.
    pub fn per_destination(by_destination: Vec<(Destination, Budget)>, fallback: Budget) -> Self {
        Self {
            kind: BudgetsKind::PerDestination(by_destination.into(), fallback),
        }
    }

    /// A budget resolved per request from its [`Target`].
    pub fn resolve(f: impl Fn(Option<&Target>) -> Budget + Send + Sync + 'static) -> Self {
        Self {
            kind: BudgetsKind::Resolve(Arc::new(f)),
        }
    }

    /// The budget for a request with `target`.
    pub fn for_target(&self, target: Option<&Target>) -> Budget {
        match &self.kind {
            BudgetsKind::Single(b) => b.clone(),
            BudgetsKind::PerDestination(list, fallback) => target
                .and_then(|t| list.iter().find(|(d, _)| *d == *t.destination))
                .map_or(fallback, |(_, b)| b)
                .clone(),
            BudgetsKind::Resolve(f) => f(target),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) policy: RetryPolicy,
    pub(crate) budgets: Budgets,
    pub(crate) random: Random,
    pub(crate) stats: Arc<ClientStats>,
    pub(crate) max_replay_bytes: u64,
    pub(crate) permits: Option<RetryPermits>,
    /// The inner service ends each attempt at its [`AttemptDeadline`] itself: no backstop.
    ///
    /// [`AttemptDeadline`]: crate::context::AttemptDeadline
    pub(crate) deadline_kept_below: bool,
}

/// Where a retry to a destination takes its `connectionPool.http.maxRetries` permit (Envoy's
/// retry circuit breaker: retries in flight across the destination's cluster). `None` from the
/// function: the limit is reached, the retry is not sent (counted as an overflow).
#[derive(Clone)]
pub struct RetryPermits(pub Arc<PermitFn>);

/// The function behind [`RetryPermits`].
pub type PermitFn = dyn Fn(&Destination) -> Option<crate::pool::RetryPermit> + Send + Sync;

impl std::fmt::Debug for RetryPermits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryPermits")
    }
}

/// Layer retrying failed attempts.
#[derive(Clone, Debug)]
pub struct RetryLayer {
    settings: Settings,
}

impl RetryLayer {
    /// Retries by `policy`, within `budget`.
    pub fn new(policy: RetryPolicy, budget: Budget) -> Self {
        Self::with_budgets(policy, Budgets::single(budget))
    }

    /// Retries by `policy`, within the budget of each request's destination.
    pub fn with_budgets(policy: RetryPolicy, budgets: Budgets) -> Self {
        Self {
            settings: Settings {
                policy,
                budgets,
                random: Random::thread(),
                stats: Arc::default(),
                max_replay_bytes: replay::DEFAULT_MAX_REPLAY_BYTES,
                permits: None,
                deadline_kept_below: false,
            },
        }
    }

    fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    /// Jitters with `random` (seeded in tests).
    pub fn with_random(mut self, random: Random) -> Self {
        self.settings_mut().random = random;
        self
    }

    /// Counts decisions in `stats`.
    pub fn with_stats(mut self, stats: Arc<ClientStats>) -> Self {
        self.settings_mut().stats = stats;
        self
    }

    /// Buffers request bodies up to `bytes` for replay (default 64 KiB).
    pub fn with_max_replay_bytes(mut self, bytes: u64) -> Self {
        self.settings_mut().max_replay_bytes = bytes;
        self
    }

    /// Takes a `maxRetries` permit from `permits` before each retry and holds it during the
    /// retried attempt; without a permit the retry is not sent (`ClientStats::retries_overflow`,
    /// Envoy's `upstream_rq_retry_overflow`).
    pub fn with_retry_permits(mut self, permits: RetryPermits) -> Self {
        self.settings_mut().permits = Some(permits);
        self
    }

    /// Says that the inner service ends each attempt at its
    /// [`AttemptDeadline`](crate::context::AttemptDeadline) itself, as the mesh's
    /// [`Clusters`](crate::cluster::Clusters) do: the layer then keeps no backstop timer of its
    /// own beside the per-try timeout (one timer fewer per attempt). Without it, an attempt
    /// that outlives its deadline by 10 ms is dropped and answered as a per-try timeout.
    pub fn with_deadline_kept_below(mut self) -> Self {
        self.settings_mut().deadline_kept_below = true;
        self
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            settings: Arc::new(self.settings.clone()),
        }
    }
}

/// Service retrying failed attempts of `inner`.
#[derive(Clone, Debug)]
pub struct Retry<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S> Retry<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S> Service<Request<BoxBody>> for Retry<S>
where
    S: Service<Request<BoxBody>, Response = Response<BoxBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<BoxBody>) -> Self::Future {
        // The ready service takes the first attempt; `self` keeps a fresh clone.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(ready, request, self.settings.clone())
    }
}

/// Whether RFC 9110 calls `method` idempotent.
pub fn is_idempotent(method: &http::Method) -> bool {
    use http::Method as M;
    [M::GET, M::HEAD, M::OPTIONS, M::TRACE, M::PUT, M::DELETE].contains(method)
}

#[cfg(test)]
mod tests;
