//! The trace context "currently running": how application code between the server layer and
//! the client layer carries the trace without passing it by hand.
//!
//! The client layer picks the parent of its client span in this order:
//! 1. a [`TraceContext`] the application put in the outbound request's extensions (explicit
//!    always wins);
//! 2. the OpenTelemetry context of the current `tracing` span, when a `tracing-opentelemetry`
//!    layer is installed (so a span the handler opened itself becomes the parent);
//! 3. the server span of the request being handled, which the server trace layer keeps in a
//!    task-local for the duration of the inner service's future ([`scope`]);
//! 4. none: the call starts a new trace.
//!
//! Work spawned onto another task leaves the task-local behind: pass the context explicitly
//! (take it with [`current`] and put it in the request extensions), or instrument the spawned
//! future with the current `tracing` span.

use std::future::Future;
use std::str::FromStr;

use http::HeaderValue;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tokio::task::futures::TaskLocalFuture;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::trace_context::{Propagation, TraceContext};

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// Runs `fut` with `ctx` as the current trace context (what [`current`] returns inside it).
pub fn scope<F: Future>(ctx: TraceContext, fut: F) -> TaskLocalFuture<TraceContext, F> {
    CURRENT.scope(ctx, fut)
}

/// The trace context of the request being handled on this task (set by the server trace layer).
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The parent for an outbound call: the explicit extension, else the current OpenTelemetry span,
/// else the task-local server context (see the module docs).
pub fn parent_for(explicit: Option<&TraceContext>) -> Option<TraceContext> {
    if let Some(ctx) = explicit {
        return Some(ctx.clone());
    }
    let local = current();
    if let Some(mut otel) = from_current_span() {
        // Keep what OpenTelemetry does not know: the wire format the trace came in.
        if let Some(l) = local.as_ref().filter(|l| l.trace_id == otel.trace_id) {
            otel.propagation = l.propagation;
            if otel.trace_state.is_none() {
                otel.trace_state = l.trace_state.clone();
            }
        }
        return Some(otel);
    }
    local
}

/// The current `tracing` span's OpenTelemetry span context, when one is valid.
pub fn from_current_span() -> Option<TraceContext> {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return None;
    }
    from_span(&span)
}

/// `span`'s OpenTelemetry span context, when a `tracing-opentelemetry` layer gave it a valid one.
pub fn from_span(span: &tracing::Span) -> Option<TraceContext> {
    let cx = span.context();
    let otel_span = cx.span();
    from_span_context(otel_span.span_context())
}

/// Converts an OpenTelemetry span context (`None` when invalid).
pub fn from_span_context(sc: &SpanContext) -> Option<TraceContext> {
    if !sc.is_valid() {
        return None;
    }
    let state = sc.trace_state().header();
    Some(TraceContext {
        trace_id: u128::from_be_bytes(sc.trace_id().to_bytes()),
        span_id: u64::from_be_bytes(sc.span_id().to_bytes()),
        parent_span_id: None,
        sampled: sc.is_sampled(),
        trace_state: if state.is_empty() {
            None
        } else {
            HeaderValue::from_str(&state).ok()
        },
        propagation: Propagation::W3c,
    })
}

/// `ctx` as a remote OpenTelemetry parent context.
pub fn to_otel_context(ctx: &TraceContext) -> opentelemetry::Context {
    let flags = if ctx.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let state = ctx
        .trace_state
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(|s| TraceState::from_str(s).ok())
        .unwrap_or_default();
    let sc = SpanContext::new(
        TraceId::from(ctx.trace_id),
        SpanId::from(ctx.span_id),
        flags,
        true,
        state,
    );
    opentelemetry::Context::new().with_remote_span_context(sc)
}

/// Gives `span` the OpenTelemetry parent `parent` (or makes it a root when `None`), and returns
/// the context the span ends up with: the OpenTelemetry span's own ids when a
/// `tracing-opentelemetry` layer is installed, else `fallback` — so the ids we propagate are
/// the ids we export.
pub fn attach(
    span: &tracing::Span,
    parent: Option<&TraceContext>,
    fallback: TraceContext,
) -> TraceContext {
    if span.is_disabled() {
        return fallback;
    }
    let cx = match parent {
        Some(p) => to_otel_context(p),
        // An explicit empty context: a new root, not a child of whatever span is current.
        None => opentelemetry::Context::new(),
    };
    if span.set_parent(cx).is_err() {
        return fallback;
    }
    match from_span(span) {
        Some(otel) if otel.trace_id == fallback.trace_id || parent.is_none() => TraceContext {
            trace_id: otel.trace_id,
            span_id: otel.span_id,
            sampled: otel.sampled,
            ..fallback
        },
        _ => fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn explicit_beats_task_local_which_beats_nothing() {
        assert_eq!(parent_for(None), None);
        let server = TraceContext::new_root(true);
        let explicit = TraceContext::new_root(false);
        let (a, b) = scope(server.clone(), async {
            (parent_for(None), parent_for(Some(&explicit)))
        })
        .await;
        assert_eq!(a, Some(server));
        assert_eq!(b, Some(explicit));
        assert_eq!(current(), None);
    }

    #[test]
    fn otel_round_trip() {
        let ctx = TraceContext {
            trace_state: Some(HeaderValue::from_static("a=1")),
            ..TraceContext::new_root(true)
        };
        let cx = to_otel_context(&ctx);
        let back = from_span_context(cx.span().span_context()).unwrap();
        assert_eq!(
            (back.trace_id, back.span_id, back.sampled),
            (ctx.trace_id, ctx.span_id, true)
        );
        assert_eq!(back.trace_state.unwrap(), "a=1");
        assert!(from_span_context(&SpanContext::empty_context()).is_none());
    }

    #[test]
    fn without_an_otel_layer_attach_keeps_our_ids() {
        let span = tracing::info_span!("x");
        let fallback = TraceContext::new_root(true);
        assert_eq!(attach(&span, None, fallback.clone()), fallback);
    }
}
