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
pub mod labels;
pub mod message;
pub mod metrics;
pub mod peer;
pub mod request_id;
pub mod sampling;
pub mod series;
pub mod trace_context;

pub use self::flags::ResponseFlags;
pub use self::labels::{PeerLabels, Reporter, RequestLabels, ServiceLabels, WorkloadLabels};
pub use self::message::{grpc_status, is_grpc, known_body_size};
pub use self::metrics::{MeshMetrics, RequestRecord};
pub use self::request_id::{RequestId, X_REQUEST_ID};
pub use self::sampling::{DEFAULT_SAMPLE_RATIO, sample};
pub use self::trace_context::{Propagation, TraceContext};
