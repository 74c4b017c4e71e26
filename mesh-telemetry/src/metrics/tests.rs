use super::*;
use crate::labels::{Reporter, ServiceLabels, WorkloadLabels};

#[test]
fn request_series_carry_istio_labels() {
    let m = MeshMetrics::new();
    let mut labels = mesh_core::policy::Labels::new();
    labels.insert("app".into(), "service2".into());
    labels.insert("version".into(), "v1".into());
    let peers = PeerLabels::new(
        Reporter::Destination,
        WorkloadLabels::unknown(),
        WorkloadLabels::from_labels("service2-v1", Some("default"), &labels),
        ServiceLabels::from_host("service2"),
    );
    m.record(
        &peers,
        200,
        Cow::Borrowed("-"),
        Duration::from_millis(7),
        10,
        2_000,
    );
    m.record(
        &peers,
        200,
        Cow::Borrowed("-"),
        Duration::from_millis(30),
        0,
        0,
    );
    m.record(
        &peers,
        503,
        Cow::Borrowed("UO"),
        Duration::from_millis(1),
        0,
        0,
    );
    let text = m.encode_prometheus();
    let ok = text
        .lines()
        .find(|l| l.starts_with("istio_requests_total{response_code=\"200\""))
        .unwrap_or_default();
    for want in [
        "reporter=\"destination\"",
        "source_workload=\"unknown\"",
        "destination_workload=\"service2-v1\"",
        "destination_version=\"v1\"",
        "destination_app=\"service2\"",
        "destination_service=\"service2\"",
        "destination_service_name=\"service2\"",
        "request_protocol=\"http\"",
        "response_flags=\"-\"",
        "connection_security_policy=\"none\"",
    ] {
        assert!(ok.contains(want), "{want} missing in {ok}");
    }
    assert!(ok.ends_with("} 2"), "{ok}");
    assert!(text.contains("response_code=\"503\""));
    assert!(text.contains("response_flags=\"UO\""));
    // 7 ms and 30 ms: one in le=10, both in le=50.
    let bucket = |le: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("istio_request_duration_milliseconds_bucket{response_code=\"200\"")
                    && l.contains(&format!("le=\"{le}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    };
    assert_eq!(bucket("10").as_deref(), Some("1"));
    assert_eq!(bucket("50").as_deref(), Some("2"));
    assert!(text.contains("# TYPE istio_response_bytes histogram"));
}

#[test]
fn mesh_counters() {
    let m = MeshMetrics::new();
    m.record_retry("a");
    m.retries_counter("a").inc();
    m.record_retry_budget_exhausted("a");
    m.record_mirror_sent("b");
    m.record_mirror_dropped("b");
    m.record_authn_denied("w", "missing_token");
    m.record_authz_denied("w", "default/deny-all");
    m.record_rate_limited("w", "default/rl");
    m.record_jwks_fetch_failure("https://issuer");
    let t = m.encode_prometheus();
    for want in [
        "mesh_retries_total{destination_service=\"a\"} 2",
        "mesh_retry_budget_exhausted_total{destination_service=\"a\"} 1",
        "mesh_mirror_requests_sent_total{destination_service=\"b\"} 1",
        "mesh_mirror_requests_dropped_total{destination_service=\"b\"} 1",
        "mesh_authn_denied_total{destination_workload=\"w\",policy=\"missing_token\"} 1",
        "mesh_authz_denied_total{destination_workload=\"w\",policy=\"default/deny-all\"} 1",
        "mesh_rate_limited_total{destination_workload=\"w\",policy=\"default/rl\"} 1",
        "mesh_jwks_fetch_failures_total{issuer=\"https://issuer\"} 1",
        "istio_build{component=\"proxy\",tag=\"",
    ] {
        assert!(t.contains(want), "{want} missing in\n{t}");
    }
    assert!(m.encode_openmetrics().ends_with("# EOF\n"));
}
