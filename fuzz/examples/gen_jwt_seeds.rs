//! Writes the `jwt_verify` target's key set and seed corpus (run once; the output is committed):
//!
//! ```sh
//! cd fuzz && cargo run --example gen_jwt_seeds
//! ```
//!
//! It makes a fresh RSA key and a fresh EC P-256 key, writes their public JWKS to
//! `fuzz_targets/jwt_jwks.json` (the target embeds it with `include_str!`) and signs a handful of
//! tokens into `seeds/jwt_verify/`. The private keys are dropped: running it again replaces keys
//! and tokens together. Seed files start with the target's mode byte: `t` then a token, or `k`
//! then a JWKS document.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The target's fixed clock; keep in step with `NOW` in `fuzz_targets/jwt_verify.rs`.
const NOW: u64 = 1_750_000_000;
const ISSUER: &str = "https://issuer.example";
const AUD_ISSUER: &str = "https://aud.example";

struct Key {
    alg: Algorithm,
    kid: &'static str,
    enc: EncodingKey,
    jwk: Value,
}

fn key(alg: Algorithm, kid: &'static str) -> Key {
    let rc = match alg {
        Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        _ => &rcgen::PKCS_RSA_SHA256,
    };
    let kp = rcgen::KeyPair::generate_for(rc).expect("key generation");
    let pem = kp.serialize_pem();
    let enc = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .expect("own pem");
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&enc, alg).expect("jwk")).expect("json");
    jwk["kid"] = json!(kid);
    if alg != Algorithm::ES256 {
        // No `alg` on the RSA key: it may verify every RS*/PS* algorithm.
        jwk.as_object_mut().expect("object").remove("alg");
    }
    Key { alg, kid, enc, jwk }
}

fn sign(key: &Key, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&h, claims, &key.enc).expect("sign")
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rsa = key(Algorithm::RS256, "rsa1");
    let ec = key(Algorithm::ES256, "ec1");
    let jwks = json!({ "keys": [rsa.jwk, ec.jwk] });
    fs::write(
        here.join("fuzz_targets/jwt_jwks.json"),
        format!("{jwks:#}\n"),
    )
    .unwrap();

    let valid = json!({ "iss": ISSUER, "sub": "alice", "iat": NOW, "exp": 4_102_444_800u64 });
    let with_aud = json!({ "iss": AUD_ISSUER, "sub": "bob", "aud": ["api", "other"], "exp": 4_102_444_800u64 });
    let expired = json!({ "iss": ISSUER, "sub": "carol", "exp": NOW - 3600 });
    let wrong_iss = json!({ "iss": "https://evil.example", "sub": "mallory" });
    let rs256 = sign(&rsa, rsa.alg, Some(rsa.kid), &valid);
    let tampered = {
        let mut parts: Vec<&str> = rs256.split('.').collect();
        let payload = b64(&json!({ "iss": ISSUER, "sub": "admin", "exp": 4_102_444_800u64 }));
        parts[1] = &payload;
        parts.join(".")
    };
    // Correctly signed, but over the 8 KiB limit: must be refused before anything is decoded.
    let padded =
        json!({ "iss": ISSUER, "sub": "big", "pad": "x".repeat(9000), "exp": 4_102_444_800u64 });
    let tokens = [
        ("t-rs256", rs256.clone()),
        ("t-es256", sign(&ec, ec.alg, Some(ec.kid), &valid)),
        (
            "t-ps256",
            sign(&rsa, Algorithm::PS256, Some(rsa.kid), &valid),
        ),
        ("t-rs512-no-kid", sign(&rsa, Algorithm::RS512, None, &valid)),
        ("t-es256-aud", sign(&ec, ec.alg, Some(ec.kid), &with_aud)),
        ("t-es256-expired", sign(&ec, ec.alg, Some(ec.kid), &expired)),
        (
            "t-rs256-wrong-iss",
            sign(&rsa, rsa.alg, Some(rsa.kid), &wrong_iss),
        ),
        ("t-rs256-tampered", tampered),
        (
            "t-rs256-oversized",
            sign(&rsa, rsa.alg, Some(rsa.kid), &padded),
        ),
        (
            "t-alg-none",
            format!("{}.{}.", b64(&json!({ "alg": "none" })), b64(&valid)),
        ),
        (
            "t-hs256-confusion",
            format!(
                "{}.{}.c2ln",
                b64(&json!({ "alg": "HS256", "kid": "rsa1" })),
                b64(&valid)
            ),
        ),
    ];
    let dir = here.join("seeds/jwt_verify");
    fs::create_dir_all(&dir).unwrap();
    for (name, token) in &tokens {
        fs::write(dir.join(name), format!("t{token}")).unwrap();
    }
    fs::write(dir.join("k-jwks"), format!("k{jwks}")).unwrap();
    fs::write(
        dir.join("k-ec-only"),
        format!("k{}", json!({ "keys": [ec.jwk] })),
    )
    .unwrap();
    let oct = json!({ "keys": [{ "kty": "oct", "kid": "rsa1", "k": "c2VjcmV0" }] });
    fs::write(dir.join("k-oct"), format!("k{oct}")).unwrap();
    println!(
        "wrote {} seeds and fuzz_targets/jwt_jwks.json",
        tokens.len() + 3
    );
}
