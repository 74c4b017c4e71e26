//! Whether a request satisfies one `match[]` entry.

use std::borrow::Cow;

use http::Request;
use mesh_core::policy::{RequestClaims, RequestMatch, StringMatch};

use crate::context::SourceWorkload;

/// The parts of a request that routes match on, read once per lookup.
#[derive(Debug)]
pub struct RequestView<'a> {
    /// Request path, without the query.
    pub path: &'a str,
    /// Raw query string, without `?`.
    pub query: Option<&'a str>,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The authority as sent (`host[:port]`).
    pub authority: &'a str,
    /// The host, lowercased, without port or trailing dot (borrowed when already so).
    pub host: Cow<'a, str>,
    /// The port: explicit, else the scheme's default.
    pub port: u16,
    /// Method.
    pub method: &'a str,
    /// Headers.
    pub headers: &'a http::HeaderMap,
    /// The calling workload, when known.
    pub source: Option<&'a SourceWorkload>,
    /// The request's verified JWT claims (a gateway's inbound JWT layer puts them there).
    pub claims: Option<&'a RequestClaims>,
}

impl<'a> RequestView<'a> {
    /// Reads `request`: authority from the URI, else from the `Host` header.
    pub fn new<B>(request: &'a Request<B>) -> Self {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("http");
        let authority = uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| {
                request
                    .headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
            })
            .unwrap_or("");
        let (host, port) = split_authority(authority);
        let port = port.unwrap_or(if scheme.eq_ignore_ascii_case("https") {
            443
        } else {
            80
        });
        Self {
            path: uri.path(),
            query: uri.query(),
            scheme,
            authority,
            host: normalized_host(host),
            port,
            method: request.method().as_str(),
            headers: request.headers(),
            source: request.extensions().get::<SourceWorkload>(),
            claims: request.extensions().get::<RequestClaims>(),
        }
    }
}

/// Splits `host[:port]` (IPv6 literals in brackets keep their colons).
pub fn split_authority(authority: &str) -> (&str, Option<u16>) {
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let host = &authority[..end + 2];
            let port = rest[end + 1..]
                .strip_prefix(':')
                .and_then(|p| p.parse().ok());
            return (host, port);
        }
        return (authority, None);
    }
    // Every request's authority goes through here: a byte loop from the end finds the colon of
    // a short `host:port` in fewer steps than `rsplit_once`'s searcher takes to set up.
    let bytes = authority.as_bytes();
    let Some(colon) = bytes.iter().rposition(|&b| b == b':') else {
        return (authority, None);
    };
    let host = &authority[..colon];
    if host.bytes().any(|b| b == b':') {
        // more than one colon outside brackets: no port to split off
        return (authority, None);
    }
    match authority[colon + 1..].parse() {
        Ok(p) => (host, Some(p)),
        Err(_) => (authority, None),
    }
}

/// Lowercases and drops a trailing dot.
pub fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// [`normalize_host`] without a copy when the host is already lowercase (the usual case).
pub fn normalized_host(host: &str) -> Cow<'_, str> {
    let trimmed = host.trim_end_matches('.');
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

/// Whether a gateway reference (`name` or `namespace/name`) names `gateway`.
pub fn names_gateway(reference: &str, gateway: &str) -> bool {
    reference == gateway || reference.rsplit('/').next() == Some(gateway)
}

/// Whether `m` holds for `view`, at `gateway`.
pub fn matches(m: &RequestMatch, view: &RequestView<'_>, gateway: &str) -> bool {
    let ci = m.ignore_uri_case;
    if m.uri.as_ref().is_some_and(|u| !u.matches(view.path, ci)) {
        return false;
    }
    if m.scheme
        .as_ref()
        .is_some_and(|s| !s.matches(view.scheme, false))
    {
        return false;
    }
    if m.method
        .as_ref()
        .is_some_and(|s| !s.matches(view.method, false))
    {
        return false;
    }
    if m.authority
        .as_ref()
        .is_some_and(|s| !s.matches(view.authority, false))
    {
        return false;
    }
    if m.port.is_some_and(|p| p != view.port) {
        return false;
    }
    if !m.gateways.is_empty() && !m.gateways.iter().any(|g| names_gateway(g, gateway)) {
        return false;
    }
    if !m
        .headers
        .iter()
        .all(|(name, sm)| header_matches(view.headers, name, sm))
    {
        return false;
    }
    if m.without_headers
        .iter()
        .any(|(name, sm)| header_matches(view.headers, name, sm))
    {
        return false;
    }
    let claim =
        |(path, sm): &(Vec<String>, StringMatch)| view.claims.is_some_and(|c| c.matches(path, sm));
    if !m.claims.iter().all(claim) || m.without_claims.iter().any(claim) {
        return false;
    }
    if !m.query_params.iter().all(|(name, sm)| {
        query_param_decoded(view.query, name).is_some_and(|v| sm.matches(&v, false))
    }) {
        return false;
    }
    if !m.source_labels.is_empty() {
        let Some(source) = view.source else {
            return false;
        };
        if !m
            .source_labels
            .iter()
            .all(|(k, v)| source.labels.get(k) == Some(v))
        {
            return false;
        }
    }
    true
}

fn header_matches(headers: &http::HeaderMap, name: &http::HeaderName, sm: &StringMatch) -> bool {
    let mut values = headers.get_all(name).iter().peekable();
    if values.peek().is_none() {
        return false;
    }
    if matches!(sm, StringMatch::Present) {
        return true;
    }
    values
        .filter_map(|v| v.to_str().ok())
        .any(|v| sm.matches(v, false))
}

/// The first value of query parameter `name` (raw, not percent-decoded; `a` alone gives `""`).
pub fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// The first value of query parameter `name`, percent-decoded, as Envoy matches `queryParams`
/// (names are compared decoded too; `+` stays `+`). Borrowed when nothing is encoded.
pub fn query_param_decoded<'q>(query: Option<&'q str>, name: &str) -> Option<Cow<'q, str>> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// `%XX` sequences decoded; an invalid or incomplete escape, or bytes that are not UTF-8 once
/// decoded, leave the text as it was.
fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                // two hex digits make a byte
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'%'));
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_or(Cow::Borrowed(text), Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderName;
    use mesh_core::policy::Pattern;

    fn view_of(req: &Request<()>) -> RequestView<'_> {
        RequestView::new(req)
    }

    #[test]
    fn authority_parsing() {
        assert_eq!(split_authority("service2:8080"), ("service2", Some(8080)));
        assert_eq!(split_authority("service2"), ("service2", None));
        assert_eq!(split_authority("[::1]:80"), ("[::1]", Some(80)));
        assert_eq!(split_authority("bad:port"), ("bad:port", None));
        let req = Request::get("/x?a=1")
            .header("host", "Svc.Example.:9000")
            .body(())
            .unwrap();
        let v = view_of(&req);
        assert_eq!(
            (&*v.host, v.port, v.path, v.query),
            ("svc.example", 9000, "/x", Some("a=1"))
        );
    }

    #[test]
    fn split_authority_agrees_with_splitting_at_the_last_colon() {
        // the reference: split at the last colon when the host keeps no other one
        let reference = |a: &'static str| match a.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => match port.parse() {
                Ok(p) => (host, Some(p)),
                Err(_) => (a, None),
            },
            _ => (a, None),
        };
        for a in [
            "",
            ":",
            ":80",
            "h:",
            "h",
            "h:0",
            "h:65535",
            "h:65536",
            "h:-1",
            "h:+1",
            "h:8a",
            "a:b:80",
            "a::80",
            "::1",
            "svc.ns.svc.cluster.local:9080",
            "h :80",
            "h:80 ",
        ] {
            assert_eq!(split_authority(a), reference(a), "{a:?}");
        }
    }

    #[test]
    fn hosts_are_copied_only_when_they_change() {
        assert!(matches!(
            normalized_host("service2"),
            Cow::Borrowed("service2")
        ));
        assert!(matches!(
            normalized_host("service2."),
            Cow::Borrowed("service2")
        ));
        assert!(matches!(normalized_host("Service2.NS"), Cow::Owned(ref s) if s == "service2.ns"));
        for h in ["a.B.c.", "x", "UP", ""] {
            assert_eq!(normalized_host(h), normalize_host(h));
        }
    }

    #[test]
    fn query_params_match_after_percent_decoding() {
        let m = RequestMatch {
            query_params: vec![("user name".into(), StringMatch::Exact("jo smith".into()))],
            ..RequestMatch::default()
        };
        let encoded = Request::get("http://svc/?user%20name=jo%20smith")
            .body(())
            .unwrap();
        assert!(matches(&m, &view_of(&encoded), "mesh"));
        let other = Request::get("http://svc/?user%20name=jo%20smit")
            .body(())
            .unwrap();
        assert!(!matches(&m, &view_of(&other), "mesh"));
    }

    #[test]
    fn every_condition_must_hold() {
        let m = RequestMatch {
            uri: Some(StringMatch::Prefix("/API".into())),
            ignore_uri_case: true,
            method: Some(StringMatch::Exact("GET".into())),
            headers: vec![(
                HeaderName::from_static("end-user"),
                StringMatch::Regex(Pattern::new("ja.*").unwrap()),
            )],
            without_headers: vec![(HeaderName::from_static("x-debug"), StringMatch::Present)],
            query_params: vec![("v".into(), StringMatch::Exact("2".into()))],
            port: Some(80),
            ..RequestMatch::default()
        };
        let ok = Request::get("http://svc/api/x?v=2")
            .header("end-user", "jason")
            .body(())
            .unwrap();
        assert!(matches(&m, &view_of(&ok), "mesh"));
        let debug = Request::get("http://svc/api/x?v=2")
            .header("end-user", "jason")
            .header("x-debug", "")
            .body(())
            .unwrap();
        assert!(!matches(&m, &view_of(&debug), "mesh"));
        let wrong_query = Request::get("http://svc/api/x?v=3")
            .header("end-user", "jason")
            .body(())
            .unwrap();
        assert!(!matches(&m, &view_of(&wrong_query), "mesh"));
        let wrong_port = Request::get("http://svc:81/api/x?v=2")
            .header("end-user", "jason")
            .body(())
            .unwrap();
        assert!(!matches(&m, &view_of(&wrong_port), "mesh"));
        let no_header = Request::get("http://svc/api/x?v=2").body(()).unwrap();
        assert!(!matches(&m, &view_of(&no_header), "mesh"));
    }

    #[test]
    fn gateways_and_source_labels() {
        let m = RequestMatch {
            gateways: vec!["istio-system/http-gateway".into()],
            ..RequestMatch::default()
        };
        let req = Request::get("http://svc/").body(()).unwrap();
        assert!(matches(&m, &view_of(&req), "http-gateway"));
        assert!(!matches(&m, &view_of(&req), "mesh"));

        let mut labels = mesh_core::policy::Labels::new();
        labels.insert("app".into(), "service1".into());
        let m = RequestMatch {
            source_labels: labels.clone(),
            ..RequestMatch::default()
        };
        assert!(
            !matches(&m, &view_of(&req), "mesh"),
            "unknown caller does not match sourceLabels"
        );
        let mut req = Request::get("http://svc/").body(()).unwrap();
        req.extensions_mut().insert(SourceWorkload {
            name: "service1".into(),
            labels: std::sync::Arc::new(labels),
        });
        assert!(matches(&m, &view_of(&req), "mesh"));
    }

    #[test]
    fn query_params_parse() {
        assert_eq!(query_param(Some("a=1&b=2"), "b"), Some("2"));
        assert_eq!(query_param(Some("a&b=2"), "a"), Some(""));
        assert_eq!(query_param(None, "a"), None);
        // matching decodes, as Envoy does
        let q = Some("na%6De=jo%20smith&x=%E2%9C%93&bad=%zz&plus=a+b");
        assert_eq!(query_param_decoded(q, "name").as_deref(), Some("jo smith"));
        assert_eq!(query_param_decoded(q, "x").as_deref(), Some("\u{2713}"));
        assert_eq!(query_param_decoded(q, "bad").as_deref(), Some("%zz"));
        assert_eq!(query_param_decoded(q, "plus").as_deref(), Some("a+b"));
        assert_eq!(
            query_param_decoded(Some("a=%C3"), "a").as_deref(),
            Some("%C3")
        );
    }
}
