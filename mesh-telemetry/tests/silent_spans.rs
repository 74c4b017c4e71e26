//! A disabled request span is silent once a global subscriber is set, even with a `log` level
//! on: `tracing` then writes no `log` lines for it. Its own process: the global subscriber and
//! the `log` level are set once for good.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mesh_telemetry::span::is_silent;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn a_disabled_span_is_silent_under_a_global_subscriber_whatever_the_log_level() {
    // A `log` level on and no subscriber: `tracing` would log the span's entering and leaving.
    log::set_max_level(log::LevelFilter::Info);
    let span = tracing::debug_span!("outbound");
    assert!(span.is_disabled());
    assert!(
        !is_silent(&span),
        "without a subscriber the log lines are written"
    );

    // A global subscriber that keeps debug spans out, as the apps' `init_tracing` keeps the
    // request spans out without a collector.
    let subscriber = tracing_subscriber::registry().with(LevelFilter::INFO);
    tracing::subscriber::set_global_default(subscriber).unwrap();
    tracing::callsite::rebuild_interest_cache();
    let span = tracing::debug_span!("outbound");
    assert!(span.is_disabled());
    assert!(
        is_silent(&span),
        "tracing writes no log lines once a subscriber is set"
    );
    let listened = tracing::info_span!("inbound");
    assert!(!is_silent(&listened));
}
