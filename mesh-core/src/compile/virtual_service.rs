//! VirtualService → [`VirtualService`]: hosts, gateways, and `http[]` routes (see [`super::route`]).

use std::collections::BTreeMap;

use http::HeaderName;

use super::common::{header_name, port, string_match};
use super::{Cx, route};
use crate::policy::{RequestMatch, StringMatch, VirtualService};
use crate::spec::virtual_service::HttpMatchRequestSpec;
use crate::spec::{StringMatchSpec, VirtualServiceSpec};

/// Compiles a VirtualService; `None` when it has errors.
pub(crate) fn compile(spec: &VirtualServiceSpec, cx: &mut Cx<'_>) -> Option<VirtualService> {
    let errors_before = cx.error_count();
    if spec.hosts.is_empty() {
        cx.error("spec.hosts", "at least one host is required");
    }
    for (i, h) in spec.hosts.iter().enumerate() {
        if h.trim().is_empty() {
            cx.error(&format!("spec.hosts[{i}]"), "host must not be empty");
        }
    }
    if spec.tcp.is_some() {
        cx.error(
            "spec.tcp",
            "tcp routes are not supported by this mesh (only http routes are)",
        );
    }
    if spec.tls.is_some() {
        cx.error(
            "spec.tls",
            "tls routes are not supported by this mesh (only http routes are)",
        );
    }
    // exportTo: checked and recorded beside the policy (load::dispatch, compile::export_to).
    let mut http = Vec::with_capacity(spec.http.len());
    for (i, r) in spec.http.iter().enumerate() {
        if let Some(route) = route::compile(r, &format!("spec.http[{i}]"), cx) {
            http.push(route);
        }
    }
    if cx.error_count() > errors_before {
        return None;
    }
    Some(VirtualService {
        origin: cx.origin().clone(),
        hosts: spec.hosts.iter().map(|h| h.trim().to_owned()).collect(),
        gateways: spec.gateways.clone(),
        http,
    })
}

/// One `match[]` entry.
pub(crate) fn request_match(
    m: &HttpMatchRequestSpec,
    path: &str,
    cx: &mut Cx<'_>,
) -> Option<RequestMatch> {
    let mut ok = true;
    let mut one =
        |field: &str, spec: Option<&StringMatchSpec>, cx: &mut Cx<'_>| -> Option<StringMatch> {
            let spec = spec?;
            let r = string_match(spec, &format!("{path}.{field}"), false, cx);
            if r.is_none() {
                ok = false;
            }
            r
        };
    let uri = one("uri", m.uri.as_ref(), cx);
    let scheme = one("scheme", m.scheme.as_ref(), cx);
    let method = one("method", m.method.as_ref(), cx);
    let authority = one("authority", m.authority.as_ref(), cx);
    let (headers, claims) = split_claims(&m.headers);
    let (without, without_claims) = split_claims(&m.without_headers);
    let claims = claim_matches(&claims, &format!("{path}.headers"), cx);
    let without_claims = claim_matches(&without_claims, &format!("{path}.withoutHeaders"), cx);
    let headers = header_matches(&headers, &format!("{path}.headers"), cx);
    let without_headers = header_matches(&without, &format!("{path}.withoutHeaders"), cx);
    let mut query_params = Vec::new();
    for (k, v) in &m.query_params {
        match string_match(v, &format!("{path}.queryParams.{k}"), true, cx) {
            Some(sm) => query_params.push((k.clone(), sm)),
            None => ok = false,
        }
    }
    let port = match m.port {
        None | Some(0) => None,
        Some(n) => {
            let p = port(n, &format!("{path}.port"), cx);
            ok &= p.is_some();
            p
        }
    };
    if m.source_namespace.is_some() {
        cx.unsupported(&format!("{path}.sourceNamespace"));
        ok = false;
    }
    if m.stat_prefix.is_some() {
        cx.unsupported(&format!("{path}.statPrefix"));
        ok = false;
    }
    let (headers, without_headers) = (headers?, without_headers?);
    let (claims, without_claims) = (claims?, without_claims?);
    if !ok {
        return None;
    }
    Some(RequestMatch {
        name: m.name.clone(),
        uri,
        scheme,
        method,
        authority,
        headers,
        without_headers,
        claims,
        without_claims,
        query_params,
        port,
        gateways: m.gateways.clone(),
        source_labels: m.source_labels.clone(),
        ignore_uri_case: m.ignore_uri_case,
    })
}

/// Istio's prefix for a JWT claim in a `headers` match.
const CLAIM_PREFIX: &str = "@request.auth.claims.";

type MatchMap = BTreeMap<String, StringMatchSpec>;

/// The real headers of a `headers` map, and its `@request.auth.claims.` keys.
fn split_claims(map: &MatchMap) -> (MatchMap, MatchMap) {
    map.iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(k, _)| !k.starts_with(CLAIM_PREFIX))
}

fn claim_matches(
    map: &MatchMap,
    path: &str,
    cx: &mut Cx<'_>,
) -> Option<Vec<(Vec<String>, StringMatch)>> {
    let mut out = Vec::with_capacity(map.len());
    let mut ok = true;
    for (k, v) in map {
        let p = format!("{path}.{k}");
        let name = &k[CLAIM_PREFIX.len()..];
        let claim: Vec<String> = name.split('.').map(str::to_owned).collect();
        if claim.iter().any(String::is_empty) {
            cx.error(
                &p,
                format!(
                    "`{name}` is not a claim name (`@request.auth.claims.<name>`, nested with `.`)"
                ),
            );
            ok = false;
            continue;
        }
        match string_match(v, &p, true, cx) {
            Some(sm) => out.push((claim, sm)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn header_matches(
    map: &BTreeMap<String, StringMatchSpec>,
    path: &str,
    cx: &mut Cx<'_>,
) -> Option<Vec<(HeaderName, StringMatch)>> {
    let mut out = Vec::with_capacity(map.len());
    let mut ok = true;
    for (k, v) in map {
        let p = format!("{path}.{k}");
        let name = header_name(k, &p, cx);
        let sm = string_match(v, &p, true, cx);
        match (name, sm) {
            (Some(n), Some(sm)) => out.push((n, sm)),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}
