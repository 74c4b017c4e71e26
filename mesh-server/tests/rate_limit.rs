//! The rate limit layer alone (plain Rust settings) in front of a real server on 127.0.0.1:0.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::Request;
use mesh_core::policy::RateLimitOverride;
use mesh_server::context::Principal;
use mesh_server::rate_limit::{RateLimitLayer, RateLimitSettings};
use mesh_server::rescue::RescueLayer;
use mesh_server::serve;
use tokio::sync::oneshot;

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn per_identity_limits_over_http() {
    // One request per second per identity, five for the override: a second is far longer than
    // the few local requests below take, and the assertions only count refusals.
    let settings = RateLimitSettings {
        identity_rps: Some(1),
        overrides: vec![RateLimitOverride {
            rps: 5,
            clients: vec!["vip".into()],
        }],
        ..RateLimitSettings::default()
    };
    let app = Router::new().route("/", get(|| async { "ok" }));
    let stack = tower::ServiceBuilder::new()
        .map_request(|mut req: Request<axum::body::Body>| {
            let user = req
                .headers()
                .get("x-user")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Some(user) = user {
                let claims = serde_json::json!({"iss": "iss", "sub": user});
                req.extensions_mut().insert(Principal::from_claims(claims));
            }
            req
        })
        .layer(RescueLayer::new())
        .layer(RateLimitLayer::new(settings))
        .service(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, stack, async {
        let _ = stopped.await;
    }));
    let c = reqwest::Client::builder()
        .no_proxy()
        .timeout(LIMIT)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let send = |user: &'static str| {
        let c = c.clone();
        async move {
            let res = c
                .get(format!("http://{addr}/"))
                .header("x-user", user)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            (
                res.status().as_u16(),
                res.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            )
        }
    };
    assert_eq!(send("alice").await.0, 200, "a fresh bucket admits");
    // Alice's next requests are refused as soon as two fall in the same second (bounded loop).
    let mut refused = None;
    for _ in 0..20 {
        let (code, retry) = send("alice").await;
        if code == 429 {
            refused = Some(retry);
            break;
        }
    }
    assert_eq!(
        refused,
        Some(Some("1".to_string())),
        "alice is limited, retry-after in seconds"
    );
    assert_eq!(send("bob").await.0, 200, "bob has his own bucket");
    let mut vip_ok = 0;
    for _ in 0..5 {
        if send("vip").await.0 == 200 {
            vip_ok += 1;
        }
    }
    assert_eq!(
        vip_ok, 5,
        "the override's burst of 5 replaces the identity limit of 1"
    );
    let _ = stop.send(());
    assert!(matches!(
        tokio::time::timeout(LIMIT, task).await,
        Ok(Ok(Ok(())))
    ));
}
