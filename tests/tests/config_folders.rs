//! Every shipped config folder (`examples/config` and each `examples/scenarios/*`) loads with
//! `mesh_core::load::load_paths`, without errors, and holds what its scenario is about.

use std::path::{Path, PathBuf};

use mesh_core::policy::{MeshConfig, RouteAction};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn load(dir: &Path) -> MeshConfig {
    match mesh_core::load::load_paths(&[dir]) {
        Ok(l) => l.config,
        Err(e) => panic!("{} does not load:\n{e}", dir.display()),
    }
}

fn folders() -> Vec<PathBuf> {
    let mut out = vec![examples_dir().join("config")];
    let scen = examples_dir().join("scenarios");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&scen)
        .unwrap_or_else(|e| panic!("{}: {e}", scen.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    out.extend(dirs);
    out
}

/// The weights of the VirtualService for `service2`, in route order.
fn service2_weights(c: &MeshConfig) -> Vec<(Option<String>, u32)> {
    c.virtual_services
        .iter()
        .filter(|vs| vs.hosts.iter().any(|h| h == "service2") && vs.applies_to_mesh())
        .flat_map(|vs| vs.http.iter())
        .filter_map(|r| match &r.action {
            RouteAction::Forward(ds) => Some(
                ds.iter()
                    .map(|d| (d.destination.subset.clone(), d.weight))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn every_shipped_folder_loads_with_the_article_set_up() {
    let all = folders();
    assert!(
        all.len() >= 10,
        "expected examples/config and 9+ scenario folders, found {all:?}"
    );
    for dir in all {
        let c = load(&dir);
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        assert_eq!(
            c.service_entries.len(),
            3,
            "{name}: ServiceEntries for service1..3"
        );
        assert_eq!(c.gateways.len(), 1, "{name}: the http-gateway");
        assert!(
            c.virtual_services
                .iter()
                .any(|vs| vs.gateways.iter().any(|g| g == "http-gateway")),
            "{name}: the routing VirtualService bound to the gateway"
        );
    }
}

#[test]
fn scenario_folders_hold_their_scenario() {
    let s = examples_dir().join("scenarios");
    let weights = |n: &str| service2_weights(&load(&s.join(n)));
    let v = |a: u32, b: u32| vec![(Some("v1".to_owned()), a), (Some("v2".to_owned()), b)];
    assert_eq!(weights("split"), v(90, 10));
    assert_eq!(weights("canary-1-90-10"), v(90, 10));
    assert_eq!(weights("canary-2-50-50"), v(50, 50));
    assert_eq!(weights("canary-3-0-100"), v(0, 100));

    let mirror = load(&s.join("mirror"));
    let mirrors: Vec<_> = mirror
        .virtual_services
        .iter()
        .flat_map(|vs| vs.http.iter())
        .flat_map(|r| r.mirrors.iter())
        .collect();
    assert_eq!(mirrors.len(), 1);
    assert_eq!(mirrors[0].destination.subset.as_deref(), Some("v2"));

    let retries = load(&s.join("retries"));
    let attempts: Vec<u32> = retries
        .virtual_services
        .iter()
        .filter(|vs| vs.hosts.iter().any(|h| h == "service2"))
        .flat_map(|vs| vs.http.iter())
        .map(|r| r.retries.attempts())
        .collect();
    assert_eq!(attempts, [5]);

    let jwt = load(&s.join("jwt"));
    assert!(
        !jwt.authentication.is_empty(),
        "the legacy Policy becomes authentication policies"
    );
    assert!(jwt.authentication.iter().all(|a| a.require_token));

    let ab = load(&s.join("ab-header-hash"));
    let dr = ab.destinations.get("service2");
    assert!(
        dr.is_some_and(|d| d.subsets.len() == 2),
        "service2 subsets with the consistent hash"
    );
}
