#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the test failing

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::policy::{Origin, Resolution, ServiceEntryPolicy, WorkloadEndpoint};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn port(number: u16, name: &str, target: Option<u16>) -> ServicePort {
    ServicePort {
        number,
        name: name.into(),
        protocol: "HTTP".into(),
        target_port: target,
    }
}

fn endpoint(address: &str, ports: &[(&str, u16)], l: &[(&str, &str)]) -> WorkloadEndpoint {
    WorkloadEndpoint {
        address: address.into(),
        ports: ports.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect(),
        labels: labels(l),
        weight: 1,
        locality: None,
        service_account: None,
    }
}

fn entry(
    hosts: &[&str],
    ns: &str,
    ports: Vec<ServicePort>,
    resolution: Resolution,
    eps: Vec<WorkloadEndpoint>,
) -> ServiceEntryPolicy {
    ServiceEntryPolicy {
        origin: Origin {
            kind: "ServiceEntry".into(),
            name: hosts[0].into(),
            namespace: ns.into(),
            ..Origin::default()
        },
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        ports,
        resolution,
        endpoints: eps,
        mesh_internal: true,
    }
}

fn config(entries: Vec<ServiceEntryPolicy>) -> MeshConfig {
    MeshConfig {
        service_entries: entries,
        ..MeshConfig::default()
    }
}

fn service2() -> ServiceEntryPolicy {
    entry(
        &["service2"],
        "default",
        vec![port(80, "http", None)],
        Resolution::Static,
        vec![
            endpoint(
                "127.0.0.1",
                &[("http", 8081)],
                &[("app", "service2"), ("version", "v1")],
            ),
            endpoint(
                "127.0.0.2",
                &[("http", 8082)],
                &[("app", "service2"), ("version", "v2")],
            ),
            endpoint("127.0.0.3", &[], &[("app", "service2"), ("version", "v2")]),
        ],
    )
}

fn addrs(set: &EndpointSet) -> Vec<String> {
    set.iter().map(|e| e.addr.to_string()).collect()
}

#[test]
fn ports_map_by_name_then_target_port_then_number() {
    let mut se = service2();
    se.ports.push(port(9090, "metrics", Some(9100)));
    let registry = Registry::from_config(&config(vec![se]));
    let http = registry.endpoints("service2", Some(80)).unwrap();
    assert_eq!(
        addrs(&http),
        ["127.0.0.1:8081", "127.0.0.2:8082", "127.0.0.3:80"]
    );
    let metrics = registry.endpoints("service2", Some(9090)).unwrap();
    assert_eq!(
        addrs(&metrics),
        ["127.0.0.1:9100", "127.0.0.2:9100", "127.0.0.3:9100"]
    );
    // Two ports and no port given: ambiguous. An undeclared port: unknown.
    assert!(registry.endpoints("service2", None).is_none());
    assert!(registry.endpoints("service2", Some(81)).is_none());
}

#[test]
fn a_lone_port_is_used_when_none_is_given() {
    let registry = Registry::from_config(&config(vec![service2()]));
    assert_eq!(
        addrs(&registry.endpoints("service2", None).unwrap()).len(),
        3
    );
}

#[test]
fn short_names_and_fqdn_resolve_to_the_same_host() {
    let mut other = service2();
    other.hosts = vec!["reviews.shop.svc.cluster.local".into()];
    other.origin.namespace = "shop".into();
    let registry = Registry::from_config(&config(vec![service2(), other]));
    let set = registry.endpoints("service2", Some(80)).unwrap();
    for name in [
        "service2.default",
        "service2.default.svc",
        "service2.default.svc.cluster.local",
        "Service2.Default.svc.cluster.local.",
    ] {
        assert_eq!(
            registry.endpoints(name, Some(80)).unwrap().generation(),
            set.generation(),
            "{name}"
        );
    }
    assert!(
        registry.contains("reviews")
            && registry.contains("reviews.shop")
            && registry.contains("reviews.shop.svc")
    );
    assert!(!registry.contains("service2.other.svc.cluster.local"));
    assert!(!registry.contains("unknown"));
}

#[test]
fn subsets_select_by_labels() {
    let registry = Registry::from_config(&config(vec![service2()]));
    let v2 = registry
        .subset("service2", Some(80), &labels(&[("version", "v2")]))
        .unwrap();
    assert_eq!(addrs(&v2), ["127.0.0.2:8082", "127.0.0.3:80"]);
    let v1 = registry
        .subset(
            "service2",
            None,
            &labels(&[("version", "v1"), ("app", "service2")]),
        )
        .unwrap();
    assert_eq!(addrs(&v1), ["127.0.0.1:8081"]);
    let none = registry
        .subset("service2", None, &labels(&[("version", "v3")]))
        .unwrap();
    assert!(none.is_empty());
    let all = registry.subset("service2", None, &Labels::new()).unwrap();
    assert_eq!(all.len(), 3);
}

#[test]
fn generations_change_only_with_the_endpoints() {
    let registry = Registry::from_config(&config(vec![
        service2(),
        entry(
            &["other"],
            "default",
            vec![port(80, "http", None)],
            Resolution::Static,
            vec![endpoint("127.0.0.9", &[], &[])],
        ),
    ]));
    let rx = registry.subscribe();
    let before = registry.endpoints("service2", Some(80)).unwrap();
    let other_before = registry.endpoints("other", Some(80)).unwrap();
    let mut changed = service2();
    changed.endpoints.pop();
    registry.update(&static_services_of(&[
        changed,
        entry(
            &["other"],
            "default",
            vec![port(80, "http", None)],
            Resolution::Static,
            vec![endpoint("127.0.0.9", &[], &[])],
        ),
    ]));
    assert!(rx.has_changed().unwrap());
    let after = registry.endpoints("service2", Some(80)).unwrap();
    assert_ne!(after.generation(), before.generation());
    assert_eq!(after.len(), 2);
    // The old set is still whole for whoever holds it.
    assert_eq!(before.len(), 3);
    assert_eq!(
        registry.endpoints("other", Some(80)).unwrap().generation(),
        other_before.generation()
    );
}

fn static_services_of(entries: &[ServiceEntryPolicy]) -> Services {
    discovery::static_services(entries, &HashMap::new())
}

#[test]
fn non_ip_static_addresses_are_skipped() {
    let se = entry(
        &["svc"],
        "default",
        vec![port(80, "http", None)],
        Resolution::Static,
        vec![endpoint("not-an-ip", &[], &[]), endpoint("::1", &[], &[])],
    );
    let registry = Registry::from_config(&config(vec![se]));
    assert_eq!(
        addrs(&registry.endpoints("svc", None).unwrap()),
        ["[::1]:80"]
    );
}

#[test]
fn hash_table_over_a_set() {
    let registry = Registry::from_config(&config(vec![service2()]));
    let set = registry.endpoints("service2", None).unwrap();
    let table = set.hash_table(&HashTable::default()).unwrap();
    let i = table.pick(crate::hash::hash_key(b"v2"));
    assert!(i < set.len());
    assert!(
        set.subset(&labels(&[("version", "v9")]))
            .hash_table(&HashTable::default())
            .is_err()
    );
}

/// A resolver answering from a script: `None` is a failure.
struct Scripted(Mutex<Vec<Option<Vec<IpAddr>>>>, Mutex<Vec<String>>);

impl Resolve for Scripted {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
        self.1.lock().unwrap().push(host.to_owned());
        let next = {
            let mut script = self.0.lock().unwrap();
            if script.len() > 1 {
                script.remove(0)
            } else {
                script.first().cloned().flatten()
            }
        };
        Box::pin(async move { next.ok_or_else(|| io::Error::other("scripted failure")) })
    }
}

use std::future::Future;
use std::pin::Pin;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

async fn next_services(rx: &mut watch::Receiver<Arc<Services>>) -> Arc<Services> {
    tokio::time::timeout(Duration::from_secs(120), rx.changed())
        .await
        .expect("no update")
        .unwrap();
    rx.borrow_and_update().clone()
}

#[tokio::test(start_paused = true)]
async fn dns_failures_keep_the_last_good_addresses() {
    let resolver = Arc::new(Scripted(
        Mutex::new(vec![Some(vec![ip(7), ip(5)]), None, Some(vec![ip(8)])]),
        Mutex::new(Vec::new()),
    ));
    let se = entry(
        &["db.example.com"],
        "default",
        vec![port(5432, "tcp", None)],
        Resolution::Dns,
        vec![],
    );
    struct Shared(Arc<Scripted>);
    impl Resolve for Shared {
        fn resolve<'a>(
            &'a self,
            host: &'a str,
        ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
            self.0.resolve(host)
        }
    }
    let options = DnsOptions::default()
        .refresh(Duration::from_secs(10))
        .resolver(Shared(resolver.clone()));
    let discovery = StaticDiscovery::new(&config(vec![se]), options);
    let registry = Arc::new(Registry::new());
    let _following = registry.follow(&discovery);
    let mut rx = discovery.subscribe();

    // First lookup: two addresses, sorted.
    let services = next_services(&mut rx).await;
    let ips: Vec<IpAddr> = services[0].endpoints.iter().map(|e| e.ip).collect();
    assert_eq!(ips, [ip(5), ip(7)]);
    let mut reg_rx = registry.subscribe();
    tokio::time::timeout(
        Duration::from_secs(1),
        reg_rx.wait_for(|_| {
            registry
                .endpoints("db.example.com", None)
                .is_some_and(|s| s.len() == 2)
        }),
    )
    .await
    .expect("registry not updated")
    .unwrap();
    // Second lookup fails: nothing is published, the registry keeps both addresses.
    // Third lookup: a new address replaces them.
    let services = next_services(&mut rx).await;
    let ips: Vec<IpAddr> = services[0].endpoints.iter().map(|e| e.ip).collect();
    assert_eq!(ips, [ip(8)]);
    let calls = resolver.1.lock().unwrap().clone();
    assert!(
        calls.len() >= 3 && calls.iter().all(|c| c == "db.example.com"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn dns_endpoints_resolve_localhost() {
    let se = entry(
        &["local"],
        "default",
        vec![port(80, "http", None)],
        Resolution::Dns,
        vec![
            endpoint("localhost", &[("http", 8080)], &[("version", "v1")]),
            endpoint("127.0.0.5", &[], &[]),
        ],
    );
    let discovery = StaticDiscovery::new(&config(vec![se]), DnsOptions::default());
    let mut rx = discovery.subscribe();
    // Static addresses are there at once; localhost comes after the first lookup.
    assert_eq!(discovery.current()[0].endpoints.len(), 1);
    let services = next_services(&mut rx).await;
    let eps = &services[0].endpoints;
    assert!(eps.iter().any(|e| e.ip.is_loopback()
        && e.ports.get("http") == Some(&8080)
        && e.labels.get("version").is_some_and(|v| v == "v1")));
    assert!(eps.iter().all(|e| e.ip.is_loopback()));
}

#[tokio::test]
async fn discovery_follows_config_changes() {
    let discovery = StaticDiscovery::new(&config(vec![service2()]), DnsOptions::default());
    let registry = Arc::new(Registry::new());
    let _following = registry.follow(&discovery);
    assert_eq!(registry.endpoints("service2", None).unwrap().len(), 3);
    let mut rx = registry.subscribe();
    let mut smaller = service2();
    smaller.endpoints.truncate(1);
    discovery.set_config(&config(vec![smaller]));
    tokio::time::timeout(
        Duration::from_secs(20),
        rx.wait_for(|_| {
            registry
                .endpoints("service2", None)
                .is_some_and(|s| s.len() == 1)
        }),
    )
    .await
    .expect("registry not updated")
    .unwrap();
}

#[test]
fn registry_from_a_loaded_service_entry() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: service2\n  namespace: shop\nspec:\n  hosts: [service2]\n  location: MESH_INTERNAL\n  ports:\n  - number: 80\n    name: http\n    protocol: HTTP\n  resolution: STATIC\n  endpoints:\n  - address: 127.0.0.1\n    ports: {http: 8081}\n    labels: {version: v1}\n  - address: 127.0.0.2\n    labels: {version: v2}\n";
    let loaded = crate::load::load_str("se.yaml", yaml).unwrap();
    let registry = Registry::from_config(&loaded.config);
    let set = registry
        .endpoints("service2.shop.svc.cluster.local", Some(80))
        .unwrap();
    assert_eq!(addrs(&set), ["127.0.0.1:8081", "127.0.0.2:80"]);
    let v2 = registry
        .subset("service2", None, &labels(&[("version", "v2")]))
        .unwrap();
    assert_eq!(addrs(&v2), ["127.0.0.2:80"]);
}

#[tokio::test]
async fn a_registry_follows_config_reloads() {
    let store = crate::watch::ConfigStore::new(config(vec![service2()]));
    let (registry, _driver) = Registry::from_store(&store, DnsOptions::default());
    assert_eq!(registry.endpoints("service2", None).unwrap().len(), 3);
    let mut rx = registry.subscribe();
    let mut smaller = service2();
    smaller.endpoints.truncate(2);
    store.store(config(vec![smaller]));
    tokio::time::timeout(
        Duration::from_secs(20),
        rx.wait_for(|_| {
            registry
                .endpoints("service2", None)
                .is_some_and(|s| s.len() == 2)
        }),
    )
    .await
    .expect("registry not updated")
    .unwrap();
    store.store(MeshConfig::default());
    tokio::time::timeout(
        Duration::from_secs(20),
        rx.wait_for(|_| !registry.contains("service2")),
    )
    .await
    .expect("registry not updated")
    .unwrap();
}
