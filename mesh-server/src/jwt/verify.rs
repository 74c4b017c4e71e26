//! Parsing and verifying one token against a key set: signature, `alg`, `exp`/`nbf`, `iss`, `aud`.
//!
//! The rules that keep the classic JWT attacks out:
//! - `alg: none` and every HMAC algorithm are refused: keys come from a JWKS, and a public key
//!   is never used as an HMAC secret (the RS256 → HS256 confusion attack). `oct` keys are skipped.
//! - `alg` must belong to the key's type (RSA: RS*/PS*, EC P-256: ES256, EC P-384: ES384,
//!   OKP Ed25519: EdDSA) and equal the JWK's `alg` when it has one.
//! - the token's length is limited before anything is decoded.

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::error::{JwksError, JwtError};

/// The usable verification keys of one issuer, parsed from a JWKS document.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyKey>,
}

#[derive(Clone)]
struct VerifyKey {
    kid: Option<String>,
    /// The algorithms this key may verify (one when the JWK names its `alg`).
    algs: Vec<Algorithm>,
    key: DecodingKey,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| (&k.kid, &k.algs)))
            .finish()
    }
}

impl KeySet {
    /// Parses a JWKS document. Keys that cannot verify signatures (encryption keys, HMAC
    /// secrets, unsupported curves, malformed entries) are skipped; a set without any usable
    /// key is an error.
    pub fn from_jwks(doc: &str) -> Result<Self, JwksError> {
        let v: serde_json::Value =
            serde_json::from_str(doc).map_err(|e| JwksError::Format(e.to_string()))?;
        let keys = v
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| JwksError::Format("no \"keys\" array".to_owned()))?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let Ok(jwk) = Jwk::deserialize(k) else {
                tracing::debug!("jwks: skipping a key that does not parse");
                continue;
            };
            if let Some(key) = VerifyKey::from_jwk(&jwk) {
                out.push(key);
            }
        }
        if out.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(Self { keys: out })
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key has this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

impl VerifyKey {
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        let common = &jwk.common;
        if matches!(
            common.public_key_use,
            Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
        ) {
            return None;
        }
        if let Some(ops) = &common.key_operations
            && !ops.contains(&KeyOperations::Verify)
        {
            return None;
        }
        let by_type: Vec<Algorithm> = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => vec![
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => vec![Algorithm::ES256],
                EllipticCurve::P384 => vec![Algorithm::ES384],
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(p) => match p.curve {
                EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
                _ => return None,
            },
            // HMAC secrets are never accepted from a key set.
            _ => return None,
        };
        let algs = match common.key_algorithm {
            None => by_type,
            Some(ka) => {
                let alg = Algorithm::from_str(&ka.to_string()).ok()?;
                if !by_type.contains(&alg) {
                    return None;
                }
                vec![alg]
            }
        };
        let key = DecodingKey::from_jwk(jwk).ok()?;
        Some(Self {
            kid: common.key_id.clone(),
            algs,
            key,
        })
    }
}

/// The token's header fields we use.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// A token split and decoded, not yet verified.
#[derive(Debug)]
pub(crate) struct Parsed<'t> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    pub(crate) claims: serde_json::Value,
    /// `header.payload`: what the signature covers.
    signing_input: &'t str,
    /// The payload section, base64url (for `outputPayloadToHeader`).
    pub(crate) payload_b64: &'t str,
    signature: &'t str,
}

/// Splits and decodes a token, refusing anything that is not `header.payload.signature` with an
/// asymmetric `alg` and a JSON object payload.
pub(crate) fn parse(token: &str, max_len: usize) -> Result<Parsed<'_>, JwtError> {
    if token.len() > max_len {
        return Err(JwtError::TooLarge {
            len: token.len(),
            limit: max_len,
        });
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(JwtError::Malformed);
    }
    let header_bytes = URL_SAFE_NO_PAD.decode(h).map_err(|_| JwtError::Malformed)?;
    let header: RawHeader =
        serde_json::from_slice(&header_bytes).map_err(|_| JwtError::BadHeader)?;
    let alg = match Algorithm::from_str(&header.alg) {
        Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) | Err(_) => {
            return Err(JwtError::Algorithm);
        }
        Ok(a) => a,
    };
    let payload_bytes = URL_SAFE_NO_PAD.decode(p).map_err(|_| JwtError::Malformed)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&payload_bytes).map_err(|_| JwtError::BadPayload)?;
    if !claims.is_object() {
        return Err(JwtError::BadPayload);
    }
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or(JwtError::Malformed)?;
    Ok(Parsed {
        alg,
        kid: header.kid,
        claims,
        signing_input,
        payload_b64: p,
        signature: s,
    })
}

impl Parsed<'_> {
    /// The `iss` claim, if it is a string.
    pub(crate) fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(|v| v.as_str())
    }

    /// Whether the key set lacks the token's `kid` (a reason to re-fetch the set).
    pub(crate) fn kid_unknown(&self, keys: &KeySet) -> bool {
        self.kid.as_deref().is_some_and(|kid| !keys.has_kid(kid))
    }
}

/// What a rule checks beyond the signature.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClaimChecks<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) audiences: &'a [String],
    /// Now, in seconds since the Unix epoch.
    pub(crate) now: u64,
    /// Allowed clock skew, seconds.
    pub(crate) skew: u64,
}

/// Verifies the signature with a matching key, then the claims.
pub(crate) fn verify(
    token: &Parsed<'_>,
    keys: &KeySet,
    checks: ClaimChecks<'_>,
) -> Result<(), JwtError> {
    let mut candidates = keys
        .keys
        .iter()
        .filter(|k| k.algs.contains(&token.alg))
        .filter(|k| match &token.kid {
            Some(kid) => k.kid.as_deref() == Some(kid.as_str()),
            None => true,
        })
        .peekable();
    if candidates.peek().is_none() {
        return Err(JwtError::NoMatchingKey);
    }
    let signed = candidates.any(|k| {
        jsonwebtoken::crypto::verify(
            token.signature,
            token.signing_input.as_bytes(),
            &k.key,
            token.alg,
        )
        .unwrap_or(false)
    });
    if !signed {
        return Err(JwtError::BadSignature);
    }
    check_claims(&token.claims, checks)
}

fn numeric_claim(claims: &serde_json::Value, name: &str) -> Result<Option<u64>, JwtError> {
    match claims.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) => Ok(Some(n)),
            // A fractional NumericDate is allowed by RFC 7519; round down.
            None => v
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| Some(f as u64))
                .ok_or(JwtError::BadPayload),
        },
    }
}

pub(crate) fn check_claims(claims: &serde_json::Value, c: ClaimChecks<'_>) -> Result<(), JwtError> {
    if let Some(exp) = numeric_claim(claims, "exp")?
        && c.now >= exp.saturating_add(c.skew)
    {
        return Err(JwtError::Expired);
    }
    if let Some(nbf) = numeric_claim(claims, "nbf")?
        && c.now.saturating_add(c.skew) < nbf
    {
        return Err(JwtError::NotYetValid);
    }
    if claims.get("iss").and_then(|v| v.as_str()) != Some(c.issuer) {
        return Err(JwtError::UnknownIssuer);
    }
    if !c.audiences.is_empty() {
        let ok = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => c.audiences.iter().any(|x| x == a),
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .filter_map(|v| v.as_str())
                .any(|a| c.audiences.iter().any(|x| x == a)),
            _ => false,
        };
        if !ok {
            return Err(JwtError::Audience);
        }
    }
    Ok(())
}
