//! Policies compiled for one workload, and Istio's evaluation order.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use mesh_core::policy::{
    AuthzAction, AuthzPolicy, AuthzRule, Condition, ConditionKey, Labels, Operation, Source,
};
use serde_json::Value;

use super::attrs::{RequestAttrs, host_without_port};
use super::error::BuildError;
use super::matcher::{StrMatch, any_of, compile_all, compile_paths};
use super::peer::Peer;

/// The namespace whose policies apply to every workload (Istio's root namespace).
pub const ROOT_NAMESPACE: &str = "istio-system";

/// The AuthorizationPolicies of one workload, compiled for fast evaluation.
///
/// Built once per config snapshot ([`AuthzEngine::for_workload`] keeps only the policies whose
/// selector and namespace select the workload) and then evaluated per request without
/// allocating. Evaluation follows Istio: CUSTOM, then DENY, then ALLOW; AUDIT never decides.
/// Policies annotated `istio.io/dry-run: "true"` never decide either: they are evaluated in
/// shadow, as Envoy's RBAC `shadow_rules`, and their result is reported ([`Verdict::shadow`]).
#[derive(Clone, Debug, Default)]
pub struct AuthzEngine {
    custom: Box<[Compiled]>,
    deny: Box<[Compiled]>,
    allow: Box<[Compiled]>,
    audit: Box<[Compiled]>,
    dry_run_deny: Box<[Compiled]>,
    dry_run_allow: Box<[Compiled]>,
}

/// What the dry-run policies of one action would have decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Shadow {
    /// `DENY` or `ALLOW`: the action of the dry-run policies evaluated.
    pub(crate) action: AuthzAction,
    /// The dry-run policy that matched (none: no dry-run policy of this action matched).
    pub(crate) policy: Option<Arc<str>>,
    /// Whether the request would have been allowed had these policies been enforced.
    pub(crate) allowed: bool,
}

/// What evaluation decided, before any CUSTOM provider is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The provider of the first matching CUSTOM policy: it must be asked first.
    pub(crate) custom: Option<(Arc<str>, Arc<str>)>,
    /// DENY/ALLOW outcome: `Err(policy)` names the deciding DENY policy (or none for "no ALLOW
    /// policy matched").
    pub(crate) result: Result<(), Option<Arc<str>>>,
    /// The shadow results of the dry-run DENY and ALLOW policies, when there are any.
    pub(crate) shadow: [Option<Shadow>; 2],
}

#[derive(Clone, Debug)]
struct Compiled {
    name: Arc<str>,
    provider: Option<Arc<str>>,
    rules: Box<[Rule]>,
}

#[derive(Clone, Debug)]
struct Rule {
    from: Box<[CSource]>,
    to: Box<[COp]>,
    when: Box<[CCond]>,
}

#[derive(Clone, Debug)]
struct CSource {
    principals: Box<[StrMatch]>,
    not_principals: Box<[StrMatch]>,
    request_principals: Box<[StrMatch]>,
    not_request_principals: Box<[StrMatch]>,
    namespaces: Box<[StrMatch]>,
    not_namespaces: Box<[StrMatch]>,
    ip_blocks: Box<[IpNet]>,
    not_ip_blocks: Box<[IpNet]>,
    remote_ip_blocks: Box<[IpNet]>,
    not_remote_ip_blocks: Box<[IpNet]>,
}

#[derive(Clone, Debug)]
struct COp {
    hosts: Box<[StrMatch]>,
    not_hosts: Box<[StrMatch]>,
    ports: Box<[u16]>,
    not_ports: Box<[u16]>,
    methods: Box<[StrMatch]>,
    not_methods: Box<[StrMatch]>,
    paths: Box<[StrMatch]>,
    not_paths: Box<[StrMatch]>,
}

#[derive(Clone, Debug)]
struct CCond {
    key: ConditionKey,
    values: Values,
    not_values: Values,
}

#[derive(Clone, Debug)]
enum Values {
    Strings(Box<[StrMatch]>),
    Ips(Box<[IpNet]>),
    Ports(Box<[u16]>),
}

// === impl AuthzEngine ===

impl AuthzEngine {
    /// Compiles every given policy, whatever its selector (for use with plain Rust settings).
    pub fn new<'a>(
        policies: impl IntoIterator<Item = &'a AuthzPolicy>,
    ) -> Result<Self, BuildError> {
        let mut custom = Vec::new();
        let mut deny = Vec::new();
        let mut allow = Vec::new();
        let mut audit = Vec::new();
        let mut dry_run_deny = Vec::new();
        let mut dry_run_allow = Vec::new();
        for p in policies {
            let compiled = compile_policy(p)?;
            match (p.action, p.dry_run) {
                (AuthzAction::Deny, true) => dry_run_deny.push(compiled),
                (AuthzAction::Allow, true) => dry_run_allow.push(compiled),
                // Istio has no shadow mode for CUSTOM or AUDIT (the loader refuses to enforce a
                // dry-run CUSTOM policy): leave them out rather than enforce a trial.
                (_, true) => {}
                (AuthzAction::Custom, false) => custom.push(compiled),
                (AuthzAction::Deny, false) => deny.push(compiled),
                (AuthzAction::Allow, false) => allow.push(compiled),
                (AuthzAction::Audit, false) => audit.push(compiled),
            }
        }
        Ok(Self {
            custom: custom.into(),
            deny: deny.into(),
            allow: allow.into(),
            audit: audit.into(),
            dry_run_deny: dry_run_deny.into(),
            dry_run_allow: dry_run_allow.into(),
        })
    }

    /// Compiles the policies that apply to a workload in `namespace` with `labels`: those in its
    /// namespace or in the root namespace ([`ROOT_NAMESPACE`]) whose selector selects it.
    pub fn for_workload(
        policies: &[AuthzPolicy],
        namespace: &str,
        labels: &Labels,
    ) -> Result<Self, BuildError> {
        Self::new(policies.iter().filter(|p| {
            let ns = p.origin.namespace.as_str();
            let ns = if ns.is_empty() { "default" } else { ns };
            (ns == namespace || ns == ROOT_NAMESPACE) && p.selector.selects(labels)
        }))
    }

    /// An engine without policies: every request is allowed.
    pub fn allow_all() -> Self {
        Self::default()
    }

    /// Whether no policy applies (the layer then does nothing).
    pub fn is_empty(&self) -> bool {
        self.custom.is_empty()
            && self.deny.is_empty()
            && self.allow.is_empty()
            && self.audit.is_empty()
            && self.dry_run_deny.is_empty()
            && self.dry_run_allow.is_empty()
    }

    /// The compiled policies, as action and `namespace/name`, in evaluation order.
    pub fn policies(&self) -> impl Iterator<Item = (AuthzAction, &str)> {
        fn tag(
            action: AuthzAction,
            list: &[Compiled],
        ) -> impl Iterator<Item = (AuthzAction, &str)> {
            list.iter().map(move |p| (action, &*p.name))
        }
        tag(AuthzAction::Custom, &self.custom)
            .chain(tag(AuthzAction::Deny, &self.deny))
            .chain(tag(AuthzAction::Allow, &self.allow))
            .chain(tag(AuthzAction::Audit, &self.audit))
            .chain(tag(AuthzAction::Deny, &self.dry_run_deny))
            .chain(tag(AuthzAction::Allow, &self.dry_run_allow))
    }

    /// Whether DENY and ALLOW policies let `req` through (CUSTOM providers are not asked: the
    /// [`Authorization`](super::Authorization) layer does that). `trusted_proxies` as in
    /// [`AuthorizationLayer::trusted_proxies`](super::AuthorizationLayer::trusted_proxies).
    pub fn allows<B>(&self, req: &http::Request<B>, trusted_proxies: usize) -> bool {
        self.evaluate(&RequestAttrs::new(req, trusted_proxies))
            .result
            .is_ok()
    }

    /// Evaluates a request: CUSTOM match, then DENY, then ALLOW; AUDIT matches are logged.
    pub(crate) fn evaluate(&self, attrs: &RequestAttrs<'_>) -> Verdict {
        let custom = self
            .custom
            .iter()
            .find(|p| p.matches(attrs))
            .and_then(|p| p.provider.clone().map(|prov| (prov, p.name.clone())));
        for p in self.audit.iter().filter(|p| p.matches(attrs)) {
            tracing::info!(target: "mesh::authz::audit", policy = %p.name, method = attrs.method, path = attrs.path, "request audited");
        }
        let result = if let Some(p) = self.deny.iter().find(|p| p.matches(attrs)) {
            Err(Some(p.name.clone()))
        } else if self.allow.is_empty() || self.allow.iter().any(|p| p.matches(attrs)) {
            Ok(())
        } else {
            Err(None)
        };
        // Shadow engines as Envoy runs them, one per action, each over its dry-run policies
        // alone: a matching DENY would deny; an ALLOW list allows only what one of them matches.
        let shadow_deny = (!self.dry_run_deny.is_empty()).then(|| {
            let hit = self.dry_run_deny.iter().find(|p| p.matches(attrs));
            Shadow {
                action: AuthzAction::Deny,
                allowed: hit.is_none(),
                policy: hit.map(|p| p.name.clone()),
            }
        });
        let shadow_allow = (!self.dry_run_allow.is_empty()).then(|| {
            let hit = self.dry_run_allow.iter().find(|p| p.matches(attrs));
            Shadow {
                action: AuthzAction::Allow,
                allowed: hit.is_some(),
                policy: hit.map(|p| p.name.clone()),
            }
        });
        Verdict {
            custom,
            result,
            shadow: [shadow_deny, shadow_allow],
        }
    }
}

impl Compiled {
    fn matches(&self, a: &RequestAttrs<'_>) -> bool {
        self.rules.iter().any(|r| r.matches(a))
    }
}

impl Rule {
    fn matches(&self, a: &RequestAttrs<'_>) -> bool {
        (self.from.is_empty() || self.from.iter().any(|s| s.matches(a)))
            && (self.to.is_empty() || self.to.iter().any(|o| o.matches(a)))
            && self.when.iter().all(|c| c.matches(a))
    }
}

/// A positive list matches when empty or when any entry matches; a `not*` list matches when no
/// entry matches (an absent attribute matches no entry).
fn check(list: &[StrMatch], not: &[StrMatch], value: Option<&str>) -> bool {
    (list.is_empty() || any_of(list, value)) && (not.is_empty() || !any_of(not, value))
}

/// [`check`] for the peer's principal, under Istio's trust domain rules ([`Peer`]).
fn check_peer(list: &[StrMatch], not: &[StrMatch], peer: &Peer<'_>) -> bool {
    (list.is_empty() || peer.any(list)) && (not.is_empty() || !peer.any(not))
}

fn in_blocks(blocks: &[IpNet], ip: Option<IpAddr>) -> bool {
    ip.is_some_and(|ip| blocks.iter().any(|b| b.contains(&ip)))
}

fn check_ip(list: &[IpNet], not: &[IpNet], ip: Option<IpAddr>) -> bool {
    (list.is_empty() || in_blocks(list, ip)) && (not.is_empty() || !in_blocks(not, ip))
}

impl CSource {
    fn matches(&self, a: &RequestAttrs<'_>) -> bool {
        let ns = a.peer.and_then(|p| p.namespace());
        let rp = a.auth.map(|r| r.principal());
        check_peer(&self.principals, &self.not_principals, &a.peer_match())
            && check(&self.request_principals, &self.not_request_principals, rp)
            && check(&self.namespaces, &self.not_namespaces, ns)
            && check_ip(&self.ip_blocks, &self.not_ip_blocks, a.source)
            && check_ip(&self.remote_ip_blocks, &self.not_remote_ip_blocks, a.remote)
    }
}

impl COp {
    fn matches(&self, a: &RequestAttrs<'_>) -> bool {
        let port = a.destination.map(|d| d.port());
        let port_ok = |list: &[u16]| port.is_some_and(|p| list.contains(&p));
        check(&self.methods, &self.not_methods, Some(a.method))
            && check(&self.paths, &self.not_paths, Some(a.path))
            && (self.ports.is_empty() || port_ok(&self.ports))
            && (self.not_ports.is_empty() || !port_ok(&self.not_ports))
            && (self.hosts.is_empty() || host_in(&self.hosts, a.host))
            && (self.not_hosts.is_empty() || !host_in(&self.not_hosts, a.host))
    }
}

/// Hosts match case-insensitively, with or without the request's port.
fn host_in(list: &[StrMatch], host: Option<&str>) -> bool {
    host.is_some_and(|h| {
        let bare = host_without_port(h);
        list.iter()
            .any(|m| m.matches_ignore_case(h) || m.matches_ignore_case(bare))
    })
}

impl CCond {
    fn matches(&self, a: &RequestAttrs<'_>) -> bool {
        let hit = |values: &Values| self.test(values, a);
        (self.values.is_empty() || hit(&self.values))
            && (self.not_values.is_empty() || !hit(&self.not_values))
    }

    /// Whether the attribute named by the key matches any of `values`.
    fn test(&self, values: &Values, a: &RequestAttrs<'_>) -> bool {
        match (&self.key, values) {
            (ConditionKey::SourceIp, Values::Ips(v)) => in_blocks(v, a.source),
            (ConditionKey::RemoteIp, Values::Ips(v)) => in_blocks(v, a.remote),
            (ConditionKey::DestinationIp, Values::Ips(v)) => {
                in_blocks(v, a.destination.map(|d| d.ip()))
            }
            (ConditionKey::DestinationPort, Values::Ports(v)) => {
                a.destination.is_some_and(|d| v.contains(&d.port()))
            }
            (key, Values::Strings(v)) => match key {
                ConditionKey::Claim(path) => a
                    .auth
                    .and_then(|r| r.claim(path).map(|c| (c, r.is_space_delimited(path))))
                    .is_some_and(|(c, words)| claim_in(v, c, words)),
                ConditionKey::RequestPrincipal => any_of(v, a.auth.map(|r| r.principal())),
                ConditionKey::Audiences => a
                    .auth
                    .is_some_and(|r| r.audiences().into_iter().any(|aud| any_of(v, Some(aud)))),
                ConditionKey::Presenter => any_of(v, a.auth.and_then(|r| r.presenter())),
                ConditionKey::Header(name) if name.starts_with(':') => {
                    any_of(v, a.pseudo_header(name))
                }
                ConditionKey::Header(name) => a
                    .headers
                    .get_all(name.as_str())
                    .iter()
                    .any(|h| any_of(v, h.to_str().ok())),
                ConditionKey::SourceNamespace => any_of(v, a.peer.and_then(|p| p.namespace())),
                ConditionKey::SourcePrincipal => a.peer_match().any(v),
                // No TLS here, so no SNI: never matches.
                ConditionKey::ConnectionSni => false,
                _ => false,
            },
            _ => false,
        }
    }
}

/// A claim matches when it is a string that matches, or a list holding a string that matches
/// (Istio supports string and string-list claims; booleans compare as `true`/`false`). A
/// space-delimited claim (`scope`, `permission`, `spaceDelimitedClaims`) is also matched word by
/// word: `"read write"` matches `write`.
fn claim_in(values: &[StrMatch], claim: &Value, space_delimited: bool) -> bool {
    match claim {
        Value::String(s) if space_delimited => {
            any_of(values, Some(s))
                || s.split(' ')
                    .any(|w| !w.is_empty() && any_of(values, Some(w)))
        }
        Value::String(s) => any_of(values, Some(s)),
        Value::Array(items) => items
            .iter()
            .any(|i| i.as_str().is_some_and(|s| any_of(values, Some(s)))),
        Value::Bool(b) => any_of(values, Some(if *b { "true" } else { "false" })),
        _ => false,
    }
}

impl Values {
    fn is_empty(&self) -> bool {
        match self {
            Values::Strings(v) => v.is_empty(),
            Values::Ips(v) => v.is_empty(),
            Values::Ports(v) => v.is_empty(),
        }
    }
}

// === compile ===

fn compile_policy(p: &AuthzPolicy) -> Result<Compiled, BuildError> {
    let name: Arc<str> = format!("{}/{}", p.origin.namespace, p.origin.name).into();
    let provider = match (p.action, &p.provider) {
        (AuthzAction::Custom, Some(prov)) => Some(Arc::from(prov.as_str())),
        (AuthzAction::Custom, None) => return Err(BuildError::missing_provider(&name)),
        _ => None,
    };
    let rules = p
        .rules
        .iter()
        .map(|r| compile_rule(r, &name))
        .collect::<Result<_, _>>()?;
    Ok(Compiled {
        name,
        provider,
        rules,
    })
}

fn compile_rule(r: &AuthzRule, policy: &str) -> Result<Rule, BuildError> {
    Ok(Rule {
        from: r.from.iter().map(compile_source).collect(),
        to: r.to.iter().map(compile_op).collect(),
        when: r
            .when
            .iter()
            .map(|c| compile_cond(c, policy))
            .collect::<Result<_, _>>()?,
    })
}

fn compile_source(s: &Source) -> CSource {
    CSource {
        principals: compile_all(&s.principals),
        not_principals: compile_all(&s.not_principals),
        request_principals: compile_all(&s.request_principals),
        not_request_principals: compile_all(&s.not_request_principals),
        namespaces: compile_all(&s.namespaces),
        not_namespaces: compile_all(&s.not_namespaces),
        ip_blocks: s.ip_blocks.clone().into(),
        not_ip_blocks: s.not_ip_blocks.clone().into(),
        remote_ip_blocks: s.remote_ip_blocks.clone().into(),
        not_remote_ip_blocks: s.not_remote_ip_blocks.clone().into(),
    }
}

fn compile_op(o: &Operation) -> COp {
    let hosts = |v: &[String]| v.iter().map(|h| StrMatch::new_lowercase(h)).collect();
    COp {
        hosts: hosts(&o.hosts),
        not_hosts: hosts(&o.not_hosts),
        ports: o.ports.clone().into(),
        not_ports: o.not_ports.clone().into(),
        methods: compile_all(&o.methods),
        not_methods: compile_all(&o.not_methods),
        paths: compile_paths(&o.paths),
        not_paths: compile_paths(&o.not_paths),
    }
}

fn compile_cond(c: &Condition, policy: &str) -> Result<CCond, BuildError> {
    let values = |list: &[String]| -> Result<Values, BuildError> {
        Ok(match c.key {
            ConditionKey::SourceIp | ConditionKey::RemoteIp | ConditionKey::DestinationIp => {
                Values::Ips(
                    list.iter()
                        .map(|v| {
                            parse_ip_block(v)
                                .ok_or_else(|| BuildError::bad_value(policy, &c.key, v))
                        })
                        .collect::<Result<_, _>>()?,
                )
            }
            ConditionKey::DestinationPort => Values::Ports(
                list.iter()
                    .map(|v| {
                        v.parse::<u16>()
                            .ok()
                            .filter(|p| *p != 0)
                            .ok_or_else(|| BuildError::bad_value(policy, &c.key, v))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => Values::Strings(compile_all(list)),
        })
    };
    Ok(CCond {
        key: c.key.clone(),
        values: values(&c.values)?,
        not_values: values(&c.not_values)?,
    })
}

fn parse_ip_block(v: &str) -> Option<IpNet> {
    if v.contains('/') {
        v.parse().ok()
    } else {
        v.parse::<IpAddr>().ok().map(IpNet::from)
    }
}
