//! Observability shared by the client and server sides: Istio's standard metrics
//! ([`MeshMetrics`]), trace context ([`TraceContext`]: W3C `traceparent`/`tracestate` and B3),
//! request ids ([`RequestId`]), peer metadata, and the outbound layer
//! ([`ClientTelemetryLayer`]) that records `reporter="source"` metrics and injects trace headers.
//!
//! The server side (`mesh-server`'s `trace`, `metrics` and `request_id` layers, and the admin
//! server) builds on the same types. See `docs/observability.md` for every metric, label,
//! header and environment variable.

pub mod client;
pub mod current;
pub mod labels;
pub mod metrics;
pub mod peer;
pub mod request_id;
pub mod series;
pub mod trace_context;

pub use self::client::{
    ClientTelemetry, ClientTelemetryConfig, ClientTelemetryLayer, DEFAULT_SAMPLE_RATIO,
};
pub use self::labels::{PeerLabels, Reporter, RequestLabels, ServiceLabels, WorkloadLabels};
pub use self::metrics::{MeshMetrics, RequestRecord};
pub use self::request_id::{RequestId, X_REQUEST_ID};
pub use self::trace_context::{Propagation, TraceContext};

/// `grpc-status` of a response head (trailers-only responses carry it there), when present.
pub fn grpc_status(headers: &http::HeaderMap) -> Option<u32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}
