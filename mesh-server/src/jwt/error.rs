//! Why a token was refused, and the errors of building the layer.

use http::StatusCode;

/// Why a request's JWT was refused. Each variant becomes a `401 Unauthorized` with
/// `www-authenticate: Bearer` and Istio's (Envoy's) wording as the body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// No token, and the policy (legacy Policy without `originIsOptional`) requires one.
    #[error("jwt is missing")]
    Missing,
    /// The token is longer than the configured limit; it was not parsed.
    #[error("jwt is too large ({len} bytes, the limit is {limit})")]
    TooLarge {
        /// The token's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Not three base64url sections separated by dots.
    #[error("jwt is not in the form of header.payload.signature")]
    Malformed,
    /// The header is not base64url JSON with a string `alg`.
    #[error("jwt header is an invalid json")]
    BadHeader,
    /// The payload is not a base64url JSON object, or a registered claim has the wrong type.
    #[error("jwt payload is an invalid json")]
    BadPayload,
    /// `alg` is `none`, an HMAC algorithm, or unknown.
    #[error("jwt algorithm is not allowed")]
    Algorithm,
    /// No rule of the workload has the token's `iss` (or the token has none).
    #[error("jwt issuer is not configured")]
    UnknownIssuer,
    /// The issuer's keys could not be fetched yet (or its `jwksUri` is not usable).
    #[error("jwks fetch failed for the issuer")]
    KeysUnavailable,
    /// No key of the issuer has the token's `kid` and an algorithm compatible with its `alg`.
    #[error("jwks has no key matching the jwt's kid and alg")]
    NoMatchingKey,
    /// The signature does not verify.
    #[error("jwt verification fails")]
    BadSignature,
    /// `exp` is in the past (beyond the allowed clock skew).
    #[error("jwt is expired")]
    Expired,
    /// `nbf` is in the future (beyond the allowed clock skew).
    #[error("jwt is not yet valid")]
    NotYetValid,
    /// `aud` has none of the rule's audiences.
    #[error("audiences in jwt are not allowed")]
    Audience,
}

impl JwtError {
    /// The HTTP status answered: always 401.
    pub fn status(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }

    /// The response body, in Envoy's words (what Istio's sidecar answers).
    pub fn body(&self) -> &'static str {
        match self {
            JwtError::Missing => "Jwt is missing",
            JwtError::TooLarge { .. } | JwtError::Malformed => {
                "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
            }
            JwtError::BadHeader => "Jwt header is an invalid JSON",
            JwtError::BadPayload => "Jwt payload is an invalid JSON",
            JwtError::Algorithm => "Jwt algorithm is not supported",
            JwtError::UnknownIssuer => "Jwt issuer is not configured",
            JwtError::KeysUnavailable => "Jwks remote fetch is failed",
            JwtError::NoMatchingKey => "Jwks doesn't have key to match kid or alg from Jwt",
            JwtError::BadSignature => "Jwt verification fails",
            JwtError::Expired => "Jwt is expired",
            JwtError::NotYetValid => "Jwt not yet valid",
            JwtError::Audience => "Audiences in Jwt are not allowed",
        }
    }

    /// The `www-authenticate` value (RFC 6750): `error="invalid_token"` unless the token is missing.
    pub fn www_authenticate(&self) -> &'static str {
        match self {
            JwtError::Missing => "Bearer",
            _ => "Bearer error=\"invalid_token\"",
        }
    }
}

/// Why a JWKS document could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// Not JSON, or no `keys` array.
    #[error("jwks is not a json object with a keys array: {0}")]
    Format(String),
    /// Parsed, but no key is usable for signature verification (HMAC `oct` keys never are).
    #[error("jwks has no usable verification key")]
    NoUsableKey,
    /// The HTTP fetch failed.
    #[error("jwks fetch from {uri} failed: {reason}")]
    Fetch {
        /// The `jwksUri`.
        uri: String,
        /// What went wrong.
        reason: String,
    },
    /// The `jwksUri` is not an http(s) URL (e.g. the article's `{YOUR_JWT_URI}` placeholder).
    #[error("jwks uri {0:?} is not an http(s) url")]
    NotHttp(String),
}
