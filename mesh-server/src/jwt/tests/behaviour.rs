//! Unit tests of the JWT layer's behaviour: missing tokens and `require_token`, `triggerRules`,
//! selectors, token locations, outputs and forwarding, hot update, the axum extractor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::{Request, Response, StatusCode};
use mesh_core::policy::{JwksSource, Labels, StringMatch, TriggerRule, WorkloadSelector};
use serde_json::json;
use tower::ServiceExt;

use super::{ISS, NoFetch, RSA, bearer, call, default_layer, inline_layer, policy, rule};
use crate::context::Principal;
use crate::jwt::test_keys::{claims, jwks, sign};
use crate::jwt::*;

#[tokio::test]
async fn missing_token_passes_unless_required() {
    let plain = Request::builder().uri("/api").body(String::new()).unwrap();
    let res = call(&default_layer(), plain).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("x-test-principal").is_none());
    // Another scheme is not a bearer token.
    let basic = Request::builder()
        .uri("/")
        .header("authorization", "Basic dXNlcjpwYXNz")
        .body(String::new())
        .unwrap();
    assert_eq!(call(&default_layer(), basic).await.status(), StatusCode::OK);

    let required = inline_layer(vec![rule(ISS, JwksSource::Inline(jwks(&[&RSA])))], true);
    let res = call(
        &required,
        Request::builder().uri("/api").body(String::new()).unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_eq!(res.into_body(), "Jwt is missing");
    let res = call(&required, bearer("x.y.z")).await;
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
}

#[tokio::test]
async fn trigger_rules_choose_paths() {
    let mut p = policy(vec![rule(ISS, JwksSource::Inline(jwks(&[&RSA])))], true);
    p.trigger_rules = vec![TriggerRule {
        included_paths: vec![StringMatch::Prefix("/api".into())],
        excluded_paths: vec![StringMatch::Exact("/api/health".into())],
    }];
    let cache = JwksCache::with_fetcher(JwksSettings::default(), std::sync::Arc::new(NoFetch));
    let layer = JwtLayer::new(&[p], Labels::new(), cache, JwtSettings::default());
    let get = |path: &str| Request::builder().uri(path).body(String::new()).unwrap();
    assert_eq!(
        call(&layer, get("/api/x")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&layer, get("/api/health")).await.status(),
        StatusCode::OK
    );
    assert_eq!(call(&layer, get("/public")).await.status(), StatusCode::OK);
    // Outside the triggered paths a bad token is not even looked at.
    let req = Request::builder()
        .uri("/public")
        .header("authorization", "Bearer junk")
        .body(String::new())
        .unwrap();
    assert_eq!(call(&layer, req).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn selector_limits_the_workloads() {
    let mut p = policy(vec![rule(ISS, JwksSource::Inline(jwks(&[&RSA])))], true);
    p.selector = WorkloadSelector {
        match_labels: Labels::from([("app".to_owned(), "service1".to_owned())]),
    };
    let cache = JwksCache::with_fetcher(JwksSettings::default(), std::sync::Arc::new(NoFetch));
    let s1 = JwtLayer::new(
        std::slice::from_ref(&p),
        Labels::from([("app".into(), "service1".into())]),
        cache.clone(),
        JwtSettings::default(),
    );
    let s2 = JwtLayer::new(
        &[p],
        Labels::from([("app".into(), "service2".into())]),
        cache,
        JwtSettings::default(),
    );
    let get = || Request::builder().uri("/").body(String::new()).unwrap();
    assert_eq!(call(&s1, get()).await.status(), StatusCode::UNAUTHORIZED);
    assert!(s2.is_empty());
    assert_eq!(call(&s2, get()).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_locations() {
    let token = sign(&RSA, &claims(ISS));
    let mut r = rule(ISS, JwksSource::Inline(jwks(&[&RSA])));
    r.from_headers = vec![("x-jwt".into(), "Token ".into())];
    r.from_params = vec!["tok".into()];
    r.from_cookies = vec!["session".into()];
    let layer = inline_layer(vec![r], true);
    let req = |b: http::request::Builder| b.body(String::new()).unwrap();
    let ok = |res: Response<String>| {
        assert_eq!(res.status(), StatusCode::OK, "{}", res.body());
        assert_eq!(
            res.headers()["x-test-principal"],
            "https://issuer.example/alice"
        );
    };
    ok(call(
        &layer,
        req(Request::builder()
            .uri("/")
            .header("x-jwt", format!("Token {token}"))),
    )
    .await);
    ok(call(
        &layer,
        req(Request::builder().uri(format!("/?a=1&tok={token}"))),
    )
    .await);
    ok(call(
        &layer,
        req(Request::builder()
            .uri("/")
            .header("cookie", format!("a=b; session={token}; c=d"))),
    )
    .await);
    // The default locations are replaced by the configured ones.
    let res = call(&layer, bearer(&token)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // A header without the prefix is no token.
    let res = call(
        &layer,
        req(Request::builder().uri("/").header("x-jwt", token.clone())),
    )
    .await;
    assert_eq!(res.into_body(), "Jwt is missing");

    // Defaults: bearer, then access_token.
    let layer = inline_layer(vec![rule(ISS, JwksSource::Inline(jwks(&[&RSA])))], true);
    ok(call(
        &layer,
        req(Request::builder().uri(format!("/x?access_token={token}"))),
    )
    .await);
    ok(call(
        &layer,
        req(Request::builder()
            .uri("/")
            .header("authorization", format!("bearer {token}"))),
    )
    .await);
}

#[tokio::test]
async fn outputs_and_forwarding() {
    let mut r = rule(ISS, JwksSource::Inline(jwks(&[&RSA])));
    r.output_payload_to_header = Some("x-jwt-payload".into());
    r.output_claim_to_headers = vec![
        ("x-sub".into(), "sub".into()),
        ("x-groups".into(), "groups".into()),
        ("x-tenant".into(), "org.tenant".into()),
        ("x-absent".into(), "nope".into()),
    ];
    r.forward_original_token = true;
    let layer = inline_layer(vec![r], false);
    let mut c = claims(ISS);
    c["groups"] = json!(["a", "b"]);
    c["org"] = json!({"tenant": 7});
    let token = sign(&RSA, &c);
    let mut req = bearer(&token);
    req.headers_mut()
        .insert("x-absent", "forged".parse().unwrap());
    let res = call(&layer, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers();
    assert_eq!(h["x-sub"], "alice");
    assert_eq!(h["x-groups"], "a,b");
    assert_eq!(h["x-tenant"], "7");
    assert!(
        h.get("x-absent").is_none(),
        "a client cannot forge an output header"
    );
    assert_eq!(h["x-jwt-payload"], token.split('.').nth(1).unwrap());
    assert_eq!(h["authorization"], format!("Bearer {token}"));

    // Without a token, forged output headers are removed too.
    let req = Request::builder()
        .uri("/")
        .header("x-sub", "root")
        .body(String::new())
        .unwrap();
    let res = call(&layer, req).await;
    assert!(res.headers().get("x-sub").is_none());
}

#[tokio::test]
async fn update_swaps_policies() {
    let layer = default_layer();
    let get = || Request::builder().uri("/").body(String::new()).unwrap();
    assert_eq!(call(&layer, get()).await.status(), StatusCode::OK);
    layer.update(&[policy(
        vec![rule(ISS, JwksSource::Inline(jwks(&[&RSA])))],
        true,
    )]);
    assert_eq!(call(&layer, get()).await.status(), StatusCode::UNAUTHORIZED);
    layer.update(&[]);
    assert!(layer.is_empty());
    assert_eq!(call(&layer, get()).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn principal_extractor() {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    async fn me(p: Principal) -> String {
        format!("{}|{}|{}", p.principal(), p.issuer(), p.subject())
    }
    async fn maybe(p: Option<Principal>) -> String {
        p.map_or_else(|| "anonymous".to_owned(), |p| p.subject().to_owned())
    }
    let app = Router::new()
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .layer(default_layer());
    let token = sign(&RSA, &claims(ISS));
    let req = |uri: &str, auth: bool| {
        let mut b = Request::builder().uri(uri);
        if auth {
            b = b.header("authorization", format!("Bearer {token}"));
        }
        b.body(Body::empty()).unwrap()
    };
    let text = |res: axum::response::Response| async move {
        let bytes = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    let res = app.clone().oneshot(req("/me", true)).await.unwrap();
    assert_eq!(
        text(res).await,
        "https://issuer.example/alice|https://issuer.example|alice"
    );
    let res = app.clone().oneshot(req("/me", false)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app.clone().oneshot(req("/maybe", false)).await.unwrap();
    assert_eq!(text(res).await, "anonymous");
    let res = app.oneshot(req("/maybe", true)).await.unwrap();
    assert_eq!(text(res).await, "alice");
}

#[tokio::test]
async fn placeholder_jwks_uri_refuses_tokens() {
    // The seed article's Policy: `{YOUR_JWT_URI}` loads (with a warning) and every token fails.
    let cache = JwksCache::with_fetcher(JwksSettings::default(), std::sync::Arc::new(NoFetch));
    let layer = JwtLayer::new(
        &[policy(
            vec![rule(
                "{YOUR_DOMAIN}",
                JwksSource::Uri("{YOUR_JWT_URI}".into()),
            )],
            true,
        )],
        Labels::new(),
        cache,
        JwtSettings::default(),
    );
    let res = call(&layer, bearer(&sign(&RSA, &claims("{YOUR_DOMAIN}")))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.into_body(), JwtError::KeysUnavailable.body());
}

/// Found by the `jwt_verify` fuzz target: a token header holding bytes outside visible ASCII was
/// taken for no token at all, so the request passed as anonymous instead of being refused as an
/// invalid token (Envoy refuses it); and one non-ASCII cookie hid a valid token in another.
#[tokio::test]
async fn non_ascii_tokens_are_refused_not_ignored() {
    use http::HeaderValue;
    let with = |name: &str, value: &[u8]| {
        let mut req = Request::builder().uri("/api").body(String::new()).unwrap();
        req.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
        req
    };
    let refused = |res: Response<String>| {
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{}", res.body());
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        assert!(res.headers().get("x-test-principal").is_none());
    };
    // Not required: an ignored token would pass with 200.
    let layer = default_layer();
    // The fuzzer's input (UTF-8 `ϱ` inside), then bytes that are not UTF-8 at all.
    refused(
        call(
            &layer,
            with(
                "authorization",
                b"Bearer eyJhbGteyJ0eXAiOiJciOziIIJU\xcf\xb1iIsImt6ZCIpKV",
            ),
        )
        .await,
    );
    refused(call(&layer, with("authorization", b"Bearer abc\xff.def.ghi")).await);

    let token = sign(&RSA, &claims(ISS));
    let mut r = rule(ISS, JwksSource::Inline(jwks(&[&RSA])));
    r.from_cookies = vec!["session".into()];
    let layer = inline_layer(vec![r], false);
    let res = call(
        &layer,
        with(
            "cookie",
            format!("lang=fr\u{e9}; session=\"{token}\"").as_bytes(),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.body());
    assert_eq!(
        res.headers()["x-test-principal"],
        "https://issuer.example/alice"
    );
    refused(call(&layer, with("cookie", b"a=b; session=\xfe\xff")).await);
    // An empty cookie value is still no token.
    assert_eq!(
        call(&layer, with("cookie", b"session=; lang=fr\xc3\xa9"))
            .await
            .status(),
        StatusCode::OK
    );
}
