#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;

fn vs(name: &str, timeout: &str) -> (Key, Object) {
    let object = Object {
        api_version: "networking.istio.io/v1".into(),
        kind: "VirtualService".into(),
        namespace: "default".into(),
        name: name.into(),
        annotations: Default::default(),
        spec: json!({"hosts": ["service2"], "http": [{"timeout": timeout, "route": [{"destination": {"host": "service2"}}]}]}),
    };
    (
        ("VirtualService".into(), "default".into(), name.into()),
        object,
    )
}

#[test]
fn unchanged_objects_are_not_compiled_again() {
    let mut objects = Objects::default();
    objects.replace_kind("VirtualService", BTreeMap::from([vs("a", "1s")]));
    assert!(objects.compile_if_changed().is_some());
    // the same objects again (a relist, or a label change: metadata is not kept)
    objects.replace_kind("VirtualService", BTreeMap::from([vs("a", "1s")]));
    assert!(objects.compile_if_changed().is_none());
    let (k, o) = vs("a", "2s");
    objects.current.insert(k, o);
    let (config, report) = objects.compile_if_changed().unwrap();
    assert_eq!(
        config.virtual_services[0].http[0].timeout,
        Some(std::time::Duration::from_secs(2))
    );
    assert_eq!(report.applied, 1);
}

#[test]
fn a_refused_object_keeps_its_last_good_version() {
    let mut objects = Objects::default();
    let (k, good) = vs("a", "1s");
    objects.current.insert(k.clone(), good);
    objects.compile();
    let (_, bad) = vs("a", "banana");
    objects.current.insert(k, bad);
    let (config, report) = objects.compile();
    assert_eq!(
        config.virtual_services[0].http[0].timeout,
        Some(std::time::Duration::from_secs(1))
    );
    assert!(report.refused[0].last_good_kept);
    assert_eq!(report.refused[0].errors[0].field, "spec.http[0].timeout");
    assert_eq!(report.applied, 0);
}

#[test]
fn a_malformed_spec_is_refused_with_its_field() {
    let mut objects = Objects::default();
    let (k, mut o) = vs("a", "1s");
    o.spec = json!("oops");
    objects.current.insert(k, o);
    let (config, report) = objects.compile();
    assert!(config.virtual_services.is_empty());
    let refused = &report.refused[0];
    assert!(!refused.last_good_kept);
    assert_eq!(refused.errors[0].field, "spec");
    assert!(
        refused.errors[0].message.contains("invalid type"),
        "{:?}",
        refused.errors
    );
}

#[test]
fn a_watch_event_reads_only_the_objects_it_changed() {
    let mut objects = Objects::default();
    let many: BTreeMap<Key, Object> = (0..30).map(|i| vs(&format!("vs{i}"), "1s")).collect();
    objects.replace_kind("VirtualService", many);
    objects.compile_if_changed().unwrap();
    assert_eq!(objects.cache.reads(), 30);
    // one object changed: one read
    let (k, o) = vs("vs7", "2s");
    objects.current.insert(k.clone(), o);
    let (config, _) = objects.compile_if_changed().unwrap();
    assert_eq!(objects.cache.reads(), 31);
    assert_eq!(config.virtual_services.len(), 30);
    // refused: the last good version compiles in its place, from the cache (two loads, one
    // read: the bad version's)
    let (_, bad) = vs("vs7", "banana");
    objects.current.insert(k.clone(), bad);
    let (config, report) = objects.compile_if_changed().unwrap();
    assert_eq!(objects.cache.reads(), 32);
    assert_eq!(report.refused.len(), 1);
    assert!(report.refused[0].last_good_kept);
    assert_eq!(config.virtual_services.len(), 30);
    // another object changes while vs7 stays refused: still one read per changed object
    let (k2, o2) = vs("vs8", "3s");
    objects.current.insert(k2, o2);
    let (config, report) = objects.compile_if_changed().unwrap();
    assert_eq!(objects.cache.reads(), 33);
    assert_eq!(report.refused.len(), 1);
    let timeout_of = |name: &str| {
        config
            .virtual_services
            .iter()
            .find(|v| v.origin.name == name)
            .and_then(|v| v.http[0].timeout)
    };
    assert_eq!(timeout_of("vs7"), Some(std::time::Duration::from_secs(2)));
    assert_eq!(timeout_of("vs8"), Some(std::time::Duration::from_secs(3)));
}
