//! Errors of the rate limit layer.

use std::fmt;
use std::time::Duration;

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `total.requestsPerSecond`.
    Total,
    /// `identity.requestsPerSecond` (the client's own bucket, or the anonymous one).
    Identity,
    /// An `overrides[]` entry.
    Override,
}

/// A request over a limit; `rescue` answers it with 429 and `retry-after`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimited {
    scope: Scope,
    wait: Duration,
}

impl RateLimited {
    pub(crate) fn new(scope: Scope, wait: Duration) -> Self {
        Self { scope, wait }
    }

    /// The limit that refused the request.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// How long until a token is back.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// The `retry-after` value: whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.wait.as_secs() + u64::from(self.wait.subsec_nanos() > 0);
        secs.max(1)
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scope = match self.scope {
            Scope::Total => "total",
            Scope::Identity => "identity",
            Scope::Override => "override",
        };
        write!(
            f,
            "rate limited by the {scope} limit: retry in {:?}",
            self.wait
        )
    }
}

impl std::error::Error for RateLimited {}
