//! [`MeshMetrics`]: Istio's standard request metrics plus the mesh's own counters, in one
//! explicit `prometheus-client` registry.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::histogram::Histogram;
use super::labels::{PeerLabels, RequestLabels};
use super::series::SeriesHandles;

/// Envoy's default histogram buckets, which Istio uses for `istio_request_duration_milliseconds`
/// (milliseconds) and for the request and response size histograms (bytes).
pub const ISTIO_BUCKETS: [f64; 19] = [
    0.5,
    1.0,
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1_000.0,
    2_500.0,
    5_000.0,
    10_000.0,
    30_000.0,
    60_000.0,
    300_000.0,
    600_000.0,
    1_800_000.0,
    3_600_000.0,
];

fn istio_histogram() -> Histogram {
    Histogram::default()
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// `destination_service` alone.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ServiceLabel {
    /// The destination host.
    pub destination_service: String,
}

/// `istio_build`'s labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabel {
    /// `proxy`: the part of the mesh in each workload (Envoy's place in Istio).
    component: &'static str,
    /// The mesh's version.
    tag: &'static str,
}

/// Why a request was refused by an inbound policy.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PolicyLabel {
    /// The workload that refused it.
    pub destination_workload: String,
    /// The policy (`namespace/name`) or reason that refused it.
    pub policy: String,
}

/// What a dry-run AuthorizationPolicy set would have decided.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DryRunLabel {
    /// The workload whose policies were evaluated.
    pub destination_workload: String,
    /// The dry-run policy that matched (`namespace/name`), or `none`.
    pub policy: String,
    /// `ALLOW` or `DENY`.
    pub action: String,
    /// `shadow_allowed` or `shadow_denied` (Envoy's RBAC shadow stats).
    pub result: String,
}

/// A JWT issuer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct IssuerLabel {
    /// The `issuer` of the RequestAuthentication rule.
    pub issuer: String,
}

/// One finished request, as the metric layers record it.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// Series labels.
    pub labels: RequestLabels,
    /// From the first byte of the request to the response head.
    pub duration: Duration,
    /// Request body size in bytes.
    pub request_bytes: u64,
    /// Response body size in bytes.
    pub response_bytes: u64,
}

struct Inner {
    /// Tells this registry's handles apart in the per-peer series caches.
    id: u64,
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily<RequestLabels>,
    request_bytes: HistogramFamily<RequestLabels>,
    response_bytes: HistogramFamily<RequestLabels>,
    retries: Family<ServiceLabel, Counter>,
    retry_budget_exhausted: Family<ServiceLabel, Counter>,
    mirrors_sent: Family<ServiceLabel, Counter>,
    mirrors_dropped: Family<ServiceLabel, Counter>,
    authn_denied: Family<PolicyLabel, Counter>,
    authz_denied: Family<PolicyLabel, Counter>,
    authz_dry_run: Family<DryRunLabel, Counter>,
    rate_limited: Family<PolicyLabel, Counter>,
    jwks_fetch_failures: Family<IssuerLabel, Counter>,
}

/// Istio's standard metrics and the mesh's counters, in one registry. Cheap to clone (an `Arc`).
///
/// ```
/// use mesh_telemetry::MeshMetrics;
///
/// let metrics = MeshMetrics::new();
/// metrics.record_retry("service2");
/// let text = metrics.encode_prometheus();
/// assert!(text.contains("mesh_retries_total{destination_service=\"service2\"} 1"));
/// ```
#[derive(Clone)]
pub struct MeshMetrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for MeshMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshMetrics").finish_non_exhaustive()
    }
}

impl Default for MeshMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl MeshMetrics {
    /// A fresh registry holding every mesh metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = HistogramFamily::new_with_constructor(istio_histogram as fn() -> Histogram);
        let request_bytes =
            HistogramFamily::new_with_constructor(istio_histogram as fn() -> Histogram);
        let response_bytes =
            HistogramFamily::new_with_constructor(istio_histogram as fn() -> Histogram);
        // prometheus-client appends `_total` to counters itself.
        registry.register(
            "istio_requests",
            "Requests handled, by source, destination and response.",
            requests.clone(),
        );
        registry.register(
            "istio_request_duration_milliseconds",
            "Request duration in milliseconds.",
            duration.clone(),
        );
        registry.register(
            "istio_request_bytes",
            "Request body sizes in bytes.",
            request_bytes.clone(),
        );
        registry.register(
            "istio_response_bytes",
            "Response body sizes in bytes.",
            response_bytes.clone(),
        );
        let inner = Inner {
            id: super::series::next_registry_id(),
            registry: Mutex::new(registry),
            requests,
            duration,
            request_bytes,
            response_bytes,
            retries: Family::default(),
            retry_budget_exhausted: Family::default(),
            mirrors_sent: Family::default(),
            mirrors_dropped: Family::default(),
            authn_denied: Family::default(),
            authz_denied: Family::default(),
            authz_dry_run: Family::default(),
            rate_limited: Family::default(),
            jwks_fetch_failures: Family::default(),
        };
        {
            let mut r = lock(&inner.registry);
            r.register(
                "mesh_retries",
                "Retries sent (attempts after the first).",
                inner.retries.clone(),
            );
            r.register(
                "mesh_retry_budget_exhausted",
                "Retries refused because the retry budget was spent.",
                inner.retry_budget_exhausted.clone(),
            );
            r.register(
                "mesh_mirror_requests_sent",
                "Mirrored copies sent.",
                inner.mirrors_sent.clone(),
            );
            r.register(
                "mesh_mirror_requests_dropped",
                "Mirrored copies dropped (queue full or body not copyable).",
                inner.mirrors_dropped.clone(),
            );
            r.register(
                "mesh_authn_denied",
                "Requests refused by JWT authentication (401).",
                inner.authn_denied.clone(),
            );
            r.register(
                "mesh_authz_denied",
                "Requests refused by an AuthorizationPolicy (403).",
                inner.authz_denied.clone(),
            );
            r.register(
                "mesh_authz_dry_run",
                "Shadow results of istio.io/dry-run AuthorizationPolicies (never enforced).",
                inner.authz_dry_run.clone(),
            );
            r.register(
                "mesh_rate_limited",
                "Requests refused by a local rate limit (429).",
                inner.rate_limited.clone(),
            );
            r.register(
                "mesh_jwks_fetch_failures",
                "Failed JWKS fetches.",
                inner.jwks_fetch_failures.clone(),
            );
            // What an Istio sidecar exposes as `istio_build{component="proxy",tag=...}`: the
            // mesh dashboard's "components by version" panel counts the proxies by it.
            let build = Family::<BuildLabel, Gauge>::default();
            build
                .get_or_create(&BuildLabel {
                    component: "proxy",
                    tag: env!("CARGO_PKG_VERSION"),
                })
                .set(1);
            r.register("istio_build", "Istio component build info.", build);
        }
        MeshMetrics {
            inner: Arc::new(inner),
        }
    }

    /// Records one finished request in the four Istio families. The series handles are cached
    /// on the request's [`PeerLabels`] (see [`super::series`]): after the first request of a
    /// label combination, recording costs no family lookup, hash or formatting.
    pub fn record_request(&self, record: &RequestRecord) {
        let i = &*self.inner;
        let l = &record.labels;
        let make = || SeriesHandles {
            requests: i.requests.get_or_create_owned(l),
            duration: i.duration.get_or_create_owned(l),
            request_bytes: i.request_bytes.get_or_create_owned(l),
            response_bytes: i.response_bytes.get_or_create_owned(l),
        };
        l.peers.series().with(
            i.id,
            l.protocol,
            l.response_code,
            &l.response_flags,
            l.grpc_status,
            make,
            |h| {
                h.requests.inc();
                h.duration.observe(record.duration.as_secs_f64() * 1_000.0);
                h.request_bytes.observe(record.request_bytes as f64);
                h.response_bytes.observe(record.response_bytes as f64);
            },
        );
    }

    /// Shortcut for [`MeshMetrics::record_request`] from parts.
    pub fn record(
        &self,
        peers: &Arc<PeerLabels>,
        response_code: u16,
        response_flags: Cow<'static, str>,
        duration: Duration,
        request_bytes: u64,
        response_bytes: u64,
    ) {
        self.record_request(&RequestRecord {
            labels: RequestLabels {
                peers: peers.clone(),
                protocol: "http",
                response_code,
                response_flags,
                grpc_status: None,
            },
            duration,
            request_bytes,
            response_bytes,
        });
    }

    /// A retry was sent to `destination_service` (`mesh_retries_total`).
    pub fn record_retry(&self, destination_service: &str) {
        self.retries_counter(destination_service).inc();
    }

    /// The retry counter of one destination, to keep and increment without a lookup.
    pub fn retries_counter(&self, destination_service: &str) -> Counter {
        self.inner
            .retries
            .get_or_create_owned(&service(destination_service))
    }

    /// A retry was refused by the retry budget (`mesh_retry_budget_exhausted_total`).
    pub fn record_retry_budget_exhausted(&self, destination_service: &str) {
        self.inner
            .retry_budget_exhausted
            .get_or_create(&service(destination_service))
            .inc();
    }

    /// A mirrored copy was sent to `destination_service` (`mesh_mirror_requests_sent_total`).
    pub fn record_mirror_sent(&self, destination_service: &str) {
        self.inner
            .mirrors_sent
            .get_or_create(&service(destination_service))
            .inc();
    }

    /// A mirrored copy for `destination_service` was dropped (`mesh_mirror_requests_dropped_total`).
    pub fn record_mirror_dropped(&self, destination_service: &str) {
        self.inner
            .mirrors_dropped
            .get_or_create(&service(destination_service))
            .inc();
    }

    /// JWT authentication refused a request to `workload` (`mesh_authn_denied_total`);
    /// `reason` is a short fixed word such as `missing_token` or `invalid_token`.
    pub fn record_authn_denied(&self, workload: &str, reason: &str) {
        self.inner
            .authn_denied
            .get_or_create(&policy(workload, reason))
            .inc();
    }

    /// An AuthorizationPolicy (`namespace/name`, or `default-deny`) refused a request to
    /// `workload` (`mesh_authz_denied_total`).
    pub fn record_authz_denied(&self, workload: &str, policy_name: &str) {
        self.inner
            .authz_denied
            .get_or_create(&policy(workload, policy_name))
            .inc();
    }

    /// A dry-run AuthorizationPolicy set of `workload` would have decided `result`
    /// (`mesh_authz_dry_run_total`).
    pub fn record_authz_dry_run(&self, workload: &str, policy: &str, action: &str, result: &str) {
        let label = DryRunLabel {
            destination_workload: workload.to_owned(),
            policy: policy.to_owned(),
            action: action.to_owned(),
            result: result.to_owned(),
        };
        self.inner.authz_dry_run.get_or_create(&label).inc();
    }

    /// A local rate limit policy refused a request to `workload` (`mesh_rate_limited_total`).
    pub fn record_rate_limited(&self, workload: &str, policy_name: &str) {
        self.inner
            .rate_limited
            .get_or_create(&policy(workload, policy_name))
            .inc();
    }

    /// Fetching the JWKS of `issuer` failed (`mesh_jwks_fetch_failures_total`).
    pub fn record_jwks_fetch_failure(&self, issuer: &str) {
        self.inner
            .jwks_fetch_failures
            .get_or_create(&IssuerLabel {
                issuer: issuer.to_owned(),
            })
            .inc();
    }

    /// Lets an application register its own metrics in the same registry (served by the admin
    /// server's `/metrics`).
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut lock(&self.inner.registry))
    }

    /// The registry in Prometheus text format 0.0.4 (see [`PROMETHEUS_CONTENT_TYPE`]).
    pub fn encode_prometheus(&self) -> String {
        let mut out = String::with_capacity(4096);
        let registry = lock(&self.inner.registry);
        // Writing to a String cannot fail; an encoder error would be a bug in a label encoder.
        if let Err(error) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        {
            tracing::warn!(%error, "metrics encoding failed");
        }
        out
    }

    /// The registry in OpenMetrics text format (see [`OPENMETRICS_CONTENT_TYPE`]).
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::with_capacity(4096);
        let registry = lock(&self.inner.registry);
        if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::warn!(%error, "metrics encoding failed");
        }
        out
    }
}

/// Content type of [`MeshMetrics::encode_prometheus`].
pub const PROMETHEUS_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Content type of [`MeshMetrics::encode_openmetrics`].
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn service(s: &str) -> ServiceLabel {
    ServiceLabel {
        destination_service: s.to_owned(),
    }
}

fn policy(workload: &str, policy: &str) -> PolicyLabel {
    PolicyLabel {
        destination_workload: workload.to_owned(),
        policy: policy.to_owned(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the registry lock leaves it usable: registration is append-only.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
