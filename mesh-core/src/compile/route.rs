//! One VirtualService `http[]` entry → [`HttpRoute`]: action (route, redirect, direct
//! response), rewrite, timeout, retries, fault, mirrors, headers, CORS.

use base64::Engine as _;
use http::{Method, StatusCode};

use super::Cx;
use super::common::{
    destination, duration_field, header_rules, non_negative, opt_duration, percent, percent_value,
    port, search_regex, string_match,
};
use super::virtual_service::request_match;
use crate::policy::{
    Backoff, CorsPolicy, DirectResponse, Fault, FaultAbort, FaultDelay, HttpRoute, Mirror,
    Redirect, RetryCondition, RetryOn, RetryPolicy, RetryPolicyError, Rewrite, RouteAction,
    StringMatch, UnmatchedPreflights, WeightedDestination,
};
use crate::spec::virtual_service::{
    CorsPolicySpec, HttpDirectResponseSpec, HttpFaultInjectionSpec, HttpRedirectSpec,
    HttpRetrySpec, HttpRewriteSpec, HttpRouteDestinationSpec, HttpRouteSpec,
};

mod fault;
mod retries;

use fault::fault;
use retries::retries;

/// Compiles one `http[]` route at `path` (e.g. `spec.http[0]`).
pub(crate) fn compile(r: &HttpRouteSpec, path: &str, cx: &mut Cx<'_>) -> Option<HttpRoute> {
    let before = cx.error_count();
    let mut matches = Vec::with_capacity(r.matches.len());
    for (i, m) in r.matches.iter().enumerate() {
        if let Some(m) = request_match(m, &format!("{path}.match[{i}]"), cx) {
            matches.push(m);
        }
    }
    let action = action(r, path, cx);
    let rewrite = r
        .rewrite
        .as_ref()
        .and_then(|rw| rewrite(rw, &format!("{path}.rewrite"), cx));
    if r.rewrite.is_some() && r.redirect.is_some() {
        cx.error(
            &format!("{path}.rewrite"),
            "a route cannot have both `rewrite` and `redirect`",
        );
    }
    let timeout = opt_duration(r.timeout.as_ref(), &format!("{path}.timeout"), cx).flatten();
    let retries = match &r.retries {
        None => RetryPolicy::default(),
        Some(spec) => retries(spec, &format!("{path}.retries"), cx).unwrap_or_default(),
    };
    let fault = r
        .fault
        .as_ref()
        .and_then(|f| fault(f, &format!("{path}.fault"), cx));
    let mirrors = mirrors(r, path, cx);
    let headers = header_rules(r.headers.as_ref(), &format!("{path}.headers"), cx);
    let cors = r
        .cors_policy
        .as_ref()
        .and_then(|c| cors(c, &format!("{path}.corsPolicy"), cx));
    let action = action?;
    if cx.error_count() > before {
        return None;
    }
    Some(HttpRoute {
        name: r.name.clone(),
        matches,
        action,
        rewrite,
        timeout,
        retries,
        fault,
        mirrors,
        headers,
        cors,
    })
}

fn action(r: &HttpRouteSpec, path: &str, cx: &mut Cx<'_>) -> Option<RouteAction> {
    if r.delegate.is_some() {
        cx.unsupported(&format!("{path}.delegate"));
        return None;
    }
    let given = [
        !r.route.is_empty(),
        r.redirect.is_some(),
        r.direct_response.is_some(),
    ];
    match given.iter().filter(|b| **b).count() {
        0 => {
            cx.error(
                path,
                "a route needs one of `route`, `redirect`, `directResponse`",
            );
            None
        }
        1 if !r.route.is_empty() => forward(&r.route, &format!("{path}.route"), cx),
        1 => match (&r.redirect, &r.direct_response) {
            (Some(rd), _) => {
                redirect(rd, &format!("{path}.redirect"), cx).map(RouteAction::Redirect)
            }
            (_, Some(dr)) => direct_response(dr, &format!("{path}.directResponse"), cx)
                .map(RouteAction::DirectResponse),
            _ => None,
        },
        _ => {
            cx.error(
                path,
                "a route may have only one of `route`, `redirect`, `directResponse`",
            );
            None
        }
    }
}

fn forward(route: &[HttpRouteDestinationSpec], path: &str, cx: &mut Cx<'_>) -> Option<RouteAction> {
    let mut out = Vec::with_capacity(route.len());
    let mut ok = true;
    let mut total: i64 = 0;
    for (i, d) in route.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let dest = destination(d.destination.as_ref(), &format!("{p}.destination"), cx);
        let weight = match d.weight {
            None => Some(0),
            Some(w) => non_negative(w, &format!("{p}.weight"), cx),
        };
        let headers = header_rules(d.headers.as_ref(), &format!("{p}.headers"), cx);
        match (dest, weight) {
            (Some(destination), Some(weight)) => {
                total = total.saturating_add(i64::from(weight));
                out.push(WeightedDestination {
                    destination,
                    weight,
                    headers,
                });
            }
            _ => ok = false,
        }
    }
    if !ok {
        return None;
    }
    if let [only] = out.as_mut_slice() {
        // Istio: a lone destination receives all the traffic, whatever its weight.
        only.weight = 100;
    } else if total != 100 {
        cx.error(
            path,
            format!("destination weights sum to {total}, they must sum to 100"),
        );
        return None;
    }
    Some(RouteAction::Forward(out))
}

fn redirect(r: &HttpRedirectSpec, path: &str, cx: &mut Cx<'_>) -> Option<Redirect> {
    let before = cx.error_count();
    if r.derive_port.is_some() {
        cx.unsupported(&format!("{path}.derivePort"));
    }
    if r.prefix_rewrite.is_some() {
        cx.unsupported(&format!("{path}.prefixRewrite"));
    }
    let port = r.port.and_then(|n| port(n, &format!("{path}.port"), cx));
    let status = match r.redirect_code {
        None | Some(0) => StatusCode::MOVED_PERMANENTLY,
        Some(code) => match u16::try_from(code)
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(s) if s.is_redirection() => s,
            _ => {
                cx.error(
                    &format!("{path}.redirectCode"),
                    format!("{code} is not a redirect code (3xx)"),
                );
                return None;
            }
        },
    };
    if cx.error_count() > before {
        return None;
    }
    Some(Redirect {
        uri: r.uri.clone(),
        authority: r.authority.clone(),
        port,
        scheme: r.scheme.clone(),
        status,
    })
}

fn direct_response(
    d: &HttpDirectResponseSpec,
    path: &str,
    cx: &mut Cx<'_>,
) -> Option<DirectResponse> {
    let status = match d.status {
        None => {
            cx.error(&format!("{path}.status"), "is required");
            return None;
        }
        Some(code) => match u16::try_from(code).ok().filter(|c| (200..=599).contains(c)) {
            Some(c) => StatusCode::from_u16(c).ok()?,
            None => {
                cx.error(
                    &format!("{path}.status"),
                    format!("status {code} is outside 200..=599"),
                );
                return None;
            }
        },
    };
    let body = match &d.body {
        None => None,
        Some(b) => match (&b.string, &b.bytes) {
            (Some(_), Some(_)) => {
                cx.error(&format!("{path}.body"), "set only one of `string`, `bytes`");
                return None;
            }
            (Some(s), None) => Some(s.clone().into_bytes()),
            (None, Some(b64)) => match base64::engine::general_purpose::STANDARD.decode(b64.trim())
            {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    cx.error(
                        &format!("{path}.body.bytes"),
                        format!("invalid base64: {e}"),
                    );
                    return None;
                }
            },
            (None, None) => None,
        },
    };
    Some(DirectResponse { status, body })
}

fn rewrite(r: &HttpRewriteSpec, path: &str, cx: &mut Cx<'_>) -> Option<Rewrite> {
    if r.uri.is_some() && r.uri_regex_rewrite.is_some() {
        cx.error(path, "set only one of `uri`, `uriRegexRewrite`");
        return None;
    }
    let uri_regex = match &r.uri_regex_rewrite {
        None => None,
        Some(rr) => {
            let p = format!("{path}.uriRegexRewrite");
            let Some(source) = rr.pattern.as_deref() else {
                cx.error(&format!("{p}.match"), "is required");
                return None;
            };
            // Envoy replaces every match in the path (RE2 GlobalReplace): unanchored.
            let pattern = search_regex(source, &format!("{p}.match"), cx)?;
            Some((pattern, rr.rewrite.clone().unwrap_or_default()))
        }
    };
    Some(Rewrite {
        uri: r.uri.clone(),
        uri_regex,
        authority: r.authority.clone(),
    })
}

fn mirrors(r: &HttpRouteSpec, path: &str, cx: &mut Cx<'_>) -> Vec<Mirror> {
    let mut out = Vec::new();
    if r.mirror.is_some() && !r.mirrors.is_empty() {
        cx.error(
            &format!("{path}.mirrors"),
            "set only one of `mirror`, `mirrors`",
        );
        return out;
    }
    if let Some(m) = &r.mirror {
        let pct = match (&r.mirror_percentage, r.mirror_percent) {
            (Some(_), Some(_)) => {
                cx.error(
                    &format!("{path}.mirrorPercent"),
                    "set only one of `mirrorPercentage`, `mirrorPercent` (deprecated)",
                );
                None
            }
            (None, Some(n)) => percent_value(n as f64, &format!("{path}.mirrorPercent"), cx),
            (p, None) => percent(p.as_ref(), &format!("{path}.mirrorPercentage"), cx),
        };
        let dest = destination(Some(m), &format!("{path}.mirror"), cx);
        if let (Some(destination), Some(percent)) = (dest, pct) {
            out.push(Mirror {
                destination,
                percent,
            });
        }
    } else if r.mirror_percentage.is_some() || r.mirror_percent.is_some() {
        cx.error(&format!("{path}.mirrorPercentage"), "needs `mirror`");
    }
    for (i, m) in r.mirrors.iter().enumerate() {
        let p = format!("{path}.mirrors[{i}]");
        let dest = destination(m.destination.as_ref(), &format!("{p}.destination"), cx);
        let pct = percent(m.percentage.as_ref(), &format!("{p}.percentage"), cx);
        if let (Some(destination), Some(percent)) = (dest, pct) {
            out.push(Mirror {
                destination,
                percent,
            });
        }
    }
    out
}

fn cors(c: &CorsPolicySpec, path: &str, cx: &mut Cx<'_>) -> Option<CorsPolicy> {
    let before = cx.error_count();
    let unmatched_preflights = match c.unmatched_preflights.as_deref() {
        None | Some("UNSPECIFIED" | "FORWARD") => UnmatchedPreflights::Forward,
        Some("IGNORE") => UnmatchedPreflights::Ignore,
        Some(other) => {
            cx.error(
                &format!("{path}.unmatchedPreflights"),
                format!("unknown value `{other}` (expected `UNSPECIFIED`, `FORWARD` or `IGNORE`)"),
            );
            UnmatchedPreflights::Forward
        }
    };
    let mut out = CorsPolicy {
        unmatched_preflights,
        allow_headers: c.allow_headers.clone(),
        expose_headers: c.expose_headers.clone(),
        allow_credentials: c.allow_credentials,
        ..CorsPolicy::default()
    };
    out.allow_origins
        .extend(c.allow_origin.iter().cloned().map(StringMatch::Exact));
    for (i, o) in c.allow_origins.iter().enumerate() {
        if let Some(m) = string_match(o, &format!("{path}.allowOrigins[{i}]"), false, cx) {
            out.allow_origins.push(m);
        }
    }
    for (i, m) in c.allow_methods.iter().enumerate() {
        match Method::from_bytes(m.trim().as_bytes()) {
            Ok(method) => out.allow_methods.push(method),
            Err(_) => cx.error(
                &format!("{path}.allowMethods[{i}]"),
                format!("invalid method `{m}`"),
            ),
        }
    }
    out.max_age = opt_duration(c.max_age.as_ref(), &format!("{path}.maxAge"), cx).flatten();
    (cx.error_count() == before).then_some(out)
}
