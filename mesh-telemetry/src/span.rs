//! Request spans that cost nothing when nobody listens: entering, leaving and recording on a
//! span that no subscriber enabled still runs `tracing`'s `log` compatibility (the `log`
//! feature, which other dependencies turn on), a check per call. [`is_silent`] says when even
//! that would write nothing, and [`InSpan`] runs a future in a span, entering it per poll only
//! when it is not silent.
//!
//! ```
//! use mesh_telemetry::span::{InSpan, is_silent};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // No subscriber and no `log` logger here: the span is silent, the future runs as is.
//! let span = tracing::info_span!("inbound");
//! assert!(is_silent(&span));
//! let answer = InSpan::new(async { 42 }, span).await;
//! assert_eq!(answer, 42);
//! # });
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tracing::Instrument;
use tracing::instrument::Instrumented;

/// Whether entering, leaving or recording on `span` does nothing at all: no subscriber enabled
/// it, and `tracing`'s `log` compatibility writes nothing either, because a global subscriber
/// is set (`tracing` then leaves `log` alone, as every example app's `init_tracing` does) or
/// the `log` crate's level is off. Checked per call: a subscriber or logger installed later is
/// seen at once. (With `tracing`'s `log-always` feature, which nothing in this workspace turns
/// on, such a span would still write `log` lines of its own: they are then skipped.)
pub fn is_silent(span: &tracing::Span) -> bool {
    span.is_disabled()
        && (tracing::dispatcher::has_been_set() || log::max_level() == log::LevelFilter::Off)
}

/// Records `value` on `span`'s field `field`, unless the span is silent ([`is_silent`]).
pub fn record<V: tracing::Value>(span: &tracing::Span, field: &str, value: V) {
    if !is_silent(span) {
        span.record(field, value);
    }
}

pin_project_lite::pin_project! {
    /// A future run inside a span, as [`tracing::Instrument`] does, but a silent span
    /// ([`is_silent`]) is neither entered nor left per poll.
    pub struct InSpan<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F> {
        // The span is silent: kept for the caller (its records are skipped as well).
        Silent { #[pin] inner: F, span: tracing::Span },
        // Entered on every poll (and while the inner future is dropped).
        Traced { #[pin] inner: Instrumented<F> },
    }
}

impl<F> InSpan<F> {
    /// Runs `inner` inside `span`.
    pub fn new(inner: F, span: tracing::Span) -> Self {
        let state = if is_silent(&span) {
            State::Silent { inner, span }
        } else {
            State::Traced {
                inner: inner.instrument(span),
            }
        };
        Self { state }
    }

    /// The span.
    pub fn span(&self) -> &tracing::Span {
        match &self.state {
            State::Silent { span, .. } => span,
            State::Traced { inner } => inner.span(),
        }
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.project().state.project() {
            StateProj::Silent { inner, .. } => inner.poll(cx),
            StateProj::Traced { inner } => inner.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests;
