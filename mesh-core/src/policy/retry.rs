//! The checked retry policy of a route: `retries` (attempts, `perTryTimeout`, `retryOn`,
//! `backoff`). Built by compile, which has checked every field, so its values cannot be
//! invalid: the fields are private and the constructors refuse what Envoy would (a zero
//! backoff or per-try timeout), and the retry layer uses them without fallbacks.

use std::time::Duration;

/// Why a [`RetryPolicy`] or [`Backoff`] cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RetryPolicyError {
    /// The backoff's base interval is zero.
    #[error("backoff: base interval must be greater than zero")]
    ZeroBackoff,
    /// The per-try timeout is zero.
    #[error("perTryTimeout: must be greater than zero")]
    ZeroPerTryTimeout,
}

/// Exponential backoff between retries (`backoff`): the base interval and the cap, Envoy's
/// ten times the base. Before retry `n` (0-based) the retry layer waits a uniformly random
/// time below [`ceiling(n)`](Self::ceiling) (full jitter).
///
/// ```
/// use std::time::Duration;
/// use mesh_core::policy::Backoff;
///
/// let b = Backoff::new(Duration::from_millis(25)).unwrap();
/// assert_eq!(b.ceiling(0), Duration::from_millis(25));
/// assert_eq!(b.ceiling(2), Duration::from_millis(100));
/// assert_eq!(b.ceiling(9), Duration::from_millis(250));
/// assert!(Backoff::new(Duration::ZERO).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// Base interval `base` (greater than zero), capped at ten times `base`.
    pub fn new(base: Duration) -> Result<Self, RetryPolicyError> {
        if base.is_zero() {
            return Err(RetryPolicyError::ZeroBackoff);
        }
        Ok(Self {
            base,
            max: base.saturating_mul(10),
        })
    }

    /// The base interval.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The cap.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The upper bound of the wait before retry number `retry` (0 for the first retry):
    /// `min(base × 2^retry, max)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

impl Default for Backoff {
    /// Envoy's default: 25 ms base, 250 ms cap.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(25),
            max: Duration::from_millis(250),
        }
    }
}

/// The retry policy of a route.
///
/// ```
/// use std::time::Duration;
/// use mesh_core::policy::{Backoff, RetryOn, RetryPolicy};
///
/// let p = RetryPolicy::new(3, RetryOn::istio_default())
///     .with_per_try_timeout(Duration::from_secs(2))
///     .unwrap()
///     .with_backoff(Backoff::new(Duration::from_millis(50)).unwrap());
/// assert_eq!(p.attempts(), 3);
/// assert_eq!(p.backoff().base(), Duration::from_millis(50));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    attempts: u32,
    per_try_timeout: Option<Duration>,
    retry_on: RetryOn,
    backoff: Backoff,
}

impl Default for RetryPolicy {
    /// Istio's default when a route has no `retries`: 2 attempts on connect-failure,
    /// refused-stream, unavailable, cancelled and retriable-status-codes (503).
    fn default() -> Self {
        Self::new(2, RetryOn::istio_default())
    }
}

impl RetryPolicy {
    /// `attempts` retries on `retry_on`, with Envoy's default backoff and no per-try timeout.
    pub fn new(attempts: u32, retry_on: RetryOn) -> Self {
        Self {
            attempts,
            per_try_timeout: None,
            retry_on,
            backoff: Backoff::default(),
        }
    }

    /// A policy that never retries.
    pub fn disabled() -> Self {
        Self::new(0, RetryOn::istio_default())
    }

    /// With `perTryTimeout` (greater than zero).
    pub fn with_per_try_timeout(mut self, timeout: Duration) -> Result<Self, RetryPolicyError> {
        if timeout.is_zero() {
            return Err(RetryPolicyError::ZeroPerTryTimeout);
        }
        self.per_try_timeout = Some(timeout);
        Ok(self)
    }

    /// With `backoff`.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// `attempts`: retries after the first try. 0 disables retries.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// `perTryTimeout`; `None` means each try may use the whole route timeout.
    pub fn per_try_timeout(&self) -> Option<Duration> {
        self.per_try_timeout
    }

    /// `retryOn`.
    pub fn retry_on(&self) -> &RetryOn {
        &self.retry_on
    }

    /// `backoff`: the base interval (Envoy's default 25 ms), jittered exponentially.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }
}

/// Envoy's `retry_on` vocabulary as Istio accepts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryCondition {
    /// `5xx`: any 5xx answer, or no answer at all (reset, connect failure, timeout of a try).
    FiveXx,
    /// `gateway-error`: 502, 503, 504.
    GatewayError,
    /// `reset`: the connection or stream was reset, or a try timed out, before an answer.
    Reset,
    /// `connect-failure`: no connection could be made.
    ConnectFailure,
    /// `retriable-4xx`: 409.
    Retriable4xx,
    /// `refused-stream`: the server refused the stream (HTTP/2 REFUSED_STREAM).
    RefusedStream,
    /// `retriable-status-codes`: the codes in [`RetryOn::status_codes`].
    RetriableStatusCodes,
    /// `retriable-headers`: accepted for compatibility; needs header rules to act.
    RetriableHeaders,
    /// `envoy-ratelimited`: a 429 carrying `x-envoy-ratelimited`.
    EnvoyRatelimited,
    /// gRPC `cancelled`.
    Cancelled,
    /// gRPC `deadline-exceeded`.
    DeadlineExceeded,
    /// gRPC `internal`.
    Internal,
    /// gRPC `resource-exhausted`.
    ResourceExhausted,
    /// gRPC `unavailable`.
    Unavailable,
}

/// A parsed `retryOn` value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// The named conditions.
    pub conditions: Vec<RetryCondition>,
    /// Status codes that are retriable: numeric entries of `retryOn`, plus 503 when
    /// `retriable-status-codes` is listed without any code (Istio's default set).
    pub status_codes: Vec<u16>,
}

impl RetryOn {
    /// Istio's default `retryOn`: connect-failure, refused-stream, unavailable, cancelled,
    /// retriable-status-codes (with 503).
    pub fn istio_default() -> Self {
        Self {
            conditions: vec![
                RetryCondition::ConnectFailure,
                RetryCondition::RefusedStream,
                RetryCondition::Unavailable,
                RetryCondition::Cancelled,
                RetryCondition::RetriableStatusCodes,
            ],
            status_codes: vec![503],
        }
    }

    /// Whether `condition` is listed.
    pub fn has(&self, condition: RetryCondition) -> bool {
        self.conditions.contains(&condition)
    }
}
