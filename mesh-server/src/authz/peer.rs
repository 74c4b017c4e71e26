//! Matching the peer's principal against `principals`, `notPrincipals` and `source.principal`
//! values under Istio's trust domain rules (`pilot/pkg/security/trustdomain`): a value of the
//! form `<td>/ns/<ns>/sa/<sa>` (exactly five `/`-separated parts, the first not `*`) whose
//! trust domain is the workload's, one of its aliases, or `cluster.local` stands for the same
//! workload under every trust domain of the mesh; any other value (`*`, `*suffix`, a
//! `<td>/ns/foo/*` of four parts, a foreign trust domain) is matched as written.

use super::matcher::StrMatch;

/// Istio's placeholder for "the local trust domain".
const CLUSTER_LOCAL: &str = "cluster.local";

/// What the request knows of its peer.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Peer<'a> {
    /// The principal, `td/ns/NS/sa/SA`.
    pub(crate) principal: Option<&'a str>,
    /// The mesh's trust domains (local, mesh config, aliases) when the peer is under one.
    pub(crate) domains: Option<&'a [String]>,
    /// The `cluster.local` spelling, from a transport that gives no domains.
    pub(crate) alias: Option<&'a str>,
}

/// The trust domain a value names when Istio re-spells it across the mesh's trust domains.
fn respelled_domain(m: &StrMatch) -> Option<&str> {
    let (text, parts) = match m {
        StrMatch::Exact(s) => (&**s, s.split('/').count()),
        // `p*` as written: the `*` ends the last part.
        StrMatch::Prefix(p) => (&**p, p.split('/').count()),
        _ => return None,
    };
    let domain = text.split('/').next()?;
    (parts == 5 && domain != "*").then_some(domain)
}

impl Peer<'_> {
    /// Whether `m` matches the peer.
    fn matched_by(&self, m: &StrMatch) -> bool {
        let Some(principal) = self.principal else {
            return false;
        };
        if m.matches(principal) {
            return true;
        }
        let Some(domains) = self.domains else {
            return self.alias.is_some_and(|a| m.matches(a));
        };
        let Some(td) = respelled_domain(m) else {
            return false;
        };
        let ours = |d: &str| domains.iter().any(|x| x == d);
        if !(td == CLUSTER_LOCAL || ours(td)) {
            return false;
        }
        match principal.split_once('/') {
            Some((peer_td, rest)) if ours(peer_td) => m.matches(&format!("{td}/{rest}")),
            _ => false,
        }
    }

    /// Whether any of `list` matches the peer.
    pub(crate) fn any(&self, list: &[StrMatch]) -> bool {
        list.iter().any(|m| self.matched_by(m))
    }
}

#[cfg(test)]
mod tests;
