//! Workload identities as Istio writes them.
//!
//! A workload's identity is the SPIFFE ID in its certificate's URI SAN,
//! `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`. AuthorizationPolicy names
//! callers in the *principal* form, the same ID without the `spiffe://` scheme
//! (`cluster.local/ns/default/sa/service2`). [`TrustDomains`] is the local trust domain with its
//! aliases (Istio's `trustDomainAliases`), and [`matcher`] holds the Istio semantics of the
//! `principals`, `namespaces` and `serviceAccounts` source fields.

pub mod matcher;

use std::fmt;
use std::str::FromStr;

pub use matcher::{NamespaceMatcher, PrincipalMatcher, ServiceAccountMatcher, StringPattern};

/// The scheme every SPIFFE ID starts with.
pub const SPIFFE_SCHEME: &str = "spiffe://";

/// Istio's default trust domain; in a policy it stands for the local trust domain and aliases.
pub const CLUSTER_LOCAL: &str = "cluster.local";

/// The longest SPIFFE ID the SPIFFE specification allows, in bytes.
const MAX_ID_LEN: usize = 2048;

/// Why a SPIFFE ID, principal or trust domain was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The text does not start with `spiffe://`.
    #[error("{0:?} is not a SPIFFE ID: it must start with spiffe://")]
    MissingScheme(String),
    /// The trust domain is empty or holds characters SPIFFE forbids.
    #[error(
        "trust domain {0:?} is invalid: only lowercase letters, digits, '.', '-' and '_' are allowed"
    )]
    TrustDomain(String),
    /// The path is not `/ns/<namespace>/sa/<service-account>`.
    #[error(
        "{0:?} is not an Istio identity: the path must be /ns/<namespace>/sa/<service-account>"
    )]
    Path(String),
    /// A namespace or service account segment holds characters SPIFFE forbids.
    #[error("{segment:?} in {id:?} is invalid: only letters, digits, '.', '-' and '_' are allowed")]
    Segment {
        /// The whole ID.
        id: String,
        /// The offending segment.
        segment: String,
    },
    /// Longer than SPIFFE's 2048 bytes.
    #[error("SPIFFE ID is {0} bytes long, more than the 2048 allowed")]
    TooLong(usize),
}

/// A SPIFFE trust domain: lowercase letters, digits, `.`, `-` and `_`, not empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Checks `name` against the SPIFFE rules for trust domain names.
    pub fn new(name: &str) -> Result<Self, IdentityError> {
        let valid = !name.is_empty()
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
            });
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(IdentityError::TrustDomain(name.to_owned()))
        }
    }

    /// Istio's default trust domain, `cluster.local`.
    pub fn cluster_local() -> Self {
        Self(CLUSTER_LOCAL.to_owned())
    }

    /// The name, e.g. `cluster.local`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TrustDomain {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// An Istio workload identity, `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    trust_domain: TrustDomain,
    namespace: String,
    service_account: String,
}

impl SpiffeId {
    /// Builds the identity of `service_account` in `namespace` under `trust_domain`.
    pub fn new(
        trust_domain: TrustDomain,
        namespace: &str,
        service_account: &str,
    ) -> Result<Self, IdentityError> {
        let id = Self {
            trust_domain,
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
        };
        for segment in [namespace, service_account] {
            check_segment(segment, &id)?;
        }
        let len = id.to_string().len();
        if len > MAX_ID_LEN {
            return Err(IdentityError::TooLong(len));
        }
        Ok(id)
    }

    /// Parses the principal form AuthorizationPolicy uses, `td/ns/<ns>/sa/<sa>` (no scheme).
    pub fn from_principal(principal: &str) -> Result<Self, IdentityError> {
        let (trust_domain, path) = principal
            .split_once('/')
            .ok_or_else(|| IdentityError::Path(principal.to_owned()))?;
        let trust_domain = TrustDomain::new(trust_domain)?;
        let mut parts = path.split('/');
        match (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) {
            (Some("ns"), Some(ns), Some("sa"), Some(sa), None) => Self::new(trust_domain, ns, sa),
            _ => Err(IdentityError::Path(principal.to_owned())),
        }
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The Kubernetes namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Kubernetes service account.
    pub fn service_account(&self) -> &str {
        &self.service_account
    }

    /// The principal form, `td/ns/<ns>/sa/<sa>`, as AuthorizationPolicy `principals` write it.
    pub fn principal(&self) -> String {
        format!(
            "{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }

    /// The same workload under another trust domain.
    pub fn with_trust_domain(&self, trust_domain: TrustDomain) -> Self {
        Self {
            trust_domain,
            ..self.clone()
        }
    }
}

fn check_segment(segment: &str, id: &SpiffeId) -> Result<(), IdentityError> {
    let valid = !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if valid {
        Ok(())
    } else {
        Err(IdentityError::Segment {
            id: id.to_string(),
            segment: segment.to_owned(),
        })
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SPIFFE_SCHEME}{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

impl FromStr for SpiffeId {
    type Err = IdentityError;

    /// Parses `spiffe://td/ns/<ns>/sa/<sa>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_ID_LEN {
            return Err(IdentityError::TooLong(s.len()));
        }
        let rest = s
            .strip_prefix(SPIFFE_SCHEME)
            .ok_or_else(|| IdentityError::MissingScheme(s.to_owned()))?;
        Self::from_principal(rest).map_err(|err| match err {
            IdentityError::Path(_) => IdentityError::Path(s.to_owned()),
            other => other,
        })
    }
}

/// The local trust domain and its aliases (Istio's `trustDomain` and `trustDomainAliases`).
///
/// Workloads whose identity is under any of these are treated alike: a peer certificate under
/// another trust domain is refused at the handshake, and a policy principal written under one of
/// them (or under `cluster.local`, which in a policy means "the local trust domain") matches the
/// same workload under all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustDomains {
    /// The local trust domain first, then the aliases, without duplicates.
    domains: Vec<TrustDomain>,
}

impl TrustDomains {
    /// The local trust domain with `aliases`.
    pub fn new(local: TrustDomain, aliases: impl IntoIterator<Item = TrustDomain>) -> Self {
        let mut domains = vec![local];
        for alias in aliases {
            if !domains.contains(&alias) {
                domains.push(alias);
            }
        }
        Self { domains }
    }

    /// The local trust domain.
    pub fn local(&self) -> &TrustDomain {
        // invariant: `new` always puts the local trust domain first.
        &self.domains[0]
    }

    /// The local trust domain, then the aliases.
    pub fn all(&self) -> &[TrustDomain] {
        &self.domains
    }

    /// Whether a peer under `trust_domain` belongs to this mesh.
    pub fn contains(&self, trust_domain: &TrustDomain) -> bool {
        self.domains.contains(trust_domain)
    }

    /// Istio's trust domain migration: each principal pattern under the local trust domain, an
    /// alias, or `cluster.local` becomes one pattern per trust domain of the bundle. Patterns
    /// under another trust domain, with a `*` trust domain, or not in the
    /// `td/ns/<ns>/sa/<sa>` shape are kept as written.
    pub fn expand_principals<'a>(
        &self,
        principals: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for principal in principals {
            for expanded in self.expand_principal(principal) {
                if !out.contains(&expanded) {
                    out.push(expanded);
                }
            }
        }
        out
    }

    fn expand_principal(&self, principal: &str) -> Vec<String> {
        let parts: Vec<&str> = principal.split('/').collect();
        let [domain, ..] = parts.as_slice() else {
            return vec![principal.to_owned()];
        };
        if parts.len() != 5 || *domain == "*" {
            return vec![principal.to_owned()];
        }
        let ours = *domain == CLUSTER_LOCAL
            || self
                .domains
                .iter()
                .any(|td| matcher::glob_either_way(domain, td.as_str()));
        if !ours {
            return vec![principal.to_owned()];
        }
        let rest = &principal[domain.len()..];
        let mut out = Vec::new();
        for td in &self.domains {
            // A `*suffix` trust domain that already covers this one is kept as written.
            let expanded = match domain.strip_prefix('*') {
                Some(suffix) if td.as_str().ends_with(suffix) => principal.to_owned(),
                _ => format!("{td}{rest}"),
            };
            if !out.contains(&expanded) {
                out.push(expanded);
            }
        }
        out
    }
}

impl Default for TrustDomains {
    /// `cluster.local` with no aliases.
    fn default() -> Self {
        Self::new(TrustDomain::cluster_local(), [])
    }
}

#[cfg(test)]
mod tests;
