//! The legacy `authentication.istio.io` Policy → [`AuthnPolicy`] values (see
//! `request_authentication.rs` for the shared rule checks).

use super::request_authentication::{
    DEFAULT_TIMEOUT, header_name, is_placeholder, jwks_source, non_empty_names,
};
use crate::compile::Cx;
use crate::policy::{
    AuthnPolicy, JwtRule, Labels, MtlsMode, Pattern, PeerAuthnPolicy, StringMatch, TriggerRule,
    WorkloadSelector,
};
use crate::spec::security::LegacyPolicySpec;
use crate::spec::security::legacy_policy::{
    LegacyJwtSpec, LegacyStringMatchSpec, LegacyTriggerRuleSpec,
};

/// What one legacy Policy means: end-user authentication and peer authentication.
#[derive(Clone, Debug, Default)]
pub(crate) struct LegacyCompiled {
    /// The JWT part, one per target.
    pub(crate) authentication: Vec<AuthnPolicy>,
    /// The `peers` part, one per target: `mtls` is STRICT (PERMISSIVE with `mode: PERMISSIVE`
    /// or `peerIsOptional: true`), as Istio 1.x read it.
    pub(crate) peers: Vec<PeerAuthnPolicy>,
}

/// The legacy `authentication.istio.io` Policy → one [`AuthnPolicy`] per target (selecting
/// `app: <target name>`), or one for every workload when `targets` is absent. It requires a
/// valid token (`require_token`) unless `originIsOptional`; no authorization policy is needed
/// for that (a missing token is refused with 401 by the JWT layer, as Istio 1.x did). `peers:
/// [mtls]` becomes a [`PeerAuthnPolicy`] per target.
pub(crate) fn compile(spec: &LegacyPolicySpec, cx: &mut Cx<'_>) -> Option<LegacyCompiled> {
    let mut ok = true;
    let peer_mode = peer_mode(spec, cx);
    if peer_mode.is_err() {
        ok = false;
    }
    match spec.principal_binding.as_deref() {
        None | Some("USE_ORIGIN") => {}
        Some("USE_PEER") => {
            cx.error(
                "spec.principalBinding",
                "USE_PEER is not supported by this mesh (there is no peer identity without mTLS); use USE_ORIGIN",
            );
            ok = false;
        }
        Some(other) => {
            cx.error(
                "spec.principalBinding",
                format!("{other:?} must be USE_ORIGIN or USE_PEER"),
            );
            ok = false;
        }
    }

    let mut selectors = Vec::with_capacity(spec.targets.len().max(1));
    for (i, t) in spec.targets.iter().enumerate() {
        if !t.ports.is_empty() {
            cx.error(
                &format!("spec.targets[{i}].ports"),
                "is not supported by this mesh (a policy applies to every port of its workload)",
            );
            ok = false;
        }
        match t.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => selectors.push(WorkloadSelector {
                match_labels: Labels::from([("app".to_owned(), n.to_owned())]),
            }),
            _ => {
                cx.error(&format!("spec.targets[{i}].name"), "is required");
                ok = false;
            }
        }
    }
    if spec.targets.is_empty() {
        selectors.push(WorkloadSelector::default());
    }

    let mut rules = Vec::with_capacity(spec.origins.len());
    let mut triggers: Option<Vec<TriggerRule>> = None;
    for (i, o) in spec.origins.iter().enumerate() {
        let path = format!("spec.origins[{i}].jwt");
        let Some(jwt) = &o.jwt else {
            cx.error(&path, "is required");
            ok = false;
            continue;
        };
        let Some((rule, trig)) = legacy_jwt(&path, jwt, cx) else {
            ok = false;
            continue;
        };
        match &triggers {
            None => triggers = Some(trig),
            Some(first) if *first == trig => {}
            Some(_) => {
                cx.error(
                    &format!("{path}.triggerRules"),
                    "origins with different triggerRules are not supported by this mesh",
                );
                ok = false;
            }
        }
        rules.push(rule);
    }
    let Ok(peer_mode) = peer_mode else {
        return None;
    };
    if !ok {
        return None;
    }
    let peers: Vec<PeerAuthnPolicy> = match peer_mode {
        None => Vec::new(),
        Some(mode) => selectors
            .iter()
            .map(|selector| PeerAuthnPolicy {
                origin: cx.origin().clone(),
                selector: selector.clone(),
                mode,
                port_level: Default::default(),
            })
            .collect(),
    };
    if rules.is_empty() {
        if peers.is_empty() {
            cx.warn(
                "spec.origins",
                "is empty: this Policy authenticates nothing",
            );
        }
        return Some(LegacyCompiled {
            authentication: Vec::new(),
            peers,
        });
    }
    let trigger_rules = triggers.unwrap_or_default();
    let authentication = selectors
        .into_iter()
        .map(|selector| AuthnPolicy {
            origin: cx.origin().clone(),
            selector,
            rules: rules.clone(),
            require_token: !spec.origin_is_optional,
            trigger_rules: trigger_rules.clone(),
        })
        .collect();
    Some(LegacyCompiled {
        authentication,
        peers,
    })
}

/// `peers`: `None` without any; `[{mtls: {}}]` (or `mtls: null`) is STRICT, `mode: PERMISSIVE`
/// or `peerIsOptional: true` PERMISSIVE. Other peer methods are refused.
fn peer_mode(spec: &LegacyPolicySpec, cx: &mut Cx<'_>) -> Result<Option<MtlsMode>, ()> {
    let mut mode = None;
    let mut ok = true;
    for (i, peer) in spec.peers.iter().enumerate() {
        let path = format!("spec.peers[{i}]");
        let Some(mtls) = peer.as_object().and_then(|o| o.get("mtls")) else {
            cx.error(
                &path,
                "only `mtls` peer authentication is supported (Istio 1.x's other method, `jwt`, is end-user authentication: use `origins`)",
            );
            ok = false;
            continue;
        };
        let written = match mtls {
            serde_json::Value::Null => None,
            serde_json::Value::Object(o) => match o.get("mode") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(m)) => Some(m.as_str()),
                Some(other) => {
                    cx.error(
                        &format!("{path}.mtls.mode"),
                        format!("{other} is not a mode"),
                    );
                    ok = false;
                    continue;
                }
            },
            other => {
                cx.error(&format!("{path}.mtls"), format!("{other} is not a mapping"));
                ok = false;
                continue;
            }
        };
        match written {
            None | Some("STRICT") => mode = Some(mode.unwrap_or(MtlsMode::Strict)),
            Some("PERMISSIVE") => mode = Some(MtlsMode::Permissive),
            Some(other) => {
                cx.error(
                    &format!("{path}.mtls.mode"),
                    format!("unknown mode `{other}` (STRICT or PERMISSIVE)"),
                );
                ok = false;
            }
        }
    }
    if !ok {
        return Err(());
    }
    if spec.peer_is_optional == Some(true) && mode.is_some() {
        mode = Some(MtlsMode::Permissive);
    }
    Ok(mode)
}

fn legacy_jwt(
    path: &str,
    spec: &LegacyJwtSpec,
    cx: &mut Cx<'_>,
) -> Option<(JwtRule, Vec<TriggerRule>)> {
    let mut ok = true;
    let issuer = match spec.issuer.as_deref().map(str::trim) {
        Some(i) if !i.is_empty() => {
            if is_placeholder(i) {
                cx.warn(
                    &format!("{path}.issuer"),
                    format!("{i:?} looks like a placeholder for a real issuer"),
                );
            }
            i.to_owned()
        }
        _ => {
            cx.error(&format!("{path}.issuer"), "is required");
            ok = false;
            String::new()
        }
    };
    let jwks = jwks_source(
        path,
        spec.jwks_uri.as_deref(),
        spec.jwks.as_deref(),
        true,
        cx,
    );
    let mut from_headers = Vec::with_capacity(spec.jwt_headers.len());
    for (i, h) in spec.jwt_headers.iter().enumerate() {
        match header_name(&format!("{path}.jwtHeaders[{i}]"), h, cx) {
            Some(n) => from_headers.push((n, String::new())),
            None => ok = false,
        }
    }
    ok &= non_empty_names(&format!("{path}.jwtParams"), &spec.jwt_params, cx);
    let mut triggers = Vec::with_capacity(spec.trigger_rules.len());
    for (i, t) in spec.trigger_rules.iter().enumerate() {
        match trigger_rule(&format!("{path}.triggerRules[{i}]"), t, cx) {
            Some(t) => triggers.push(t),
            None => ok = false,
        }
    }
    let jwks = jwks?;
    if !ok {
        return None;
    }
    let rule = JwtRule {
        issuer,
        audiences: spec.audiences.clone(),
        jwks,
        from_headers,
        from_params: spec.jwt_params.clone(),
        from_cookies: Vec::new(),
        output_payload_to_header: None,
        output_claim_to_headers: Vec::new(),
        // Istio 1.x's v1alpha1 always removed the token after verification (istio/api#1172),
        // which breaks the very set-up the seed article writes: every service of the chain
        // requires an end-user token that the first one could then no longer forward. The token
        // is kept (as `forwardOriginalToken: true` does), so apps can forward `authorization`
        // as Istio's Bookinfo apps do.
        forward_original_token: true,
        timeout: DEFAULT_TIMEOUT,
        space_delimited_claims: Vec::new(),
    };
    Some((rule, triggers))
}

fn trigger_rule(path: &str, spec: &LegacyTriggerRuleSpec, cx: &mut Cx<'_>) -> Option<TriggerRule> {
    let mut ok = true;
    let mut convert = |field: &str, list: &[LegacyStringMatchSpec], cx: &mut Cx<'_>| {
        let mut out = Vec::with_capacity(list.len());
        for (i, m) in list.iter().enumerate() {
            match legacy_string_match(&format!("{path}.{field}[{i}]"), m, cx) {
                Some(m) => out.push(m),
                None => ok = false,
            }
        }
        out
    };
    let included_paths = convert("includedPaths", &spec.included_paths, cx);
    let excluded_paths = convert("excludedPaths", &spec.excluded_paths, cx);
    ok.then_some(TriggerRule {
        included_paths,
        excluded_paths,
    })
}

fn legacy_string_match(
    path: &str,
    m: &LegacyStringMatchSpec,
    cx: &mut Cx<'_>,
) -> Option<StringMatch> {
    let set = [&m.exact, &m.prefix, &m.suffix, &m.regex]
        .iter()
        .filter(|f| f.is_some())
        .count();
    if set != 1 {
        cx.error(path, "must set exactly one of exact, prefix, suffix, regex");
        return None;
    }
    if let Some(e) = &m.exact {
        return Some(StringMatch::Exact(e.clone()));
    }
    if let Some(p) = &m.prefix {
        return Some(StringMatch::Prefix(p.clone()));
    }
    let (field, source) = match (&m.suffix, &m.regex) {
        (Some(s), _) => ("suffix", format!(".*{}", regex::escape(s))),
        (None, Some(r)) => ("regex", r.clone()),
        (None, None) => return None,
    };
    match Pattern::new(&source) {
        Ok(p) => Some(StringMatch::Regex(p)),
        Err(e) => {
            cx.error(
                &format!("{path}.{field}"),
                format!("is not a valid regex: {e}"),
            );
            None
        }
    }
}
