//! Host names: Istio accepts short names (`service2`) and FQDNs
//! (`service2.default.svc.cluster.local`); a short name means the service of that name in the
//! namespace of the resource that writes it. DestinationRules are looked up as Istio does:
//! client namespace, then service namespace, then the root namespace.

use crate::policy::{DestinationPolicy, MeshConfig};

/// The cluster domain used to expand short names.
pub const CLUSTER_DOMAIN: &str = "svc.cluster.local";

/// The fully qualified form of `host` written in `namespace`: a name without dots becomes
/// `<name>.<namespace>.svc.cluster.local`; anything else is kept (lowercased).
pub fn canonical_host(host: &str, namespace: &str) -> String {
    let h = host.trim().to_ascii_lowercase();
    if h.contains('.') || h.contains('*') {
        h
    } else {
        format!("{h}.{namespace}.{CLUSTER_DOMAIN}")
    }
}

/// Whether `pattern` (a host that may be a `*.suffix` or `*` wildcard) covers `host` (both
/// already canonical).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some("") => true,
        Some(suffix) => host.ends_with(suffix),
        None => pattern == host,
    }
}

/// The namespace of the service `host` (canonical) names: the `<ns>` of
/// `<name>.<ns>.svc.cluster.local`, else the namespace of a ServiceEntry listing it.
fn service_namespace<'a>(config: &'a MeshConfig, host: &'a str) -> Option<&'a str> {
    if let Some(rest) = host
        .strip_suffix(CLUSTER_DOMAIN)
        .and_then(|r| r.strip_suffix('.'))
        && let Some((_, ns)) = rest.rsplit_once('.')
    {
        return Some(ns);
    }
    config
        .service_entries
        .iter()
        .find(|se| {
            se.hosts
                .iter()
                .any(|h| canonical_host(h, &se.origin.namespace) == host)
        })
        .map(|se| se.origin.namespace.as_str())
}

/// The canonical host of a rule: its `host` read in its own namespace.
fn rule_host(d: &DestinationPolicy) -> String {
    canonical_host(&d.host, &d.origin.namespace)
}

impl MeshConfig {
    /// The DestinationRule for `host` as this snapshot's client sees it: the namespace of a
    /// [`MeshConfig::visible_from`] view, else `default`. See [`MeshConfig::destination_in`].
    pub fn destination(&self, host: &str) -> Option<&DestinationPolicy> {
        self.destination_in(host, self.namespace.as_deref().unwrap_or("default"))
    }

    /// The DestinationRule for `host` (a short name is read in `namespace`) for a client in
    /// `namespace`, in Istio's lookup order: the rule in the client's namespace, then the one in
    /// the service's namespace, then the one in the root namespace (`istio-system`), each only
    /// if its `exportTo` includes the client's namespace; within a namespace an exact host
    /// beats a wildcard. When none applies, the rule whose `host` is written exactly so, if it is the one
    /// this client applies to the host it names.
    ///
    /// ```
    /// let yaml = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: local, namespace: a}\nspec:\n  host: service2\n  exportTo: ['.']\n  subsets: [{name: v1, labels: {version: v1}}]\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: root, namespace: istio-system}\nspec:\n  host: service2.a.svc.cluster.local\n";
    /// let config = mesh_core::load::load_str("x.yaml", yaml).unwrap().config;
    /// let host = "service2.a.svc.cluster.local";
    /// assert_eq!(config.destination_in(host, "a").unwrap().origin.name, "local");
    /// assert_eq!(config.destination_in(host, "b").unwrap().origin.name, "root");
    /// ```
    pub fn destination_in(&self, host: &str, namespace: &str) -> Option<&DestinationPolicy> {
        self.lookup_destination(&canonical_host(host, namespace), namespace)
            .or_else(|| {
                // as written: a rule keyed so, if it is the one this client applies to its host
                self.destinations.get(host).filter(|d| {
                    self.lookup_destination(&rule_host(d), namespace)
                        .is_some_and(|w| std::ptr::eq(w, *d))
                })
            })
    }

    /// Istio's lookup for a canonical `host` and a client in `client`.
    fn lookup_destination(&self, host: &str, client: &str) -> Option<&DestinationPolicy> {
        let visible = |d: &DestinationPolicy| {
            self.exports
                .get(&(
                    "DestinationRule".to_owned(),
                    d.origin.namespace.clone(),
                    d.origin.name.clone(),
                ))
                .is_none_or(|e| e.allows(&d.origin.namespace, client))
        };
        let in_namespace = |ns: &str| {
            let mut best: Option<(&DestinationPolicy, usize)> = None;
            for d in self.destinations.values() {
                if d.origin.namespace != ns || !visible(d) {
                    continue;
                }
                let h = rule_host(d);
                if h == host {
                    return Some(d);
                }
                // the most specific wildcard: the longest pattern
                if host_matches(&h, host) && best.is_none_or(|(_, len)| h.len() > len) {
                    best = Some((d, h.len()));
                }
            }
            best.map(|(d, _)| d)
        };
        let service_ns = service_namespace(self, host);
        in_namespace(client)
            .or_else(|| service_ns.and_then(in_namespace))
            .or_else(|| in_namespace(crate::policy::ROOT_NAMESPACE))
    }

    /// The DestinationRules a client in `namespace` applies, one per host: each rule that wins
    /// [`MeshConfig::destination_in`]'s order for its own host or for a ServiceEntry host it
    /// covers. Keyed by `host` as written; a second rule written the same way (another
    /// namespace's service of the same short name) is keyed `namespace/host`, the rules for
    /// the client's own namespace taking the plain keys.
    pub(crate) fn scoped_destinations(
        &self,
        namespace: &str,
    ) -> std::collections::BTreeMap<String, DestinationPolicy> {
        let entry_hosts: Vec<String> = self
            .service_entries
            .iter()
            .flat_map(|se| {
                se.hosts
                    .iter()
                    .map(|h| canonical_host(h, &se.origin.namespace))
            })
            .collect();
        let wins = |d: &DestinationPolicy, host: &str| {
            self.lookup_destination(host, namespace)
                .is_some_and(|w| std::ptr::eq(w, d))
        };
        let mut winners: Vec<&DestinationPolicy> = self
            .destinations
            .values()
            .filter(|d| {
                let own = rule_host(d);
                wins(d, &own)
                    || entry_hosts
                        .iter()
                        .any(|h| host_matches(&own, h) && wins(d, h))
            })
            .collect();
        winners.sort_by_key(|d| service_namespace(self, &rule_host(d)) != Some(namespace));
        let mut out = std::collections::BTreeMap::new();
        for d in winners {
            let key = if out.contains_key(&d.host) {
                format!("{}/{}", d.origin.namespace, d.host)
            } else {
                d.host.clone()
            };
            out.insert(key, d.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_fqdn_agree() {
        assert_eq!(
            canonical_host("service2", "default"),
            "service2.default.svc.cluster.local"
        );
        assert_eq!(
            canonical_host("service2.default.svc.cluster.local", "x"),
            "service2.default.svc.cluster.local"
        );
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(!host_matches("*.example.com", "example.org"));
    }
}
