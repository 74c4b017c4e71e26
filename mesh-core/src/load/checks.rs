//! Checks across resources, run after every manifest compiled: subsets that no DestinationRule
//! defines (as `istioctl analyze` reports them), Gateways that do not exist, one DestinationRule
//! per host and namespace.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::hosts::{DestinationIndex, canonical_host, host_matches};
use super::{Compiled, RefusedRef};
use crate::compile::Cx;
use crate::diag::Diagnostic;
use crate::policy::{Destination, DestinationPolicy, RouteAction};

/// What a reference to another object that does not exist is (a subset no DestinationRule
/// defines, a Gateway that does not exist).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum References {
    /// An error that refuses the referring resource: a folder is written and checked as a whole
    /// (and `meshctl validate` reports it).
    #[default]
    Strict,
    /// A warning: in a cluster objects arrive one by one, so the referring object applies and
    /// its route answers 503 with Envoy's `NC` flag ("no cluster found") until the subset is
    /// defined; a VirtualService bound to a Gateway that does not exist yet serves no gateway.
    Pending,
}

/// Runs the cross-resource checks and moves DestinationRules into the config map.
pub(crate) fn run(c: &mut Compiled, diags: &mut Vec<Diagnostic>, references: References) {
    // one DestinationRule per host and namespace (Istio merges two in one namespace with a
    // warning; this mesh asks for one); rules in other namespaces are looked up per client
    let mut by_host: BTreeMap<String, Arc<DestinationPolicy>> = BTreeMap::new();
    let mut canon_first: BTreeMap<(String, String), String> = BTreeMap::new();
    for (dr, lines) in std::mem::take(&mut c.destination_rules) {
        let canon = canonical_host(&dr.host, &dr.origin.namespace);
        let slot = (dr.origin.namespace.clone(), canon);
        if let Some(first) = canon_first.get(&slot) {
            let mut cx = Cx::new(dr.origin.clone(), &lines, diags);
            cx.error(
                "spec.host",
                format!(
                    "host `{}` already has a DestinationRule ({first}) in namespace `{}`; write one rule per host and namespace",
                    dr.host, dr.origin.namespace
                ),
            );
            continue;
        }
        canon_first.insert(
            slot,
            format!(
                "{}/{} at {}:{}",
                dr.origin.kind, dr.origin.name, dr.origin.file, dr.origin.line
            ),
        );
        let key = if by_host.contains_key(&dr.host) {
            format!("{}/{}", dr.origin.namespace, dr.host)
        } else {
            dr.host.clone()
        };
        by_host.insert(key, dr);
    }
    c.config.destinations = by_host;
    let gateways: Vec<(String, String)> = c
        .gateways
        .iter()
        .map(|(g, _)| (g.origin.namespace.clone(), g.origin.name.clone()))
        .collect();
    let refused = &c.refused;
    let index = DestinationIndex::new(&c.config);
    for (vs, spec, lines) in &c.virtual_services {
        let mut cx = Cx::new(vs.origin.clone(), lines, diags);
        let ns = vs.origin.namespace.clone();
        for (i, g) in vs.gateways.iter().enumerate() {
            check_gateway(
                g,
                &ns,
                &gateways,
                refused,
                &format!("spec.gateways[{i}]"),
                &mut cx,
                references,
            );
        }
        for (i, route) in vs.http.iter().enumerate() {
            for (j, m) in route.matches.iter().enumerate() {
                for (k, g) in m.gateways.iter().enumerate() {
                    check_gateway(
                        g,
                        &ns,
                        &gateways,
                        refused,
                        &format!("spec.http[{i}].match[{j}].gateways[{k}]"),
                        &mut cx,
                        references,
                    );
                }
            }
            if let RouteAction::Forward(dests) = &route.action {
                for (j, d) in dests.iter().enumerate() {
                    let path = format!("spec.http[{i}].route[{j}].destination.subset");
                    check_subset(
                        &d.destination,
                        &ns,
                        &index,
                        refused,
                        &path,
                        &mut cx,
                        references,
                    );
                }
            }
            let legacy_mirror = spec.http.get(i).is_some_and(|r| r.mirror.is_some());
            for (k, m) in route.mirrors.iter().enumerate() {
                let path = if legacy_mirror {
                    format!("spec.http[{i}].mirror.subset")
                } else {
                    format!("spec.http[{i}].mirrors[{k}].destination.subset")
                };
                check_subset(
                    &m.destination,
                    &ns,
                    &index,
                    refused,
                    &path,
                    &mut cx,
                    references,
                );
            }
        }
    }
}

fn check_gateway(
    g: &str,
    ns: &str,
    gateways: &[(String, String)],
    refused: &[RefusedRef],
    path: &str,
    cx: &mut Cx<'_>,
    references: References,
) {
    if g == "mesh" {
        return;
    }
    let (gns, name) = g.split_once('/').unwrap_or((ns, g));
    // Istio also accepts `name.namespace.svc.cluster.local`
    let (name, gns) = match name.split_once('.') {
        Some((n, rest)) if rest.ends_with(super::hosts::CLUSTER_DOMAIN) => {
            (n, rest.split('.').next().unwrap_or(gns))
        }
        _ => (name, gns),
    };
    if let Some(r) = refused
        .iter()
        .find(|r| r.kind == "Gateway" && r.namespace == gns && r.name == name)
    {
        cx.error(path, r.message());
        return;
    }
    if !gateways.iter().any(|(n_s, n)| n_s == gns && n == name) {
        let known: Vec<String> = gateways.iter().map(|(a, b)| format!("{a}/{b}")).collect();
        let known = if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        };
        let message = format!("gateway `{g}` does not exist (gateways: {known})");
        match references {
            References::Strict => cx.error(path, message),
            References::Pending => cx.warn(
                path,
                format!("{message}; the route binds to it once it exists"),
            ),
        }
    }
}

fn check_subset(
    d: &Destination,
    ns: &str,
    index: &DestinationIndex<'_>,
    refused: &[RefusedRef],
    path: &str,
    cx: &mut Cx<'_>,
    references: References,
) {
    let Some(subset) = &d.subset else { return };
    let mut report = |message: String| match references {
        References::Strict => cx.error(path, message),
        References::Pending => cx.warn(
            path,
            format!("{message}; the route answers 503 (NC) until it is defined"),
        ),
    };
    let wanted = canonical_host(&d.host, ns);
    // the rule a client in the route's namespace applies, else any namespace's rule for the host
    let rule = index.destination_in(&d.host, ns).or_else(|| {
        let canon = |r: &DestinationPolicy| canonical_host(&r.host, &r.origin.namespace);
        let rules = || index.config().destinations.values().map(|r| &**r);
        rules()
            .find(|r| canon(r) == wanted)
            .or_else(|| rules().find(|r| host_matches(&canon(r), &wanted)))
    });
    let refused_rule = || {
        refused.iter().find(|r| {
            r.host.as_deref().is_some_and(|h| {
                let h = canonical_host(h, &r.namespace);
                h == wanted || host_matches(&h, &wanted)
            })
        })
    };
    match rule {
        None => match refused_rule() {
            // The rule's own errors are reported once, where it is refused: the route only
            // says it refers to it (in the cluster a warning: the route answers NC).
            Some(r) => report(format!(
                "subset `{subset}` of host `{}`: {}",
                d.host,
                r.message()
            )),
            None => report(format!(
                "subset `{subset}` of host `{}` is not defined: no DestinationRule for that host",
                d.host
            )),
        },
        Some(r) if r.subset(subset).is_none() => {
            let names: Vec<&str> = r.subsets.iter().map(|s| s.name.as_str()).collect();
            report(format!(
                "subset `{subset}` of host `{}` is not defined by DestinationRule/{} (subsets: {})",
                d.host,
                r.origin.name,
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ));
        }
        Some(_) => {}
    }
}
