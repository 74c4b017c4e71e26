//! One definition of what an attempt's outcome is, shared by retry, outlier detection and metrics.
//!
//! Envoy decides retryability, ejection and metric flags from the same facts about an attempt:
//! the status code, or the transport failure that happened instead of an answer. Keeping the
//! classification in one place means a "5xx" means the same thing to every layer.

use crate::policy::{RetryCondition, RetryOn};

/// What happened to one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// An answer arrived with this status (and gRPC status when the answer carried one).
    Response {
        /// HTTP status code.
        status: u16,
        /// `grpc-status`, when present.
        grpc_status: Option<u32>,
    },
    /// No connection could be made (refused, unreachable, connect timeout).
    ConnectFailure,
    /// The connection or stream was reset before a complete answer.
    Reset,
    /// The server refused the stream (HTTP/2 REFUSED_STREAM): it never processed the request.
    RefusedStream,
    /// The attempt's own deadline (perTryTimeout) passed.
    Timeout,
    /// A local limit refused the attempt before it was sent (connection pool overflow).
    Overflow,
    /// No endpoint was available (none registered, or all ejected).
    NoHealthyUpstream,
    /// The downstream's request failed while it was being forwarded: its body was malformed
    /// (broken chunked framing), ended before its `content-length`, or the client went away.
    /// The upstream did nothing wrong: never retried, never counted against the endpoint by
    /// outlier detection (Envoy counts the upstream host's errors only), answered 400 (`DPE`).
    DownstreamError,
}

impl Outcome {
    /// An answer with `status` and no gRPC status.
    pub fn status(status: u16) -> Self {
        Outcome::Response {
            status,
            grpc_status: None,
        }
    }

    /// Whether the attempt failed: a 5xx, or no answer at all.
    pub fn is_failure(&self) -> bool {
        match *self {
            Outcome::Response { status, .. } => status >= 500,
            _ => true,
        }
    }

    /// Whether the outcome says something about the upstream endpoint, good or bad. Local
    /// refusals (overflow, no endpoint) and the downstream's own failures say nothing: outlier
    /// detection neither counts them as errors nor as successes.
    pub fn concerns_upstream(&self) -> bool {
        !matches!(
            self,
            Outcome::Overflow | Outcome::NoHealthyUpstream | Outcome::DownstreamError
        )
    }

    /// Whether this is a gateway error (502, 503, 504, or a transport failure), as Envoy's
    /// `consecutive_gateway_failure` counts.
    pub fn is_gateway_error(&self) -> bool {
        match *self {
            Outcome::Response { status, .. } => matches!(status, 502..=504),
            Outcome::Overflow | Outcome::DownstreamError => false,
            _ => true,
        }
    }

    /// Whether the failure originated locally, at the transport (Envoy's "local origin"
    /// errors: connect failure, reset, timeout), rather than in an answer from the server.
    pub fn is_local_origin_failure(&self) -> bool {
        matches!(
            self,
            Outcome::ConnectFailure | Outcome::Reset | Outcome::RefusedStream | Outcome::Timeout
        )
    }

    /// Whether the request certainly never reached the server's application, so that even a
    /// non-idempotent request (POST) may be retried safely.
    pub fn never_reached_server(&self) -> bool {
        matches!(
            self,
            Outcome::ConnectFailure | Outcome::RefusedStream | Outcome::Overflow
        )
    }

    /// Whether `retry_on` allows retrying this outcome (ignoring method idempotency and budgets).
    pub fn is_retryable(&self, retry_on: &RetryOn) -> bool {
        use RetryCondition as C;
        match *self {
            Outcome::Response {
                status,
                grpc_status,
            } => {
                (status >= 500 && retry_on.has(C::FiveXx))
                    || (matches!(status, 502..=504) && retry_on.has(C::GatewayError))
                    || (status == 409 && retry_on.has(C::Retriable4xx))
                    || (retry_on.has(C::RetriableStatusCodes) || !retry_on.status_codes.is_empty())
                        && retry_on.status_codes.contains(&status)
                    || grpc_status.is_some_and(|g| grpc_retryable(g, retry_on))
            }
            Outcome::ConnectFailure => {
                retry_on.has(C::ConnectFailure)
                    || retry_on.has(C::FiveXx)
                    || retry_on.has(C::GatewayError)
            }
            Outcome::RefusedStream => {
                retry_on.has(C::RefusedStream) || retry_on.has(C::FiveXx) || retry_on.has(C::Reset)
            }
            Outcome::Reset | Outcome::Timeout => {
                retry_on.has(C::Reset) || retry_on.has(C::FiveXx) || retry_on.has(C::GatewayError)
            }
            // Overflow and no healthy upstream are local decisions: retrying cannot help now.
            // The downstream's own failure would fail again the same way.
            Outcome::Overflow | Outcome::NoHealthyUpstream | Outcome::DownstreamError => false,
        }
    }

    /// The Envoy response flag for a failed attempt, when it has one (`UF`, `UO`, `UH`, `UT`, `UR`).
    pub fn response_flag(&self) -> Option<&'static str> {
        match self {
            Outcome::Response { .. } => None,
            Outcome::ConnectFailure => Some("UF"),
            Outcome::Reset | Outcome::RefusedStream => Some("UR"),
            Outcome::Timeout => Some("UT"),
            Outcome::Overflow => Some("UO"),
            Outcome::NoHealthyUpstream => Some("UH"),
            Outcome::DownstreamError => Some("DPE"),
        }
    }
}

fn grpc_retryable(code: u32, retry_on: &RetryOn) -> bool {
    use RetryCondition as C;
    match code {
        1 => retry_on.has(C::Cancelled),
        4 => retry_on.has(C::DeadlineExceeded),
        8 => retry_on.has(C::ResourceExhausted),
        13 => retry_on.has(C::Internal),
        14 => retry_on.has(C::Unavailable),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_default_retries_503_and_connect_failures_not_500() {
        let on = RetryOn::istio_default();
        assert!(Outcome::status(503).is_retryable(&on));
        assert!(Outcome::ConnectFailure.is_retryable(&on));
        assert!(Outcome::RefusedStream.is_retryable(&on));
        assert!(!Outcome::status(500).is_retryable(&on));
        assert!(!Outcome::Reset.is_retryable(&on));
        assert!(!Outcome::status(200).is_retryable(&on));
    }

    #[test]
    fn five_xx_covers_transport_failures() {
        let on = RetryOn {
            conditions: vec![RetryCondition::FiveXx],
            status_codes: vec![],
        };
        for o in [
            Outcome::status(500),
            Outcome::status(599),
            Outcome::Reset,
            Outcome::Timeout,
            Outcome::ConnectFailure,
        ] {
            assert!(o.is_retryable(&on), "{o:?}");
        }
        assert!(!Outcome::status(404).is_retryable(&on));
        assert!(!Outcome::Overflow.is_retryable(&on));
    }

    #[test]
    fn numeric_codes_are_retryable_on_their_own() {
        let on = RetryOn {
            conditions: vec![],
            status_codes: vec![429],
        };
        assert!(Outcome::status(429).is_retryable(&on));
        assert!(!Outcome::status(503).is_retryable(&on));
    }

    #[test]
    fn failure_classes() {
        assert!(Outcome::status(503).is_gateway_error());
        assert!(!Outcome::status(500).is_gateway_error());
        assert!(Outcome::status(500).is_failure());
        assert!(!Outcome::status(404).is_failure());
        assert!(Outcome::Timeout.is_local_origin_failure());
        assert!(!Outcome::status(503).is_local_origin_failure());
        assert!(Outcome::ConnectFailure.never_reached_server());
        assert!(!Outcome::Reset.never_reached_server());
        assert_eq!(Outcome::Overflow.response_flag(), Some("UO"));
    }

    #[test]
    fn the_downstreams_failure_is_not_the_upstreams() {
        let d = Outcome::DownstreamError;
        assert!(!d.concerns_upstream());
        assert!(!d.is_gateway_error());
        assert!(!d.is_local_origin_failure());
        assert!(!d.never_reached_server());
        for on in [
            RetryOn::istio_default(),
            RetryOn {
                conditions: vec![RetryCondition::FiveXx, RetryCondition::Reset],
                status_codes: vec![],
            },
        ] {
            assert!(!d.is_retryable(&on));
        }
        assert_eq!(d.response_flag(), Some("DPE"));
        assert!(Outcome::Reset.concerns_upstream());
        assert!(!Outcome::Overflow.concerns_upstream());
    }
}
