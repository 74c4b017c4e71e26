//! DestinationRule lookup as Istio does it: the client's namespace, then the service's, then
//! the root namespace (`istio-system`), each only if exported to the client; one rule per host
//! and namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_core::load::load_str;
use mesh_core::policy::{LoadBalancer, MeshConfig};
use mesh_core::watch::{ConfigSource, ConfigStore};

const HOST: &str = "service2.a.svc.cluster.local";

fn rule(namespace: &str, name: &str, host: &str, subset: &str, extra: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  host: {host}\n{extra}  subsets:\n  - name: {subset}\n    labels: {{version: {subset}}}\n---\n"
    )
}

fn load(yaml: &str) -> MeshConfig {
    let loaded = load_str("rules.yaml", yaml).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    loaded.config
}

fn subsets(config: &MeshConfig, host: &str) -> Vec<String> {
    config
        .destination(host)
        .map(|d| d.subsets.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default()
}

#[test]
fn client_namespace_first_then_root() {
    // `a`'s rule is private to `a`: a client in `b` falls through to the root rule
    let local = rule(
        "a",
        "local",
        "service2",
        "v1",
        "  exportTo: ['.']\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n",
    );
    let root = rule("istio-system", "root", HOST, "v2", "");
    let config = load(&format!("{local}{root}"));
    assert_eq!(config.destinations.len(), 2, "both rules kept");

    let in_a = config.visible_from("a");
    assert_eq!(subsets(&in_a, "service2"), ["v1"]);
    assert_eq!(subsets(&in_a, HOST), ["v1"]);
    let d = in_a.destination(HOST).unwrap();
    assert_eq!(d.traffic_policy.load_balancer, LoadBalancer::Random);
    assert_eq!(in_a.destinations.len(), 1, "one rule per host in a view");

    let in_b = config.visible_from("b");
    assert_eq!(subsets(&in_b, HOST), ["v2"]);
    assert_eq!(in_b.destinations[HOST].origin.name, "root");
    assert_ne!(
        in_b.destination(HOST).unwrap().traffic_policy.load_balancer,
        LoadBalancer::Random
    );
    // `service2` from `b` is service2.b: no rule
    assert!(in_b.destination("service2").is_none());

    // the store view a client reads through sees the same
    let store = ConfigStore::new(config);
    let a = ConfigSource::visible_from(store.clone(), "a").snapshot();
    assert_eq!(a.destinations["service2"].origin.name, "local");
    let b = ConfigSource::visible_from(store, "b").snapshot();
    assert_eq!(b.destinations[HOST].origin.name, "root");
}

#[test]
fn service_namespace_beats_root() {
    let service = rule("a", "service", "service2", "v1", "");
    let root = rule("istio-system", "root", HOST, "v2", "");
    let client = rule("b", "client", HOST, "v3", "");
    let config = load(&format!("{service}{root}{client}"));
    assert_eq!(subsets(&config.visible_from("c"), HOST), ["v1"]);
    assert_eq!(
        config.destination_in(HOST, "c").unwrap().origin.name,
        "service"
    );
    // the client's own namespace beats both
    assert_eq!(subsets(&config.visible_from("b"), HOST), ["v3"]);
    // an exact host beats a wildcard within a namespace; a namespace's wildcard beats a later step
    let wildcard = rule("c", "wild", "'*.a.svc.cluster.local'", "w", "");
    let config = load(&format!("{service}{wildcard}"));
    assert_eq!(subsets(&config.visible_from("c"), HOST), ["w"]);
    assert_eq!(subsets(&config.visible_from("d"), HOST), ["v1"]);
}

#[test]
fn one_rule_per_host_and_namespace() {
    let first = rule("a", "first", "service2", "v1", "");
    let second = rule("a", "second", HOST, "v2", "");
    let refused = load_str("rules.yaml", &format!("{first}{second}")).unwrap_err();
    let errors: Vec<String> = refused.errors.iter().map(|d| d.message.clone()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("namespace `a`"), "{errors:?}");
}

#[test]
fn same_short_host_in_two_namespaces() {
    // both written `service2`: two hosts (service2.a, service2.b), each client keeps its own
    let a = rule("a", "rule", "service2", "va", "");
    let b = rule("b", "rule", "service2", "vb", "");
    let config = load(&format!("{a}{b}"));
    assert_eq!(config.destinations.len(), 2);
    let in_a = config.visible_from("a");
    let in_b = config.visible_from("b");
    assert_eq!(subsets(&in_a, "service2"), ["va"]);
    assert_eq!(subsets(&in_b, "service2"), ["vb"]);
    // the plain key is the client's own namespace's rule
    assert_eq!(in_b.destinations["service2"].origin.namespace, "b");
    assert_eq!(in_b.destinations["a/service2"].origin.namespace, "a");
    assert_eq!(subsets(&in_b, HOST), ["va"]);
}
