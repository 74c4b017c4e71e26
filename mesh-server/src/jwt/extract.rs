//! Where tokens are read from, and the verified identity handed to the application.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderName, StatusCode, Uri};

use crate::context::Principal;

/// One place a token may be: a header (with a prefix to strip), a query parameter or a cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// `fromHeaders[]`: header and value prefix (compared ignoring ASCII case).
    Header(HeaderName, String),
    /// `fromParams[]`.
    Param(String),
    /// `fromCookies[]`.
    Cookie(String),
}

impl Location {
    /// Istio's default locations: `Authorization: Bearer <token>`, then `?access_token=<token>`.
    pub(crate) fn defaults() -> Vec<Location> {
        vec![
            Location::Header(AUTHORIZATION, "Bearer ".to_owned()),
            Location::Param("access_token".to_owned()),
        ]
    }

    /// The token at this location, if any.
    pub(crate) fn find<'r>(&self, headers: &'r HeaderMap, uri: &'r Uri) -> Option<&'r str> {
        match self {
            // Header values are bytes: one that is not visible ASCII still carries a token,
            // refused later as malformed, never ignored as if there were none (as Envoy does).
            Location::Header(name, prefix) => headers.get_all(name).iter().find_map(|v| {
                let (head, rest) = v.as_bytes().split_at_checked(prefix.len())?;
                if !head.eq_ignore_ascii_case(prefix.as_bytes()) {
                    return None;
                }
                token_text(rest.trim_ascii())
            }),
            Location::Param(name) => uri.query()?.split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k == name && !v.is_empty()).then_some(v)
            }),
            // Split as bytes, so that another cookie's non-ASCII value hides nothing.
            Location::Cookie(name) => headers.get_all(COOKIE).iter().find_map(|v| {
                v.as_bytes().split(|b| *b == b';').find_map(|c| {
                    let c = c.trim_ascii();
                    let eq = c.iter().position(|b| *b == b'=')?;
                    let (k, v) = c.split_at_checked(eq)?;
                    let v = v.get(1..)?;
                    if k != name.as_bytes() || v.is_empty() {
                        return None;
                    }
                    let unquoted = v.strip_prefix(b"\"").unwrap_or(v);
                    Some(
                        token_text(unquoted.strip_suffix(b"\"").unwrap_or(unquoted))
                            .unwrap_or(NOT_TEXT),
                    )
                })
            }),
        }
    }
}

/// Stands for a token whose bytes are not UTF-8: it is still a token, and fails to parse.
const NOT_TEXT: &str = "\u{fffd}";

/// A found token's text; `None` when empty.
fn token_text(bytes: &[u8]) -> Option<&str> {
    if bytes.is_empty() {
        return None;
    }
    Some(std::str::from_utf8(bytes).unwrap_or(NOT_TEXT))
}

/// The rejection of the [`Principal`] extractor: the JWT layer did not authenticate the request.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("request is not authenticated")]
pub struct MissingPrincipal(());

impl IntoResponse for MissingPrincipal {
    fn into_response(self) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            [(http::header::WWW_AUTHENTICATE, "Bearer")],
            "Jwt is missing",
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = MissingPrincipal;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(MissingPrincipal(()))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}
