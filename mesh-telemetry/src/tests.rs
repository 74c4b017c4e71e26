use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;

use super::*;

#[test]
fn a_quiet_log_filter_disables_the_request_spans_and_nothing_else() {
    if std::env::var("RUST_LOG").is_ok_and(|v| v.contains(REQUEST_SPANS)) {
        eprintln!("skipped: RUST_LOG asks for the request spans");
        return;
    }
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::sink)
            .with_filter(quiet_request_spans(EnvFilter::new("info"))),
    );
    use tracing_subscriber::Layer as _;
    tracing::subscriber::with_default(subscriber, || {
        // Another test's thread may have cached a callsite's interest without this subscriber.
        tracing::callsite::rebuild_interest_cache();
        let request = tracing::info_span!(target: REQUEST_SPANS, "inbound", path = "/x");
        assert!(
            request.is_disabled(),
            "the fmt layer must not see request spans"
        );
        let other = tracing::info_span!("startup");
        assert!(!other.is_disabled(), "other INFO spans are still logged");
    });
}
