//! Namespaces as Istio scopes them, seen from a client: a short host resolves in the caller's
//! namespace first, then as written; the DestinationRule is the one the caller's namespace
//! applies (client, service, root namespace).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use mesh_client::cluster::Clusters;
use mesh_core::policy::Destination;
use mesh_core::registry::Registry;
use mesh_core::watch::{ConfigSource, ConfigStore};

/// `service2` in namespaces `a` and `b` (one endpoint each, `version: v1`), `service3` only in
/// `a`; a DestinationRule for `service2` in `a` (subset v1) and none in `b`.
const YAML: &str = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: service2, namespace: a}
spec:
  hosts: [service2]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.21, ports: {http: 8081}, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: service2, namespace: b}
spec:
  hosts: [service2]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.22, ports: {http: 8081}, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: service3, namespace: a}
spec:
  hosts: [service3]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.23, ports: {http: 8081}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: service2, namespace: a}
spec:
  host: service2
  subsets: [{name: v1, labels: {version: v1}}]
";

fn clusters(store: &ConfigStore, registry: &Arc<Registry>, namespace: &str) -> Clusters {
    Clusters::new(
        ConfigSource::visible_from(store.clone(), namespace),
        registry.clone(),
    )
}

fn addrs(clusters: &Clusters, host: &str, subset: Option<&str>) -> Vec<SocketAddr> {
    let dest = Destination {
        host: host.into(),
        subset: subset.map(Into::into),
        port: Some(80),
    };
    match clusters.cluster(&dest) {
        Ok(c) => c.balancer().endpoints().iter().map(|e| e.addr).collect(),
        Err(_) => Vec::new(),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn short_host_resolves_in_the_callers_namespace_first() {
    let config = mesh_core::load::load_str("ns.yaml", YAML).unwrap().config;
    let registry = Arc::new(Registry::from_config(&config));
    let store = ConfigStore::new(config);
    let in_a = clusters(&store, &registry, "a");
    let in_b = clusters(&store, &registry, "b");
    assert_eq!(addrs(&in_a, "service2", None), [addr("127.0.0.21:8081")]);
    assert_eq!(addrs(&in_b, "service2", None), [addr("127.0.0.22:8081")]);
    // a FQDN is read as written, from any namespace
    let a_host = "service2.a.svc.cluster.local";
    assert_eq!(addrs(&in_b, a_host, None), [addr("127.0.0.21:8081")]);
    // not in the caller's namespace: the host as written
    assert_eq!(addrs(&in_b, "service3", None), [addr("127.0.0.23:8081")]);
}

#[tokio::test]
async fn the_rule_is_the_one_the_callers_namespace_applies() {
    let config = mesh_core::load::load_str("ns.yaml", YAML).unwrap().config;
    let registry = Arc::new(Registry::from_config(&config));
    let store = ConfigStore::new(config);
    let in_a = clusters(&store, &registry, "a");
    let in_b = clusters(&store, &registry, "b");
    // `a`'s rule defines v1 for service2.a: a caller in `a` has the subset
    assert_eq!(
        addrs(&in_a, "service2", Some("v1")),
        [addr("127.0.0.21:8081")]
    );
    // service2 from `b` is service2.b, which no rule covers: no cluster (NC)
    let dest = Destination {
        host: "service2".into(),
        subset: Some("v1".into()),
        port: Some(80),
    };
    assert!(in_b.cluster(&dest).is_err());
    // service2.a from `b`: the service namespace's rule applies
    let a_host = "service2.a.svc.cluster.local";
    assert_eq!(addrs(&in_b, a_host, Some("v1")), [addr("127.0.0.21:8081")]);
}
