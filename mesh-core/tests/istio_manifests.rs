//! Real manifests from Istio's repository (`fixtures/istio/`, each opening with its source path
//! in istio/istio): every one loads, and the fields this mesh used to refuse are read.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failed expectation is the test failing

use std::path::{Path, PathBuf};

use mesh_core::load::{Loaded, load_paths};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/istio")
}

fn load(name: &str) -> Loaded {
    match load_paths(&[dir().join(name)]) {
        Ok(l) => l,
        Err(e) => panic!("{name} must load:\n{e}"),
    }
}

#[test]
fn every_istio_manifest_loads() {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .expect("folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 9, "{names:?}");
    for name in &names {
        let text = std::fs::read_to_string(dir().join(name)).unwrap();
        assert!(
            text.starts_with("# Source: istio/istio "),
            "{name}: source noted"
        );
        load(name);
    }
}

#[test]
fn the_fields_they_use_are_read() {
    let claims = load("analysis_analyzers_testdata_virtualservice_jwtclaimroute.yaml");
    let m = &claims.config.virtual_services[0].http[0].matches[0];
    assert_eq!(m.claims[0].0, ["foo"]);
    assert!(m.headers.is_empty());

    let cors = load("config_rule-default-route-cors-policy.yaml");
    assert!(
        cors.config
            .virtual_services
            .iter()
            .flat_map(|v| &v.http)
            .any(|r| r.cors.is_some())
    );

    let templates = load("security_authz_builder_testdata_http_allow-path-in.yaml");
    let paths: Vec<&String> = templates
        .config
        .authorization
        .iter()
        .flat_map(|p| &p.rules)
        .flat_map(|r| &r.to)
        .flat_map(|o| &o.paths)
        .collect();
    assert!(
        paths.iter().any(|p| p.as_str() == "/path/template/{*}"),
        "{paths:?}"
    );

    let addresses = load("external_github.yaml");
    assert!(
        addresses
            .warnings
            .iter()
            .any(|w| w.message.contains("addresses matter only for TCP traffic")),
        "{:?}",
        addresses.warnings
    );
}
