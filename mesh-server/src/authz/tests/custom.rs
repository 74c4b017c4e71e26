//! `CUSTOM` policies: the external authorizer is asked only when its rules match, its ALLOW
//! still goes through DENY, and without a hook the policy fails closed.

use super::*;

#[tokio::test]
async fn custom_provider_is_asked_only_when_its_rules_match() {
    let custom = policy(
        "ext",
        AuthzAction::Custom,
        vec![to(Operation {
            paths: strings(&["/guarded/*"]),
            ..Default::default()
        })],
    );
    let asked = Arc::new(AtomicUsize::new(0));
    let a = asked.clone();
    let hook = move |req: CheckRequest| {
        a.fetch_add(1, Ordering::SeqCst);
        async move {
            assert_eq!(&*req.provider, "ext");
            if req.headers.contains_key("x-ok") {
                CheckResponse::Allow
            } else {
                CheckResponse::Deny {
                    status: StatusCode::UNAUTHORIZED,
                    body: "no".into(),
                }
            }
        }
    };
    let layer = AuthorizationLayer::new(AuthzEngine::new([&custom]).unwrap_or_default())
        .with_ext_authz(hook);
    assert!(
        run_with(layer.clone(), Req::get("/open"))
            .await
            .unwrap_or(false)
    );
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    assert!(
        run_with(layer.clone(), Req::get("/guarded/x").header("x-ok", "1"))
            .await
            .unwrap_or(false)
    );
    let err = run_with(layer, Req::get("/guarded/x")).await.err();
    let denied = err.as_ref().and_then(|e| e.downcast_ref::<Denied>());
    assert_eq!(denied.map(|d| d.status()), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(denied.and_then(|d| d.body()), Some("no"));
    assert_eq!(asked.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn custom_allow_still_goes_through_deny() {
    let custom = policy("ext", AuthzAction::Custom, vec![AuthzRule::default()]);
    let deny = policy(
        "deny",
        AuthzAction::Deny,
        vec![to(Operation {
            methods: strings(&["DELETE"]),
            ..Default::default()
        })],
    );
    let layer = AuthorizationLayer::new(AuthzEngine::new([&custom, &deny]).unwrap_or_default())
        .with_ext_authz(|_req: CheckRequest| async { CheckResponse::Allow });
    assert!(
        run_with(layer.clone(), Req::get("/"))
            .await
            .unwrap_or(false)
    );
    assert!(
        run_with(layer, Req::get("/").method(http::Method::DELETE))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn custom_without_a_provider_hook_fails_closed() {
    let custom = policy("ext", AuthzAction::Custom, vec![AuthzRule::default()]);
    assert!(!allowed(&[custom], Req::get("/")).await);
}
