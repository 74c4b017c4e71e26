//! The compiled route table: VirtualServices indexed by host, for one gateway context.

use std::collections::HashMap;
use std::sync::Arc;

use http::Request;
use mesh_core::policy::{HttpRoute, MeshConfig, RequestMatch, VirtualService};

use super::index::PathIndex;
use super::matching::{RequestView, matches, names_gateway, normalize_host};
use crate::hostmap::HostMap;

/// The gateway context of calls between services (Istio's reserved `mesh` gateway).
pub const MESH: &str = "mesh";

/// One route with the data the caller compiled for it (e.g. its layer stack).
#[derive(Debug)]
pub struct Entry<T> {
    /// The route.
    pub route: Arc<HttpRoute>,
    /// The caller's data for it.
    pub data: T,
}

/// The routes of one host, in order.
#[derive(Debug)]
pub struct HostRoutes<T> {
    entries: Vec<Arc<Entry<T>>>,
    /// The routes by path, for long lists ([`PathIndex`]).
    index: Option<PathIndex>,
}

impl<T> HostRoutes<T> {
    /// The routes, in match order.
    pub fn entries(&self) -> &[Arc<Entry<T>>] {
        &self.entries
    }
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup<'a, T> {
    /// A route matched; `matched` is the `match[]` entry that did (`None`: the route has none).
    Matched {
        /// The route and its data.
        entry: &'a Arc<Entry<T>>,
        /// The match entry that held.
        matched: Option<&'a RequestMatch>,
    },
    /// VirtualServices exist for the host but none of their routes matched (Envoy: 404, `NR`).
    NoRoute,
    /// No VirtualService for the host: send to the host itself.
    NoVirtualService,
}

/// VirtualServices compiled for one gateway context, looked up by host.
///
/// Exact hosts are a hash lookup; `*.suffix` wildcards are tried longest suffix first; `*`
/// last. VirtualServices for the same host are concatenated in config order (as Istio merges
/// them at gateways). A VirtualService host of the form `name.namespace.svc.cluster.local` also
/// answers to `name`, `name.namespace` and `name.namespace.svc`, as Kubernetes DNS does.
#[derive(Debug)]
pub struct RouteTable<T = ()> {
    gateway: String,
    exact: HostMap<Arc<HostRoutes<T>>>,
    suffixes: Vec<(String, Arc<HostRoutes<T>>)>,
    any: Option<Arc<HostRoutes<T>>>,
    /// The VirtualServices bound here by namespace and name, with their entries in `http[]`
    /// order: what the next table of a reload reuses ([`RouteTable::compile_reusing`]).
    services: HashMap<String, HashMap<String, Compiled<T>>>,
}

/// One VirtualService's entries.
type Compiled<T> = (Arc<VirtualService>, Vec<Arc<Entry<T>>>);

/// What [`RouteTable::compile_reusing`] did with each route.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reuse {
    /// Routes whose entry (and data) came from the previous table.
    pub reused: usize,
    /// Routes compiled: new, changed, or whose data no longer holds.
    pub compiled: usize,
}

impl RouteTable<()> {
    /// A table for `gateway` without per-route data.
    pub fn new(config: &MeshConfig, gateway: &str) -> Self {
        Self::compile(config, gateway, |_| ())
    }
}

impl<T> RouteTable<T> {
    /// Compiles the VirtualServices bound to `gateway` ([`MESH`] for calls between services),
    /// building each route's data with `make` (called once per route).
    pub fn compile(config: &MeshConfig, gateway: &str, make: impl FnMut(&HttpRoute) -> T) -> Self {
        Self::compile_reusing(config, gateway, None, make, |_, _| false).0
    }

    /// [`RouteTable::compile`] for the next config of a reload: a route of a VirtualService
    /// that `previous` has too (same namespace and name, same place in `http[]`) keeps its entry,
    /// data included, when the route is unchanged (the same object, or an equal one) and `keep`
    /// says its data still holds under the new config; every other route gets `make`'s data.
    /// Routes of deleted VirtualServices are gone with `previous`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use mesh_client::route::{MESH, RouteTable};
    ///
    /// let yaml = |t: &str| format!("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: r}}\nspec:\n  hosts: [svc]\n  http:\n  - timeout: {t}\n    route: [{{destination: {{host: svc}}}}]\n  - route: [{{destination: {{host: other}}}}]\n");
    /// let load = |t: &str| mesh_core::load::load_str("r.yaml", &yaml(t)).map(|l| l.config);
    /// let old = RouteTable::compile(&load("1s")?, MESH, |_| ());
    /// let (new, reuse) = RouteTable::compile_reusing(&load("2s")?, MESH, Some(&old), |_| (), |_, _| true);
    /// assert_eq!((reuse.reused, reuse.compiled), (1, 1)); // the second route is unchanged
    /// let entries = |t: &RouteTable| t.host("svc").map(|h| h.entries().to_vec()).unwrap_or_default();
    /// assert!(!Arc::ptr_eq(&entries(&old)[0], &entries(&new)[0]));
    /// assert!(Arc::ptr_eq(&entries(&old)[1], &entries(&new)[1]));
    /// # Ok::<(), mesh_core::diag::ConfigErrors>(())
    /// ```
    pub fn compile_reusing(
        config: &MeshConfig,
        gateway: &str,
        previous: Option<&RouteTable<T>>,
        mut make: impl FnMut(&HttpRoute) -> T,
        mut keep: impl FnMut(&HttpRoute, &T) -> bool,
    ) -> (Self, Reuse) {
        let mut reuse = Reuse::default();
        let mut services: HashMap<String, HashMap<String, Compiled<T>>> = HashMap::new();
        let mut exact: HashMap<String, Vec<Arc<Entry<T>>>> = HashMap::new();
        let mut suffixes: Vec<(String, Vec<Arc<Entry<T>>>)> = Vec::new();
        let mut any: Option<Vec<Arc<Entry<T>>>> = None;
        for vs in config
            .virtual_services
            .iter()
            .filter(|vs| binds(vs, gateway))
        {
            let old = previous
                .and_then(|p| p.services.get(&vs.origin.namespace))
                .and_then(|by_name| by_name.get(&vs.origin.name));
            let same = old.is_some_and(|(old, _)| Arc::ptr_eq(old, vs));
            let entries: Vec<Arc<Entry<T>>> = vs
                .http
                .iter()
                .enumerate()
                .map(|(i, route)| {
                    if let Some(entry) = old
                        .and_then(|(_, entries)| entries.get(i))
                        .filter(|e| (same || *e.route == *route) && keep(route, &e.data))
                    {
                        reuse.reused += 1;
                        return Arc::clone(entry);
                    }
                    reuse.compiled += 1;
                    Arc::new(Entry {
                        route: Arc::new(route.clone()),
                        data: make(route),
                    })
                })
                .collect();
            // the first of two VirtualServices with one name (a hand-built config) is kept
            services
                .entry(vs.origin.namespace.clone())
                .or_default()
                .entry(vs.origin.name.clone())
                .or_insert_with(|| (Arc::clone(vs), entries.clone()));
            for host in &vs.hosts {
                let host = normalize_host(host);
                if host == "*" {
                    any.get_or_insert_with(Vec::new)
                        .extend(entries.iter().cloned());
                } else if let Some(suffix) = host.strip_prefix('*') {
                    match suffixes.iter_mut().find(|(s, _)| s == suffix) {
                        Some((_, list)) => list.extend(entries.iter().cloned()),
                        None => suffixes.push((suffix.to_owned(), entries.clone())),
                    }
                } else {
                    for alias in aliases(&host) {
                        exact
                            .entry(alias)
                            .or_default()
                            .extend(entries.iter().cloned());
                    }
                }
            }
        }
        suffixes.sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        let wrap = |entries: Vec<Arc<Entry<T>>>| {
            let index = PathIndex::build(&entries);
            Arc::new(HostRoutes { entries, index })
        };
        let mut exact_map = HostMap::new();
        for (host, entries) in exact {
            exact_map.get_or_insert_with(&host, || wrap(entries));
        }
        let table = Self {
            gateway: gateway.to_owned(),
            exact: exact_map,
            suffixes: suffixes.into_iter().map(|(k, v)| (k, wrap(v))).collect(),
            any: any.map(wrap),
            services,
        };
        (table, reuse)
    }

    /// The gateway context this table serves.
    pub fn gateway(&self) -> &str {
        &self.gateway
    }

    /// The routes for `host` (lowercase, no port), most specific host entry first.
    pub fn host(&self, host: &str) -> Option<&Arc<HostRoutes<T>>> {
        if let Some(found) = self.exact.get(host) {
            return Some(found);
        }
        // A cluster-local FQDN also finds a VirtualService written with the short name.
        let short = host
            .strip_suffix(".svc.cluster.local")
            .or_else(|| host.strip_suffix(".svc"));
        if let Some(found) = short
            .and_then(|s| s.split('.').next())
            .and_then(|name| self.exact.get(name))
        {
            return Some(found);
        }
        if let Some((_, found)) = self
            .suffixes
            .iter()
            .find(|(s, _)| host.ends_with(s.as_str()) && host.len() > s.len())
        {
            return Some(found);
        }
        self.any.as_ref()
    }

    /// Finds the route for `request`.
    pub fn lookup<B>(&self, request: &Request<B>) -> Lookup<'_, T> {
        self.lookup_view(&RequestView::new(request))
    }

    /// Finds the route for an already read request.
    pub fn lookup_view(&self, view: &RequestView<'_>) -> Lookup<'_, T> {
        let Some(routes) = self.host(&view.host) else {
            return Lookup::NoVirtualService;
        };
        if let Some(index) = &routes.index {
            return match index.lookup(&routes.entries, view, &self.gateway) {
                Some((entry, matched)) => Lookup::Matched { entry, matched },
                None => Lookup::NoRoute,
            };
        }
        for entry in &routes.entries {
            if entry.route.matches.is_empty() {
                return Lookup::Matched {
                    entry,
                    matched: None,
                };
            }
            if let Some(m) = entry
                .route
                .matches
                .iter()
                .find(|m| matches(m, view, &self.gateway))
            {
                return Lookup::Matched {
                    entry,
                    matched: Some(m),
                };
            }
        }
        Lookup::NoRoute
    }
}

fn binds(vs: &VirtualService, gateway: &str) -> bool {
    if gateway == MESH {
        vs.applies_to_mesh()
    } else {
        vs.gateways.iter().any(|g| names_gateway(g, gateway))
    }
}

/// `name.ns.svc.cluster.local` also answers to `name`, `name.ns`, `name.ns.svc`.
fn aliases(host: &str) -> Vec<String> {
    let mut out = vec![host.to_owned()];
    if let Some(short) = host.strip_suffix(".svc.cluster.local") {
        let mut labels = short.splitn(2, '.');
        if let (Some(name), Some(ns)) = (labels.next(), labels.next()) {
            out.push(name.to_owned());
            out.push(format!("{name}.{ns}"));
            out.push(format!("{name}.{ns}.svc"));
        }
    }
    out
}
