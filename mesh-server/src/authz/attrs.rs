//! What authorization reads from a request: identities from extensions, addresses from the
//! connection, and the request line.

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, HeaderName, Request};

use crate::context::{
    LocalAddr, LocalPeerAlias, PeerIdentity, PeerTrustDomains, Principal, RemoteAddr,
};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// A borrowed view of everything a rule can test, built once per request without allocating.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestAttrs<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    /// The path with its query (the `:path` pseudo-header).
    pub(crate) path_and_query: &'a str,
    pub(crate) scheme: Option<&'a str>,
    pub(crate) host: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) source: Option<IpAddr>,
    pub(crate) remote: Option<IpAddr>,
    pub(crate) destination: Option<SocketAddr>,
    pub(crate) auth: Option<&'a Principal>,
    pub(crate) peer: Option<&'a PeerIdentity>,
    /// The peer's principal under `cluster.local` when its trust domain is ours by another name.
    pub(crate) peer_alias: Option<&'a str>,
    /// The mesh's trust domains, when the peer is under one of them.
    pub(crate) peer_domains: Option<&'a [String]>,
}

impl<'a> RequestAttrs<'a> {
    /// Reads a request. `trusted_proxies` is Istio's `numTrustedProxies`: with 0, `remote.ip` is
    /// the connection's peer (the same as `source.ip`); with N, it is the Nth address from the
    /// right of `X-Forwarded-For`.
    pub(crate) fn new<B>(req: &'a Request<B>, trusted_proxies: usize) -> Self {
        let ext = req.extensions();
        let source = ext.get::<RemoteAddr>().map(|r| r.0.ip()).or_else(|| {
            ext.get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        });
        let remote = if trusted_proxies == 0 {
            source
        } else {
            forwarded_client(req.headers(), trusted_proxies)
        };
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        RequestAttrs {
            method: req.method().as_str(),
            path: req.uri().path(),
            path_and_query: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path(), |p| p.as_str()),
            scheme: req.uri().scheme_str(),
            host,
            headers: req.headers(),
            source,
            remote,
            destination: ext.get::<LocalAddr>().map(|l| l.0),
            auth: ext.get::<Principal>(),
            peer: ext.get::<PeerIdentity>(),
            peer_alias: ext.get::<LocalPeerAlias>().map(|a| a.0.as_str()),
            peer_domains: ext.get::<PeerTrustDomains>().map(|d| &*d.0),
        }
    }
}

impl RequestAttrs<'_> {
    /// The peer, for principal matching.
    pub(crate) fn peer_match(&self) -> super::peer::Peer<'_> {
        super::peer::Peer {
            principal: self.peer.map(|p| p.principal()),
            domains: self.peer_domains,
            alias: self.peer_alias,
        }
    }

    /// A pseudo-header's value: `:method`, `:path` (with the query), `:authority`, `:scheme`.
    pub(crate) fn pseudo_header(&self, name: &str) -> Option<&str> {
        match name {
            ":method" => Some(self.method),
            ":path" => Some(self.path_and_query),
            ":authority" => self.host,
            ":scheme" => self.scheme.or(Some("http")),
            _ => None,
        }
    }
}

/// The `n`th address from the right of all `X-Forwarded-For` values (n ≥ 1).
fn forwarded_client(headers: &HeaderMap, n: usize) -> Option<IpAddr> {
    headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .rev()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.rsplit(','))
        .nth(n.checked_sub(1)?)
        .and_then(|s| s.trim().parse().ok())
}

/// Strips a `:port` from a host (`example.com:8080`, `[::1]:80`).
pub(crate) fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_namespace() {
        assert_eq!(
            PeerIdentity("cluster.local/ns/foo/sa/bar".into()).namespace(),
            Some("foo")
        );
        assert_eq!(PeerIdentity("spiffe".into()).namespace(), None);
    }

    #[test]
    fn forwarded_for_counts_from_the_right() {
        let mut h = HeaderMap::new();
        h.append(
            &X_FORWARDED_FOR,
            http::HeaderValue::from_static("1.1.1.1, 2.2.2.2"),
        );
        h.append(&X_FORWARDED_FOR, http::HeaderValue::from_static("3.3.3.3"));
        assert_eq!(forwarded_client(&h, 1), Some(IpAddr::from([3, 3, 3, 3])));
        assert_eq!(forwarded_client(&h, 2), Some(IpAddr::from([2, 2, 2, 2])));
        assert_eq!(forwarded_client(&h, 3), Some(IpAddr::from([1, 1, 1, 1])));
        assert_eq!(forwarded_client(&h, 4), None);
    }

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(host_without_port("[::1]:80"), "::1");
    }
}
