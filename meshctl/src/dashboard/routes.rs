//! The routes panel: each VirtualService route's destinations with their configured weights,
//! beside the share of the host's traffic each destination's workloads were observed to answer
//! (the canary, visible as it moves).
//!
//! Routes come from `--config DIR` (mesh-core's loader, exactly what the apps load) or, without
//! it, from the first scraped app's `/config_dump`. A subset's workloads are found by its
//! DestinationRule labels; only `app` and `version` can be compared with the graph's nodes.

use std::collections::BTreeMap;

use mesh_core::policy::{MeshConfig, RouteAction};
use serde::Serialize;
use serde_json::Value;

use super::graph::{Graph, NodeKind, short_host};

#[cfg(test)]
mod tests;

/// One route of one VirtualService.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteView {
    /// `namespace/name`.
    pub virtual_service: String,
    /// `hosts`.
    pub hosts: Vec<String>,
    /// `gateways` (empty: the mesh).
    pub gateways: Vec<String>,
    /// Position in `http[]`.
    pub index: usize,
    /// The route's `name`.
    pub name: Option<String>,
    /// Where it sends, with weights.
    pub destinations: Vec<RouteDestination>,
}

/// One weighted destination of a route.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteDestination {
    /// `destination.host`.
    pub host: String,
    /// `destination.subset`.
    pub subset: Option<String>,
    /// `weight`.
    pub weight: u32,
    /// The weight as a fraction (0..1) of the route's total.
    pub configured_share: f64,
    /// The subset's labels (from its DestinationRule).
    pub labels: BTreeMap<String, String>,
    /// Fraction (0..1) of the host's observed requests answered by this destination's
    /// workloads; `None` while the host has no traffic.
    pub observed_share: Option<f64>,
    /// Requests per second answered by this destination's workloads.
    pub observed_rps: f64,
}

type SubsetLabels = BTreeMap<(String, String), BTreeMap<String, String>>;

fn destinations(
    list: Vec<(String, Option<String>, u32)>,
    subsets: &SubsetLabels,
) -> Vec<RouteDestination> {
    let total: u64 = list.iter().map(|d| u64::from(d.2)).sum();
    list.into_iter()
        .map(|(host, subset, weight)| {
            let labels = subset
                .as_ref()
                .and_then(|s| subsets.get(&(short_host(&host).to_owned(), s.clone())))
                .cloned()
                .unwrap_or_default();
            RouteDestination {
                configured_share: if total == 0 {
                    0.0
                } else {
                    f64::from(weight) / total as f64
                },
                host,
                subset,
                weight,
                labels,
                observed_share: None,
                observed_rps: 0.0,
            }
        })
        .collect()
}

/// The routes of a loaded config.
pub fn from_config(config: &MeshConfig) -> Vec<RouteView> {
    let mut subsets = SubsetLabels::new();
    for d in config.destinations.values() {
        for s in &d.subsets {
            subsets.insert(
                (short_host(&d.host).to_owned(), s.name.clone()),
                s.labels.clone(),
            );
        }
    }
    let mut out = Vec::new();
    for vs in &config.virtual_services {
        for (index, r) in vs.http.iter().enumerate() {
            let list = match &r.action {
                RouteAction::Forward(ds) => ds
                    .iter()
                    .map(|d| {
                        (
                            d.destination.host.clone(),
                            d.destination.subset.clone(),
                            d.weight,
                        )
                    })
                    .collect(),
                _ => Vec::new(),
            };
            out.push(RouteView {
                virtual_service: format!("{}/{}", vs.origin.namespace, vs.origin.name),
                hosts: vs.hosts.clone(),
                gateways: vs.gateways.clone(),
                index,
                name: r.name.clone(),
                destinations: destinations(list, &subsets),
            });
        }
    }
    out
}

/// The routes of an app's `/config_dump` (its `virtual_services` and `destination_rules`).
pub fn from_config_dump(dump: &Value) -> Vec<RouteView> {
    let str_list = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut subsets = SubsetLabels::new();
    for d in dump
        .get("destination_rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let host = d.get("host").and_then(Value::as_str).unwrap_or("");
        for s in d
            .get("subsets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = s.get("name").and_then(Value::as_str).unwrap_or("");
            let labels = s
                .get("labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            subsets.insert((short_host(host).to_owned(), name.to_owned()), labels);
        }
    }
    let mut out = Vec::new();
    for vs in dump
        .get("virtual_services")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (index, r) in vs
            .get("http")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let list = r
                .pointer("/action/route")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|d| {
                    (
                        d.get("host")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        d.get("subset").and_then(Value::as_str).map(str::to_owned),
                        d.get("weight")
                            .and_then(Value::as_u64)
                            .and_then(|w| u32::try_from(w).ok())
                            .unwrap_or(0),
                    )
                })
                .collect();
            out.push(RouteView {
                virtual_service: vs
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                hosts: str_list(vs.get("hosts")),
                gateways: str_list(vs.get("gateways")),
                index,
                name: r.get("name").and_then(Value::as_str).map(str::to_owned),
                destinations: destinations(list, &subsets),
            });
        }
    }
    out
}

/// Fills each destination's observed share from the graph: the requests answered by the
/// host's nodes whose `app` / `version` match the subset's labels, over all the host's.
pub fn observe(routes: &mut [RouteView], graph: &Graph) {
    let node = |id: &str| graph.nodes.iter().find(|n| n.id == id);
    for route in routes {
        for d in &mut route.destinations {
            let host = short_host(&d.host);
            let mut total = 0.0;
            let mut mine = 0.0;
            for e in &graph.edges {
                let Some(n) = node(&e.target) else { continue };
                if n.app != host || n.kind == NodeKind::External {
                    continue;
                }
                total += e.rps;
                let version_ok = match (d.labels.get("version"), &d.subset) {
                    (Some(v), _) => &n.version == v,
                    // No DestinationRule labels known: the subset's name is usually the version.
                    (None, Some(s)) if d.labels.is_empty() => &n.version == s,
                    _ => true,
                };
                let app_ok = d.labels.get("app").is_none_or(|a| &n.app == a);
                if version_ok && app_ok {
                    mine += e.rps;
                }
            }
            d.observed_rps = mine;
            d.observed_share = (total > 0.0).then(|| mine / total);
        }
    }
}
