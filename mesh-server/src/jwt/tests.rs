//! Unit tests of the JWT layer: the attack suite, and the helpers the other test files share.
//! Keys are made in the tests and given inline (the JWKS cache has its own tests in
//! `jwks/tests.rs`; token locations, outputs and legacy semantics are in `tests/behaviour.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::sync::LazyLock;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mesh_core::policy::{AuthnPolicy, JwksSource, JwtRule, Labels};
use serde_json::json;
use tower::{ServiceExt, service_fn};

use super::test_keys::{self, TestKey, b64, claims, jwks, now, sign};
use super::*;
use crate::context::Principal;

pub(super) const ISS: &str = "https://issuer.example";

pub(super) static RSA: LazyLock<TestKey> =
    LazyLock::new(|| test_keys::key(Algorithm::RS256, "rsa", true));
static EC: LazyLock<TestKey> = LazyLock::new(|| test_keys::key(Algorithm::ES256, "ec", true));

pub(super) fn rule(issuer: &str, jwks: JwksSource) -> JwtRule {
    JwtRule {
        issuer: issuer.into(),
        audiences: vec![],
        jwks,
        from_headers: vec![],
        from_params: vec![],
        from_cookies: vec![],
        output_payload_to_header: None,
        output_claim_to_headers: vec![],
        forward_original_token: false,
        timeout: Duration::from_secs(5),
        space_delimited_claims: Vec::new(),
    }
}

pub(super) fn policy(rules: Vec<JwtRule>, require_token: bool) -> AuthnPolicy {
    AuthnPolicy {
        origin: Default::default(),
        selector: Default::default(),
        rules,
        require_token,
        trigger_rules: vec![],
    }
}

pub(super) fn inline_layer(rules: Vec<JwtRule>, require: bool) -> JwtLayer {
    let cache = JwksCache::with_fetcher(JwksSettings::default(), std::sync::Arc::new(NoFetch));
    JwtLayer::new(
        &[policy(rules, require)],
        Labels::new(),
        cache,
        JwtSettings::default(),
    )
}

pub(super) fn default_layer() -> JwtLayer {
    inline_layer(
        vec![rule(ISS, JwksSource::Inline(jwks(&[&RSA, &EC])))],
        false,
    )
}

pub(super) struct NoFetch;
impl JwksFetcher for NoFetch {
    fn fetch(
        &self,
        uri: &str,
        _: Duration,
    ) -> futures_util::future::BoxFuture<'static, Result<String, JwksError>> {
        let uri = uri.to_owned();
        Box::pin(async move {
            Err(JwksError::Fetch {
                uri,
                reason: "no network in unit tests".into(),
            })
        })
    }
}

/// Calls the layer over an echo service: the response carries the request's headers, plus
/// `x-test-principal` when a principal was set.
pub(super) async fn call(layer: &JwtLayer, req: Request<String>) -> Response<String> {
    let svc = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(service_fn(|req: Request<String>| async move {
            let mut res = Response::new(String::from("ok"));
            *res.headers_mut() = req.headers().clone();
            if let Some(p) = req.extensions().get::<Principal>() {
                res.headers_mut()
                    .insert("x-test-principal", p.principal().parse().unwrap());
            }
            Ok::<_, Infallible>(res)
        }));
    svc.oneshot(req).await.unwrap()
}

pub(super) fn bearer(token: &str) -> Request<String> {
    Request::builder()
        .uri("/api")
        .header("authorization", format!("Bearer {token}"))
        .body(String::new())
        .unwrap()
}

pub(super) async fn status_body(layer: &JwtLayer, token: &str) -> (StatusCode, String) {
    let res = call(layer, bearer(token)).await;
    (res.status(), res.into_body())
}

pub(super) fn assert_refused(got: (StatusCode, String), body: &str) {
    assert_eq!(got.0, StatusCode::UNAUTHORIZED, "{}", got.1);
    assert_eq!(got.1, body);
}

#[tokio::test]
async fn valid_token_sets_principal_and_strips_authorization() {
    let layer = default_layer();
    let res = call(&layer, bearer(&sign(&RSA, &claims(ISS)))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["x-test-principal"],
        "https://issuer.example/alice"
    );
    assert!(
        res.headers().get("authorization").is_none(),
        "token must not be forwarded"
    );
}

#[tokio::test]
async fn every_algorithm_verifies() {
    for alg in test_keys::ALL_ALGS {
        for with_alg in [true, false] {
            let k = test_keys::key(alg, "k1", with_alg);
            let layer = inline_layer(vec![rule(ISS, JwksSource::Inline(jwks(&[&k])))], true);
            let res = call(&layer, bearer(&sign(&k, &claims(ISS)))).await;
            assert_eq!(
                res.status(),
                StatusCode::OK,
                "{alg:?} (jwk alg: {with_alg}): {}",
                res.into_body()
            );
        }
    }
}

#[tokio::test]
async fn alg_none_is_refused() {
    let layer = default_layer();
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(claims(ISS).to_string().as_bytes());
    assert_refused(
        status_body(&layer, &format!("{header}.{payload}.")).await,
        JwtError::Malformed.body(),
    );
    assert_refused(
        status_body(&layer, &format!("{header}.{payload}.eA")).await,
        JwtError::Algorithm.body(),
    );
    let header = b64(br#"{"alg":"None"}"#);
    assert_refused(
        status_body(&layer, &format!("{header}.{payload}.eA")).await,
        JwtError::Algorithm.body(),
    );
}

#[tokio::test]
async fn hmac_with_the_public_key_as_secret_is_refused() {
    let layer = default_layer();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let mut h = Header::new(alg);
        h.kid = Some("rsa".into());
        let forged = jsonwebtoken::encode(
            &h,
            &claims(ISS),
            &EncodingKey::from_secret(RSA.public_pem.as_bytes()),
        )
        .unwrap();
        assert_refused(
            status_body(&layer, &forged).await,
            JwtError::Algorithm.body(),
        );
    }
    // Even a JWKS publishing an `oct` key does not make HMAC acceptable.
    let secret = b"a shared secret of some length!!";
    let oct = json!({"keys": [{"kty": "oct", "k": b64(secret), "kid": "h"}]}).to_string();
    let layer = inline_layer(vec![rule(ISS, JwksSource::Inline(oct))], false);
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("h".into());
    let token = jsonwebtoken::encode(&h, &claims(ISS), &EncodingKey::from_secret(secret)).unwrap();
    assert_refused(
        status_body(&layer, &token).await,
        JwtError::Algorithm.body(),
    );
}

#[tokio::test]
async fn alg_must_match_the_key() {
    // An RSA JWK marked RS256 does not verify an RS384 token made with the same key.
    let rs384 = TestKey {
        alg: Algorithm::RS384,
        kid: RSA.kid.clone(),
        enc: RSA.enc.clone(),
        jwk: RSA.jwk.clone(),
        public_pem: RSA.public_pem.clone(),
    };
    let layer = default_layer();
    assert_refused(
        status_body(&layer, &sign(&rs384, &claims(ISS))).await,
        JwtError::NoMatchingKey.body(),
    );
    // An ES256 header naming the RSA key's kid finds no compatible key.
    let ec_as_rsa = TestKey {
        alg: Algorithm::ES256,
        kid: "rsa".into(),
        enc: EC.enc.clone(),
        jwk: EC.jwk.clone(),
        public_pem: String::new(),
    };
    assert_refused(
        status_body(&layer, &sign(&ec_as_rsa, &claims(ISS))).await,
        JwtError::NoMatchingKey.body(),
    );
    // An ES384 token against a P-256 key.
    let k384 = test_keys::key(Algorithm::ES384, "ec", true);
    assert_refused(
        status_body(&layer, &sign(&k384, &claims(ISS))).await,
        JwtError::NoMatchingKey.body(),
    );
}

#[tokio::test]
async fn signature_from_another_key_fails() {
    let other = test_keys::key(Algorithm::ES256, "ec", true);
    assert_refused(
        status_body(&default_layer(), &sign(&other, &claims(ISS))).await,
        JwtError::BadSignature.body(),
    );
}

#[tokio::test]
async fn expiry_and_not_before_with_skew() {
    let layer = default_layer();
    let t = now();
    let with = |exp: Option<u64>, nbf: Option<u64>| {
        let mut c = json!({"iss": ISS, "sub": "alice"});
        if let Some(e) = exp {
            c["exp"] = json!(e);
        }
        if let Some(n) = nbf {
            c["nbf"] = json!(n);
        }
        sign(&RSA, &c)
    };
    assert_refused(
        status_body(&layer, &with(Some(t - 120), None)).await,
        JwtError::Expired.body(),
    );
    assert_eq!(
        status_body(&layer, &with(Some(t - 30), None)).await.0,
        StatusCode::OK,
        "within the 60 s skew"
    );
    assert_refused(
        status_body(&layer, &with(None, Some(t + 120))).await,
        JwtError::NotYetValid.body(),
    );
    assert_eq!(
        status_body(&layer, &with(None, Some(t + 30))).await.0,
        StatusCode::OK,
        "within the 60 s skew"
    );
    assert_eq!(
        status_body(&layer, &with(None, None)).await.0,
        StatusCode::OK,
        "exp is optional, as in Istio"
    );
    let bad = sign(&RSA, &json!({"iss": ISS, "exp": "tomorrow"}));
    assert_refused(status_body(&layer, &bad).await, JwtError::BadPayload.body());
}

#[tokio::test]
async fn injected_clock_and_skew() {
    let cache = JwksCache::with_fetcher(JwksSettings::default(), std::sync::Arc::new(NoFetch));
    let settings = JwtSettings {
        clock_skew: Duration::ZERO,
        clock: std::sync::Arc::new(|| 1_000_000),
        ..Default::default()
    };
    let layer = JwtLayer::new(
        &[policy(
            vec![rule(ISS, JwksSource::Inline(jwks(&[&RSA])))],
            false,
        )],
        Labels::new(),
        cache,
        settings,
    );
    let at = |exp: u64| sign(&RSA, &json!({"iss": ISS, "exp": exp}));
    assert_eq!(status_body(&layer, &at(1_000_001)).await.0, StatusCode::OK);
    assert_refused(
        status_body(&layer, &at(1_000_000)).await,
        JwtError::Expired.body(),
    );
}

#[tokio::test]
async fn issuer_and_audience() {
    let mut r = rule(ISS, JwksSource::Inline(jwks(&[&RSA])));
    r.audiences = vec!["svc-a".into(), "svc-b".into()];
    let layer = inline_layer(vec![r], false);
    let mut c = claims("https://evil.example");
    assert_refused(
        status_body(&layer, &sign(&RSA, &c)).await,
        JwtError::UnknownIssuer.body(),
    );
    c = claims(ISS);
    assert_refused(
        status_body(&layer, &sign(&RSA, &c)).await,
        JwtError::Audience.body(),
    );
    c["aud"] = json!("svc-c");
    assert_refused(
        status_body(&layer, &sign(&RSA, &c)).await,
        JwtError::Audience.body(),
    );
    c["aud"] = json!(["x", "svc-b"]);
    assert_eq!(status_body(&layer, &sign(&RSA, &c)).await.0, StatusCode::OK);
    c["aud"] = json!("svc-a");
    assert_eq!(status_body(&layer, &sign(&RSA, &c)).await.0, StatusCode::OK);
    let no_iss = sign(&RSA, &json!({"sub": "x"}));
    assert_refused(
        status_body(&layer, &no_iss).await,
        JwtError::UnknownIssuer.body(),
    );
}

#[tokio::test]
async fn the_rule_is_chosen_by_issuer() {
    let other = test_keys::key(Algorithm::EdDSA, "ed", true);
    let layer = inline_layer(
        vec![
            rule(ISS, JwksSource::Inline(jwks(&[&RSA]))),
            rule("other", JwksSource::Inline(jwks(&[&other]))),
        ],
        false,
    );
    assert_eq!(
        status_body(&layer, &sign(&other, &claims("other"))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status_body(&layer, &sign(&RSA, &claims(ISS))).await.0,
        StatusCode::OK
    );
    // A token claiming ISS but signed with the other issuer's key.
    let ed_as_iss = sign(&other, &claims(ISS));
    assert_refused(
        status_body(&layer, &ed_as_iss).await,
        JwtError::NoMatchingKey.body(),
    );
}

#[tokio::test]
async fn tampering_is_detected() {
    let layer = default_layer();
    let token = sign(&RSA, &claims(ISS));
    let parts: Vec<&str> = token.split('.').collect();
    let mut c = claims(ISS);
    c["sub"] = json!("admin");
    let tampered_payload = format!(
        "{}.{}.{}",
        parts[0],
        b64(c.to_string().as_bytes()),
        parts[2]
    );
    assert_refused(
        status_body(&layer, &tampered_payload).await,
        JwtError::BadSignature.body(),
    );
    let mut sig = parts[2].as_bytes().to_vec();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let tampered_sig = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        String::from_utf8(sig).unwrap()
    );
    assert_refused(
        status_body(&layer, &tampered_sig).await,
        JwtError::BadSignature.body(),
    );
    let truncated_sig = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..20]);
    assert_refused(
        status_body(&layer, &truncated_sig).await,
        JwtError::BadSignature.body(),
    );
}

#[tokio::test]
async fn malformed_tokens() {
    let layer = default_layer();
    let h = b64(br#"{"alg":"RS256","kid":"rsa"}"#);
    let p = b64(claims(ISS).to_string().as_bytes());
    let cases = [
        ("abc".to_owned(), JwtError::Malformed),
        ("a.b".to_owned(), JwtError::Malformed),
        (format!("{h}.{p}.sig.extra"), JwtError::Malformed),
        (format!(".{p}.sig"), JwtError::Malformed),
        (format!("{h}..sig"), JwtError::Malformed),
        (format!("!!!.{p}.sig"), JwtError::Malformed),
        (format!("{h}.%%%.sig"), JwtError::Malformed),
        (format!("{}.{p}.sig", b64(b"not json")), JwtError::BadHeader),
        (
            format!("{}.{p}.sig", b64(br#"{"typ":"JWT"}"#)),
            JwtError::BadHeader,
        ),
        (
            format!("{h}.{}.sig", b64(b"{not json")),
            JwtError::BadPayload,
        ),
        (format!("{h}.{}.sig", b64(b"[1,2]")), JwtError::BadPayload),
        (format!("{h}.{}.sig", b64(b"\"str\"")), JwtError::BadPayload),
    ];
    for (token, err) in cases {
        assert_refused(status_body(&layer, &token).await, err.body());
    }
}

#[tokio::test]
async fn huge_tokens_are_refused_before_parsing() {
    let layer = default_layer();
    let mut c = claims(ISS);
    c["pad"] = json!("x".repeat(10 * 1024));
    let (status, body) = status_body(&layer, &sign(&RSA, &c)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, JwtError::Malformed.body());
    let garbage = "A".repeat(64 * 1024);
    assert_eq!(
        status_body(&layer, &garbage).await.0,
        StatusCode::UNAUTHORIZED
    );
}

mod behaviour;
