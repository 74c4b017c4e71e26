//! Host names: `service2` and `service2.<ns>.svc.cluster.local` are the same host.

use super::Service;

/// The cluster domain suffix of Kubernetes service names.
const CLUSTER_SUFFIX: &str = ".svc.cluster.local";

/// Names a service declares in full: each host as written (lowercased, without a trailing dot),
/// and for a bare name, its FQDN in the service's namespace.
pub(super) fn canonical_names(service: &Service) -> Vec<String> {
    let mut out = Vec::new();
    for host in &service.hosts {
        let host = normalize(host);
        if host.is_empty() {
            continue;
        }
        if !host.contains('.') && !host.contains('*') {
            out.push(format!("{host}.{}{CLUSTER_SUFFIX}", namespace(service)));
        }
        out.push(host);
    }
    out.dedup();
    out
}

/// Shorter names that also reach a service: for `name` or `name.<ns>.svc.cluster.local` in the
/// service's own namespace, `name`, `name.<ns>` and `name.<ns>.svc`.
pub(super) fn short_names(service: &Service) -> Vec<String> {
    let ns = namespace(service);
    let mut out = Vec::new();
    for host in &service.hosts {
        let host = normalize(host);
        let name = match host.strip_suffix(CLUSTER_SUFFIX) {
            Some(rest) => match rest.rsplit_once('.') {
                Some((name, host_ns)) if host_ns == ns && !name.contains('.') => name.to_owned(),
                _ => continue,
            },
            None if !host.contains('.') && !host.contains('*') && !host.is_empty() => host,
            None => continue,
        };
        out.push(format!("{name}.{ns}"));
        out.push(format!("{name}.{ns}.svc"));
        out.push(name);
    }
    out
}

fn namespace(service: &Service) -> &str {
    if service.namespace.is_empty() {
        "default"
    } else {
        &service.namespace
    }
}

fn normalize(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}
