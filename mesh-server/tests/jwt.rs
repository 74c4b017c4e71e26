//! JWT layer against real servers on 127.0.0.1: an axum app behind the layer, and JWKS servers
//! that can go down. Real time with short intervals; every wait is bounded and polls a count.
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
use mesh_core::policy::{AuthnPolicy, JwksSource, JwtRule, Labels};
use mesh_server::context::Principal;
use mesh_server::jwt::{HttpFetcher, JwksCache, JwksSettings, JwtLayer, JwtSettings};
use test_keys::{TestKey, claims, jwks, sign};

/// A JWKS server whose document can be swapped or taken down (503).
#[derive(Clone, Default)]
struct JwksServer {
    doc: Arc<Mutex<Option<String>>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(doc: Option<String>) -> (Self, String) {
        let s = Self {
            doc: Arc::new(Mutex::new(doc)),
            hits: Arc::default(),
        };
        async fn serve(State(s): State<JwksServer>) -> (StatusCode, String) {
            s.hits.fetch_add(1, Ordering::SeqCst);
            match s.doc.lock().unwrap().clone() {
                Some(d) => (StatusCode::OK, d),
                None => (StatusCode::SERVICE_UNAVAILABLE, "down".into()),
            }
        }
        let app = Router::new()
            .route("/jwks", get(serve))
            .with_state(s.clone());
        let addr = spawn(app).await;
        (s, format!("http://{addr}/jwks"))
    }

    fn set(&self, doc: Option<String>) {
        *self.doc.lock().unwrap() = doc;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn spawn(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn rule(issuer: &str, uri: &str, timeout: Duration) -> JwtRule {
    JwtRule {
        issuer: issuer.into(),
        audiences: vec![],
        jwks: JwksSource::Uri(uri.into()),
        from_headers: vec![],
        from_params: vec![],
        from_cookies: vec![],
        output_payload_to_header: None,
        output_claim_to_headers: vec![],
        forward_original_token: false,
        timeout,
        space_delimited_claims: Vec::new(),
    }
}

fn fast_cache() -> JwksCache {
    let settings = JwksSettings {
        refresh_interval: Duration::from_millis(200),
        refetch_min_interval: Duration::from_millis(100),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    };
    JwksCache::with_fetcher(settings, Arc::new(HttpFetcher::with_client(client())))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// The app: `/who` answers the principal (or `anonymous`).
async fn app(rules: Vec<JwtRule>, cache: JwksCache) -> (SocketAddr, JwtLayer) {
    async fn who(p: Option<Principal>) -> String {
        p.map_or_else(|| "anonymous".to_owned(), |p| p.principal().to_owned())
    }
    let policy = AuthnPolicy {
        origin: Default::default(),
        selector: Default::default(),
        rules,
        require_token: false,
        trigger_rules: vec![],
    };
    let layer = JwtLayer::new(&[policy], Labels::new(), cache, JwtSettings::default());
    let addr = spawn(Router::new().route("/who", get(who)).layer(layer.clone())).await;
    (addr, layer)
}

async fn who(addr: SocketAddr, token: Option<&str>) -> (u16, String, Option<String>) {
    let mut req = client().get(format!("http://{addr}/who"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let www = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, res.text().await.unwrap(), www)
}

/// Polls `cond` every 20 ms, at most 10 s.
async fn eventually(mut cond: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..500 {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn es256(kid: &str) -> TestKey {
    test_keys::key(Algorithm::ES256, kid, true)
}

#[tokio::test]
async fn end_to_end_over_http() {
    let k = es256("k");
    let (_jwks, uri) = JwksServer::start(Some(jwks(&[&k]))).await;
    let (addr, _layer) = app(
        vec![rule("https://iss", &uri, Duration::from_secs(5))],
        fast_cache(),
    )
    .await;
    let token = sign(&k, &claims("https://iss"));
    let (status, body, _) = who(addr, Some(&token)).await;
    assert_eq!((status, body.as_str()), (200, "https://iss/alice"));
    let (status, body, _) = who(addr, None).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "anonymous"),
        "no token: passes unauthenticated"
    );
    let forged = sign(&es256("k"), &claims("https://iss"));
    let (status, body, www) = who(addr, Some(&forged)).await;
    assert_eq!((status, body.as_str()), (401, "Jwt verification fails"));
    assert_eq!(www.as_deref(), Some("Bearer error=\"invalid_token\""));
}

#[tokio::test]
async fn outage_keeps_the_last_keys() {
    let k = es256("k");
    let (server, uri) = JwksServer::start(Some(jwks(&[&k]))).await;
    let cache = fast_cache();
    let (addr, _layer) = app(
        vec![rule("https://iss", &uri, Duration::from_secs(5))],
        cache.clone(),
    )
    .await;
    let token = sign(&k, &claims("https://iss"));
    assert_eq!(who(addr, Some(&token)).await.0, 200);
    server.set(None);
    let before = server.hits();
    assert!(
        eventually(async || server.hits() >= before + 2).await,
        "refresh keeps trying"
    );
    assert!(cache.stats().fetch_failures.load(Ordering::Relaxed) >= 1);
    assert_eq!(
        who(addr, Some(&token)).await.0,
        200,
        "last good keys still verify"
    );
}

#[tokio::test]
async fn failed_first_fetch_is_retried_until_it_succeeds() {
    let k = es256("k");
    let (server, uri) = JwksServer::start(None).await;
    let cache = fast_cache();
    let (addr, _layer) = app(
        vec![rule("https://iss", &uri, Duration::from_secs(5))],
        cache.clone(),
    )
    .await;
    let token = sign(&k, &claims("https://iss"));
    let (status, body, _) = who(addr, Some(&token)).await;
    assert_eq!(
        (status, body.as_str()),
        (401, "Jwks remote fetch is failed")
    );
    assert!(
        eventually(async || server.hits() >= 3).await,
        "retried with backoff"
    );
    server.set(Some(jwks(&[&k])));
    assert!(eventually(async || who(addr, Some(&token)).await.0 == 200).await);
    assert!(cache.stats().fetch_failures.load(Ordering::Relaxed) >= 2);
    assert!(cache.stats().fetch_successes.load(Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn unknown_kid_refetches_over_http() {
    let old = es256("old");
    let new = es256("new");
    let (server, uri) = JwksServer::start(Some(jwks(&[&old]))).await;
    let settings = JwksSettings {
        refresh_interval: Duration::from_secs(3600),
        ..JwksSettings::default()
    };
    let cache = JwksCache::with_fetcher(settings, Arc::new(HttpFetcher::with_client(client())));
    let (addr, _layer) = app(
        vec![rule("https://iss", &uri, Duration::from_secs(5))],
        cache.clone(),
    )
    .await;
    assert_eq!(
        who(addr, Some(&sign(&old, &claims("https://iss")))).await.0,
        200
    );
    let hits = server.hits();
    server.set(Some(jwks(&[&old, &new])));
    assert_eq!(
        who(addr, Some(&sign(&new, &claims("https://iss")))).await.0,
        200,
        "rotated key found by a re-fetch"
    );
    assert_eq!(server.hits(), hits + 1);
    let stranger = es256("stranger");
    assert_eq!(
        who(addr, Some(&sign(&stranger, &claims("https://iss"))))
            .await
            .0,
        401
    );
    assert_eq!(
        server.hits(),
        hits + 1,
        "rate limited: no second re-fetch within 30 s"
    );
}

#[tokio::test]
async fn a_hanging_issuer_does_not_block_another() {
    // Accepts connections (kernel backlog) but never answers.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_uri = format!("http://{}/jwks", black_hole.local_addr().unwrap());
    let kb = es256("kb");
    let (_server, live_uri) = JwksServer::start(Some(jwks(&[&kb]))).await;
    let rules = vec![
        rule("dead", &dead_uri, Duration::from_secs(30)),
        rule("live", &live_uri, Duration::from_secs(5)),
    ];
    let (addr, _layer) = app(rules, fast_cache()).await;
    let ka = es256("ka");
    let dead_token = sign(&ka, &claims("dead"));
    let waiting = tokio::spawn(async move { who(addr, Some(&dead_token)).await });
    let (status, body, _) = who(addr, Some(&sign(&kb, &claims("live")))).await;
    assert_eq!((status, body.as_str()), (200, "live/alice"));
    assert!(
        !waiting.is_finished(),
        "the dead issuer's request is still waiting, the live one was answered"
    );
    waiting.abort();
    drop(black_hole);
}

/// Reliability (issue 6): the JWKS server flaps (down, up, down...) while 4 callers keep sending
/// valid and forged tokens. Every valid token is accepted throughout (the last good keys stay in
/// use), every forged one is refused, and the cache kept re-fetching through the flaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_flapping_under_load_keeps_valid_tokens_valid() {
    let k = es256("k");
    let (server, uri) = JwksServer::start(Some(jwks(&[&k]))).await;
    let cache = fast_cache();
    let (addr, _layer) = app(
        vec![rule("https://iss", &uri, Duration::from_secs(2))],
        cache.clone(),
    )
    .await;
    let good = Arc::new(sign(&k, &claims("https://iss")));
    let forged = Arc::new(sign(&es256("k"), &claims("https://iss")));
    assert_eq!(who(addr, Some(&good)).await.0, 200);

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (good, forged, stop) = (good.clone(), forged.clone(), stop.clone());
        callers.spawn(async move {
            let (mut ok, mut refused, mut wrong) = (0usize, 0usize, Vec::new());
            // Bounded: stops with the flapping, or after 5 000 rounds.
            for _ in 0..5_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                match who(addr, Some(&good)).await {
                    (200, _, _) => ok += 1,
                    other => wrong.push(format!("valid token: {other:?}")),
                }
                match who(addr, Some(&forged)).await {
                    (401, _, _) => refused += 1,
                    other => wrong.push(format!("forged token: {other:?}")),
                }
            }
            (ok, refused, wrong)
        });
    }
    // Ten flaps, driven by what the cache saw rather than by time: each outage lasts until the
    // cache has failed a fetch, each recovery until it has fetched again (refresh every 200 ms).
    let doc = jwks(&[&k]);
    let stats = cache.stats().clone();
    for i in 0..10 {
        let (failures, successes) = (
            stats.fetch_failures.load(Ordering::Relaxed),
            stats.fetch_successes.load(Ordering::Relaxed),
        );
        if i % 2 == 0 {
            server.set(None);
            assert!(
                eventually(async || stats.fetch_failures.load(Ordering::Relaxed) > failures).await,
                "outage {i} unseen"
            );
        } else {
            server.set(Some(doc.clone()));
            assert!(
                eventually(async || stats.fetch_successes.load(Ordering::Relaxed) > successes)
                    .await,
                "recovery {i} unseen"
            );
        }
    }
    stop.store(true, Ordering::SeqCst);
    let (mut ok, mut refused) = (0, 0);
    while let Some(joined) = callers.join_next().await {
        let (o, r, wrong) = joined.unwrap();
        assert!(
            wrong.is_empty(),
            "{} wrong answers while the JWKS server flapped, e.g. {}",
            wrong.len(),
            wrong[0]
        );
        ok += o;
        refused += r;
    }
    // At least a round per caller: enough to say the layer answered throughout (the rate depends
    // on the machine, which is shared and noisy).
    assert!(
        ok >= 4 && refused >= 4,
        "too little traffic during the flaps: {ok} ok, {refused} refused"
    );
    assert!(
        stats.fetch_failures.load(Ordering::Relaxed) >= 5,
        "every outage was seen by the cache"
    );
}
