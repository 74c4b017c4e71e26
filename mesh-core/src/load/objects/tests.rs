#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;

fn object(kind: &str, name: &str, spec: serde_json::Value) -> Object {
    let api_version = match kind {
        "AuthorizationPolicy" | "RequestAuthentication" => "security.istio.io/v1",
        _ => "networking.istio.io/v1",
    };
    Object {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: "default".into(),
        name: name.into(),
        annotations: Default::default(),
        spec,
    }
}

fn vs(name: &str, host: &str, subset: Option<&str>) -> Object {
    let mut dest = json!({"host": host});
    if let Some(s) = subset {
        dest["subset"] = s.into();
    }
    object(
        "VirtualService",
        name,
        json!({"hosts": [host], "http": [{"route": [{"destination": dest}]}]}),
    )
}

fn dr(name: &str, host: &str, subsets: &[&str]) -> Object {
    let subsets: Vec<_> = subsets
        .iter()
        .map(|s| json!({"name": s, "labels": {"version": s}}))
        .collect();
    object(
        "DestinationRule",
        name,
        json!({"host": host, "subsets": subsets}),
    )
}

#[test]
fn an_invalid_object_is_refused_alone_with_its_field() {
    let mut bad = vs("typo", "service3", None);
    bad.spec["http"][0]["route"][0]["destination"] = json!({"hots": "service3"});
    let loaded = load_objects(&[vs("good", "service2", None), bad]);
    assert_eq!(loaded.config.virtual_services.len(), 1);
    assert_eq!(loaded.config.virtual_services[0].origin.name, "good");
    assert_eq!(
        loaded.config.virtual_services[0].origin.file,
        "default/good"
    );
    let [refused] = loaded.refused.as_slice() else {
        panic!("{:?}", loaded.refused)
    };
    assert_eq!(
        (
            refused.kind.as_str(),
            refused.namespace.as_str(),
            refused.name.as_str()
        ),
        ("VirtualService", "default", "typo")
    );
    assert_eq!(
        refused.errors[0].to_string(),
        "default/typo:0: VirtualService/typo: spec.http[0].route[0].destination: unknown field `hots`, did you mean `host`?"
    );
}

#[test]
fn an_undefined_subset_refuses_the_route_and_a_refused_rule_cascades() {
    let loaded = load_objects(&[
        vs("split", "service2", Some("v1")),
        dr("service2", "service2", &["v1"]),
    ]);
    assert!(loaded.refused.is_empty(), "{:?}", loaded.refused);
    assert_eq!(loaded.config.destinations.len(), 1);

    // the rule is refused (bad field), so the route's subset is undefined: both refused, and the
    // route is told the rule was refused (not that there is no rule)
    let mut bad_rule = dr("service2", "service2", &["v1"]);
    bad_rule.spec["trafficPolicy"] = json!({"loadBalancer": {"simple": "SIDEWAYS"}});
    let loaded = load_objects(&[
        vs("split", "service2", Some("v1")),
        bad_rule,
        vs("other", "service3", None),
    ]);
    let names: Vec<(&str, &str)> = loaded
        .refused
        .iter()
        .map(|r| (r.kind.as_str(), r.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [("VirtualService", "split"), ("DestinationRule", "service2")]
    );
    assert!(
        loaded.refused[0].errors[0]
            .message
            .contains("refers to DestinationRule `default/service2`, which is refused for its own errors (default/service2)"),
        "{:?}",
        loaded.refused[0].errors
    );
    assert_eq!(loaded.config.virtual_services.len(), 1);
    assert!(loaded.config.destinations.is_empty());
}

#[test]
fn unknown_kinds_warn_and_unknown_versions_are_refused() {
    let mut other = vs("x", "service2", None);
    other.api_version = "networking.istio.io/v2".into();
    let skipped = Object {
        api_version: "networking.istio.io/v1".into(),
        kind: "Sidecar".into(),
        namespace: String::new(),
        name: "s".into(),
        annotations: Default::default(),
        spec: serde_json::Value::Null,
    };
    let loaded = load_objects(&[other, skipped]);
    assert_eq!(loaded.refused.len(), 1);
    assert!(
        loaded.refused[0].errors[0]
            .message
            .contains("unknown version `v2`")
    );
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].file, "default/s");
}

#[test]
fn security_objects_apply() {
    let policy = object(
        "AuthorizationPolicy",
        "deny-all",
        json!({"action": "DENY", "rules": [{}]}),
    );
    let loaded = load_objects(&[policy]);
    assert!(loaded.refused.is_empty(), "{:?}", loaded.refused);
    assert_eq!(loaded.config.authorization.len(), 1);
}

#[test]
fn in_a_cluster_an_undefined_subset_is_pending_not_refused() {
    let objects = [
        vs("split", "service2", Some("v3")),
        dr("service2", "service2", &["v1"]),
        vs("front", "service1", None),
    ];
    // strict (a folder): the route is refused
    assert_eq!(load_objects(&objects).refused.len(), 1);
    // pending (a cluster): every object applies, the reference is a warning
    let loaded = load_objects_with(&objects, References::Pending);
    assert!(loaded.refused.is_empty(), "{:?}", loaded.refused);
    assert_eq!(loaded.config.virtual_services.len(), 2);
    let warning = loaded
        .warnings
        .iter()
        .find(|w| w.message.contains("subset `v3`"))
        .unwrap_or_else(|| panic!("{:?}", loaded.warnings));
    assert_eq!(warning.file, "default/split");
    assert!(warning.message.contains("503 (NC)"), "{}", warning.message);
    // a Gateway that does not exist yet: also pending
    let mut bound = vs("edge", "service1", None);
    bound.spec["gateways"] = json!(["missing-gateway"]);
    let loaded = load_objects_with(&[bound.clone()], References::Pending);
    assert!(loaded.refused.is_empty(), "{:?}", loaded.refused);
    assert_eq!(load_objects(&[bound]).refused.len(), 1);
}
