//! Which hosts an app's calls reach through the routes: what it must watch endpoints for.

use std::collections::BTreeSet;

use mesh_core::load::{canonical_host, host_matches};
use mesh_core::policy::{Labels, MeshConfig, RouteAction};

/// The hosts reachable from `calls` (hosts the app calls, short names relative to `namespace`):
/// each called host, and every destination and mirror of the VirtualServices for a host
/// reached, followed transitively. Hosts come back fully qualified (`name.ns.svc.cluster.local`
/// for short names).
///
/// ```
/// let config = mesh_core::load::load_str("x.yaml", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r, namespace: shop}\nspec:\n  hosts: [service2]\n  http:\n  - route:\n    - destination: {host: service2-canary}\n").unwrap().config;
/// let hosts = mesh_kube::discovery::hosts_reached(&config, "shop", &["service2".into()]);
/// assert_eq!(
///     hosts.into_iter().collect::<Vec<_>>(),
///     ["service2-canary.shop.svc.cluster.local", "service2.shop.svc.cluster.local"]
/// );
/// ```
pub fn hosts_reached(config: &MeshConfig, namespace: &str, calls: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut queue: Vec<String> = calls.iter().map(|h| canonical_host(h, namespace)).collect();
    while let Some(host) = queue.pop() {
        if !out.insert(host.clone()) {
            continue;
        }
        for vs in &config.virtual_services {
            let ns = &vs.origin.namespace;
            if !vs
                .hosts
                .iter()
                .any(|p| host_matches(&canonical_host(p, ns), &host))
            {
                continue;
            }
            for route in &vs.http {
                if let RouteAction::Forward(dests) = &route.action {
                    queue.extend(
                        dests
                            .iter()
                            .map(|d| canonical_host(&d.destination.host, ns)),
                    );
                }
                queue.extend(
                    route
                        .mirrors
                        .iter()
                        .map(|m| canonical_host(&m.destination.host, ns)),
                );
            }
        }
    }
    out
}

/// The destinations of the VirtualServices bound to the Gateways this workload serves (those
/// whose `selector` its Pod labels match, in any namespace, as Istio binds them): the hosts a
/// gateway calls. Empty for a workload no Gateway selects.
///
/// ```
/// use mesh_core::policy::Labels;
/// let yaml = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: web}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: front}\nspec:\n  hosts: ['*']\n  gateways: [web]\n  http:\n  - route:\n    - destination: {host: service1}\n";
/// let config = mesh_core::load::load_str("x.yaml", yaml).unwrap().config;
/// let me = Labels::from([("istio".to_owned(), "ingressgateway".to_owned())]);
/// assert_eq!(mesh_kube::discovery::gateway_hosts(&config, &me), ["service1.default.svc.cluster.local"]);
/// assert!(mesh_kube::discovery::gateway_hosts(&config, &Labels::new()).is_empty());
/// ```
pub fn gateway_hosts(config: &MeshConfig, labels: &Labels) -> Vec<String> {
    let mine: Vec<(&str, &str)> = config
        .gateways
        .iter()
        .filter(|g| {
            !g.selector.is_empty() && g.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .map(|g| (g.origin.namespace.as_str(), g.origin.name.as_str()))
        .collect();
    let mut out = BTreeSet::new();
    for vs in &config.virtual_services {
        let ns = vs.origin.namespace.as_str();
        let bound = vs.gateways.iter().any(|g| {
            let (gns, name) = g.split_once('/').unwrap_or((ns, g));
            mine.contains(&(gns, name))
        });
        if !bound {
            continue;
        }
        for route in &vs.http {
            if let RouteAction::Forward(dests) = &route.action {
                out.extend(
                    dests
                        .iter()
                        .map(|d| canonical_host(&d.destination.host, ns)),
                );
            }
            out.extend(
                route
                    .mirrors
                    .iter()
                    .map(|m| canonical_host(&m.destination.host, ns)),
            );
        }
    }
    out.into_iter().collect()
}
