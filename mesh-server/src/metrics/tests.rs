use std::time::Duration;

use http::HeaderValue;
use mesh_core::policy::Labels;
use mesh_telemetry::ResponseFlags;
use tower::{ServiceExt, service_fn};

use super::*;

fn config() -> ServerMetricsConfig {
    let mut l = Labels::new();
    l.insert("app".into(), "service2".into());
    l.insert("version".into(), "v2".into());
    ServerMetricsConfig::for_workload("service2-v2", Some("default"), &l)
}

fn handler()
-> impl Service<Request<String>, Response = Response<String>, Error = std::convert::Infallible> + Clone
{
    service_fn(|req: Request<String>| async move {
        tokio::time::sleep(Duration::from_millis(3)).await;
        let mut resp = Response::new("0123456789".to_owned());
        if req.uri().path() == "/limited" {
            *resp.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
            let mut f = ResponseFlags::default();
            f.insert("RL");
            resp.extensions_mut().insert(f);
        }
        Ok(resp)
    })
}

#[tokio::test(start_paused = true)]
async fn records_destination_metrics() {
    let metrics = MeshMetrics::new();
    let svc = ServerMetricsLayer::new(metrics.clone(), config()).layer(handler());
    let mut req = Request::builder()
        .uri("/a")
        .body("abcd".to_owned())
        .unwrap();
    req.headers_mut().insert(
        &peer::X_MESH_PEER_METADATA,
        HeaderValue::from_static("workload=service1;namespace=default;app=service1;version=v1"),
    );
    svc.clone().oneshot(req).await.unwrap();
    svc.clone()
        .oneshot(
            Request::builder()
                .uri("/limited")
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut junk = Request::new(String::new());
    junk.headers_mut().insert(
        &peer::X_MESH_PEER_METADATA,
        HeaderValue::from_static("nonsense"),
    );
    svc.oneshot(junk).await.unwrap();

    let text = metrics.encode_prometheus();
    let find = |prefix: &str, needle: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix) && l.contains(needle))
            .map(str::to_owned)
    };
    let ok = find(
        "istio_requests_total{response_code=\"200\"",
        "source_workload=\"service1\"",
    )
    .expect(&text);
    for want in [
        "reporter=\"destination\"",
        "source_app=\"service1\"",
        "source_version=\"v1\"",
        "destination_workload=\"service2-v2\"",
        "destination_workload_namespace=\"default\"",
        "destination_app=\"service2\"",
        "destination_version=\"v2\"",
        "destination_service=\"service2\"",
        "destination_service_namespace=\"default\"",
        "destination_canonical_service=\"service2\"",
        "destination_canonical_revision=\"v2\"",
        "connection_security_policy=\"none\"",
    ] {
        assert!(ok.contains(want), "{want} not in {ok}");
    }
    assert!(ok.ends_with("} 1"), "{ok}");
    // Malformed metadata and no metadata both mean an unknown source: one series of two.
    let unknown = find(
        "istio_requests_total{response_code=\"200\"",
        "source_workload=\"unknown\"",
    )
    .expect(&text);
    assert!(unknown.ends_with("} 1"), "{unknown}");
    let limited = find("istio_requests_total{response_code=\"429\"", "").expect(&text);
    assert!(limited.contains("response_flags=\"RL\""), "{limited}");
    let bytes = find(
        "istio_request_bytes_sum{response_code=\"200\"",
        "source_workload=\"service1\"",
    )
    .unwrap();
    let value = |l: &str| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
    assert_eq!(value(&bytes), Some(4.0), "{bytes}");
    let resp = find(
        "istio_response_bytes_sum{response_code=\"200\"",
        "source_workload=\"service1\"",
    )
    .unwrap();
    assert_eq!(value(&resp), Some(10.0), "{resp}");
    let le5 = find(
        "istio_request_duration_milliseconds_bucket{response_code=\"429\"",
        "le=\"5\"",
    )
    .unwrap();
    let le1 = find(
        "istio_request_duration_milliseconds_bucket{response_code=\"429\"",
        "le=\"1\"",
    )
    .unwrap();
    assert!(le5.ends_with(" 1") && le1.ends_with(" 0"), "{le1}\n{le5}");
}

#[tokio::test(start_paused = true)]
async fn the_protocol_label_follows_the_meshs_grpc_rule() {
    let metrics = MeshMetrics::new();
    let svc = ServerMetricsLayer::new(metrics.clone(), config()).layer(handler());
    for content_type in ["application/grpc+proto", "application/grpcfoo"] {
        let mut req = Request::new(String::new());
        req.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        svc.clone().oneshot(req).await.unwrap();
    }
    let text = metrics.encode_prometheus();
    let count = |protocol: &str| {
        text.lines()
            .filter(|l| {
                l.starts_with("istio_requests_total{")
                    && l.contains(&format!("request_protocol=\"{protocol}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    // `application/grpcfoo` is not gRPC to the mesh's gRPC handling, so not to its metrics.
    assert_eq!((count("grpc"), count("http")), (1, 1), "{text}");
}
