//! The seed article's manifests: each loads (09 is skipped with a warning), the alternatives
//! 05/06/08 each with 04, 04+07 merged form the A/B set-up, and the article's `v1b` typo is refused.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failed expectation is the test failing

use std::path::{Path, PathBuf};

use mesh_core::diag::Severity;
use mesh_core::load::{load_paths, load_str};
use mesh_core::policy::{HashKey, LoadBalancer, RouteAction, StringMatch};

fn seed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seed")
        .join(name)
}

#[test]
fn gateway_loads() {
    let loaded = load_paths(&[seed("01-gateway.yaml")]).expect("01 loads");
    let gw = &loaded.config.gateways[0];
    assert_eq!(gw.origin.name, "http-gateway");
    assert_eq!(gw.servers[0].port, 80);
    assert_eq!(gw.servers[0].protocol, "HTTP");
    assert_eq!(gw.servers[0].hosts, vec!["*".to_owned()]);
    assert_eq!(
        gw.selector.get("istio").map(String::as_str),
        Some("ingressgateway")
    );
}

#[test]
fn gateway_routing_loads_with_its_gateway() {
    let loaded = load_paths(&[
        seed("01-gateway.yaml"),
        seed("02-virtualservice-routing.yaml"),
    ])
    .expect("01+02 load");
    let vs = &loaded.config.virtual_services[0];
    assert_eq!(vs.gateways, vec!["http-gateway".to_owned()]);
    assert!(!vs.applies_to_mesh());
    assert_eq!(vs.http.len(), 2);
    assert_eq!(
        vs.http[1].matches[0].uri,
        Some(StringMatch::Prefix("/service2".into()))
    );
    match &vs.http[1].action {
        RouteAction::Forward(d) => {
            assert_eq!(d[0].destination.host, "service2");
            assert_eq!(d[0].destination.port, Some(80));
            assert_eq!(d[0].weight, 100);
        }
        other => panic!("expected a forward, got {other:?}"),
    }
}

#[test]
fn gateway_routing_alone_names_the_missing_gateway() {
    let err = load_paths(&[seed("02-virtualservice-routing.yaml")]).expect_err("gateway missing");
    assert!(
        err.to_string()
            .contains("gateway `http-gateway` does not exist"),
        "{err}"
    );
}

#[test]
fn subsets_load() {
    let loaded = load_paths(&[seed("04-destinationrule-subsets.yaml")]).expect("04 loads");
    let dr = loaded
        .config
        .destination("service2")
        .expect("rule for service2");
    assert_eq!(dr.subsets.len(), 2);
    assert_eq!(
        dr.subset("v2")
            .and_then(|s| s.labels.get("version"))
            .map(String::as_str),
        Some("v2")
    );
    assert!(
        loaded
            .config
            .destination("service2.default.svc.cluster.local")
            .is_some()
    );
}

#[test]
fn mirror_loads_with_subsets() {
    let loaded = load_paths(&[
        seed("04-destinationrule-subsets.yaml"),
        seed("05-virtualservice-mirror.yaml"),
    ])
    .expect("04+05 load");
    let route = &loaded.config.virtual_services[0].http[0];
    assert_eq!(route.mirrors.len(), 1);
    assert_eq!(route.mirrors[0].destination.subset.as_deref(), Some("v2"));
    assert_eq!(route.mirrors[0].percent, 100.0);
}

#[test]
fn split_loads_with_subsets() {
    let loaded = load_paths(&[
        seed("04-destinationrule-subsets.yaml"),
        seed("06-virtualservice-split.yaml"),
    ])
    .expect("04+06 load");
    match &loaded.config.virtual_services[0].http[0].action {
        RouteAction::Forward(d) => {
            let weights: Vec<(Option<&str>, u32)> = d
                .iter()
                .map(|w| (w.destination.subset.as_deref(), w.weight))
                .collect();
            assert_eq!(weights, vec![(Some("v1"), 90), (Some("v2"), 10)]);
        }
        other => panic!("expected a forward, got {other:?}"),
    }
}

#[test]
fn retries_load_with_subsets() {
    let loaded = load_paths(&[
        seed("04-destinationrule-subsets.yaml"),
        seed("08-virtualservice-retries.yaml"),
    ])
    .expect("04+08 load");
    let r = &loaded.config.virtual_services[0].http[0].retries;
    assert_eq!(r.attempts(), 5);
    assert_eq!(
        r.per_try_timeout(),
        Some(std::time::Duration::from_secs(10))
    );
}

#[test]
fn alternatives_without_subsets_are_refused() {
    for f in [
        "05-virtualservice-mirror.yaml",
        "06-virtualservice-split.yaml",
        "08-virtualservice-retries.yaml",
    ] {
        let err = load_paths(&[seed(f)]).expect_err("no DestinationRule defines the subsets");
        assert!(
            err.to_string().contains("no DestinationRule for that host"),
            "{f}: {err}"
        );
    }
}

#[test]
fn consistent_hash_loads() {
    let loaded = load_paths(&[seed("07-destinationrule-consistent-hash.yaml")]).expect("07 loads");
    let dr = loaded.config.destination("service2").expect("rule");
    match &dr.traffic_policy.load_balancer {
        LoadBalancer::ConsistentHash(ch) => assert_eq!(
            ch.key,
            HashKey::Header(http::HeaderName::from_static("version"))
        ),
        other => panic!("expected consistent hash, got {other:?}"),
    }
}

#[test]
fn merged_ab_rule_loads_with_split() {
    let ab = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seed-ab/destinationrule-ab.yaml");
    let loaded = load_paths(&[ab, seed("06-virtualservice-split.yaml")]).expect("A/B set-up loads");
    let dr = loaded.config.destination("service2").expect("rule");
    assert_eq!(dr.subsets.len(), 2);
    // the rule's consistent hash is inherited by both subsets
    for s in &dr.subsets {
        assert!(
            matches!(
                s.traffic_policy.load_balancer,
                LoadBalancer::ConsistentHash(_)
            ),
            "{}",
            s.name
        );
    }
}

#[test]
fn rules_04_and_07_side_by_side_are_one_rule_twice() {
    let err = load_paths(&[
        seed("04-destinationrule-subsets.yaml"),
        seed("07-destinationrule-consistent-hash.yaml"),
    ])
    .expect_err("two DestinationRule/service2");
    assert!(
        err.to_string()
            .contains("duplicate DestinationRule `default/service2`"),
        "{err}"
    );
}

#[test]
fn deployment_is_skipped_with_a_warning() {
    let loaded = load_paths(&[seed("09-deployment-service2-v2.yaml")]).expect("09 loads (skipped)");
    assert_eq!(loaded.warnings.len(), 1);
    let w = &loaded.warnings[0];
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!(w.resource, "Deployment/service2-v2");
    assert_eq!(w.line, 3);
    assert!(
        w.message.contains("not mesh configuration"),
        "{}",
        w.message
    );
    assert!(loaded.config.virtual_services.is_empty());
}

#[test]
fn auth_policy_loads_translated() {
    let loaded = load_paths(&[seed("03-auth-policy.yaml")]).expect("03 loads");
    // one authentication policy per target (service1..service5), each requiring a token
    assert_eq!(loaded.config.authentication.len(), 5);
    for authn in &loaded.config.authentication {
        assert!(authn.require_token);
        assert_eq!(authn.rules[0].issuer, "{YOUR_DOMAIN}");
    }
}

#[test]
fn article_v1b_is_refused_naming_the_versions() {
    let text = std::fs::read_to_string(seed("02-virtualservice-routing.yaml"))
        .expect("seed")
        .replace(
            "apiVersion: networking.istio.io/v1beta1",
            "apiVersion: networking.istio.io/v1b",
        );
    assert!(text.contains("apiVersion: networking.istio.io/v1b\n"));
    let err = load_str("02-v1b.yaml", &text).expect_err("v1b refused");
    let d = &err.errors[0];
    assert_eq!(d.line, 3);
    assert_eq!(d.resource, "VirtualService/sssm-virtual-services");
    assert!(d.message.contains("unknown version `v1b`"), "{}", d.message);
    assert!(d.message.contains("v1alpha3, v1beta1, v1"), "{}", d.message);
}
