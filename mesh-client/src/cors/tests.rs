use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::header::VARY;
use mesh_core::policy::StringMatch;
use tower::{Layer, ServiceExt};

use super::*;

fn policy() -> CorsPolicy {
    CorsPolicy {
        allow_origins: vec![
            StringMatch::Exact("https://app.example.com".into()),
            StringMatch::Prefix("https://dev.".into()),
            StringMatch::Regex(
                mesh_core::policy::Pattern::new(r"https://.*\.example\.org").unwrap(),
            ),
        ],
        allow_methods: vec![Method::GET, Method::POST],
        allow_headers: vec!["x-custom".into(), "content-type".into()],
        expose_headers: vec!["x-trace".into()],
        max_age: Some(Duration::from_secs(86400)),
        allow_credentials: Some(true),
        unmatched_preflights: UnmatchedPreflights::Forward,
    }
}

/// The service under test and how many requests reached the destination.
fn cors(
    policy: CorsPolicy,
) -> (
    Arc<AtomicUsize>,
    Cors<
        impl Service<Request<String>, Response = Response<String>, Error = std::convert::Infallible>,
    >,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let inner = tower::service_fn(move |_r: Request<String>| {
        c.fetch_add(1, Ordering::SeqCst);
        let mut response = Response::new(String::from("upstream"));
        response
            .headers_mut()
            .insert(VARY, HeaderValue::from_static("accept"));
        async move { Ok::<_, std::convert::Infallible>(response) }
    });
    (calls, CorsLayer::new(policy).layer(inner))
}

fn preflight(origin: &str) -> Request<String> {
    Request::options("/api")
        .header(ORIGIN, origin)
        .header(ACCESS_CONTROL_REQUEST_METHOD, "PUT")
        .header(ACCESS_CONTROL_REQUEST_HEADERS, "x-asked")
        .body(String::new())
        .unwrap()
}

fn get(origin: Option<&str>) -> Request<String> {
    let mut b = Request::get("/api");
    if let Some(o) = origin {
        b = b.header(ORIGIN, o);
    }
    b.body(String::new()).unwrap()
}

fn cors_headers(r: &Response<String>) -> Vec<String> {
    r.headers()
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

#[tokio::test]
async fn preflight_from_an_allowed_origin_is_answered_here() {
    for origin in [
        "https://app.example.com",
        "https://dev.example.net",
        "https://a.example.org",
    ] {
        let (calls, svc) = cors(policy());
        let stats = svc.stats().clone();
        let r = svc.oneshot(preflight(origin)).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.body(), "", "{origin}: answered by the layer");
        assert_eq!(calls.load(Ordering::SeqCst), 0, "{origin}");
        let h = r.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], origin);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "GET,POST");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "x-custom,content-type");
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "86400");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(stats.cors_origin_valid.get(), 1);
        assert_eq!(stats.cors_preflights_answered.get(), 1);
    }
}

#[tokio::test]
async fn preflight_from_another_origin_is_forwarded_without_cors_headers() {
    let (calls, svc) = cors(policy());
    let stats = svc.stats().clone();
    let r = svc
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    assert_eq!(r.body(), "upstream");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(cors_headers(&r).is_empty(), "{:?}", cors_headers(&r));
    assert_eq!(stats.cors_origin_invalid.get(), 1);
    assert_eq!(stats.cors_preflights_answered.get(), 0);
}

#[tokio::test]
async fn unmatched_preflight_ignored_is_answered_without_cors_headers() {
    let (calls, svc) = cors(CorsPolicy {
        unmatched_preflights: UnmatchedPreflights::Ignore,
        ..policy()
    });
    let r = svc
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.body(), "");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(cors_headers(&r).is_empty(), "{:?}", cors_headers(&r));
}

#[tokio::test]
async fn simple_request_from_an_allowed_origin_gets_its_headers() {
    let (calls, svc) = cors(policy());
    let r = svc
        .oneshot(get(Some("https://app.example.com")))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(r.body(), "upstream");
    let h = r.headers();
    assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
    assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    assert_eq!(h[ACCESS_CONTROL_EXPOSE_HEADERS], "x-trace");
    assert!(
        h.get(ACCESS_CONTROL_ALLOW_METHODS).is_none(),
        "preflight only"
    );
    assert_eq!(h[VARY], "accept", "the destination's headers stay");
}

#[tokio::test]
async fn disallowed_or_absent_origin_gets_no_cors_headers() {
    for origin in [
        Some("https://evil.example"),
        Some("https://app.example.com.evil"),
        None,
    ] {
        let (calls, svc) = cors(policy());
        let r = svc.oneshot(get(origin)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(
            cors_headers(&r).is_empty(),
            "{origin:?}: {:?}",
            cors_headers(&r)
        );
    }
    // OPTIONS without Access-Control-Request-Method is not a preflight: it goes on
    let (calls, svc) = cors(policy());
    let options = Request::options("/")
        .header(ORIGIN, "https://app.example.com")
        .body(String::new())
        .unwrap();
    let r = svc.oneshot(options).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        r.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example.com"
    );
}

#[tokio::test]
async fn stars_echo_what_the_preflight_asks_and_allow_any_origin() {
    let (_, svc) = cors(CorsPolicy {
        allow_origins: vec![StringMatch::Exact("*".into())],
        allow_methods: vec![Method::from_bytes(b"*").unwrap()],
        allow_headers: vec!["*".into()],
        allow_credentials: None,
        max_age: None,
        ..policy()
    });
    let r = svc.oneshot(preflight("https://anyone.test")).await.unwrap();
    let h = r.headers();
    assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://anyone.test");
    assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "PUT");
    assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "x-asked");
    assert!(h.get(ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    assert!(h.get(ACCESS_CONTROL_MAX_AGE).is_none());
}
