//! The outbound telemetry layer ([`ClientTelemetryLayer`]): records `reporter="source"` metrics
//! and injects trace context, request id and peer metadata into every call.
//!
//! The types it records with (metric families, labels, trace context, request ids, response
//! flags) live in the `mesh-telemetry` crate, which the server side shares.

pub mod client;

pub use self::client::{ClientTelemetry, ClientTelemetryConfig, ClientTelemetryLayer};
