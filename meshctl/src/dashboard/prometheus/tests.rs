#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use serde_json::json;

#[test]
fn reads_an_instant_vector() {
    let v = json!({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"source_app": "gateway", "response_code": "200"}, "value": [1700000000.5, "2.5"]},
        {"metric": {"__name__": "up"}, "value": [1700000000.5, "NaN"]}
    ]}});
    let s = vector(&v).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].label("source_app"), "gateway");
    assert_eq!(s[0].value, 2.5);
    assert_eq!(s[1].name, "up");
    assert!(s[1].value.is_nan());
}

#[test]
fn an_error_answer_is_an_error() {
    let v = json!({"status": "error", "errorType": "bad_data", "error": "parse error"});
    assert!(vector(&v).unwrap_err().contains("parse error"));
}

#[test]
fn reads_targets() {
    let v = json!({"status": "success", "data": {"activeTargets": [
        {"scrapeUrl": "http://127.0.0.1:9/metrics", "health": "up", "lastError": "", "labels": {"app": "service1", "version": "v1"}},
        {"scrapeUrl": "http://127.0.0.1:8/metrics", "health": "down", "lastError": "connection refused", "labels": {}}
    ]}});
    let t = targets(&v);
    assert_eq!(t[0].url, "http://127.0.0.1:8");
    assert!(!t[0].up);
    assert_eq!(t[0].error.as_deref(), Some("connection refused"));
    assert_eq!(
        (t[1].app.as_str(), t[1].up, t[1].error.as_deref()),
        ("service1", true, None)
    );
}

#[test]
fn queries_group_by_the_graph_labels() {
    let q = flows_query("60s");
    assert!(
        q.starts_with("sum(rate(istio_requests_total[60s])) by (reporter, source_app"),
        "{q}"
    );
    let q = p99_query("60s");
    assert!(q.contains("histogram_quantile(0.99"), "{q}");
    assert!(
        q.contains("by (le, source_app, source_version, destination_app, destination_version)"),
        "{q}"
    );
    assert_eq!(promql_duration(Duration::from_millis(500)), "2s");
}
