//! `rewrite` (uri, uriRegexRewrite, authority) and `redirect`.

use http::uri::{Authority, PathAndQuery, Uri};
use http::{HeaderValue, Request, Response, header};
use mesh_core::policy::{Redirect, RequestMatch, Rewrite, StringMatch};

use super::matching::split_authority;
use crate::body::{self, BoxBody};

/// Applies `rewrite` to `request`; `matched` is the match entry that selected the route (a
/// `uri` prefix match makes a `uri` rewrite replace only that prefix, as Envoy's
/// `prefix_rewrite`; otherwise the whole path is replaced). The query string is kept.
pub fn apply<B>(rewrite: &Rewrite, matched: Option<&RequestMatch>, request: &mut Request<B>) {
    let path = request.uri().path();
    let new_path = if let Some(uri) = &rewrite.uri {
        match matched.and_then(|m| m.uri.as_ref().map(|u| (u, m.ignore_uri_case))) {
            Some((StringMatch::Prefix(prefix), _)) if path.len() >= prefix.len() => {
                Some(format!("{uri}{}", path.get(prefix.len()..).unwrap_or("")))
            }
            _ => Some(uri.clone()),
        }
    } else if let Some((pattern, replacement)) = &rewrite.uri_regex {
        let replacement = envoy_to_regex_replacement(replacement);
        Some(
            pattern
                .regex()
                .replace_all(path, replacement.as_str())
                .into_owned(),
        )
    } else {
        None
    };
    if let Some(new_path) = new_path {
        let pq = match request.uri().query() {
            Some(q) => format!("{new_path}?{q}"),
            None => new_path,
        };
        match pq.parse::<PathAndQuery>() {
            Ok(pq) => set_uri(request, |parts| parts.path_and_query = Some(pq)),
            Err(e) => {
                tracing::warn!(error = %e, "uri rewrite produced an invalid path; left unchanged")
            }
        }
    }
    if let Some(authority) = &rewrite.authority {
        match (
            authority.parse::<Authority>(),
            HeaderValue::from_str(authority),
        ) {
            (Ok(a), Ok(value)) => {
                if request.uri().authority().is_some() {
                    set_uri(request, |parts| parts.authority = Some(a));
                }
                request.headers_mut().insert(header::HOST, value);
            }
            _ => {
                tracing::warn!(%authority, "authority rewrite is not a valid authority; left unchanged")
            }
        }
    }
}

fn set_uri<B>(request: &mut Request<B>, edit: impl FnOnce(&mut http::uri::Parts)) {
    let mut parts = request.uri().clone().into_parts();
    edit(&mut parts);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    match Uri::from_parts(parts) {
        Ok(uri) => *request.uri_mut() = uri,
        Err(e) => tracing::warn!(error = %e, "rewritten uri is invalid; left unchanged"),
    }
}

/// Envoy writes capture groups as `\1`; the regex crate as `${1}`.
fn envoy_to_regex_replacement(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push_str("${");
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    out.push(d);
                    chars.next();
                }
                out.push('}');
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

/// The answer to a request whose route is a `redirect`: the status and a `location` built from
/// the request with the redirect's scheme, authority, port and uri over it.
pub fn redirect_response<B>(
    redirect: &Redirect,
    request: &Request<B>,
    authority: &str,
) -> Response<BoxBody> {
    let scheme = redirect
        .scheme
        .as_deref()
        .or(request.uri().scheme_str())
        .unwrap_or("http");
    let (orig_host, orig_port) = split_authority(authority);
    let host = redirect.authority.as_deref().unwrap_or(orig_host);
    let port = redirect.port.or(if redirect.authority.is_some() {
        None
    } else {
        orig_port
    });
    let path = match &redirect.uri {
        Some(uri) => uri.clone(),
        None => request
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
    };
    let location = match port {
        Some(p) => format!("{scheme}://{host}:{p}{path}"),
        None => format!("{scheme}://{host}{path}"),
    };
    let mut response = Response::new(body::empty());
    *response.status_mut() = redirect.status;
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            response.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => tracing::warn!(%location, "redirect location is not a valid header value"),
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use mesh_core::policy::Pattern;

    fn rw(uri: Option<&str>, regex: Option<(&str, &str)>, authority: Option<&str>) -> Rewrite {
        Rewrite {
            uri: uri.map(Into::into),
            uri_regex: regex.map(|(p, r)| (Pattern::new(p).unwrap(), r.to_owned())),
            authority: authority.map(Into::into),
        }
    }

    #[test]
    fn prefix_rewrite_replaces_only_the_prefix() {
        let m = RequestMatch {
            uri: Some(StringMatch::Prefix("/service1".into())),
            ..RequestMatch::default()
        };
        let mut req = Request::get("http://gw/service1/hello?x=1")
            .body(())
            .unwrap();
        apply(&rw(Some("/"), None, None), Some(&m), &mut req);
        assert_eq!(req.uri().to_string(), "http://gw//hello?x=1");
        let mut req = Request::get("/service1/hello").body(()).unwrap();
        apply(&rw(Some("/v2"), None, None), Some(&m), &mut req);
        assert_eq!(req.uri().to_string(), "/v2/hello");
        let exact = RequestMatch {
            uri: Some(StringMatch::Exact("/a".into())),
            ..RequestMatch::default()
        };
        let mut req = Request::get("/a").body(()).unwrap();
        apply(&rw(Some("/b"), None, None), Some(&exact), &mut req);
        assert_eq!(req.uri().path(), "/b");
    }

    #[test]
    fn regex_rewrite_and_authority() {
        let mut req = Request::get("http://svc/service/foo/v1/api")
            .body(())
            .unwrap();
        apply(
            &rw(
                None,
                Some(("/service/([^/]+)(/.*)", "\\2/instance/\\1")),
                Some("other:8080"),
            ),
            None,
            &mut req,
        );
        assert_eq!(
            req.uri().to_string(),
            "http://other:8080/v1/api/instance/foo"
        );
        assert_eq!(req.headers()["host"], "other:8080");
    }

    #[test]
    fn redirect_location() {
        let r = Redirect {
            uri: Some("/new".into()),
            authority: Some("example.com".into()),
            port: None,
            scheme: Some("https".into()),
            status: StatusCode::MOVED_PERMANENTLY,
        };
        let req = Request::get("http://svc:8080/old?q").body(()).unwrap();
        let resp = redirect_response(&r, &req, "svc:8080");
        assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(resp.headers()["location"], "https://example.com/new");
        let keep = Redirect {
            uri: None,
            authority: None,
            port: None,
            scheme: None,
            status: StatusCode::FOUND,
        };
        assert_eq!(
            redirect_response(&keep, &req, "svc:8080").headers()["location"],
            "http://svc:8080/old?q"
        );
    }
}
