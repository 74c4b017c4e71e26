//! The per-request context of the inbound side: the typed request extensions that the
//! transport and the layers hand to the layers below them and to the application.
//!
//! Every layer depends on this module; it depends on none of them. Who sets what:
//! - [`RemoteAddr`] and [`LocalAddr`]: [`serve`](crate::serve) (or a transport that knows better);
//! - [`PeerIdentity`] (and [`LocalPeerAlias`]): a transport that authenticates peers (mutual
//!   TLS, [`serve_tls`](crate::server::serve_tls));
//! - [`Principal`]: JWT authentication ([`crate::jwt`]), when a token verifies.
//!
//! Authorization, the per-client rate limits and the application read them.

use std::net::SocketAddr;
use std::sync::Arc;

pub use mesh_core::BoxError;

/// The client's address, for the layers that read it (authorization's `remote.ip` and source IP
/// blocks), when something knows it better than the connection does (a test, a transport behind
/// a load balancer speaking the PROXY protocol). When absent, they read axum's
/// `ConnectInfo<SocketAddr>`, which [`serve`](crate::serve) puts in every request's extensions (one insert
/// instead of two carrying the same address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RemoteAddr(pub SocketAddr);

/// The local (destination) address of the connection, put in request extensions by
/// [`serve`](crate::serve).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalAddr(pub SocketAddr);

/// The peer's workload identity (a SPIFFE-like principal `cluster.local/ns/NS/sa/SA`), put in
/// request extensions by a transport that authenticates peers (mutual TLS).
///
/// Without mutual TLS there is no peer identity: `principals` and `namespaces` rules, and the
/// `source.principal` / `source.namespace` conditions, then never match (their `not*` forms
/// always do), as in Istio with plain-text traffic.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerIdentity(pub String);

impl PeerIdentity {
    /// The principal, `cluster.local/ns/NS/sa/SA`.
    pub fn principal(&self) -> &str {
        &self.0
    }

    /// The namespace part of the principal, when it has one.
    pub fn namespace(&self) -> Option<&str> {
        let mut parts = self.0.split('/');
        while let Some(part) = parts.next() {
            if part == "ns" {
                return parts.next().filter(|ns| !ns.is_empty());
            }
        }
        None
    }
}

/// The peer's principal spelled under Istio's default trust domain (`cluster.local/ns/NS/sa/SA`),
/// put beside [`PeerIdentity`] by the mutual TLS transport when the peer's certificate is under
/// the local trust domain (or one of its aliases) and that is not `cluster.local`: Istio reads
/// `cluster.local/...` in a policy as the local trust domain, so `principals` and
/// `source.principal` match either spelling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LocalPeerAlias(pub String);

/// The mesh's trust domains (the workload's own, the mesh config's `trustDomain`, its
/// `trustDomainAliases`), put beside [`PeerIdentity`] by the mutual TLS transport when the peer
/// is under one of them: a policy principal written under any of them, or under `cluster.local`,
/// matches the same workload under another (Istio's trust domain migration).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerTrustDomains(pub Arc<[String]>);

/// The workload's own identity on a mutual TLS connection (the `spiffe://` URI of the
/// certificate it presented), put in request extensions by the mutual TLS transport beside
/// [`PeerIdentity`]; metrics report it as `destination_principal`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LocalIdentity(pub Arc<str>);

/// The authenticated end user (the verified caller): put in the request extensions by JWT
/// authentication when a token verifies, and read from there by authorization
/// (`requestPrincipals`, `request.auth.*` conditions), per-client rate limits and the
/// application. A request without it is unauthenticated. Cheap to clone (one `Arc`). Also an
/// axum extractor (401 when absent; use `Option<Principal>` for routes open to anonymous
/// callers).
///
/// ```
/// use axum::{Router, routing::get};
/// use mesh_server::context::Principal;
///
/// async fn me(who: Principal) -> String {
///     format!("hello {}", who.principal())
/// }
/// let app: Router = Router::new().route("/me", get(me));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    inner: Arc<Inner>,
}

#[derive(Debug, PartialEq)]
struct Inner {
    principal: String,
    sub_start: usize,
    claims: serde_json::Value,
    /// Claims matched word by word (dotted paths), beyond `scope` and `permission`.
    space_delimited: Vec<String>,
}

impl Principal {
    /// A principal from verified claims (`iss` and `sub` may be absent: empty then).
    pub fn from_claims(claims: serde_json::Value) -> Self {
        Self::with_space_delimited_claims(claims, Vec::new())
    }

    /// As [`from_claims`](Self::from_claims), with the rule's `spaceDelimitedClaims` (dotted
    /// paths such as `provider.login.scope`): AuthorizationPolicy matches their string values
    /// word by word, as it always does `scope` and `permission`.
    pub fn with_space_delimited_claims(
        claims: serde_json::Value,
        space_delimited: Vec<String>,
    ) -> Self {
        let iss = claims
            .get("iss")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let sub = claims
            .get("sub")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let principal = format!("{iss}/{sub}");
        Self {
            inner: Arc::new(Inner {
                principal,
                sub_start: iss.len() + 1,
                claims,
                space_delimited,
            }),
        }
    }

    /// `iss/sub`: Istio's `request.auth.principal` (what `requestPrincipals` match).
    pub fn principal(&self) -> &str {
        &self.inner.principal
    }

    /// `iss`.
    pub fn issuer(&self) -> &str {
        self.inner
            .principal
            .get(..self.inner.sub_start.saturating_sub(1))
            .unwrap_or_default()
    }

    /// `sub`.
    pub fn subject(&self) -> &str {
        self.inner
            .principal
            .get(self.inner.sub_start..)
            .unwrap_or_default()
    }

    /// Every claim of the token (`request.auth.claims`).
    pub fn claims(&self) -> &serde_json::Value {
        &self.inner.claims
    }

    /// A nested claim: `claim(&["realm_access", "roles"])`.
    pub fn claim<S: AsRef<str>>(&self, path: &[S]) -> Option<&serde_json::Value> {
        path.iter()
            .try_fold(&self.inner.claims, |v, k| v.get(k.as_ref()))
    }

    /// Whether the claim at `path` is space-delimited: `scope`, `permission`, or one of the
    /// rule's `spaceDelimitedClaims`.
    pub fn is_space_delimited<S: AsRef<str>>(&self, path: &[S]) -> bool {
        match path {
            [one] if matches!(one.as_ref(), "scope" | "permission") => true,
            _ => self
                .inner
                .space_delimited
                .iter()
                .any(|d| d.split('.').eq(path.iter().map(|s| s.as_ref()))),
        }
    }

    /// `aud` as a list (`request.auth.audiences`).
    pub fn audiences(&self) -> Vec<&str> {
        match self.inner.claims.get("aud") {
            Some(serde_json::Value::String(s)) => vec![s.as_str()],
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// `azp` (`request.auth.presenter`).
    pub fn presenter(&self) -> Option<&str> {
        self.inner.claims.get("azp").and_then(|v| v.as_str())
    }
}
