//! RequestAuthentication → [`AuthnPolicy`], and the JWT rule checks the legacy
//! `authentication.istio.io` Policy shares (`legacy_policy.rs`).
//!
//! Both kinds end up as the same checked value, which `mesh-server`'s `jwt` layer enforces; the
//! legacy Policy is translated to what it means: its `origins` become JWT rules, `originIsOptional: false` (the default) becomes
//! `require_token`, each `targets[].name` becomes a policy selecting the workloads labelled
//! `app: <name>`, and the (shared) `triggerRules` decide which paths need a token.

use std::time::Duration;

use crate::compile::Cx;
use crate::policy::{AuthnPolicy, JwksSource, JwtRule, Labels, WorkloadSelector};
use crate::spec::security::RequestAuthenticationSpec;
use crate::spec::security::request_authentication::{JwtRuleSpec, PolicyTargetRefSpec};

/// Istio's default JWKS fetch timeout.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// RequestAuthentication → authentication policy.
pub(crate) fn compile(spec: &RequestAuthenticationSpec, cx: &mut Cx<'_>) -> Option<AuthnPolicy> {
    let mut ok = true;
    let mut selector = WorkloadSelector {
        match_labels: spec
            .selector
            .as_ref()
            .map(|s| s.match_labels.clone())
            .unwrap_or_default(),
    };

    let mut refs: Vec<(String, &PolicyTargetRefSpec)> = Vec::new();
    if let Some(r) = &spec.target_ref {
        refs.push(("spec.targetRef".to_owned(), r));
    }
    for (i, r) in spec.target_refs.iter().enumerate() {
        refs.push((format!("spec.targetRefs[{i}]"), r));
    }
    if spec.target_ref.is_some() && !spec.target_refs.is_empty() {
        cx.error("spec.targetRef", "cannot be set together with targetRefs");
        ok = false;
    }
    if !refs.is_empty() && spec.selector.is_some() {
        cx.error(
            "spec.selector",
            "cannot be set together with targetRef or targetRefs",
        );
        ok = false;
    }
    if refs.len() > 1 {
        cx.error(
            &refs[1].0,
            "more than one target reference is not supported by this mesh",
        );
        ok = false;
    } else if let Some((path, r)) = refs.first() {
        match target_ref_selector(path, r, cx) {
            Some(labels) => selector.match_labels = labels,
            None => ok = false,
        }
    }

    let mut rules = Vec::with_capacity(spec.jwt_rules.len());
    for (i, rule) in spec.jwt_rules.iter().enumerate() {
        match jwt_rule(&format!("spec.jwtRules[{i}]"), rule, cx) {
            Some(r) => rules.push(r),
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    Some(AuthnPolicy {
        origin: cx.origin().clone(),
        selector,
        rules,
        require_token: false,
        trigger_rules: Vec::new(),
    })
}

/// A `targetRef` we can honour: a core `Service`, meaning the workloads labelled `app: <name>`.
fn target_ref_selector(path: &str, r: &PolicyTargetRefSpec, cx: &mut Cx<'_>) -> Option<Labels> {
    let group = r.group.as_deref().unwrap_or("");
    let kind = r.kind.as_deref().unwrap_or("");
    let Some(name) = r.name.as_deref().filter(|n| !n.is_empty()) else {
        cx.error(&format!("{path}.name"), "is required");
        return None;
    };
    if let Some(ns) = r.namespace.as_deref()
        && !ns.is_empty()
        && ns != cx.origin().namespace
    {
        cx.error(
            &format!("{path}.namespace"),
            "must be the policy's own namespace",
        );
        return None;
    }
    if !(group.is_empty() || group == "core") || kind != "Service" {
        cx.error(
            &format!("{path}.kind"),
            format!("target {group}/{kind} is not supported by this mesh (only a core Service)"),
        );
        return None;
    }
    Some(Labels::from([("app".to_owned(), name.to_owned())]))
}

fn jwt_rule(path: &str, spec: &JwtRuleSpec, cx: &mut Cx<'_>) -> Option<JwtRule> {
    let mut ok = true;
    let issuer = match spec.issuer.as_deref().map(str::trim) {
        Some(i) if !i.is_empty() => i.to_owned(),
        _ => {
            cx.error(&format!("{path}.issuer"), "is required");
            ok = false;
            String::new()
        }
    };
    let jwks = if spec.jwks_uri.is_none() && spec.jwks.is_none() {
        discovery(path, &issuer, cx)
    } else {
        jwks_source(
            path,
            spec.jwks_uri.as_deref(),
            spec.jwks.as_deref(),
            false,
            cx,
        )
    };
    ok &= jwks.is_some();
    for (i, c) in spec.space_delimited_claims.iter().enumerate() {
        if c.trim().is_empty() {
            cx.error(
                &format!("{path}.spaceDelimitedClaims[{i}]"),
                "must not be empty",
            );
            ok = false;
        }
    }

    let mut from_headers = Vec::with_capacity(spec.from_headers.len());
    for (i, h) in spec.from_headers.iter().enumerate() {
        let hp = format!("{path}.fromHeaders[{i}].name");
        match h.name.as_deref().and_then(|n| header_name(&hp, n, cx)) {
            Some(name) => from_headers.push((name, h.prefix.clone().unwrap_or_default())),
            None => {
                if h.name.is_none() {
                    cx.error(&hp, "is required");
                }
                ok = false;
            }
        }
    }
    ok &= non_empty_names(&format!("{path}.fromParams"), &spec.from_params, cx);
    ok &= non_empty_names(&format!("{path}.fromCookies"), &spec.from_cookies, cx);

    let output_payload_to_header = match spec.output_payload_to_header.as_deref() {
        Some(h) => {
            let name = header_name(&format!("{path}.outputPayloadToHeader"), h, cx);
            ok &= name.is_some();
            name
        }
        None => None,
    };
    let mut output_claim_to_headers = Vec::with_capacity(spec.output_claim_to_headers.len());
    for (i, c) in spec.output_claim_to_headers.iter().enumerate() {
        let hp = format!("{path}.outputClaimToHeaders[{i}]");
        let header = match c.header.as_deref() {
            Some(h) => header_name(&format!("{hp}.header"), h, cx),
            None => {
                cx.error(&format!("{hp}.header"), "is required");
                None
            }
        };
        let claim = c.claim.as_deref().map(str::trim).filter(|s| !s.is_empty());
        if claim.is_none() {
            cx.error(&format!("{hp}.claim"), "is required");
        }
        match (header, claim) {
            (Some(h), Some(c)) => output_claim_to_headers.push((h, c.to_owned())),
            _ => ok = false,
        }
    }

    let timeout = match spec.timeout.as_deref() {
        None => DEFAULT_TIMEOUT,
        Some(t) => match parse_duration(t) {
            Ok(d) => d,
            Err(why) => {
                cx.error(&format!("{path}.timeout"), why);
                ok = false;
                DEFAULT_TIMEOUT
            }
        },
    };
    let jwks = jwks?;
    if !ok {
        return None;
    }
    Some(JwtRule {
        issuer,
        audiences: spec.audiences.clone(),
        jwks,
        from_headers,
        from_params: spec.from_params.clone(),
        from_cookies: spec.from_cookies.clone(),
        output_payload_to_header,
        output_claim_to_headers,
        forward_original_token: spec.forward_original_token,
        timeout,
        space_delimited_claims: spec
            .space_delimited_claims
            .iter()
            .map(|c| c.trim().to_owned())
            .collect(),
    })
}

/// Neither `jwksUri` nor `jwks`: the keys are found through the issuer's OpenID discovery
/// document, so the issuer must be an http(s) URL (an empty issuer is reported already).
fn discovery(path: &str, issuer: &str, cx: &mut Cx<'_>) -> Option<JwksSource> {
    if issuer.is_empty() {
        return None;
    }
    if is_http_url(issuer) {
        return Some(JwksSource::Discovery(issuer.to_owned()));
    }
    cx.error(
        &format!("{path}.jwksUri"),
        format!(
            "is required (or an inline jwks) when the issuer {issuer:?} is not an http(s) url: its keys cannot be found through OpenID discovery"
        ),
    );
    None
}

/// The article's placeholders look like `{YOUR_JWT_URI}`.
pub(super) fn is_placeholder(s: &str) -> bool {
    s.len() > 2 && s.starts_with('{') && s.ends_with('}') && !s.contains(['"', ':'])
}

/// Checks `jwksUri` / `jwks`. `placeholder_ok`: the legacy Policy accepts the seed article's
/// `{YOUR_JWT_URI}` placeholder with a warning (its tokens are then always refused).
pub(super) fn jwks_source(
    path: &str,
    uri: Option<&str>,
    inline: Option<&str>,
    placeholder_ok: bool,
    cx: &mut Cx<'_>,
) -> Option<JwksSource> {
    match (uri.map(str::trim), inline) {
        (Some(_), Some(_)) => {
            cx.error(
                &format!("{path}.jwks"),
                "cannot be set together with jwksUri",
            );
            None
        }
        (None, None) => {
            cx.error(
                &format!("{path}.jwksUri"),
                "is required (or an inline jwks): OpenID discovery of the issuer's keys is not supported by this mesh",
            );
            None
        }
        (Some(u), None) => {
            if is_http_url(u) {
                Some(JwksSource::Uri(u.to_owned()))
            } else if placeholder_ok && is_placeholder(u) {
                cx.warn(
                    &format!("{path}.jwksUri"),
                    format!(
                        "{u:?} is a placeholder, not an http(s) url: every token for this issuer is refused until it is replaced"
                    ),
                );
                Some(JwksSource::Uri(u.to_owned()))
            } else {
                cx.error(
                    &format!("{path}.jwksUri"),
                    format!("{u:?} is not an http(s) url"),
                );
                None
            }
        }
        (None, Some(doc)) => match check_inline_jwks(doc) {
            Ok(()) => Some(JwksSource::Inline(doc.to_owned())),
            Err(why) => {
                cx.error(&format!("{path}.jwks"), why);
                None
            }
        },
    }
}

fn is_http_url(s: &str) -> bool {
    match s.parse::<http::Uri>() {
        Ok(u) => {
            matches!(u.scheme_str(), Some("http" | "https"))
                && u.host().is_some_and(|h| !h.is_empty())
        }
        Err(_) => false,
    }
}

/// An inline JWKS must be a JSON object with a non-empty `keys` array of objects with a `kty`.
fn check_inline_jwks(doc: &str) -> Result<(), String> {
    let v: serde_json::Value =
        serde_json::from_str(doc).map_err(|e| format!("is not valid json: {e}"))?;
    let keys = v
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| "must be a json object with a \"keys\" array".to_owned())?;
    if keys.is_empty() {
        return Err("has no keys".to_owned());
    }
    for (i, k) in keys.iter().enumerate() {
        if k.get("kty").and_then(|t| t.as_str()).is_none() {
            return Err(format!("keys[{i}] has no \"kty\""));
        }
    }
    Ok(())
}

pub(super) fn header_name(path: &str, name: &str, cx: &mut Cx<'_>) -> Option<String> {
    let lower = name.trim().to_ascii_lowercase();
    if lower.is_empty() || http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
        cx.error(path, format!("{name:?} is not a valid http header name"));
        return None;
    }
    Some(lower)
}

pub(super) fn non_empty_names(path: &str, names: &[String], cx: &mut Cx<'_>) -> bool {
    let mut ok = true;
    for (i, n) in names.iter().enumerate() {
        if n.trim().is_empty() {
            cx.error(&format!("{path}[{i}]"), "must not be empty");
            ok = false;
        }
    }
    ok
}

/// Istio's duration syntax: a decimal number and a unit (`h`, `m`, `s`, `ms`, `us`, `ns`),
/// e.g. `5s`, `1.5s`, `500ms`, `1m`; it must be positive.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("{s:?} is not a duration (e.g. 5s, 1.5s, 500ms, 1m)");
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "h" => n * 3600.0,
        "m" => n * 60.0,
        "s" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "ns" => n / 1e9,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs > 315_576_000_000.0 {
        return Err(bad());
    }
    let d = Duration::from_secs_f64(secs);
    if d < Duration::from_millis(1) {
        return Err(format!("{s:?} must be at least 1ms"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests;
