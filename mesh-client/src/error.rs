//! The error the lower half of the client (clusters, balancer, circuit breaker, transport)
//! returns, and [`outcome_of`], which reads the shared [`Outcome`] back out of any stack error.
//!
//! Layers above the cluster (retry, metrics, the place where errors become 503s) never need to
//! know which piece failed: they ask `outcome_of(&err)` and decide from the [`Outcome`], the same
//! classification outlier detection uses.
//!
//! ```
//! use mesh_client::error::{outcome_of, ClusterError};
//! use mesh_client::BoxError;
//! use mesh_core::classify::Outcome;
//!
//! let err: BoxError = ClusterError::overflow(None).into();
//! assert_eq!(outcome_of(&err), Outcome::Overflow);
//! assert_eq!(err.to_string(), "upstream overflow: a connection pool limit was reached");
//! ```

use std::net::SocketAddr;

use mesh_core::classify::Outcome;

use crate::BoxError;

/// An attempt failed below the routing layers: no endpoint, a pool limit, or the transport.
///
/// Carries the [`Outcome`] that retry, outlier detection and metrics decide from, the endpoint
/// that was tried (when one was), and the underlying error (when there is one).
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(self))]
pub struct ClusterError {
    /// What happened, in the shared classification.
    pub outcome: Outcome,
    /// The endpoint the attempt went to, when one was chosen.
    pub endpoint: Option<SocketAddr>,
    /// The underlying error (hyper's, an I/O error, ...), when there is one.
    #[source]
    pub source: Option<BoxError>,
}

/// A route's subset that no DestinationRule defines: the cluster does not exist (Envoy's
/// `NC`, "no cluster found").
#[derive(Debug, thiserror::Error)]
#[error("no cluster found: subset `{subset}` of host `{host}` is not defined by a DestinationRule")]
pub struct NoClusterFound {
    /// The destination host.
    pub host: String,
    /// The subset asked for.
    pub subset: String,
}

fn describe(e: &ClusterError) -> String {
    if let Some(nc) = e
        .source
        .as_ref()
        .and_then(|s| s.downcast_ref::<NoClusterFound>())
    {
        return nc.to_string();
    }
    let what = match e.outcome {
        Outcome::Response { status, .. } => format!("upstream answered {status}"),
        Outcome::ConnectFailure => "upstream connect failure".to_owned(),
        Outcome::Reset => "upstream reset before a complete answer".to_owned(),
        Outcome::RefusedStream => "upstream refused the stream".to_owned(),
        Outcome::Timeout => "upstream attempt timed out".to_owned(),
        Outcome::Overflow => "upstream overflow: a connection pool limit was reached".to_owned(),
        Outcome::NoHealthyUpstream => "no healthy upstream".to_owned(),
        Outcome::DownstreamError => {
            "downstream request failed: its body was malformed or ended early".to_owned()
        }
    };
    match e.endpoint {
        Some(ep) => format!("{what} (endpoint {ep})"),
        None => what,
    }
}

impl ClusterError {
    /// An error with `outcome`, no endpoint and no source.
    pub fn new(outcome: Outcome) -> Self {
        Self {
            outcome,
            endpoint: None,
            source: None,
        }
    }

    /// No endpoint was available: none registered, unknown host or subset, or all ejected.
    pub fn no_healthy_upstream() -> Self {
        Self::new(Outcome::NoHealthyUpstream)
    }

    /// The destination names a subset that no DestinationRule defines (yet): Envoy's "no
    /// cluster found", answered 503 with flag `NC` (in a cluster, until the rule arrives).
    pub fn no_cluster(host: &str, subset: &str) -> Self {
        Self {
            outcome: Outcome::NoHealthyUpstream,
            endpoint: None,
            source: Some(Box::new(NoClusterFound {
                host: host.to_owned(),
                subset: subset.to_owned(),
            })),
        }
    }

    /// Whether the destination's subset is not defined by any DestinationRule (flag `NC`).
    pub fn is_no_cluster(&self) -> bool {
        self.source
            .as_ref()
            .is_some_and(|s| s.is::<NoClusterFound>())
    }

    /// The downstream's request body failed (malformed, cut short) while it was being read or
    /// forwarded: the client's fault, not the upstream's.
    pub fn downstream(source: impl Into<BoxError>) -> Self {
        Self {
            outcome: Outcome::DownstreamError,
            endpoint: None,
            source: Some(source.into()),
        }
    }

    /// A connection-pool limit refused the attempt before it was sent.
    pub fn overflow(endpoint: Option<SocketAddr>) -> Self {
        Self {
            outcome: Outcome::Overflow,
            endpoint,
            source: None,
        }
    }

    /// A transport failure at `endpoint` with its cause.
    pub fn transport(outcome: Outcome, endpoint: SocketAddr, source: impl Into<BoxError>) -> Self {
        Self {
            outcome,
            endpoint: Some(endpoint),
            source: Some(source.into()),
        }
    }

    /// Sets the endpoint.
    pub fn with_endpoint(mut self, endpoint: SocketAddr) -> Self {
        self.endpoint = Some(endpoint);
        self
    }

    /// Whether a connection-pool limit refused the attempt (flag `UO`).
    pub fn is_overflow(&self) -> bool {
        self.outcome == Outcome::Overflow
    }

    /// Whether no endpoint was available (flag `UH`).
    pub fn is_no_healthy_upstream(&self) -> bool {
        self.outcome == Outcome::NoHealthyUpstream
    }

    /// Whether no connection could be made (flag `UF`).
    pub fn is_connect_failure(&self) -> bool {
        self.outcome == Outcome::ConnectFailure
    }

    /// Whether the connection or stream was reset, or the stream refused (flag `UR`).
    pub fn is_reset(&self) -> bool {
        matches!(self.outcome, Outcome::Reset | Outcome::RefusedStream)
    }

    /// Whether the attempt timed out (flag `UT`).
    pub fn is_timeout(&self) -> bool {
        self.outcome == Outcome::Timeout
    }

    /// The Envoy response flag for this error.
    pub fn response_flag(&self) -> Option<&'static str> {
        self.outcome.response_flag()
    }
}

/// Reads the [`Outcome`] out of any error the client stack returns.
///
/// Looks through the error and its `source()` chain for a [`ClusterError`] (its outcome wins) or
/// a tower timeout (`Timeout`); anything else counts as [`Outcome::Reset`]: the attempt got no
/// complete answer.
pub fn outcome_of(err: &BoxError) -> Outcome {
    outcome_of_dyn(err.as_ref())
}

/// [`outcome_of`] for a borrowed error.
pub fn outcome_of_dyn(err: &(dyn std::error::Error + 'static)) -> Outcome {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    // Bounded walk: error chains are short, but a cyclic `source()` must not hang us.
    for _ in 0..16 {
        let Some(e) = cur else { break };
        if let Some(c) = e.downcast_ref::<ClusterError>() {
            return c.outcome;
        }
        if e.is::<tower::timeout::error::Elapsed>() || e.is::<tokio::time::error::Elapsed>() {
            return Outcome::Timeout;
        }
        cur = e.source();
    }
    Outcome::Reset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_outcome_through_wrapping() {
        #[derive(Debug, thiserror::Error)]
        #[error("wrapped")]
        struct Wrap(#[source] ClusterError);
        let err: BoxError = Box::new(Wrap(ClusterError::no_healthy_upstream()));
        assert_eq!(outcome_of(&err), Outcome::NoHealthyUpstream);
    }

    #[test]
    fn unknown_errors_are_resets_and_timeouts_are_timeouts() {
        let err: BoxError = "boom".into();
        assert_eq!(outcome_of(&err), Outcome::Reset);
        let err: BoxError = Box::new(tower::timeout::error::Elapsed::new());
        assert_eq!(outcome_of(&err), Outcome::Timeout);
    }

    #[test]
    fn display_is_lowercase_and_names_endpoint() {
        let ep: SocketAddr = ([127, 0, 0, 1], 9).into();
        let e = ClusterError::new(Outcome::ConnectFailure).with_endpoint(ep);
        assert_eq!(
            e.to_string(),
            "upstream connect failure (endpoint 127.0.0.1:9)"
        );
        assert!(e.is_connect_failure());
        assert_eq!(e.response_flag(), Some("UF"));
    }
}
