//! RequestAuthentication with an `issuer` and no `jwksUri`: the keys are found through OpenID
//! discovery (`<issuer>/.well-known/openid-configuration` → `jwks_uri`), served here by a real
//! identity provider stand-in on 127.0.0.1, with jwksUri's refresh and failure rules.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use support::test_keys;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use jsonwebtoken::Algorithm;
use mesh_core::policy::{AuthnPolicy, Labels};
use mesh_server::context::Principal;
use mesh_server::jwt::{HttpFetcher, JwksCache, JwksSettings, JwtLayer, JwtSettings};
use test_keys::{claims, jwks, sign};

/// An OpenID provider: a discovery document (which can be broken or taken down) and a JWKS.
#[derive(Clone)]
struct Provider {
    discovery: Arc<Mutex<Option<String>>>,
    keys: String,
    discovery_hits: Arc<AtomicUsize>,
    jwks_hits: Arc<AtomicUsize>,
}

impl Provider {
    /// Starts the provider; returns it and its issuer (`http://addr/realms/mesh`).
    async fn start(keys: String) -> (Self, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}/realms/mesh");
        let document = serde_json::json!({
            "issuer": issuer,
            "jwks_uri": format!("http://{addr}/realms/mesh/protocol/certs"),
            "id_token_signing_alg_values_supported": ["ES256"],
        })
        .to_string();
        let p = Self {
            discovery: Arc::new(Mutex::new(Some(document))),
            keys,
            discovery_hits: Arc::default(),
            jwks_hits: Arc::default(),
        };
        async fn discovery(State(p): State<Provider>) -> (StatusCode, String) {
            p.discovery_hits.fetch_add(1, Ordering::SeqCst);
            match p.discovery.lock().unwrap().clone() {
                Some(d) => (StatusCode::OK, d),
                None => (StatusCode::SERVICE_UNAVAILABLE, "down".into()),
            }
        }
        async fn certs(State(p): State<Provider>) -> String {
            p.jwks_hits.fetch_add(1, Ordering::SeqCst);
            p.keys.clone()
        }
        let app = Router::new()
            .route(
                "/realms/mesh/.well-known/openid-configuration",
                get(discovery),
            )
            .route("/realms/mesh/protocol/certs", get(certs))
            .with_state(p.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (p, issuer)
    }

    fn set_discovery(&self, doc: Option<String>) {
        *self.discovery.lock().unwrap() = doc;
    }
}

/// The RequestAuthentication, compiled from YAML as a user writes it: the issuer alone.
fn policy(issuer: &str) -> AuthnPolicy {
    let yaml = format!(
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: oidc\nspec:\n  jwtRules:\n  - issuer: {issuer}\n"
    );
    let loaded = mesh_core::load::load_str("oidc.yaml", &yaml).unwrap();
    loaded.config.authentication[0].clone()
}

fn fast_cache() -> JwksCache {
    let settings = JwksSettings {
        refresh_interval: Duration::from_millis(200),
        refetch_min_interval: Duration::from_millis(100),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    };
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    JwksCache::with_fetcher(settings, Arc::new(HttpFetcher::with_client(client)))
}

async fn app(policy: AuthnPolicy, cache: JwksCache) -> SocketAddr {
    async fn who(p: Option<Principal>) -> String {
        p.map_or_else(|| "anonymous".to_owned(), |p| p.principal().to_owned())
    }
    let layer = JwtLayer::new(&[policy], Labels::new(), cache, JwtSettings::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/who", get(who)).layer(layer);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn who(addr: SocketAddr, token: &str) -> (u16, String) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let res = client
        .get(format!("http://{addr}/who"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Polls `cond` every 20 ms, at most 10 s.
async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn keys_are_found_through_discovery_and_kept_through_an_outage() {
    let k = test_keys::key(Algorithm::ES256, "k1", true);
    let (provider, issuer) = Provider::start(jwks(&[&k])).await;
    let cache = fast_cache();
    let addr = app(policy(&issuer), cache.clone()).await;
    let token = sign(&k, &claims(&issuer));
    assert_eq!(who(addr, &token).await, (200, format!("{issuer}/alice")));
    assert!(provider.discovery_hits.load(Ordering::SeqCst) >= 1);
    assert!(provider.jwks_hits.load(Ordering::SeqCst) >= 1);
    // a token signed by another key still fails
    let other = test_keys::key(Algorithm::ES256, "k1", true);
    assert_eq!(who(addr, &sign(&other, &claims(&issuer))).await.0, 401);

    // discovery goes down: refreshes fail, the last good keys stay in use
    provider.set_discovery(None);
    let failures = cache.stats().fetch_failures.load(Ordering::Relaxed);
    assert!(
        eventually(|| cache.stats().fetch_failures.load(Ordering::Relaxed) > failures).await,
        "refresh keeps trying discovery"
    );
    assert_eq!(
        who(addr, &token).await.0,
        200,
        "last good keys still verify"
    );
}

#[tokio::test]
async fn a_discovery_document_without_jwks_uri_gives_no_keys() {
    let k = test_keys::key(Algorithm::ES256, "k1", true);
    let (provider, issuer) = Provider::start(jwks(&[&k])).await;
    provider.set_discovery(Some(format!(r#"{{"issuer": "{issuer}"}}"#)));
    let cache = fast_cache();
    let addr = app(policy(&issuer), cache.clone()).await;
    let token = sign(&k, &claims(&issuer));
    assert_eq!(
        who(addr, &token).await.0,
        401,
        "no keys: the token is refused"
    );
    assert!(cache.stats().fetch_failures.load(Ordering::Relaxed) >= 1);
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 0);
}
