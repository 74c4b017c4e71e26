//! Host names: Istio accepts short names (`service2`) and FQDNs
//! (`service2.default.svc.cluster.local`); a short name means the service of that name in the
//! namespace of the resource that writes it.

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

impl MeshConfig {
    /// The DestinationRule for `host` as a caller in namespace `default` writes it: `service2`
    /// and `service2.default.svc.cluster.local` find the same rule. An exact host beats a
    /// wildcard one.
    pub fn destination(&self, host: &str) -> Option<&DestinationPolicy> {
        self.destination_in(host, "default")
    }

    /// Like [`MeshConfig::destination`], for a caller in `namespace`.
    pub fn destination_in(&self, host: &str, namespace: &str) -> Option<&DestinationPolicy> {
        if let Some(d) = self.destinations.get(host) {
            return Some(d);
        }
        let wanted = canonical_host(host, namespace);
        let canon = |d: &DestinationPolicy| canonical_host(&d.host, &d.origin.namespace);
        self.destinations
            .values()
            .find(|d| canon(d) == wanted)
            .or_else(|| {
                self.destinations
                    .values()
                    .find(|d| host_matches(&canon(d), &wanted))
            })
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
