use std::sync::{Arc, Mutex};

use tracing::subscriber::with_default;
use tracing_subscriber::layer::SubscriberExt;

use super::*;

/// Counts span enters, seen by a subscriber that enables every span.
#[derive(Clone, Default)]
struct Enters(Arc<Mutex<usize>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Enters {
    fn on_enter(&self, _id: &tracing::span::Id, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        *self.0.lock().unwrap() += 1;
    }
}

#[test]
fn a_span_nobody_listens_to_is_silent_and_not_entered() {
    let span = tracing::info_span!("quiet");
    assert!(is_silent(&span));
    let mut future = tokio_test::task::spawn(InSpan::new(std::future::ready(7), span));
    assert!(matches!(future.poll(), Poll::Ready(7)));
}

#[test]
fn an_enabled_span_is_entered_on_every_poll_and_records() {
    let enters = Enters::default();
    let subscriber = tracing_subscriber::registry().with(enters.clone());
    with_default(subscriber, || {
        // Another test's thread may have cached a callsite's interest without this subscriber.
        tracing::callsite::rebuild_interest_cache();
        let span = tracing::info_span!("loud", status = tracing::field::Empty);
        assert!(!is_silent(&span));
        let mut yielded = false;
        let inner = std::future::poll_fn(move |cx| {
            if yielded {
                Poll::Ready(1)
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        });
        let mut future = tokio_test::task::spawn(InSpan::new(inner, span));
        assert!(future.poll().is_pending());
        assert!(matches!(future.poll(), Poll::Ready(1)));
        record(future.span(), "status", 200);
    });
    assert!(*enters.0.lock().unwrap() >= 2, "entered on each poll");
}
