//! JWKS cache tests on a paused clock, with a scripted fetcher.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::StatusCode;
use jsonwebtoken::Algorithm;
use mesh_core::policy::{JwksSource, Labels};

use super::*;
use crate::jwt::test_keys::{self, claims, jwks, sign};
use crate::jwt::tests::{bearer, call, policy, rule};
use crate::jwt::{JwtError, JwtLayer, JwtSettings};

#[derive(Clone)]
enum Script {
    Doc(String),
    Fail,
    Hang,
}

#[derive(Default)]
struct Scripted {
    scripts: Mutex<HashMap<String, Script>>,
    calls: Mutex<HashMap<String, usize>>,
    total: AtomicUsize,
}

impl Scripted {
    fn set(&self, uri: &str, s: Script) {
        self.scripts.lock().unwrap().insert(uri.to_owned(), s);
    }
    fn calls(&self, uri: &str) -> usize {
        self.calls.lock().unwrap().get(uri).copied().unwrap_or(0)
    }
}

impl JwksFetcher for Scripted {
    fn fetch(
        &self,
        uri: &str,
        _timeout: Duration,
    ) -> BoxFuture<'static, Result<String, JwksError>> {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(uri.to_owned())
            .or_default() += 1;
        self.total.fetch_add(1, Ordering::SeqCst);
        let script = self
            .scripts
            .lock()
            .unwrap()
            .get(uri)
            .cloned()
            .unwrap_or(Script::Fail);
        let uri = uri.to_owned();
        Box::pin(async move {
            match script {
                Script::Doc(d) => Ok(d),
                Script::Fail => Err(JwksError::Fetch {
                    uri,
                    reason: "scripted failure".into(),
                }),
                Script::Hang => futures_util::future::pending().await,
            }
        })
    }
}

const A: &str = "https://a.example/jwks";
const B: &str = "https://b.example/jwks";

fn setup() -> (Arc<Scripted>, JwksCache) {
    let f = Arc::new(Scripted::default());
    (
        f.clone(),
        JwksCache::with_fetcher(JwksSettings::default(), f),
    )
}

async fn settle() {
    // On a paused clock, a short sleep lets the fetch tasks run.
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test(start_paused = true)]
async fn first_fetch_failure_is_retried_with_backoff() {
    let (f, cache) = setup();
    let key = test_keys::key(Algorithm::ES256, "k", true);
    f.set(A, Script::Fail);
    let entry = cache.entry(A, Duration::from_secs(5));
    settle().await;
    assert_eq!(f.calls(A), 1);
    assert!(entry.current().is_none(), "never a made-up key set");
    assert!(!entry.first_fetch_pending());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(f.calls(A), 2, "retried after 1 s");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(f.calls(A), 2, "the next retry waits 2 s");
    f.set(A, Script::Doc(jwks(&[&key])));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(f.calls(A), 3);
    assert_eq!(entry.current().map(|k| k.len()), Some(1));
    assert_eq!(cache.stats().fetch_failures.load(Ordering::Relaxed), 2);
    assert_eq!(cache.stats().fetch_successes.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn refreshes_periodically_and_keeps_keys_through_an_outage() {
    let (f, cache) = setup();
    let k1 = test_keys::key(Algorithm::ES256, "k1", true);
    let k2 = test_keys::key(Algorithm::ES256, "k2", true);
    f.set(A, Script::Doc(jwks(&[&k1])));
    let entry = cache.entry(A, Duration::from_secs(5));
    settle().await;
    assert!(entry.current().unwrap().has_kid("k1"));
    tokio::time::sleep(Duration::from_secs(19 * 60)).await;
    assert_eq!(f.calls(A), 1, "no refresh before 20 minutes");
    f.set(A, Script::Doc(jwks(&[&k2])));
    tokio::time::sleep(Duration::from_secs(2 * 60)).await;
    assert_eq!(f.calls(A), 2);
    assert!(
        entry.current().unwrap().has_kid("k2"),
        "refreshed keys are used"
    );

    f.set(A, Script::Fail);
    tokio::time::sleep(Duration::from_secs(20 * 60 + 10)).await;
    assert!(f.calls(A) >= 3);
    assert!(
        entry.current().unwrap().has_kid("k2"),
        "the last good keys stay in use"
    );
    assert!(cache.stats().fetch_failures.load(Ordering::Relaxed) >= 1);
}

#[tokio::test(start_paused = true)]
async fn refetch_is_rate_limited() {
    let (f, cache) = setup();
    let k1 = test_keys::key(Algorithm::ES256, "k1", true);
    f.set(A, Script::Doc(jwks(&[&k1])));
    let entry = cache.entry(A, Duration::from_secs(5));
    settle().await;
    assert_eq!(f.calls(A), 1);
    entry.refetch().await;
    assert_eq!(f.calls(A), 2);
    entry.refetch().await;
    entry.refetch().await;
    assert_eq!(f.calls(A), 2, "at most one re-fetch per 30 s");
    assert_eq!(cache.stats().refetches_limited.load(Ordering::Relaxed), 2);
    tokio::time::sleep(Duration::from_secs(31)).await;
    entry.refetch().await;
    assert_eq!(f.calls(A), 3);
    assert_eq!(cache.stats().refetches.load(Ordering::Relaxed), 2);
}

#[tokio::test(start_paused = true)]
async fn unknown_kid_triggers_a_refetch_then_succeeds() {
    let (f, cache) = setup();
    let old = test_keys::key(Algorithm::ES256, "old", true);
    let new = test_keys::key(Algorithm::ES256, "new", true);
    f.set(A, Script::Doc(jwks(&[&old])));
    let layer = JwtLayer::new(
        &[policy(vec![rule("iss", JwksSource::Uri(A.into()))], true)],
        Labels::new(),
        cache,
        JwtSettings::default(),
    );
    settle().await;
    assert_eq!(
        call(&layer, bearer(&sign(&old, &claims("iss"))))
            .await
            .status(),
        StatusCode::OK
    );
    // The issuer rotates its keys.
    f.set(A, Script::Doc(jwks(&[&old, &new])));
    assert_eq!(
        call(&layer, bearer(&sign(&new, &claims("iss"))))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(f.calls(A), 2);
    // A kid that never appears: one more re-fetch is refused by the rate limit.
    let stranger = test_keys::key(Algorithm::ES256, "stranger", true);
    let res = call(&layer, bearer(&sign(&stranger, &claims("iss")))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.into_body(), JwtError::NoMatchingKey.body());
    let res = call(&layer, bearer(&sign(&stranger, &claims("iss")))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(f.calls(A), 2, "re-fetches are rate limited");
}

#[tokio::test(start_paused = true)]
async fn a_dead_issuer_does_not_block_another() {
    let (f, cache) = setup();
    let kb = test_keys::key(Algorithm::EdDSA, "kb", true);
    f.set(A, Script::Hang);
    f.set(B, Script::Doc(jwks(&[&kb])));
    let rules = vec![
        rule("a", JwksSource::Uri(A.into())),
        rule("b", JwksSource::Uri(B.into())),
    ];
    let layer = JwtLayer::new(
        &[policy(rules, false)],
        Labels::new(),
        cache,
        JwtSettings::default(),
    );
    settle().await;
    let res = call(&layer, bearer(&sign(&kb, &claims("b")))).await;
    assert_eq!(res.status(), StatusCode::OK);
    // A token for the dead issuer waits for the first fetch (bounded by the rule's timeout).
    let ka = test_keys::key(Algorithm::EdDSA, "ka", true);
    let res = call(&layer, bearer(&sign(&ka, &claims("a")))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.into_body(), JwtError::KeysUnavailable.body());
    // ...and B still answers at once.
    assert_eq!(
        call(&layer, bearer(&sign(&kb, &claims("b"))))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn keys_survive_a_reload_and_unused_entries_stop() {
    let (f, cache) = setup();
    let k = test_keys::key(Algorithm::ES256, "k", true);
    f.set(A, Script::Doc(jwks(&[&k])));
    f.set(B, Script::Doc(jwks(&[&k])));
    let p = |uri: &str| policy(vec![rule("iss", JwksSource::Uri(uri.into()))], true);
    let layer = JwtLayer::new(
        &[p(A)],
        Labels::new(),
        cache.clone(),
        JwtSettings::default(),
    );
    settle().await;
    assert_eq!(f.calls(A), 1);
    layer.update(&[p(A)]);
    settle().await;
    assert_eq!(f.calls(A), 1, "the reloaded layer reuses the cached keys");
    assert_eq!(
        call(&layer, bearer(&sign(&k, &claims("iss"))))
            .await
            .status(),
        StatusCode::OK
    );
    assert!(cache.keys(A).is_some());
    layer.update(&[p(B)]);
    settle().await;
    assert!(cache.keys(A).is_none(), "an entry no layer uses is dropped");
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(f.calls(A), 1, "its task has stopped");
    assert!(f.calls(B) >= 3, "the live entry keeps refreshing");
}

#[test]
fn key_set_parsing_skips_unusable_keys() {
    let k = test_keys::key(Algorithm::ES256, "k", true);
    let doc = serde_json::json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "enc", "use": "enc"},
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA", "kid": "p521"},
        {"kty": "weird"},
        k.jwk,
    ]})
    .to_string();
    let set = KeySet::from_jwks(&doc).unwrap();
    assert_eq!(set.len(), 1);
    assert!(set.has_kid("k"));
    assert!(!set.has_kid("hmac"));
    assert_eq!(
        KeySet::from_jwks(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap_err(),
        JwksError::NoUsableKey
    );
    assert!(matches!(
        KeySet::from_jwks("nope"),
        Err(JwksError::Format(_))
    ));
    assert!(matches!(KeySet::from_jwks("{}"), Err(JwksError::Format(_))));
}
