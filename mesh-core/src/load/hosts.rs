//! Host names: Istio accepts short names (`service2`) and FQDNs
//! (`service2.default.svc.cluster.local`); a short name means the service of that name in the
//! namespace of the resource that writes it. DestinationRules are looked up as Istio does:
//! client namespace, then service namespace, then the root namespace.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

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
    cluster_namespace(host).or_else(|| {
        config
            .service_entries
            .iter()
            .find(|se| {
                se.hosts
                    .iter()
                    .any(|h| is_canonical(h, &se.origin.namespace, host))
            })
            .map(|se| se.origin.namespace.as_str())
    })
}

/// The `<ns>` of `<name>.<ns>.svc.cluster.local`.
fn cluster_namespace(host: &str) -> Option<&str> {
    let rest = host
        .strip_suffix(CLUSTER_DOMAIN)
        .and_then(|r| r.strip_suffix('.'))?;
    rest.rsplit_once('.').map(|(_, ns)| ns)
}

/// Whether `canonical_host(host, namespace) == canonical`, without building the string.
fn is_canonical(host: &str, namespace: &str, canonical: &str) -> bool {
    let h = host.trim();
    let lower_eq = |a: &str, b: &str| {
        a.len() == b.len()
            && a.bytes()
                .zip(b.bytes())
                .all(|(x, y)| x.to_ascii_lowercase() == y)
    };
    if h.contains('.') || h.contains('*') {
        return lower_eq(h, canonical);
    }
    canonical
        .get(..h.len())
        .is_some_and(|head| lower_eq(h, head))
        && canonical[h.len()..]
            .strip_prefix('.')
            .and_then(|r| r.strip_prefix(namespace))
            .and_then(|r| r.strip_prefix('.'))
            .is_some_and(|r| r == CLUSTER_DOMAIN)
}

/// The canonical host of a rule: its `host` read in its own namespace.
fn rule_host(d: &DestinationPolicy) -> String {
    canonical_host(&d.host, &d.origin.namespace)
}

/// One DestinationRule as [`DestinationIndex`] files it.
struct Rule<'a> {
    rule: &'a DestinationPolicy,
    /// The same rule, to share it (a namespace's view holds the config's rules).
    shared: &'a Arc<DestinationPolicy>,
    /// Its host, canonical.
    host: String,
    /// Its `exportTo`, when it has one.
    export: Option<&'a crate::policy::ExportTo>,
}

impl Rule<'_> {
    fn visible_from(&self, client: &str) -> bool {
        self.export
            .is_none_or(|e| e.allows(&self.rule.origin.namespace, client))
    }
}

/// The DestinationRules of one config filed by namespace and canonical host, for the many
/// lookups of a load's checks and of a namespace's view: each lookup is one hash lookup (plus
/// the wildcard rules of the namespaces it tries) instead of a pass over every rule. Answers as
/// [`MeshConfig::destination_in`] does.
pub(crate) struct DestinationIndex<'a> {
    config: &'a MeshConfig,
    /// Every rule, in `config.destinations` order.
    rules: Vec<Rule<'a>>,
    /// Canonical host → the rules for it (in any namespace), by position in `rules`.
    exact: HashMap<String, Vec<usize>>,
    /// The rules whose host is a wildcard, by position in `rules`.
    wildcards: Vec<usize>,
    /// The canonical hosts of the ServiceEntries → the namespace of the first entry listing it.
    entry_namespaces: HashMap<String, &'a str>,
}

impl<'a> DestinationIndex<'a> {
    /// Files `config`'s DestinationRules and ServiceEntry hosts.
    pub(crate) fn new(config: &'a MeshConfig) -> Self {
        let mut index = Self {
            config,
            rules: Vec::with_capacity(config.destinations.len()),
            exact: HashMap::with_capacity(config.destinations.len()),
            wildcards: Vec::new(),
            entry_namespaces: HashMap::new(),
        };
        for (i, rule) in config.destinations.values().enumerate() {
            let host = rule_host(rule);
            if host.starts_with('*') {
                index.wildcards.push(i);
            }
            index.exact.entry(host.clone()).or_default().push(i);
            let export = if config.exports.is_empty() {
                None
            } else {
                config.exports.get(&(
                    "DestinationRule".to_owned(),
                    rule.origin.namespace.clone(),
                    rule.origin.name.clone(),
                ))
            };
            index.rules.push(Rule {
                rule,
                shared: rule,
                host,
                export,
            });
        }
        for se in &config.service_entries {
            for h in &se.hosts {
                index
                    .entry_namespaces
                    .entry(canonical_host(h, &se.origin.namespace))
                    .or_insert(se.origin.namespace.as_str());
            }
        }
        index
    }

    /// The config the index files.
    pub(crate) fn config(&self) -> &'a MeshConfig {
        self.config
    }

    /// [`MeshConfig::destination_in`], through the index.
    pub(crate) fn destination_in(
        &self,
        host: &str,
        namespace: &str,
    ) -> Option<&'a DestinationPolicy> {
        self.lookup(&canonical_host(host, namespace), namespace)
            .or_else(|| {
                let d = &**self.config.destinations.get(host)?;
                self.lookup(&rule_host(d), namespace)
                    .filter(|w| std::ptr::eq(*w, d))
            })
    }

    /// The namespace of the service `host` (canonical) names (as `service_namespace`).
    fn service_namespace<'h>(&'h self, host: &'h str) -> Option<&'h str> {
        cluster_namespace(host).or_else(|| self.entry_namespaces.get(host).copied())
    }

    /// Istio's lookup for a canonical `host` and a client in `client`, as
    /// `MeshConfig::lookup_destination` does it.
    fn lookup(&self, host: &str, client: &str) -> Option<&'a DestinationPolicy> {
        let in_namespace = |ns: &str| -> Option<&'a DestinationPolicy> {
            let exact = self.exact.get(host).and_then(|at| {
                at.iter()
                    .map(|&i| &self.rules[i])
                    .find(|r| r.rule.origin.namespace == ns && r.visible_from(client))
            });
            if let Some(r) = exact {
                return Some(r.rule);
            }
            // the most specific wildcard: the longest pattern, the first of equals
            let mut best: Option<&Rule<'a>> = None;
            for r in self.wildcards.iter().map(|&i| &self.rules[i]) {
                if r.rule.origin.namespace == ns
                    && r.visible_from(client)
                    && host_matches(&r.host, host)
                    && best.is_none_or(|b| r.host.len() > b.host.len())
                {
                    best = Some(r);
                }
            }
            best.map(|r| r.rule)
        };
        in_namespace(client)
            .or_else(|| self.service_namespace(host).and_then(in_namespace))
            .or_else(|| in_namespace(crate::policy::ROOT_NAMESPACE))
    }

    /// `MeshConfig::scoped_destinations`, through the index.
    fn scoped(&self, namespace: &str) -> BTreeMap<String, Arc<DestinationPolicy>> {
        let entry_hosts: Vec<&str> = self.entry_hosts();
        let wins = |d: &DestinationPolicy, host: &str| {
            self.lookup(host, namespace)
                .is_some_and(|w| std::ptr::eq(w, d))
        };
        let mut winners: Vec<&Rule<'a>> = self
            .rules
            .iter()
            .filter(|r| {
                wins(r.rule, &r.host)
                    || entry_hosts
                        .iter()
                        .any(|h| host_matches(&r.host, h) && wins(r.rule, h))
            })
            .collect();
        winners.sort_by_key(|r| self.service_namespace(&r.host) != Some(namespace));
        let mut out = BTreeMap::new();
        for r in winners {
            let d = r.rule;
            let key = if out.contains_key(&d.host) {
                format!("{}/{}", d.origin.namespace, d.host)
            } else {
                d.host.clone()
            };
            out.insert(key, Arc::clone(r.shared));
        }
        out
    }

    /// The ServiceEntries' canonical hosts, in the entries' order (duplicates kept, as the
    /// linear lookup keeps them).
    fn entry_hosts(&self) -> Vec<&str> {
        self.entry_namespaces.keys().map(String::as_str).collect()
    }
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
                self.destinations.get(host).map(|d| &**d).filter(|d| {
                    self.lookup_destination(&rule_host(d), namespace)
                        .is_some_and(|w| std::ptr::eq(w, *d))
                })
            })
    }

    /// Istio's lookup for a canonical `host` and a client in `client`, one pass over the rules
    /// (for one lookup; [`DestinationIndex`] files them for many).
    fn lookup_destination(&self, host: &str, client: &str) -> Option<&DestinationPolicy> {
        let visible = |d: &DestinationPolicy| {
            self.exports.is_empty()
                || self
                    .exports
                    .get(&(
                        "DestinationRule".to_owned(),
                        d.origin.namespace.clone(),
                        d.origin.name.clone(),
                    ))
                    .is_none_or(|e| e.allows(&d.origin.namespace, client))
        };
        let in_namespace = |ns: &str| {
            let mut best: Option<(&DestinationPolicy, usize)> = None;
            for d in self.destinations.values().map(|d| &**d) {
                if d.origin.namespace != ns || !visible(d) {
                    continue;
                }
                if is_canonical(&d.host, &d.origin.namespace, host) {
                    return Some(d);
                }
                if !d.host.contains('*') {
                    continue;
                }
                // the most specific wildcard: the longest pattern
                let h = rule_host(d);
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
    ) -> BTreeMap<String, Arc<DestinationPolicy>> {
        DestinationIndex::new(self).scoped(namespace)
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

    use proptest::prelude::*;

    const NAMESPACES: [&str; 3] = ["a", "b", "istio-system"];
    const HOSTS: [&str; 7] = [
        "svc",
        "svc.a.svc.cluster.local",
        "svc.b.svc.cluster.local",
        "x.example.com",
        "*.example.com",
        "*",
        "Svc",
    ];
    const EXPORTS: [&str; 5] = ["", ".", "*", "a", "~"];

    /// The linear lookup's view of one namespace, as `scoped_destinations` computed it before
    /// the index: the oracle the index is held to.
    fn scoped_linear(config: &MeshConfig, namespace: &str) -> Vec<(String, String)> {
        let entry_hosts: Vec<String> = config
            .service_entries
            .iter()
            .flat_map(|se| {
                se.hosts
                    .iter()
                    .map(|h| canonical_host(h, &se.origin.namespace))
            })
            .collect();
        let wins = |d: &DestinationPolicy, host: &str| {
            config
                .lookup_destination(host, namespace)
                .is_some_and(|w| std::ptr::eq(w, d))
        };
        let mut winners: Vec<&Arc<DestinationPolicy>> = config
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
        winners.sort_by_key(|d| service_namespace(config, &rule_host(d)) != Some(namespace));
        let mut out = BTreeMap::new();
        for d in winners {
            let key = if out.contains_key(&d.host) {
                format!("{}/{}", d.origin.namespace, d.host)
            } else {
                d.host.clone()
            };
            out.insert(key, d.origin.name.clone());
        }
        out.into_iter().collect()
    }

    proptest! {
        #[test]
        fn the_index_answers_as_the_linear_lookup(
            rules in proptest::collection::vec((0..3usize, 0..7usize, 0..5usize), 0..8),
            entries in proptest::collection::vec((0..3usize, 0..7usize), 0..3),
        ) {
            let mut yaml = String::new();
            for (i, (ns, host, export)) in rules.iter().enumerate() {
                let export = match EXPORTS[*export] {
                    "" => String::new(),
                    e => format!("  exportTo: ['{e}']\n"),
                };
                yaml.push_str(&format!(
                    "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: r{i}, namespace: {}}}\nspec:\n  host: '{}'\n{export}---\n",
                    NAMESPACES[*ns], HOSTS[*host]
                ));
            }
            for (i, (ns, host)) in entries.iter().enumerate() {
                yaml.push_str(&format!(
                    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: e{i}, namespace: {}}}\nspec:\n  hosts: ['{}']\n  resolution: DNS\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n---\n",
                    NAMESPACES[*ns], HOSTS[*host].trim_start_matches("*.")
                ));
            }
            // one rule per host and namespace: a draw that breaks it is not a config
            let Ok(loaded) = crate::load::load_str("rules.yaml", &yaml) else { return Ok(()) };
            let config = loaded.config;
            let index = DestinationIndex::new(&config);
            for ns in NAMESPACES {
                for host in HOSTS {
                    let linear = config.destination_in(host, ns).map(|d| &d.origin.name);
                    let indexed = index.destination_in(host, ns).map(|d| &d.origin.name);
                    prop_assert_eq!(linear, indexed, "host {} from {}", host, ns);
                }
                let scoped: Vec<(String, String)> = config
                    .scoped_destinations(ns)
                    .into_iter()
                    .map(|(k, d)| (k, d.origin.name.clone()))
                    .collect();
                prop_assert_eq!(scoped, scoped_linear(&config, ns), "view of {}", ns);
            }
        }
    }
}
