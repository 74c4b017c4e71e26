#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const LABELS: &str = "reporter=\"destination\",source_app=\"gateway\",source_version=\"v1\",destination_app=\"service1\",destination_version=\"v1\",destination_service=\"service1\",response_flags=\"-\",source_workload=\"gateway\"";

#[test]
fn flows_sum_over_labels_not_grouped() {
    // Two series differing only in a label the graph does not group by.
    let text = format!(
        "istio_requests_total{{{LABELS},response_code=\"200\",request_protocol=\"http\"}} 3\n\
         istio_requests_total{{{LABELS},response_code=\"200\",request_protocol=\"grpc\"}} 1\n\
         istio_requests_total{{{LABELS},response_code=\"503\",request_protocol=\"http\"}} 0.5\n\
         up 1\n"
    );
    let f = flows(&parse(&text).samples);
    assert_eq!(f.len(), 2, "{f:?}");
    let ok = f
        .iter()
        .find(|f| f.labels.get("response_code").map(String::as_str) == Some("200"))
        .unwrap();
    assert_eq!(ok.rps, 4.0);
    assert_eq!(ok.labels.get("source_app").unwrap(), "gateway");
}

#[test]
fn p99_from_bucket_rates_summed_over_codes() {
    let mut text = String::new();
    for (code, counts) in [("200", [80.0, 90.0, 90.0]), ("503", [0.0, 9.0, 10.0])] {
        for (le, c) in ["10", "100", "+Inf"].iter().zip(counts) {
            text.push_str(&format!(
                "istio_request_duration_milliseconds_bucket{{{LABELS},response_code=\"{code}\",le=\"{le}\"}} {c}\n"
            ));
        }
    }
    // A source-reported histogram is ignored (the destination's is the one Istio charts).
    text.push_str("istio_request_duration_milliseconds_bucket{reporter=\"source\",source_app=\"gateway\",source_version=\"v1\",destination_app=\"service1\",destination_version=\"v1\",le=\"+Inf\"} 1000\n");
    let l = latencies(&parse(&text).samples);
    assert_eq!(l.len(), 1, "{l:?}");
    // 100 in all: 80 under 10 ms, 99 under 100 ms: rank 99 is the top of (10, 100].
    assert!((l[0].p99_ms - 100.0).abs() < 1e-9, "{l:?}");
    assert_eq!(l[0].labels.get("destination_app").unwrap(), "service1");
}

#[test]
fn identity_prefers_what_the_app_answers_as() {
    let text = format!(
        "istio_requests_total{{reporter=\"source\",source_app=\"service1\",source_version=\"v1\"}} 1\n\
         istio_requests_total{{{LABELS},response_code=\"200\"}} 1\n"
    );
    assert_eq!(
        identity(&parse(&text).samples),
        Some(("service1".to_owned(), "v1".to_owned()))
    );
    let text = "istio_requests_total{reporter=\"source\",source_app=\"gateway\",source_version=\"v1\"} 1\n";
    assert_eq!(
        identity(&parse(text).samples),
        Some(("gateway".to_owned(), "v1".to_owned()))
    );
}

#[test]
fn ejections_per_endpoint_with_returns() {
    let text = "mesh_outlier_ejections_total{cluster=\"service2\",endpoint=\"127.0.0.1:9\",reason=\"consecutive_5xx\"} 2\n\
        mesh_outlier_returns_total{cluster=\"service2\",endpoint=\"127.0.0.1:9\"} 1\n\
        mesh_outlier_ejections_total{cluster=\"service2\",endpoint=\"127.0.0.1:8\",reason=\"consecutive_5xx\"} 1\n\
        mesh_outlier_ejections_total{cluster=\"service3\",endpoint=\"127.0.0.1:7\",reason=\"consecutive_gateway_errors\"} 1\n\
        mesh_outlier_ejections_total{cluster=\"service3\",endpoint=\"127.0.0.1:6\",reason=\"consecutive_5xx\"} 0\n";
    let e = ejections(&parse(text).samples);
    assert_eq!(e.len(), 3, "{e:?}");
    let nine = e.iter().find(|e| e.endpoint == "127.0.0.1:9").unwrap();
    assert_eq!(nine.ejected_now, Some(true));
    assert_eq!(nine.reason, "consecutive_5xx");
    let eight = e.iter().find(|e| e.endpoint == "127.0.0.1:8").unwrap();
    assert_eq!((eight.returns, eight.ejected_now), (Some(0.0), Some(true)));
    let seven = e.iter().find(|e| e.endpoint == "127.0.0.1:7").unwrap();
    assert_eq!(
        (seven.cluster.as_str(), seven.reason.as_str()),
        ("service3", "consecutive_gateway_errors")
    );
}

#[test]
fn config_dump_fields_of_both_admin_views() {
    let mut a = AppStatus::default();
    a.read_config_dump(&serde_json::json!({
        "generation": 3,
        "last_reload": {"applied": false, "generation": 4, "errors": ["x.yaml:3: bad"], "warnings": []},
        "counts": {"virtual_services": 2}
    }));
    assert_eq!(a.generation, Some(3));
    assert_eq!(a.last_reload.as_deref(), Some("refused"));
    assert_eq!(a.last_reload_generation, Some(4));
    assert_eq!(a.reload_errors, ["x.yaml:3: bad"]);
    assert_eq!(a.counts.get("virtual_services"), Some(&2));
    let mut b = AppStatus::default();
    b.read_config_dump(&serde_json::json!({"generation": 1, "last_reload": {"ok": true}}));
    assert_eq!(b.last_reload.as_deref(), Some("applied"));
}
