//! `from` sources: IP blocks (direct and through trusted proxies), request principals, peer
//! principals and namespaces.

use super::*;

#[tokio::test]
async fn ip_blocks_and_remote_ip_blocks() {
    let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap_or_else(|e| panic!("{e}"));
    let ip_blocks = |s: &str| Source {
        ip_blocks: vec![net(s)],
        ..Default::default()
    };
    // numTrustedProxies = 0: remote.ip is the connection's peer, whatever X-Forwarded-For says.
    let cases = [
        (ip_blocks("10.0.0.0/8"), Req::get("/"), true),
        (
            ip_blocks("10.0.0.0/8"),
            Req::get("/").source([192, 168, 0, 1]),
            false,
        ),
        (
            Source {
                not_ip_blocks: vec![net("10.1.2.3/32")],
                ..Default::default()
            },
            Req::get("/"),
            false,
        ),
        (
            Source {
                remote_ip_blocks: vec![net("10.1.0.0/16")],
                ..Default::default()
            },
            Req::get("/").header("x-forwarded-for", "8.8.8.8"),
            true,
        ),
        (
            Source {
                not_remote_ip_blocks: vec![net("10.1.0.0/16")],
                ..Default::default()
            },
            Req::get("/"),
            false,
        ),
    ];
    for (src, req, allow) in cases {
        let what = format!("{src:?}");
        assert_eq!(allowed(&allow_from(src), req).await, allow, "{what}");
    }
    // One trusted proxy: remote.ip is the address it appended.
    let engine = AuthzEngine::new(&allow_from(Source {
        remote_ip_blocks: vec![net("8.8.8.8/32")],
        ..Default::default()
    }))
    .unwrap_or_default();
    let layer = AuthorizationLayer::new(engine).trusted_proxies(1);
    assert!(
        run_with(
            layer,
            Req::get("/").header("x-forwarded-for", "1.1.1.1, 8.8.8.8")
        )
        .await
        .unwrap_or(false)
    );
}

#[tokio::test]
async fn request_principals_need_authentication() {
    let p = allow_from(Source {
        request_principals: strings(&["https://issuer/*"]),
        ..Default::default()
    });
    assert!(!allowed(&p, Req::get("/")).await);
    assert!(allowed(&p, Req::get("/").auth("https://issuer/alice", json!({}))).await);
    assert!(!allowed(&p, Req::get("/").auth("https://other/alice", json!({}))).await);
    // `requestPrincipals: ["*"]` is Istio's "any authenticated user".
    let any = allow_from(Source {
        request_principals: strings(&["*"]),
        ..Default::default()
    });
    assert!(allowed(&any, Req::get("/").auth("iss/sub", json!({}))).await);
    assert!(!allowed(&any, Req::get("/")).await);
    let not = [policy(
        "n",
        AuthzAction::Deny,
        vec![from(Source {
            not_request_principals: strings(&["*"]),
            ..Default::default()
        })],
    )];
    assert!(!allowed(&not, Req::get("/")).await);
    assert!(allowed(&not, Req::get("/").auth("iss/sub", json!({}))).await);
}

#[tokio::test]
async fn principals_and_namespaces_only_match_a_peer_identity() {
    let p = allow_from(Source {
        principals: strings(&["cluster.local/ns/default/sa/sleep"]),
        ..Default::default()
    });
    assert!(!allowed(&p, Req::get("/")).await);
    assert!(allowed(&p, Req::get("/").peer("cluster.local/ns/default/sa/sleep")).await);
    let ns = allow_from(Source {
        namespaces: strings(&["test"]),
        ..Default::default()
    });
    assert!(allowed(&ns, Req::get("/").peer("cluster.local/ns/test/sa/x")).await);
    assert!(!allowed(&ns, Req::get("/").peer("cluster.local/ns/prod/sa/x")).await);
    let not_ns = allow_from(Source {
        not_namespaces: strings(&["prod"]),
        ..Default::default()
    });
    assert!(allowed(&not_ns, Req::get("/")).await);
    assert!(!allowed(&not_ns, Req::get("/").peer("cluster.local/ns/prod/sa/x")).await);
    let not_p = allow_from(Source {
        not_principals: strings(&["*/sa/bad"]),
        ..Default::default()
    });
    assert!(!allowed(&not_p, Req::get("/").peer("cluster.local/ns/a/sa/bad")).await);
}
