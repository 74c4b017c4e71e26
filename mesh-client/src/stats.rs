//! Counters of the decisions the upper layers take, readable by metrics exporters.
//!
//! Each layer takes an `Arc<ClientStats>` (a fresh one by default); `MeshClient` shares one among
//! all its layers and exposes it with `MeshClient::stats`, so a Prometheus collector can export
//! these beside Istio's standard metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use mesh_telemetry::MeshMetrics;

/// Counters of route, fault, mirror, timeout and retry decisions. All counts only grow.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Requests that no route matched (answered 404, flag `NR`).
    pub no_route: Counter,
    /// Requests answered by a `redirect`.
    pub redirects: Counter,
    /// Requests answered by a `directResponse`.
    pub direct_responses: Counter,
    /// Requests delayed by fault injection (flag `DI`).
    pub faults_delayed: Counter,
    /// Requests aborted by fault injection (flag `FI`).
    pub faults_aborted: Counter,
    /// Mirror copies sent.
    pub mirrors_sent: Counter,
    /// Mirror copies dropped because too many were in flight.
    pub mirrors_dropped_in_flight: Counter,
    /// Mirror copies skipped because the request body was too large or streaming.
    pub mirrors_skipped_body: Counter,
    /// Mirror copies that failed or timed out (their result is otherwise discarded).
    pub mirrors_failed: Counter,
    /// Requests that hit the route timeout (answered 504, flag `UT`).
    pub timeouts: Counter,
    /// Retries sent (attempts after the first).
    pub retries: Counter,
    /// Retries refused by the retry budget.
    pub retries_budget_exhausted: Counter,
    /// Retries refused because `connectionPool.http.maxRetries` retries were in flight to the
    /// cluster (Envoy's `upstream_rq_retry_overflow`).
    pub retries_overflow: Counter,
    /// Requests whose retries were all used on retryable failures (flag `URX`).
    pub retries_exhausted: Counter,
    /// Retryable failures not retried because the method is not idempotent.
    pub retries_skipped_non_idempotent: Counter,
    /// Retryable failures not retried because the body could not be replayed.
    pub retries_skipped_body: Counter,
    /// Attempts that hit `perTryTimeout`.
    pub per_try_timeouts: Counter,
    /// CORS requests whose origin a route's `corsPolicy` allows (Envoy's `cors.origin_valid`).
    pub cors_origin_valid: Counter,
    /// CORS requests whose origin it does not allow (Envoy's `cors.origin_invalid`).
    pub cors_origin_invalid: Counter,
    /// CORS preflights answered by the mesh (never sent to the destination).
    pub cors_preflights_answered: Counter,
    /// Istio-style metrics the per-destination decisions are also reported to.
    metrics: Option<MeshMetrics>,
}

impl ClientStats {
    /// Counters that also report retries, exhausted budgets and mirrors to `metrics`
    /// (`istio_*` names, labelled by destination service).
    pub fn with_metrics(metrics: MeshMetrics) -> Self {
        Self {
            metrics: Some(metrics),
            ..Self::default()
        }
    }

    /// A retry was sent to `host`.
    pub fn retried(&self, host: &str) {
        self.retries.incr();
        if let Some(m) = &self.metrics {
            m.record_retry(host);
        }
    }

    /// A retry to `host` was refused by its budget.
    pub fn budget_exhausted(&self, host: &str) {
        self.retries_budget_exhausted.incr();
        if let Some(m) = &self.metrics {
            m.record_retry_budget_exhausted(host);
        }
    }

    /// A mirror copy was sent to `host`.
    pub fn mirror_sent(&self, host: &str) {
        self.mirrors_sent.incr();
        if let Some(m) = &self.metrics {
            m.record_mirror_sent(host);
        }
    }

    /// A mirror copy to `host` was dropped (too many in flight, or body not bufferable).
    pub fn mirror_dropped(&self, host: &str, in_flight: bool) {
        if in_flight {
            self.mirrors_dropped_in_flight.incr();
        } else {
            self.mirrors_skipped_body.incr();
        }
        if let Some(m) = &self.metrics {
            m.record_mirror_dropped(host);
        }
    }
}

/// A monotonic counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn incr(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
