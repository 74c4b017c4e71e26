//! The outbound telemetry layer ([`ClientTelemetryLayer`]): records `reporter="source"` metrics
//! and injects trace context, request id and peer metadata into every call.
//!
//! The types it records with (metric families, labels, trace context, request ids, response
//! flags) live in the `mesh-telemetry` crate, which the server side shares.

pub mod client;

pub use self::client::{ClientTelemetry, ClientTelemetryConfig, ClientTelemetryLayer};

use http::HeaderMap;
use mesh_telemetry::current;

/// Makes `span` a child of the current span (the call's `outbound` span) and writes its context
/// into `headers`, so the next hop's server span is a child of `span`. Used for the spans of a
/// retry's attempt and of a mirrored copy. Nothing happens when `span` is disabled (no
/// OpenTelemetry layer is interested): the headers then keep the call's context.
pub(crate) fn inject_child(span: &tracing::Span, headers: &mut HeaderMap) {
    if span.is_disabled() {
        return;
    }
    let Some(parent) = current::from_current_span() else {
        return;
    };
    let ctx = current::attach(span, Some(&parent), parent.child());
    ctx.inject(headers);
}
