#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn flow(pairs: &[(&str, &str)], rps: f64) -> Flow {
    let labels = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Flow::new(&labels, rps)
}

fn dest(src: (&str, &str), dst: (&str, &str), code: &str, rps: f64) -> Flow {
    flow(
        &[
            ("reporter", "destination"),
            ("source_app", src.0),
            ("source_version", src.1),
            ("destination_app", dst.0),
            ("destination_version", dst.1),
            ("destination_service", dst.0),
            ("response_code", code),
            ("response_flags", "-"),
        ],
        rps,
    )
}

fn edge<'a>(g: &'a Graph, s: &str, t: &str) -> &'a Edge {
    g.edges
        .iter()
        .find(|e| e.source == s && e.target == t)
        .unwrap_or_else(|| panic!("no edge {s} -> {t} in {:#?}", g.edges))
}

/// Today's lab: destination-reported series are complete, source-reported ones say `unknown`
/// for the destination workload.
#[test]
fn the_demo_graph_from_destination_series() {
    let source_side = flow(
        &[
            ("reporter", "source"),
            ("source_app", "service1"),
            ("source_version", "v1"),
            ("destination_app", "unknown"),
            ("destination_version", "unknown"),
            ("destination_service", "service2"),
            ("response_code", "200"),
            ("response_flags", "-"),
        ],
        10.0,
    );
    let flows = [
        dest(("unknown", "unknown"), ("gateway", "v1"), "200", 10.0),
        dest(("gateway", "v1"), ("service1", "v1"), "200", 9.0),
        dest(("gateway", "v1"), ("service1", "v1"), "503", 1.0),
        dest(("service1", "v1"), ("service2", "v1"), "200", 9.0),
        dest(("service1", "v1"), ("service2", "v2"), "200", 1.0),
        dest(("service2", "v1"), ("service3", "v1"), "200", 9.0),
        dest(("service2", "v2"), ("service3", "v1"), "200", 1.0),
        source_side,
    ];
    let latencies = [Latency {
        labels: [
            ("source_app", "gateway"),
            ("source_version", "v1"),
            ("destination_app", "service1"),
            ("destination_version", "v1"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect(),
        p99_ms: 12.5,
    }];
    let g = build(&flows, &latencies);
    let ids: Vec<&str> = g.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "unknown",
            "gateway",
            "service1:v1",
            "service2:v1",
            "service2:v2",
            "service3:v1"
        ]
    );
    let layers: Vec<usize> = g.nodes.iter().map(|n| n.layer).collect();
    assert_eq!(layers, [0, 1, 2, 3, 3, 4]);
    assert_eq!(g.nodes[4].row, 1);
    assert_eq!(
        g.edges.len(),
        6,
        "the source-side series is not counted again"
    );
    let e = edge(&g, "gateway", "service1:v1");
    assert_eq!(e.rps, 10.0);
    assert!((e.error_rate - 0.1).abs() < 1e-12);
    assert_eq!(e.p99_ms, Some(12.5));
    assert_eq!(e.codes.get("503"), Some(&1.0));
    assert_eq!(edge(&g, "service1:v1", "service2:v2").rps, 1.0);
    assert_eq!(edge(&g, "service1:v1", "service2:v2").p99_ms, None);
    let s1 = g.nodes.iter().find(|n| n.id == "service1:v1").unwrap();
    assert_eq!((s1.app.as_str(), s1.version.as_str()), ("service1", "v1"));
    assert_eq!(s1.kind, NodeKind::Workload);
    assert_eq!(s1.rps_in, 10.0);
    assert!(
        g.notes.iter().any(|n| n.contains("unknown")),
        "{:?}",
        g.notes
    );
}

#[test]
fn requests_that_never_reached_a_destination_come_from_the_source_side() {
    let no_upstream = flow(
        &[
            ("reporter", "source"),
            ("source_app", "service1"),
            ("source_version", "v1"),
            ("destination_app", "unknown"),
            ("destination_version", "unknown"),
            ("destination_service", "service2.default.svc.cluster.local"),
            ("response_code", "503"),
            ("response_flags", "UH"),
        ],
        2.0,
    );
    let g = build(&[no_upstream], &[]);
    let e = edge(&g, "service1:v1", "service2");
    assert_eq!(e.reporter, "source");
    assert_eq!(e.error_rate, 1.0);
    let n = g.nodes.iter().find(|n| n.id == "service2").unwrap();
    assert_eq!(n.kind, NodeKind::Service);
    assert!(
        g.notes.iter().any(|n| n.contains("service2")),
        "{:?}",
        g.notes
    );
}

#[test]
fn istio_label_values_map_to_the_same_ids() {
    let g = build(
        &[dest(
            ("istio-ingressgateway", "unknown"),
            ("reviews", "v3"),
            "200",
            1.0,
        )],
        &[],
    );
    assert_eq!(g.edges[0].source, "gateway");
    assert_eq!(g.edges[0].target, "reviews:v3");
    assert_eq!(g.nodes[0].kind, NodeKind::Gateway);
}

#[test]
fn no_traffic_no_graph_and_cycles_terminate() {
    assert_eq!(build(&[], &[]), Graph::default());
    let g = build(
        &[
            dest(("a", "v1"), ("b", "v1"), "200", 1.0),
            dest(("b", "v1"), ("a", "v1"), "200", 1.0),
        ],
        &[],
    );
    assert_eq!(g.nodes.len(), 2);
    assert!(g.nodes.iter().all(|n| n.layer < 2), "{:?}", g.nodes);
}

#[test]
fn json_shape_has_the_documented_fields() {
    let g = build(
        &[dest(("gateway", "v1"), ("service1", "v1"), "200", 4.0)],
        &[],
    );
    let v = serde_json::to_value(&g).unwrap();
    for k in ["id", "app", "version"] {
        assert!(v["nodes"][0].get(k).is_some(), "{v}");
    }
    for k in ["source", "target", "rps", "error_rate", "p99_ms"] {
        assert!(v["edges"][0].get(k).is_some(), "{v}");
    }
    assert_eq!(v["edges"][0]["error_rate"], 0.0);
}
