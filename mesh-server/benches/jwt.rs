//! Token verification through the JWT layer, per algorithm, with the keys cached (inline JWKS).
//! Run: `cargo bench -p mesh-server --bench jwt -- --warm-up-time 1 --measurement-time 2`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/test_keys.rs"]
mod test_keys;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::future::BoxFuture;
use http::{Request, Response};
use mesh_core::policy::{AuthnPolicy, JwksSource, JwtRule, Labels};
use mesh_server::jwt::{JwksCache, JwksError, JwksFetcher, JwksSettings, JwtLayer, JwtSettings};
use tower::{Service, ServiceExt, service_fn};

struct NoFetch;
impl JwksFetcher for NoFetch {
    fn fetch(&self, uri: &str, _: Duration) -> BoxFuture<'static, Result<String, JwksError>> {
        let uri = uri.to_owned();
        Box::pin(async move {
            Err(JwksError::Fetch {
                uri,
                reason: "bench".into(),
            })
        })
    }
}

fn layer(jwks: String) -> JwtLayer {
    let rule = JwtRule {
        issuer: "https://iss".into(),
        audiences: vec!["svc".into()],
        jwks: JwksSource::Inline(jwks),
        from_headers: vec![],
        from_params: vec![],
        from_cookies: vec![],
        output_payload_to_header: None,
        output_claim_to_headers: vec![],
        forward_original_token: false,
        timeout: Duration::from_secs(5),
        space_delimited_claims: Vec::new(),
    };
    let policy = AuthnPolicy {
        origin: Default::default(),
        selector: Default::default(),
        rules: vec![rule],
        require_token: true,
        trigger_rules: vec![],
    };
    let cache = JwksCache::with_fetcher(JwksSettings::default(), Arc::new(NoFetch));
    JwtLayer::new(&[policy], Labels::new(), cache, JwtSettings::default())
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("jwt_verify");
    for alg in test_keys::ALL_ALGS {
        let key = test_keys::key(alg, "k", true);
        let mut claims = test_keys::claims("https://iss");
        claims["aud"] = serde_json::json!("svc");
        let token = format!("Bearer {}", test_keys::sign(&key, &claims));
        let svc = tower::ServiceBuilder::new()
            .layer(layer(test_keys::jwks(&[&key])))
            .service(service_fn(|_req: Request<String>| async {
                Ok::<_, Infallible>(Response::new(String::new()))
            }));
        group.bench_function(format!("{alg:?}"), |b| {
            b.to_async(&rt).iter(|| {
                let mut svc = svc.clone();
                let req = Request::builder()
                    .uri("/")
                    .header("authorization", token.as_str())
                    .body(String::new())
                    .unwrap();
                async move {
                    let res = svc.ready().await.unwrap().call(req).await.unwrap();
                    assert_eq!(res.status(), 200);
                }
            })
        });
    }
    let key = test_keys::key(jsonwebtoken::Algorithm::ES256, "k", true);
    let svc = tower::ServiceBuilder::new()
        .layer(layer(test_keys::jwks(&[&key])))
        .service(service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
    group.bench_function("reject_malformed", |b| {
        b.to_async(&rt).iter(|| {
            let mut svc = svc.clone();
            let req = Request::builder()
                .uri("/")
                .header("authorization", "Bearer a.b.c")
                .body(String::new())
                .unwrap();
            async move {
                let res = svc.ready().await.unwrap().call(req).await.unwrap();
                assert_eq!(res.status(), 401);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
