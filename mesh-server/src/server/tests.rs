use mesh_core::policy::{AuthzAction, AuthzPolicy, Origin, RateLimitPolicy};

use super::*;

fn limit(target: &str, namespace: &str, rps: u32) -> RateLimitPolicy {
    RateLimitPolicy {
        origin: Origin { name: "rl".into(), namespace: namespace.into(), ..Origin::default() },
        target: target.into(),
        total_rps: Some(rps),
        identity_rps: Some(1),
        overrides: vec![],
    }
}

#[test]
fn workload_labels() {
    let w = Workload::new("service2").version("v2").namespace("shop");
    assert_eq!(w.labels.get("app").map(String::as_str), Some("service2"));
    assert_eq!(w.labels.get("version").map(String::as_str), Some("v2"));
    assert_eq!(w.namespace, "shop");
}

#[tokio::test]
async fn refresh_picks_the_workloads_policies_and_keeps_buckets_across_reloads() {
    let cell = Arc::new(ArcSwap::from_pointee(MeshConfig {
        rate_limits: vec![limit("other", "default", 7), limit("service1", "default", 5)],
        ..MeshConfig::default()
    }));
    let p = Policies::new(Workload::new("service1"), ConfigSource::swap(cell.clone()));
    p.refresh();
    let total = p.total.load_full();
    assert_eq!(total.as_ref().and_then(|l| l.settings().total_rps), Some(5));
    assert_eq!(p.per_client.load().as_ref().and_then(|l| l.settings().identity_rps), Some(1));
    assert_eq!(p.per_client.load().as_ref().and_then(|l| l.settings().total_rps), None);

    // A reload that changes something else keeps the same limiter (and its buckets).
    let mut deny = AuthzPolicy {
        origin: Origin { name: "d".into(), namespace: "default".into(), ..Origin::default() },
        selector: Default::default(),
        action: AuthzAction::Deny,
        provider: None,
        rules: vec![],
    };
    let same_limits = cell.load().rate_limits.clone();
    cell.store(Arc::new(MeshConfig { rate_limits: same_limits.clone(), authorization: vec![deny.clone()], ..MeshConfig::default() }));
    p.refresh();
    assert!(matches!((&total, &*p.total.load()), (Some(a), Some(b)) if Arc::ptr_eq(a, b)));
    assert_eq!(p.authz.load().policies().count(), 1);

    // Another namespace's policies do not apply; a changed limit replaces the limiter.
    deny.origin.namespace = "prod".into();
    cell.store(Arc::new(MeshConfig { rate_limits: vec![limit("service1", "default", 9)], authorization: vec![deny], ..MeshConfig::default() }));
    p.refresh();
    assert_eq!(p.authz.load().policies().count(), 0);
    assert_eq!(p.total.load().as_ref().and_then(|l| l.settings().total_rps), Some(9));

    cell.store(Arc::new(MeshConfig::default()));
    p.refresh();
    assert!(p.total.load().is_none() && p.per_client.load().is_none());
}
