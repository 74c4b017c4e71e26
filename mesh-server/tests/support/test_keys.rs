//! Test helpers: key pairs made on the spot, JWKS documents and signed tokens.
//! Shared by the integration tests (`mod support`), and by the unit tests and the bench, which
//! include this file by path: it lives here, outside `src/`, so that no key material ships in
//! the library's sources.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A private key, its public JWK and (for RSA) its public key PEM.
pub struct TestKey {
    pub alg: Algorithm,
    pub kid: String,
    pub enc: EncodingKey,
    pub jwk: Value,
    pub public_pem: String,
}

pub const ALL_ALGS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// A fresh key for `alg`, named `kid`; the JWK carries `alg` when `with_alg`.
pub fn key(alg: Algorithm, kid: &str, with_alg: bool) -> TestKey {
    let rc_alg = match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => &rcgen::PKCS_RSA_SHA256,
        Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        Algorithm::ES384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        Algorithm::EdDSA => &rcgen::PKCS_ED25519,
        other => panic!("no test key for {other:?}"),
    };
    // RSA generation is slow in debug builds: one RSA key pair serves every RS*/PS* test key.
    static RSA_KP: std::sync::LazyLock<rcgen::KeyPair> =
        std::sync::LazyLock::new(|| rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap());
    let fresh;
    let kp = if std::ptr::eq(rc_alg, &rcgen::PKCS_RSA_SHA256) {
        &*RSA_KP
    } else {
        fresh = rcgen::KeyPair::generate_for(rc_alg).unwrap();
        &fresh
    };
    let pem = kp.serialize_pem();
    let enc = match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    };
    let mut jwk = if alg == Algorithm::EdDSA {
        // jsonwebtoken's JWK export expects a PKCS#8 v1 Ed25519 key; build the JWK by hand.
        json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(kp.public_key_raw()), "alg": "EdDSA" })
    } else {
        serde_json::to_value(Jwk::from_encoding_key(&enc, alg).unwrap()).unwrap()
    };
    jwk["kid"] = json!(kid);
    if !with_alg {
        jwk.as_object_mut().unwrap().remove("alg");
    }
    TestKey {
        alg,
        kid: kid.to_owned(),
        enc,
        jwk,
        public_pem: kp.public_key_pem(),
    }
}

/// A JWKS document with these keys.
pub fn jwks(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

/// Signs `claims` with `key` (header: its alg and kid).
pub fn sign(key: &TestKey, claims: &Value) -> String {
    let mut h = Header::new(key.alg);
    h.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&h, claims, &key.enc).unwrap()
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims for `iss` valid for an hour.
pub fn claims(iss: &str) -> Value {
    json!({ "iss": iss, "sub": "alice", "exp": now() + 3600, "iat": now() })
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
