//! A demo JWT issuer: an ECDSA P-256 key generated at start, its JWKS served at
//! `/.well-known/jwks.json`, and tokens minted on request (`/token?sub=alice`).
//!
//! It stands in for the article's `{YOUR_DOMAIN}` / `{YOUR_JWT_URI}` placeholders so the JWT
//! scenario runs on one machine. Not for production: the key lives in memory and anyone who can
//! reach `/token` gets a token.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The issuer could not be set up or could not sign.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// Key generation failed.
    #[error("generating the signing key: {0}")]
    KeyGen(#[from] rcgen::Error),
    /// The key could not be used to sign.
    #[error("signing a token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    /// The public key has an unexpected shape.
    #[error("public key is not an uncompressed P-256 point ({0} bytes)")]
    PublicKey(usize),
}

/// The demo issuer: its name (`iss`), key id, signing key and JWKS.
pub struct Issuer {
    issuer: String,
    kid: String,
    key: EncodingKey,
    jwks: Value,
}

/// The claims the demo puts in a token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject (the end user).
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
}

impl Issuer {
    /// Generates a fresh key for an issuer named `issuer` (the `iss` claim, e.g. its URL).
    pub fn generate(issuer: impl Into<String>) -> Result<Self, IssuerError> {
        let pair = rcgen::KeyPair::generate()?;
        let raw = pair.public_key_raw();
        // An uncompressed P-256 point: 0x04, then 32 bytes of x and 32 of y.
        let (x, y) = match raw {
            [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => return Err(IssuerError::PublicKey(raw.len())),
        };
        let kid = format!("demo-{}", &URL_SAFE_NO_PAD.encode(&x[..8]));
        let key = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())?;
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }]});
        Ok(Self {
            issuer: issuer.into(),
            kid,
            key,
            jwks,
        })
    }

    /// The `iss` value of its tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The JWKS document.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// A token for `sub`, audience `aud`, valid for `ttl`.
    pub fn mint(&self, sub: &str, aud: &str, ttl: Duration) -> Result<String, IssuerError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: sub.to_owned(),
            aud: aud.to_owned(),
            iat: now,
            exp: now + ttl.as_secs(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    sub: Option<String>,
}

/// The issuer's HTTP face: `GET /.well-known/jwks.json` and `GET /token?sub=NAME`.
pub fn app(issuer: Arc<Issuer>) -> Router {
    Router::new()
        .route(
            "/.well-known/jwks.json",
            get(|State(i): State<Arc<Issuer>>| async move { axum::Json(i.jwks.clone()) }),
        )
        .route(
            "/token",
            get(
                |State(i): State<Arc<Issuer>>, Query(q): Query<TokenQuery>| async move {
                    let sub = q.sub.unwrap_or_else(|| "demo-user".to_owned());
                    match i.mint(&sub, "mesh-demo", Duration::from_secs(3600)) {
                        Ok(t) => (http::StatusCode::OK, t),
                        Err(e) => (http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                    }
                },
            ),
        )
        .with_state(issuer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, decode};

    #[test]
    fn minted_token_verifies_with_the_published_jwks() -> Result<(), Box<dyn std::error::Error>> {
        let issuer = Issuer::generate("http://127.0.0.1:9090")?;
        let token = issuer.mint("alice", "mesh-demo", Duration::from_secs(60))?;
        let jwk = &issuer.jwks()["keys"][0];
        let x = jwk["x"].as_str().ok_or("x")?;
        let y = jwk["y"].as_str().ok_or("y")?;
        let key = DecodingKey::from_ec_components(x, y)?;
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&["mesh-demo"]);
        v.set_issuer(&["http://127.0.0.1:9090"]);
        let data = decode::<Claims>(&token, &key, &v)?;
        assert_eq!(data.claims.sub, "alice");
        Ok(())
    }
}
