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

/// Everything a load gives, comparable (`MeshConfig` by its debug form).
fn summary(loaded: &ObjectsLoaded) -> String {
    format!(
        "{:#?}\n{:#?}\n{:#?}",
        loaded.config, loaded.refused, loaded.warnings
    )
}

#[test]
fn a_cached_load_gives_the_uncached_result_through_every_change() {
    let mut bad_vs = vs("split", "service2", Some("v2"));
    bad_vs.spec["http"][0]["timeout"] = json!("banana");
    let mut bad_dr = dr("service2", "service2", &["v1", "v2"]);
    bad_dr.spec["trafficPolicy"] = json!({"loadBalancer": {"simple": "NOPE"}});
    let mut skipped = vs("x", "service4", None);
    skipped.kind = "Sidecar".into();
    let rounds: Vec<Vec<Object>> = vec![
        vec![
            vs("split", "service2", Some("v2")),
            dr("service2", "service2", &["v1", "v2"]),
        ],
        // the DestinationRule refused: the subset it defined goes with it
        vec![vs("split", "service2", Some("v2")), bad_dr.clone()],
        // back, plus a refused route, a skipped kind and a second DestinationRule for the host
        vec![
            bad_vs.clone(),
            dr("service2", "service2", &["v1", "v2"]),
            skipped.clone(),
            dr("again", "service2", &["v1"]),
            vs("front", "service1", None),
        ],
        // the same objects in another order, one of them twice
        vec![
            vs("front", "service1", None),
            skipped,
            dr("again", "service2", &["v1"]),
            dr("service2", "service2", &["v1", "v2"]),
            bad_vs.clone(),
            bad_vs,
        ],
        // deletions
        vec![vs("front", "service1", None)],
        vec![],
        vec![bad_dr, vs("split", "service2", Some("v2"))],
    ];
    let mut cache = ObjectsCache::new();
    for (i, objects) in rounds.iter().enumerate() {
        for references in [References::Pending, References::Strict] {
            let cached = cache.load(objects, references);
            let uncached = load_objects_with(objects, references);
            assert_eq!(summary(&cached), summary(&uncached), "round {i}");
        }
    }
}

#[test]
fn an_object_seen_in_the_last_two_loads_is_not_read_again() {
    let good = dr("service2", "service2", &["v1"]);
    let mut bad = good.clone();
    bad.spec["subsets"][0]["labels"] = json!("not a map");
    let others: Vec<Object> = (0..20)
        .map(|i| vs(&format!("vs{i}"), &format!("host{i}"), None))
        .collect();
    let with = |dr: &Object| {
        let mut objects = others.clone();
        objects.push(dr.clone());
        objects
    };
    let mut cache = ObjectsCache::new();
    let first = cache.load(&with(&good), References::Pending);
    assert_eq!(cache.reads(), 21);
    let key = |o: &Object| (o.kind.clone(), o.namespace().to_owned(), o.name.clone());
    let before = Arc::clone(&cache.versions[&key(&others[3])][0].1);
    // nothing changed: nothing read, the same compiled pieces
    let again = cache.load(&with(&good), References::Pending);
    assert_eq!(cache.reads(), 21);
    assert!(Arc::ptr_eq(&before, &cache.versions[&key(&others[3])][0].1));
    assert_eq!(summary(&first), summary(&again));
    // one object changed: that one is read
    let refused = cache.load(&with(&bad), References::Pending);
    assert_eq!(cache.reads(), 22);
    assert_eq!(refused.refused.len(), 1, "{:?}", refused.refused);
    // the last good version in its place, as the --kube config does, then the bad one again:
    // both versions are kept, nothing is read
    cache.load(&with(&good), References::Pending);
    cache.load(&with(&bad), References::Pending);
    assert_eq!(cache.reads(), 22);
    assert!(Arc::ptr_eq(&before, &cache.versions[&key(&others[3])][0].1));
    // a third version pushes the oldest out
    let mut third = good.clone();
    third.spec["subsets"][0]["name"] = json!("v9");
    cache.load(&with(&third), References::Pending);
    assert_eq!(cache.reads(), 23);
    assert_eq!(cache.versions[&key(&good)].len(), VERSIONS);
    cache.load(&with(&good), References::Pending);
    assert_eq!(cache.reads(), 24, "the oldest version was forgotten");
    // a key absent from a load is forgotten
    cache.load(&others[..1], References::Pending);
    assert_eq!(cache.versions.len(), 1);
    cache.load(&with(&good), References::Pending);
    assert_eq!(cache.reads(), 24 + 20);
}
