#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use super::*;
use crate::dashboard::graph::{Flow, build};
use serde_json::json;

fn dump() -> Value {
    json!({
        "destination_rules": [{"host": "service2", "name": "default/service2", "subsets": [
            {"name": "v1", "labels": {"version": "v1"}},
            {"name": "v2", "labels": {"version": "v2"}}
        ]}],
        "virtual_services": [{"name": "default/service2", "hosts": ["service2"], "gateways": [], "http": [
            {"name": null, "action": {"route": [
                {"host": "service2", "subset": "v1", "port": null, "weight": 90},
                {"host": "service2", "subset": "v2", "port": null, "weight": 10}
            ]}}
        ]}]
    })
}

fn flow(src: &str, dst_version: &str, rps: f64) -> Flow {
    let labels: BTreeMap<String, String> = [
        ("reporter", "destination"),
        ("source_app", src),
        ("source_version", "v1"),
        ("destination_app", "service2"),
        ("destination_version", dst_version),
        ("response_code", "200"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    Flow::new(&labels, rps)
}

#[test]
fn config_dump_routes_with_weights_and_subset_labels() {
    let routes = from_config_dump(&dump());
    assert_eq!(routes.len(), 1);
    let r = &routes[0];
    assert_eq!(r.virtual_service, "default/service2");
    assert_eq!(r.hosts, ["service2"]);
    assert_eq!(r.destinations.len(), 2);
    assert_eq!(r.destinations[0].weight, 90);
    assert!((r.destinations[0].configured_share - 0.9).abs() < 1e-12);
    assert_eq!(r.destinations[1].labels.get("version").unwrap(), "v2");
}

#[test]
fn observed_shares_follow_the_versions_answering() {
    let mut routes = from_config_dump(&dump());
    observe(&mut routes, &build(&[], &[]));
    assert_eq!(routes[0].destinations[0].observed_share, None);
    let g = build(
        &[flow("service1", "v1", 8.0), flow("service1", "v2", 2.0)],
        &[],
    );
    observe(&mut routes, &g);
    let d = &routes[0].destinations;
    assert!((d[0].observed_share.unwrap() - 0.8).abs() < 1e-12);
    assert!((d[1].observed_share.unwrap() - 0.2).abs() < 1e-12);
    assert_eq!(d[1].observed_rps, 2.0);
}

#[test]
fn routes_from_a_loaded_folder() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed-split");
    let loaded = mesh_core::load::load_paths(&[dir]).unwrap();
    let routes = from_config(&loaded.config);
    let split = routes
        .iter()
        .find(|r| r.destinations.len() == 2)
        .expect("the 90/10 split");
    let weights: Vec<u32> = split.destinations.iter().map(|d| d.weight).collect();
    assert_eq!(weights.iter().sum::<u32>(), 100);
    assert!(
        split
            .destinations
            .iter()
            .all(|d| d.labels.contains_key("version")),
        "{split:?}"
    );
}
