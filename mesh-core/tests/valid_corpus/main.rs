//! Manifests written from Istio's documentation examples: each loads, and the checked values
//! are what Istio means by them (defaults applied, durations parsed, merges done).
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failed expectation is the test failing

use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderName, StatusCode};
use mesh_core::load::{Loaded, load_paths};
use mesh_core::policy::{
    HashKey, HashTable, HttpRoute, LoadBalancer, Resolution, RetryCondition, RouteAction,
    StringMatch,
};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid")
}

fn load(name: &str) -> Loaded {
    match load_paths(&[dir().join(name)]) {
        Ok(l) => l,
        Err(e) => panic!("{name} must load:\n{e}"),
    }
}

fn route(l: &Loaded, i: usize) -> &HttpRoute {
    &l.config.virtual_services[0].http[i]
}

fn forward(r: &HttpRoute) -> Vec<(String, Option<String>, u32)> {
    match &r.action {
        RouteAction::Forward(d) => d
            .iter()
            .map(|w| {
                (
                    w.destination.host.clone(),
                    w.destination.subset.clone(),
                    w.weight,
                )
            })
            .collect(),
        other => panic!("expected a forward, got {other:?}"),
    }
}

mod entries;
mod routes;
mod traffic_policy;

#[test]
fn the_whole_folder_loads_at_once() {
    let loaded = load_paths(&[dir()]);
    // several files define `reviews`: one folder is not one config, so load each file alone...
    assert!(loaded.is_err());
    let mut count = 0;
    for entry in std::fs::read_dir(dir()).expect("folder").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let l = load(&name);
        count += 1;
        // (one file is there for its warnings, checked below)
        assert!(
            name == "accepted-with-warnings.yaml"
                || l.warnings
                    .iter()
                    .all(|w| w.message.contains("not mesh configuration")),
            "{name}: {:?}",
            l.warnings
        );
    }
    assert!(count >= 15, "only {count} valid cases");
}
