//! AuthorizationPolicy → [`AuthzPolicy`], with Istio's validation rules.

use ipnet::IpNet;

use super::Cx;
use crate::policy::{
    AuthzAction, AuthzPolicy, AuthzRule, Condition, ConditionKey, Operation, Source,
    WorkloadSelector,
};
use crate::spec::security::{
    AuthorizationPolicySpec, AuthzConditionSpec, AuthzOperationSpec, AuthzRuleSpec,
    AuthzSourceSpec, PortText,
};

/// The trust domain used to turn `serviceAccounts` into principals.
const TRUST_DOMAIN: &str = "cluster.local";

pub(crate) fn compile(spec: &AuthorizationPolicySpec, cx: &mut Cx<'_>) -> Option<AuthzPolicy> {
    let errors_before = cx.error_count();
    if spec.target_ref.is_some() {
        cx.unsupported("spec.targetRef");
    }
    if spec.target_refs.is_some() {
        cx.unsupported("spec.targetRefs");
    }
    let action = match spec.action.as_deref() {
        None | Some("ALLOW") => AuthzAction::Allow,
        Some("DENY") => AuthzAction::Deny,
        Some("AUDIT") => AuthzAction::Audit,
        Some("CUSTOM") => AuthzAction::Custom,
        Some(other) => {
            cx.error(
                "spec.action",
                format!("unknown action {other:?} (expected ALLOW, DENY, AUDIT or CUSTOM)"),
            );
            AuthzAction::Allow
        }
    };
    let provider = spec.provider.as_ref().and_then(|p| p.name.clone());
    match (action, &spec.provider, &provider) {
        (AuthzAction::Custom, _, None) => {
            cx.error("spec.provider.name", "is required when action is CUSTOM")
        }
        (AuthzAction::Custom, _, Some(name)) if name.is_empty() => {
            cx.error("spec.provider.name", "must not be empty")
        }
        (AuthzAction::Custom, _, Some(_)) => {}
        (_, Some(_), _) => cx.error("spec.provider", "is only allowed when action is CUSTOM"),
        (_, None, _) => {}
    }
    let selector = WorkloadSelector {
        match_labels: spec
            .selector
            .as_ref()
            .map(|s| s.match_labels.clone())
            .unwrap_or_default(),
    };
    let namespace = cx.origin().namespace.clone();
    let mut rules = Vec::new();
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        rules.push(compile_rule(
            rule,
            &format!("spec.rules[{i}]"),
            &namespace,
            cx,
        ));
    }
    if cx.error_count() > errors_before {
        return None;
    }
    Some(AuthzPolicy {
        origin: cx.origin().clone(),
        selector,
        action,
        provider,
        rules,
        dry_run: false,
    })
}

fn compile_rule(rule: &AuthzRuleSpec, path: &str, namespace: &str, cx: &mut Cx<'_>) -> AuthzRule {
    let mut out = AuthzRule::default();
    if let Some(from) = &rule.from {
        if from.is_empty() {
            cx.error(
                &format!("{path}.from"),
                "must not be empty (omit it to match any source)",
            );
        }
        for (i, f) in from.iter().enumerate() {
            let p = format!("{path}.from[{i}].source");
            match &f.source {
                None => cx.error(&p, "is required"),
                Some(s) => out.from.push(compile_source(s, &p, namespace, cx)),
            }
        }
    }
    if let Some(to) = &rule.to {
        if to.is_empty() {
            cx.error(
                &format!("{path}.to"),
                "must not be empty (omit it to match any operation)",
            );
        }
        for (i, t) in to.iter().enumerate() {
            let p = format!("{path}.to[{i}].operation");
            match &t.operation {
                None => cx.error(&p, "is required"),
                Some(o) => out.to.push(compile_operation(o, &p, cx)),
            }
        }
    }
    for (i, c) in rule.when.iter().flatten().enumerate() {
        if let Some(c) = compile_condition(c, &format!("{path}.when[{i}]"), cx) {
            out.when.push(c);
        }
    }
    out
}

fn compile_source(s: &AuthzSourceSpec, path: &str, namespace: &str, cx: &mut Cx<'_>) -> Source {
    let mut out = Source {
        principals: strings(&s.principals, &format!("{path}.principals"), cx),
        not_principals: strings(&s.not_principals, &format!("{path}.notPrincipals"), cx),
        request_principals: strings(
            &s.request_principals,
            &format!("{path}.requestPrincipals"),
            cx,
        ),
        not_request_principals: strings(
            &s.not_request_principals,
            &format!("{path}.notRequestPrincipals"),
            cx,
        ),
        namespaces: strings(&s.namespaces, &format!("{path}.namespaces"), cx),
        not_namespaces: strings(&s.not_namespaces, &format!("{path}.notNamespaces"), cx),
        ip_blocks: ip_blocks(&s.ip_blocks, &format!("{path}.ipBlocks"), cx),
        not_ip_blocks: ip_blocks(&s.not_ip_blocks, &format!("{path}.notIpBlocks"), cx),
        remote_ip_blocks: ip_blocks(&s.remote_ip_blocks, &format!("{path}.remoteIpBlocks"), cx),
        not_remote_ip_blocks: ip_blocks(
            &s.not_remote_ip_blocks,
            &format!("{path}.notRemoteIpBlocks"),
            cx,
        ),
    };
    // `serviceAccounts` is shorthand for the SPIFFE principal of that account; Istio refuses it
    // beside `principals` or `namespaces`.
    let has_sa = s.service_accounts.is_some() || s.not_service_accounts.is_some();
    if has_sa && (s.principals.is_some() || s.not_principals.is_some()) {
        cx.error(
            &format!("{path}.serviceAccounts"),
            "cannot be set together with principals",
        );
    }
    if has_sa && (s.namespaces.is_some() || s.not_namespaces.is_some()) {
        cx.error(
            &format!("{path}.serviceAccounts"),
            "cannot be set together with namespaces",
        );
    }
    for (field, list, target) in [
        ("serviceAccounts", &s.service_accounts, &mut out.principals),
        (
            "notServiceAccounts",
            &s.not_service_accounts,
            &mut out.not_principals,
        ),
    ] {
        for (i, sa) in list.iter().flatten().enumerate() {
            let p = format!("{path}.{field}[{i}]");
            let (ns, name) = sa.split_once('/').unwrap_or((namespace, sa.as_str()));
            if ns.is_empty() || name.is_empty() || name.contains('/') || sa.contains('*') {
                cx.error(
                    &p,
                    format!(
                        "{sa:?} is not a service account (expected `namespace/name` or `name`)"
                    ),
                );
                continue;
            }
            target.push(format!("{TRUST_DOMAIN}/ns/{ns}/sa/{name}"));
        }
    }
    if source_is_empty(&out) {
        cx.error(path, "must not be empty");
    }
    out
}

fn source_is_empty(s: &Source) -> bool {
    s.principals.is_empty()
        && s.not_principals.is_empty()
        && s.request_principals.is_empty()
        && s.not_request_principals.is_empty()
        && s.namespaces.is_empty()
        && s.not_namespaces.is_empty()
        && s.ip_blocks.is_empty()
        && s.not_ip_blocks.is_empty()
        && s.remote_ip_blocks.is_empty()
        && s.not_remote_ip_blocks.is_empty()
}

fn compile_operation(o: &AuthzOperationSpec, path: &str, cx: &mut Cx<'_>) -> Operation {
    let lower = |v: Vec<String>| v.into_iter().map(|h| h.to_ascii_lowercase()).collect();
    let out = Operation {
        hosts: lower(strings(&o.hosts, &format!("{path}.hosts"), cx)),
        not_hosts: lower(strings(&o.not_hosts, &format!("{path}.notHosts"), cx)),
        ports: ports(&o.ports, &format!("{path}.ports"), cx),
        not_ports: ports(&o.not_ports, &format!("{path}.notPorts"), cx),
        methods: strings(&o.methods, &format!("{path}.methods"), cx),
        not_methods: strings(&o.not_methods, &format!("{path}.notMethods"), cx),
        paths: paths(&o.paths, &format!("{path}.paths"), cx),
        not_paths: paths(&o.not_paths, &format!("{path}.notPaths"), cx),
    };
    let empty = out.hosts.is_empty()
        && out.not_hosts.is_empty()
        && out.ports.is_empty()
        && out.not_ports.is_empty()
        && out.methods.is_empty()
        && out.not_methods.is_empty()
        && out.paths.is_empty()
        && out.not_paths.is_empty();
    if empty {
        cx.error(path, "must not be empty");
    }
    out
}

fn compile_condition(c: &AuthzConditionSpec, path: &str, cx: &mut Cx<'_>) -> Option<Condition> {
    let Some(raw) = c.key.as_deref() else {
        cx.error(&format!("{path}.key"), "is required");
        return None;
    };
    let key_path = format!("{path}.key");
    let key = match parse_key(raw) {
        Ok(key) => key,
        Err(KeyError::Unsupported) => {
            cx.unsupported(&key_path);
            return None;
        }
        Err(KeyError::Bad(why)) => {
            cx.error(&key_path, why);
            return None;
        }
    };
    let values = strings(&c.values, &format!("{path}.values"), cx);
    let not_values = strings(&c.not_values, &format!("{path}.notValues"), cx);
    if values.is_empty() && not_values.is_empty() {
        cx.error(path, "at least one of values or notValues must be set");
    }
    for (field, list) in [("values", &values), ("notValues", &not_values)] {
        for (i, v) in list.iter().enumerate() {
            let p = format!("{path}.{field}[{i}]");
            match key {
                ConditionKey::SourceIp | ConditionKey::RemoteIp | ConditionKey::DestinationIp
                    if parse_ip_block(v).is_none() =>
                {
                    cx.error(&p, format!("{v:?} is not an IP address or CIDR block"));
                }
                ConditionKey::DestinationPort if parse_port(v).is_none() => {
                    cx.error(&p, format!("{v:?} is not a port (1-65535)"));
                }
                _ => {}
            }
        }
    }
    Some(Condition {
        key,
        values,
        not_values,
    })
}

enum KeyError {
    Unsupported,
    Bad(String),
}

/// The pseudo-headers a `request.headers[...]` key may name.
const PSEUDO_HEADERS: [&str; 4] = [":method", ":path", ":authority", ":scheme"];

/// Parses a `when[].key` the way Istio spells it.
fn parse_key(raw: &str) -> Result<ConditionKey, KeyError> {
    let key = match raw {
        "request.auth.principal" => ConditionKey::RequestPrincipal,
        "request.auth.audiences" => ConditionKey::Audiences,
        "request.auth.presenter" => ConditionKey::Presenter,
        "source.ip" => ConditionKey::SourceIp,
        "remote.ip" => ConditionKey::RemoteIp,
        "source.namespace" => ConditionKey::SourceNamespace,
        "source.principal" => ConditionKey::SourcePrincipal,
        "destination.ip" => ConditionKey::DestinationIp,
        "destination.port" => ConditionKey::DestinationPort,
        "connection.sni" => ConditionKey::ConnectionSni,
        _ if raw.starts_with("experimental.") => return Err(KeyError::Unsupported),
        _ => {
            if let Some(rest) = raw.strip_prefix("request.auth.claims") {
                let parts = brackets(rest).ok_or_else(|| {
                    KeyError::Bad(format!(
                        "{raw:?}: expected request.auth.claims[name] or [name][nested]"
                    ))
                })?;
                return Ok(ConditionKey::Claim(parts));
            }
            if let Some(rest) = raw.strip_prefix("request.headers") {
                let parts = brackets(rest).filter(|p| p.len() == 1);
                let name = parts.and_then(|mut p| p.pop()).ok_or_else(|| {
                    KeyError::Bad(format!("{raw:?}: expected request.headers[name]"))
                })?;
                if name.starts_with(':') {
                    // Envoy's pseudo-headers, as Istio passes them to its RBAC filter
                    return match PSEUDO_HEADERS.contains(&name.as_str()) {
                        true => Ok(ConditionKey::Header(name)),
                        false => Err(KeyError::Bad(format!(
                            "{name:?} is not a pseudo-header (expected one of {})",
                            PSEUDO_HEADERS.join(", ")
                        ))),
                    };
                }
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(KeyError::Bad(format!(
                        "{name:?} is not a valid header name"
                    )));
                }
                return Ok(ConditionKey::Header(name.to_ascii_lowercase()));
            }
            return Err(KeyError::Bad(format!("unknown key {raw:?}")));
        }
    };
    Ok(key)
}

/// `[a][b]` → `["a", "b"]`; `None` unless the whole text is one or more non-empty brackets.
fn brackets(mut rest: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        let part = &inner[..end];
        if part.is_empty() || part.contains('[') {
            return None;
        }
        parts.push(part.to_owned());
        rest = &inner[end + 1..];
    }
    (!parts.is_empty()).then_some(parts)
}

/// Values with Istio's wildcard forms: exact, `prefix*`, `*suffix` or `*`.
fn strings(list: &Option<Vec<String>>, path: &str, cx: &mut Cx<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, v) in list.iter().flatten().enumerate() {
        match check_string(v) {
            Ok(()) => out.push(v.clone()),
            Err(why) => cx.error(&format!("{path}[{i}]"), why),
        }
    }
    out
}

/// One value in Istio's string forms: not empty; `*` alone, as a prefix or as a suffix.
fn check_string(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("must not be empty".to_owned());
    }
    let stars = v.matches('*').count();
    let ok = stars == 0 || v == "*" || (stars == 1 && (v.starts_with('*') || v.ends_with('*')));
    if !ok {
        return Err(format!(
            "{v:?}: `*` is only allowed alone, as a prefix or as a suffix"
        ));
    }
    Ok(())
}

fn paths(list: &Option<Vec<String>>, path: &str, cx: &mut Cx<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, v) in list.iter().flatten().enumerate() {
        let at = format!("{path}[{i}]");
        if v.contains('{') || v.contains('}') {
            match check_template(v) {
                Ok(()) => out.push(v.clone()),
                Err(why) => cx.error(&at, format!("{v:?}: {why}")),
            }
            continue;
        }
        if let Err(why) = check_string(v) {
            cx.error(&at, why);
            continue;
        }
        if !(v.starts_with('/') || v.starts_with('*')) {
            // Istio accepts it; a request path always starts with `/`, so it never matches
            cx.warn(
                &at,
                format!("{v:?} does not start with `/` or `*`, so it never matches a request path"),
            );
        }
        out.push(v.clone());
    }
    out
}

/// Istio's (1.22+) rules for a path template: only the `{*}` and `{**}` operators, each the
/// whole of its segment, no `*` outside them, and `{**}` the last operator.
pub(crate) fn check_template(v: &str) -> Result<(), String> {
    if !v.starts_with('/') {
        return Err("a path template must start with `/`".to_owned());
    }
    let mut after_rest = false;
    for segment in v.split('/') {
        let operator = matches!(segment, "{*}" | "{**}");
        if operator && after_rest {
            return Err("`{**}` must be the last operator of a path template".to_owned());
        }
        if segment == "{**}" {
            after_rest = true;
        }
        if operator {
            continue;
        }
        if segment.contains(['{', '}']) {
            return Err(format!(
                "segment `{segment}`: a path template segment holding an operator must be exactly `{{*}}` or `{{**}}`"
            ));
        }
        if segment.contains('*') {
            return Err(format!(
                "segment `{segment}`: `*` is not allowed in a path template outside `{{*}}` and `{{**}}`"
            ));
        }
    }
    Ok(())
}

fn ip_blocks(list: &Option<Vec<String>>, path: &str, cx: &mut Cx<'_>) -> Vec<IpNet> {
    let mut out = Vec::new();
    for (i, v) in list.iter().flatten().enumerate() {
        match parse_ip_block(v) {
            Some(net) => out.push(net),
            None => cx.error(
                &format!("{path}[{i}]"),
                format!("{v:?} is not an IP address or CIDR block"),
            ),
        }
    }
    out
}

fn ports(list: &Option<Vec<PortText>>, path: &str, cx: &mut Cx<'_>) -> Vec<u16> {
    let mut out = Vec::new();
    for (i, v) in list.iter().flatten().enumerate() {
        let port = match v {
            PortText::Number(n) => u16::try_from(*n).ok().filter(|p| *p != 0),
            PortText::Text(t) => parse_port(t),
        };
        match port {
            Some(p) => out.push(p),
            None => cx.error(
                &format!("{path}[{i}]"),
                format!("{v:?} is not a port (1-65535)"),
            ),
        }
    }
    out
}

/// An address (`10.0.0.1`, `::1`) or a CIDR block (`10.0.0.0/16`).
pub(crate) fn parse_ip_block(v: &str) -> Option<IpNet> {
    if v.contains('/') {
        return v.parse::<IpNet>().ok();
    }
    v.parse::<std::net::IpAddr>().ok().map(IpNet::from)
}

/// A TCP port 1..=65535 written as text.
pub(crate) fn parse_port(v: &str) -> Option<u16> {
    v.parse::<u16>().ok().filter(|p| *p != 0)
}

#[cfg(test)]
mod tests;
