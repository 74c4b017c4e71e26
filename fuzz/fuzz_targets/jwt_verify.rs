//! JWT verification through the server's public path: a RequestAuthentication with an inline
//! `jwks`, loaded from YAML by mesh-core, enforced by mesh-server's `JwtLayer` around a service.
//!
//! The first input byte picks the mode:
//! - `k`: the rest is a JWKS document. It goes into the config's inline `jwks`; when the loader
//!   accepts it, the layer built from it is asked to verify two valid tokens (RS256 and ES256,
//!   signed by the embedded keys). A token may only be accepted by a key set that parses and
//!   holds the token's `kid`.
//! - anything else: the rest is a token, sent as `Authorization: Bearer <token>` to the layer
//!   built over the embedded JWKS (`jwt_jwks.json`: an RSA and an EC P-256 key).
//!
//! In both modes: no panic; the layer answers at once (inline keys never wait); a refusal is a
//! 401; an accepted request reaches the service with a `Principal` whose `iss` is a configured
//! issuer, with the audience that issuer requires, and without the token header; a token longer
//! than the 8 KiB limit is never accepted.
#![no_main]

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use libfuzzer_sys::fuzz_target;
use mesh_core::policy::Labels;
use mesh_server::jwt::verify::KeySet;
use mesh_server::context::Principal;
use mesh_server::jwt::{JwksCache, JwtLayer, JwtSettings};
use tower_service::Service;

/// The public keys the seed tokens are signed with (`examples/gen_jwt_seeds.rs` writes it).
const JWKS: &str = include_str!("jwt_jwks.json");
const RS256_TOKEN: &str = include_str!("../seeds/jwt_verify/t-rs256");
const ES256_TOKEN: &str = include_str!("../seeds/jwt_verify/t-es256");
/// The fixed clock (seconds since the epoch) the seeds were made for.
const NOW: u64 = 1_750_000_000;
const ISSUER: &str = "https://issuer.example";
/// The second rule's issuer, which requires the audience `api`.
const AUD_ISSUER: &str = "https://aud.example";
const MAX_TOKEN: usize = 8 * 1024;

/// The config, with `JWKS_JSON` replaced by a JSON string (valid YAML) holding the key set.
const CONFIG: &str = r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: fuzz, namespace: default}
spec:
  jwtRules:
  - issuer: https://issuer.example
    jwks: JWKS_JSON
  - issuer: https://aud.example
    audiences: [api]
    jwks: JWKS_JSON
"#;

/// The layer of a workload under `CONFIG` with `jwks`, or `None` when the loader refuses it.
fn layer(jwks: &str) -> Option<(JwtLayer, String)> {
    let quoted = serde_json::to_string(jwks).ok()?;
    let yaml = CONFIG.replace("JWKS_JSON", &quoted);
    let loaded = mesh_core::load::load_str("fuzz.yaml", &yaml).ok()?;
    // What the loader read is what the layer enforces: expectations come from it.
    let doc = match &loaded.config.authentication.first()?.rules.first()?.jwks {
        mesh_core::policy::JwksSource::Inline(doc) => doc.clone(),
        mesh_core::policy::JwksSource::Uri(u) | mesh_core::policy::JwksSource::Discovery(u) => {
            panic!("an inline jwks loaded as a uri: {u}")
        }
    };
    static CACHE: OnceLock<JwksCache> = OnceLock::new();
    let cache = CACHE
        .get_or_init(|| JwksCache::new().unwrap_or_else(|e| panic!("jwks cache: {e}")))
        .clone();
    let settings = JwtSettings {
        clock: Arc::new(|| NOW),
        ..JwtSettings::default()
    };
    assert_eq!(
        settings.max_token_bytes, MAX_TOKEN,
        "the documented default limit"
    );
    let labels = Labels::from([("app".to_owned(), "fuzz".to_owned())]);
    Some((
        JwtLayer::from_config(&loaded.config, labels, cache, settings),
        doc,
    ))
}

/// The service behind the layer: answers 200 and hands back what the layer put in the request.
#[derive(Clone)]
struct Echo;

struct Seen {
    principal: Option<Principal>,
    token_forwarded: bool,
}

impl Service<Request<()>> for Echo {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<()>) -> Self::Future {
        let seen = Seen {
            principal: req.extensions().get::<Principal>().cloned(),
            token_forwarded: req.headers().contains_key(AUTHORIZATION),
        };
        let mut res = Response::new(String::new());
        res.extensions_mut().insert(Arc::new(seen));
        ready(Ok(res))
    }
}

/// Sends `token` through `layer`; `Some(principal)` when it was accepted.
fn send(layer: &JwtLayer, token: &str) -> Option<Principal> {
    let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) else {
        return None;
    };
    let mut req = Request::new(());
    req.headers_mut().insert(AUTHORIZATION, value);
    let mut svc = tower_layer::Layer::layer(layer, Echo);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(
        svc.poll_ready(&mut cx).is_ready(),
        "the echo service is always ready"
    );
    let fut = pin!(svc.call(req));
    let Poll::Ready(Ok(res)) = fut.poll(&mut cx) else {
        panic!("inline keys: the layer answers without waiting");
    };
    let Some(seen) = res.extensions().get::<Arc<Seen>>().cloned() else {
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "a refusal is a 401");
        return None;
    };
    // Bearer tokens are trimmed by the extractor; an empty one means no token at all.
    if token.trim().is_empty() {
        assert!(seen.principal.is_none(), "no token, no principal");
        return None;
    }
    let Some(p) = seen.principal.clone() else {
        panic!("a token reached the service without being verified: {token:?}");
    };
    assert!(
        !seen.token_forwarded,
        "the token header is removed (forwardOriginalToken: false)"
    );
    Some(p)
}

/// What every accepted token must satisfy.
fn check_accepted(p: &Principal, token: &str) {
    assert!(
        token.trim().len() <= MAX_TOKEN,
        "a token over the limit was accepted"
    );
    let iss = p.claims().get("iss").and_then(|v| v.as_str());
    assert_eq!(
        iss,
        Some(p.issuer()),
        "the principal's issuer is the token's iss"
    );
    match iss {
        Some(ISSUER) => {}
        Some(AUD_ISSUER) => assert!(p.audiences().contains(&"api"), "audience enforced: {p:?}"),
        other => panic!("accepted a token of an unconfigured issuer {other:?}"),
    }
    if let Some(exp) = p.claims().get("exp").and_then(|v| v.as_f64()) {
        assert!(
            exp + 60.0 > NOW as f64,
            "accepted an expired token: exp {exp}"
        );
    }
}

/// A token seed file's token (after the mode byte).
fn seed_token(seed: &str) -> &str {
    seed.strip_prefix('t').unwrap_or(seed).trim()
}

fn token_mode(token: &[u8]) {
    static FIXED: OnceLock<JwtLayer> = OnceLock::new();
    let layer = FIXED.get_or_init(|| {
        let Some((l, _)) = layer(JWKS) else {
            panic!("the embedded jwks loads")
        };
        // The target is only meaningful if the accepting path is reachable.
        for seed in [RS256_TOKEN, ES256_TOKEN] {
            assert!(
                send(&l, seed_token(seed)).is_some(),
                "a valid seed token is accepted"
            );
        }
        l
    });
    let Ok(token) = std::str::from_utf8(token) else {
        return;
    };
    if let Some(p) = send(layer, token) {
        check_accepted(&p, token);
    }
}

fn jwks_mode(doc: &[u8]) {
    let Ok(doc) = std::str::from_utf8(doc) else {
        return;
    };
    let Some((layer, loaded_doc)) = layer(doc) else {
        return;
    };
    let keys = KeySet::from_jwks(&loaded_doc);
    for (token, kid) in [(RS256_TOKEN, "rsa1"), (ES256_TOKEN, "ec1")] {
        let token = seed_token(token);
        if let Some(p) = send(&layer, token) {
            check_accepted(&p, token);
            match &keys {
                Ok(k) => assert!(
                    k.has_kid(kid),
                    "accepted by a key set without the token's kid"
                ),
                Err(e) => panic!("accepted although the key set is refused: {e}"),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((b'k', doc)) => jwks_mode(doc),
        Some((_, token)) => token_mode(token),
        None => {}
    }
});
