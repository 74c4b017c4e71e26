//! # mesh-telemetry
//!
//! Observability shared by the client and server sides of the mesh: Istio's standard metrics
//! ([`MeshMetrics`]) with their labels and series handles, peer metadata, trace context
//! ([`TraceContext`]: W3C `traceparent`/`tracestate` and B3) and sampling, request ids
//! ([`RequestId`]) and Envoy's [`ResponseFlags`].
//!
//! The layers live with their side: `mesh-client`'s `telemetry` layer records
//! `reporter="source"`, `mesh-server`'s `trace`, `metrics` and `request_id` layers and its admin
//! server record and expose `reporter="destination"`. Neither side depends on the other. See
//! `docs/observability.md` for every metric, label, header and environment variable.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod current;
pub mod flags;
pub mod grpc_status;
pub mod histogram;
pub mod labels;
pub mod message;
pub mod metrics;
pub mod peer;
pub mod request_context;
pub mod request_id;
pub mod sampling;
pub mod series;
pub mod span;
pub mod trace_context;

pub use self::flags::ResponseFlags;

/// The `tracing` target of the per-request spans (`inbound` on the server, `outbound` on the
/// client). They exist for trace export; a log formatter should not pay for them on every
/// request: [`quiet_request_spans`] turns them off for a log layer's filter.
pub const REQUEST_SPANS: &str = "mesh::request";

/// `filter` with the per-request spans off, unless `RUST_LOG` names [`REQUEST_SPANS`] itself.
///
/// A fmt layer that sees an INFO span formats its fields into a string for every request even
/// when nothing is logged inside it (the largest single cost of a hop in the chain's profile);
/// with this per-layer filter the fmt layer never sees them, and when no other layer (such as
/// OpenTelemetry's) wants them, creating them costs next to nothing.
pub fn quiet_request_spans(filter: tracing_subscriber::EnvFilter) -> tracing_subscriber::EnvFilter {
    let asked = std::env::var("RUST_LOG").is_ok_and(|v| v.contains(REQUEST_SPANS));
    match format!("{REQUEST_SPANS}=off").parse() {
        Ok(directive) if !asked => filter.add_directive(directive),
        _ => filter,
    }
}
pub use self::labels::{PeerLabels, Reporter, RequestLabels, ServiceLabels, WorkloadLabels};
pub use self::message::{grpc_status, is_grpc, known_body_size};
pub use self::metrics::{MeshMetrics, RequestRecord};
pub use self::request_context::RequestContext;
pub use self::request_id::{RequestId, X_REQUEST_ID};
pub use self::sampling::{DEFAULT_SAMPLE_RATIO, sample};
pub use self::trace_context::{Propagation, TraceContext};

#[cfg(test)]
mod tests;
