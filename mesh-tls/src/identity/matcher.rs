//! AuthorizationPolicy source matching on a peer's certificate identity, as Istio does it.
//!
//! Istio turns each value of a rule's `principals` into an Envoy string matcher on the peer's
//! URI SAN: `"*"` is *presence* (any authenticated peer), `"abc*"` a prefix, `"*abc"` a suffix,
//! anything else exact; values are written without `spiffe://`, and trust domains are expanded
//! with the aliases first ([`TrustDomains::expand_principals`]). `namespaces` becomes the regex
//! `.*/ns/<value>/.*` with each `*` read as `.*`, which on an Istio identity is a glob on its
//! namespace. `serviceAccounts` takes `name` (in the policy's namespace) or `ns/name`, exact.
//! A plaintext peer has no identity and matches none of them, not even `"*"`.

use super::{SpiffeId, TrustDomains};

/// One value of an Istio string field: exact, `prefix*`, `*suffix`, or `*` (presence).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StringPattern {
    /// Matches exactly this text.
    Exact(String),
    /// `abc*`: matches text starting with `abc`.
    Prefix(String),
    /// `*abc`: matches text ending with `abc`.
    Suffix(String),
    /// `*`: matches any text that is not empty.
    Presence,
}

impl StringPattern {
    /// Reads a value as Istio does: `*` alone is presence, a leading `*` a suffix match, a
    /// trailing `*` a prefix match; other `*` are literal.
    pub fn parse(value: &str) -> Self {
        if value == "*" {
            Self::Presence
        } else if let Some(suffix) = value.strip_prefix('*') {
            Self::Suffix(suffix.to_owned())
        } else if let Some(prefix) = value.strip_suffix('*') {
            Self::Prefix(prefix.to_owned())
        } else {
            Self::Exact(value.to_owned())
        }
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        match self {
            Self::Exact(exact) => text == exact,
            Self::Prefix(prefix) => text.starts_with(prefix.as_str()),
            Self::Suffix(suffix) => text.ends_with(suffix.as_str()),
            Self::Presence => !text.is_empty(),
        }
    }
}

/// A rule's `principals` (or `notPrincipals`, or `source.principal` condition values), compiled
/// against the mesh's trust domains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrincipalMatcher {
    patterns: Vec<StringPattern>,
}

impl PrincipalMatcher {
    /// Compiles `values` (principal form, `td/ns/<ns>/sa/<sa>`, wildcards allowed), expanding
    /// trust domains with `trust_domains`' aliases as Istio does.
    pub fn new<'a>(
        values: impl IntoIterator<Item = &'a str>,
        trust_domains: &TrustDomains,
    ) -> Self {
        let patterns = trust_domains
            .expand_principals(values)
            .iter()
            .map(|value| StringPattern::parse(value))
            .collect();
        Self { patterns }
    }

    /// Whether any value matches the peer; `None` (a plaintext peer) matches nothing.
    pub fn matches(&self, peer: Option<&SpiffeId>) -> bool {
        let Some(peer) = peer else {
            return false;
        };
        let principal = peer.principal();
        self.patterns.iter().any(|p| p.matches(&principal))
    }

    /// The compiled patterns, after trust domain expansion.
    pub fn patterns(&self) -> &[StringPattern] {
        &self.patterns
    }
}

/// A rule's `namespaces` (or `notNamespaces`, or `source.namespace` condition values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceMatcher {
    globs: Vec<String>,
}

impl NamespaceMatcher {
    /// Compiles `values`; each `*` anywhere in a value matches any run of characters.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            globs: values.into_iter().map(str::to_owned).collect(),
        }
    }

    /// Whether the peer's namespace matches any value; `None` matches nothing.
    pub fn matches(&self, peer: Option<&SpiffeId>) -> bool {
        let Some(peer) = peer else {
            return false;
        };
        self.globs.iter().any(|g| glob(g, peer.namespace()))
    }
}

/// A rule's `serviceAccounts` (or `notServiceAccounts`): `name` or `namespace/name`, exact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccountMatcher {
    accounts: Vec<(String, String)>,
}

impl ServiceAccountMatcher {
    /// Compiles `values`; a bare `name` is in `policy_namespace`, the policy's own namespace.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>, policy_namespace: &str) -> Self {
        let accounts = values
            .into_iter()
            .map(|value| match value.split_once('/') {
                Some((ns, sa)) => (ns.to_owned(), sa.to_owned()),
                None => (policy_namespace.to_owned(), value.to_owned()),
            })
            .collect();
        Self { accounts }
    }

    /// Whether the peer is one of the service accounts, under any trust domain.
    pub fn matches(&self, peer: Option<&SpiffeId>) -> bool {
        let Some(peer) = peer else {
            return false;
        };
        self.accounts
            .iter()
            .any(|(ns, sa)| peer.namespace() == ns && peer.service_account() == sa)
    }
}

/// `*` matches any run of characters (including none); everything else is literal.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split('*');
    // invariant: split always yields at least one piece.
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        // No `*` at all: exact.
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Istio's trust-domain list match: equal, either side `*`, or either side a `prefix*` or
/// `*suffix` pattern that matches the other.
pub(crate) fn glob_either_way(a: &str, b: &str) -> bool {
    fn one_way(text: &str, pattern: &str) -> bool {
        pattern == "*"
            || pattern
                .strip_suffix('*')
                .is_some_and(|prefix| text.starts_with(prefix))
            || pattern
                .strip_prefix('*')
                .is_some_and(|suffix| text.ends_with(suffix))
    }
    a == b || one_way(a, b) || one_way(b, a)
}
