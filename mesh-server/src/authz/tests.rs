use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{Request, Response, StatusCode};
use mesh_core::policy::{
    AuthzAction, AuthzPolicy, AuthzRule, Condition, ConditionKey, Labels, Operation, Origin,
    Source, WorkloadSelector,
};
use serde_json::json;
use tower::{Service, ServiceExt};

use super::*;
use crate::context::{LocalAddr, PeerIdentity, Principal, RemoteAddr};

type Inner = tower::util::BoxCloneService<Request<()>, Response<&'static str>, BoxError>;

fn counting() -> (Inner, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let svc = tower::service_fn(move |_req: Request<()>| {
        c.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, BoxError>(Response::new("ok")) }
    });
    (tower::util::BoxCloneService::new(svc), calls)
}

fn policy(name: &str, action: AuthzAction, rules: Vec<AuthzRule>) -> AuthzPolicy {
    AuthzPolicy {
        origin: Origin {
            kind: "AuthorizationPolicy".into(),
            name: name.into(),
            namespace: "default".into(),
            ..Origin::default()
        },
        selector: WorkloadSelector::default(),
        action,
        provider: (action == AuthzAction::Custom).then(|| "ext".to_string()),
        rules,
        dry_run: false,
    }
}

fn to(op: Operation) -> AuthzRule {
    AuthzRule {
        to: vec![op],
        ..AuthzRule::default()
    }
}

fn from(src: Source) -> AuthzRule {
    AuthzRule {
        from: vec![src],
        ..AuthzRule::default()
    }
}

fn when(key: ConditionKey, values: &[&str], not_values: &[&str]) -> AuthzRule {
    AuthzRule {
        when: vec![Condition {
            key,
            values: values.iter().map(|s| s.to_string()).collect(),
            not_values: not_values.iter().map(|s| s.to_string()).collect(),
        }],
        ..AuthzRule::default()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

struct Req(Request<()>);

impl Req {
    fn get(path: &str) -> Self {
        let mut req = Request::get(path)
            .header("host", "Example.com:8080")
            .body(())
            .unwrap_or_default();
        req.extensions_mut()
            .insert(RemoteAddr(SocketAddr::from(([10, 1, 2, 3], 5555))));
        req.extensions_mut()
            .insert(LocalAddr(SocketAddr::from(([127, 0, 0, 1], 8080))));
        Req(req)
    }
    fn method(mut self, m: http::Method) -> Self {
        *self.0.method_mut() = m;
        self
    }
    fn header(mut self, k: &'static str, v: &'static str) -> Self {
        self.0
            .headers_mut()
            .append(k, http::HeaderValue::from_static(v));
        self
    }
    fn source(mut self, ip: [u8; 4]) -> Self {
        self.0
            .extensions_mut()
            .insert(RemoteAddr(SocketAddr::from((ip, 5555))));
        self
    }
    fn auth(mut self, principal: &str, claims: serde_json::Value) -> Self {
        let mut claims = claims.as_object().cloned().unwrap_or_default();
        let (iss, sub) = principal.rsplit_once('/').unwrap();
        claims.insert("iss".into(), iss.into());
        claims.insert("sub".into(), sub.into());
        claims.entry("aud").or_insert("api".into());
        claims.entry("azp").or_insert("web-app".into());
        let p = Principal::from_claims(claims.into());
        assert_eq!(p.principal(), principal);
        self.0.extensions_mut().insert(p);
        self
    }
    fn peer(mut self, p: &str) -> Self {
        self.0.extensions_mut().insert(PeerIdentity(p.into()));
        self
    }
}

/// Runs one request; `Ok(true)` when it reached the inner service.
async fn run_with(layer: AuthorizationLayer, req: Req) -> Result<bool, BoxError> {
    let (inner, calls) = counting();
    let mut svc = tower::Layer::layer(&layer, inner);
    let res = svc.ready().await?.call(req.0).await;
    let reached = calls.load(Ordering::SeqCst) == 1;
    match res {
        Ok(_) => {
            assert!(reached);
            Ok(true)
        }
        Err(e) => {
            assert!(!reached, "a denied request must not reach the service");
            Err(e)
        }
    }
}

async fn allowed(policies: &[AuthzPolicy], req: Req) -> bool {
    let engine = AuthzEngine::new(policies).unwrap_or_else(|e| panic!("{e}"));
    match run_with(AuthorizationLayer::new(engine), req).await {
        Ok(r) => r,
        Err(e) => {
            assert!(e.downcast_ref::<Denied>().is_some(), "unexpected error {e}");
            false
        }
    }
}

#[tokio::test]
async fn no_policy_allows() {
    assert!(allowed(&[], Req::get("/")).await);
}

#[tokio::test]
async fn allow_policy_without_rules_denies_all_and_empty_rule_allows_all() {
    assert!(!allowed(&[policy("none", AuthzAction::Allow, vec![])], Req::get("/")).await);
    assert!(
        allowed(
            &[policy(
                "all",
                AuthzAction::Allow,
                vec![AuthzRule::default()]
            )],
            Req::get("/")
        )
        .await
    );
}

#[tokio::test]
async fn allow_policies_that_do_not_match_deny() {
    let p = policy(
        "get",
        AuthzAction::Allow,
        vec![to(Operation {
            methods: strings(&["GET"]),
            ..Default::default()
        })],
    );
    assert!(allowed(std::slice::from_ref(&p), Req::get("/")).await);
    assert!(!allowed(&[p], Req::get("/").method(http::Method::POST)).await);
}

#[tokio::test]
async fn deny_wins_over_allow() {
    let allow = policy("all", AuthzAction::Allow, vec![AuthzRule::default()]);
    let deny = policy(
        "admin",
        AuthzAction::Deny,
        vec![to(Operation {
            paths: strings(&["/admin/*"]),
            ..Default::default()
        })],
    );
    assert!(allowed(&[allow.clone(), deny.clone()], Req::get("/public")).await);
    let engine = AuthzEngine::new([&allow, &deny]).unwrap_or_default();
    let err = run_with(AuthorizationLayer::new(engine), Req::get("/admin/x"))
        .await
        .err();
    let denied = err.as_ref().and_then(|e| e.downcast_ref::<Denied>());
    assert_eq!(denied.and_then(|d| d.policy()), Some("default/admin"));
    assert_eq!(denied.map(|d| d.status()), Some(StatusCode::FORBIDDEN));
}

#[tokio::test]
async fn paths_exact_prefix_suffix_and_any() {
    let allow = |paths: &[&str]| {
        [policy(
            "p",
            AuthzAction::Allow,
            vec![to(Operation {
                paths: strings(paths),
                ..Default::default()
            })],
        )]
    };
    assert!(allowed(&allow(&["/exact"]), Req::get("/exact?q=1")).await);
    assert!(!allowed(&allow(&["/exact"]), Req::get("/exact/more")).await);
    assert!(allowed(&allow(&["/api/*"]), Req::get("/api/users")).await);
    assert!(!allowed(&allow(&["/api/*"]), Req::get("/apix")).await);
    assert!(allowed(&allow(&["*.html"]), Req::get("/index.html")).await);
    assert!(allowed(&allow(&["*"]), Req::get("/anything")).await);
    let not = [policy(
        "p",
        AuthzAction::Allow,
        vec![to(Operation {
            not_paths: strings(&["/private*"]),
            ..Default::default()
        })],
    )];
    assert!(allowed(&not, Req::get("/public")).await);
    assert!(!allowed(&not, Req::get("/private/x")).await);
}

#[tokio::test]
async fn hosts_are_case_insensitive_with_wildcards_and_ports() {
    let op = |hosts: &[&str], not_hosts: &[&str]| {
        [policy(
            "h",
            AuthzAction::Allow,
            vec![to(Operation {
                hosts: strings(hosts),
                not_hosts: strings(not_hosts),
                ..Default::default()
            })],
        )]
    };
    assert!(allowed(&op(&["example.COM"], &[]), Req::get("/")).await);
    assert!(allowed(&op(&["*.com"], &[]), Req::get("/")).await);
    assert!(allowed(&op(&["example.com:8080"], &[]), Req::get("/")).await);
    assert!(!allowed(&op(&["other.com"], &[]), Req::get("/")).await);
    assert!(!allowed(&op(&[], &["EXAMPLE.*"]), Req::get("/")).await);
}

#[tokio::test]
async fn methods_and_ports() {
    let op = |o: Operation| [policy("o", AuthzAction::Allow, vec![to(o)])];
    assert!(
        !allowed(
            &op(Operation {
                not_methods: strings(&["GET"]),
                ..Default::default()
            }),
            Req::get("/")
        )
        .await
    );
    assert!(
        allowed(
            &op(Operation {
                ports: vec![8080],
                ..Default::default()
            }),
            Req::get("/")
        )
        .await
    );
    assert!(
        !allowed(
            &op(Operation {
                ports: vec![9090],
                ..Default::default()
            }),
            Req::get("/")
        )
        .await
    );
    assert!(
        !allowed(
            &op(Operation {
                not_ports: vec![8080],
                ..Default::default()
            }),
            Req::get("/")
        )
        .await
    );
}

#[tokio::test]
async fn ip_blocks_and_remote_ip_blocks() {
    let src = |s: Source| [policy("ip", AuthzAction::Allow, vec![from(s)])];
    let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        allowed(
            &src(Source {
                ip_blocks: vec![net("10.0.0.0/8")],
                ..Default::default()
            }),
            Req::get("/")
        )
        .await
    );
    assert!(
        !allowed(
            &src(Source {
                ip_blocks: vec![net("10.0.0.0/8")],
                ..Default::default()
            }),
            Req::get("/").source([192, 168, 0, 1])
        )
        .await
    );
    assert!(
        !allowed(
            &src(Source {
                not_ip_blocks: vec![net("10.1.2.3/32")],
                ..Default::default()
            }),
            Req::get("/")
        )
        .await
    );
    // numTrustedProxies = 0: remote.ip is the connection's peer.
    assert!(
        allowed(
            &src(Source {
                remote_ip_blocks: vec![net("10.1.0.0/16")],
                ..Default::default()
            }),
            Req::get("/").header("x-forwarded-for", "8.8.8.8")
        )
        .await
    );
    assert!(
        !allowed(
            &src(Source {
                not_remote_ip_blocks: vec![net("10.1.0.0/16")],
                ..Default::default()
            }),
            Req::get("/")
        )
        .await
    );
    // One trusted proxy: remote.ip is the address it appended.
    let engine = AuthzEngine::new(&src(Source {
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
    let p = [policy(
        "rp",
        AuthzAction::Allow,
        vec![from(Source {
            request_principals: strings(&["https://issuer/*"]),
            ..Default::default()
        })],
    )];
    assert!(!allowed(&p, Req::get("/")).await);
    assert!(allowed(&p, Req::get("/").auth("https://issuer/alice", json!({}))).await);
    assert!(!allowed(&p, Req::get("/").auth("https://other/alice", json!({}))).await);
    // `requestPrincipals: ["*"]` is Istio's "any authenticated user".
    let any = [policy(
        "any",
        AuthzAction::Allow,
        vec![from(Source {
            request_principals: strings(&["*"]),
            ..Default::default()
        })],
    )];
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
    let p = [policy(
        "peer",
        AuthzAction::Allow,
        vec![from(Source {
            principals: strings(&["cluster.local/ns/default/sa/sleep"]),
            ..Default::default()
        })],
    )];
    assert!(!allowed(&p, Req::get("/")).await);
    assert!(allowed(&p, Req::get("/").peer("cluster.local/ns/default/sa/sleep")).await);
    let ns = [policy(
        "ns",
        AuthzAction::Allow,
        vec![from(Source {
            namespaces: strings(&["test"]),
            ..Default::default()
        })],
    )];
    assert!(allowed(&ns, Req::get("/").peer("cluster.local/ns/test/sa/x")).await);
    assert!(!allowed(&ns, Req::get("/").peer("cluster.local/ns/prod/sa/x")).await);
    let not_ns = [policy(
        "nn",
        AuthzAction::Allow,
        vec![from(Source {
            not_namespaces: strings(&["prod"]),
            ..Default::default()
        })],
    )];
    assert!(allowed(&not_ns, Req::get("/")).await);
    assert!(!allowed(&not_ns, Req::get("/").peer("cluster.local/ns/prod/sa/x")).await);
    let not_p = [policy(
        "np",
        AuthzAction::Allow,
        vec![from(Source {
            not_principals: strings(&["*/sa/bad"]),
            ..Default::default()
        })],
    )];
    assert!(!allowed(&not_p, Req::get("/").peer("cluster.local/ns/a/sa/bad")).await);
}

#[tokio::test]
async fn conditions_on_claims_including_nested_and_lists() {
    let claims = json!({"groups": ["dev", "admin"], "realm": {"roles": ["reader"]}, "email_verified": true, "iss": "https://issuer"});
    let req = || Req::get("/").auth("https://issuer/alice", claims.clone());
    let c = |key: &[&str], v: &[&str], nv: &[&str]| {
        [policy(
            "c",
            AuthzAction::Allow,
            vec![when(ConditionKey::Claim(strings(key)), v, nv)],
        )]
    };
    assert!(allowed(&c(&["groups"], &["admin"], &[]), req()).await);
    assert!(!allowed(&c(&["groups"], &["ops"], &[]), req()).await);
    assert!(allowed(&c(&["realm", "roles"], &["read*"], &[]), req()).await);
    assert!(!allowed(&c(&["realm", "missing"], &["x"], &[]), req()).await);
    assert!(allowed(&c(&["iss"], &["https://issuer"], &[]), req()).await);
    assert!(allowed(&c(&["email_verified"], &["true"], &[]), req()).await);
    assert!(!allowed(&c(&["groups"], &[], &["dev"]), req()).await);
    assert!(allowed(&c(&["groups"], &[], &["ops"]), req()).await);
    assert!(!allowed(&c(&["groups"], &["admin"], &[]), Req::get("/")).await);
}

#[tokio::test]
async fn conditions_on_request_attributes() {
    let req = || {
        Req::get("/")
            .auth("iss/alice", json!({}))
            .header("x-tenant", "acme")
            .peer("cluster.local/ns/test/sa/web")
    };
    let cases: Vec<(ConditionKey, &str, &str)> = vec![
        (ConditionKey::RequestPrincipal, "iss/alice", "iss/bob"),
        (ConditionKey::Audiences, "api", "other"),
        (ConditionKey::Presenter, "web-*", "cli"),
        (ConditionKey::Header("x-tenant".into()), "ac*", "other"),
        (ConditionKey::SourceIp, "10.1.0.0/16", "10.2.0.0/16"),
        (ConditionKey::RemoteIp, "10.1.2.3", "10.1.2.4"),
        (ConditionKey::DestinationIp, "127.0.0.1", "127.0.0.2"),
        (ConditionKey::DestinationPort, "8080", "9090"),
        (ConditionKey::SourceNamespace, "test", "prod"),
        (ConditionKey::SourcePrincipal, "*/sa/web", "*/sa/db"),
    ];
    for (key, yes, no) in cases {
        let p = |v: &str| {
            [policy(
                "w",
                AuthzAction::Allow,
                vec![when(key.clone(), &[v], &[])],
            )]
        };
        assert!(
            allowed(&p(yes), req()).await,
            "{key:?} = {yes} should match"
        );
        assert!(
            !allowed(&p(no), req()).await,
            "{key:?} = {no} should not match"
        );
        let n = [policy(
            "w",
            AuthzAction::Allow,
            vec![when(key.clone(), &[], &[yes])],
        )];
        assert!(
            !allowed(&n, req()).await,
            "{key:?} notValues {yes} should refuse"
        );
    }
    let sni = [policy(
        "sni",
        AuthzAction::Allow,
        vec![when(ConditionKey::ConnectionSni, &["*"], &[])],
    )];
    assert!(!allowed(&sni, req()).await, "no TLS, no SNI");
}

#[tokio::test]
async fn every_field_of_a_rule_must_match() {
    let rule = AuthzRule {
        from: vec![Source {
            request_principals: strings(&["*"]),
            ..Default::default()
        }],
        to: vec![Operation {
            methods: strings(&["GET"]),
            ..Default::default()
        }],
        when: vec![Condition {
            key: ConditionKey::Header("x-a".into()),
            values: strings(&["1"]),
            not_values: vec![],
        }],
    };
    let p = [policy("all", AuthzAction::Allow, vec![rule])];
    assert!(allowed(&p, Req::get("/").auth("i/s", json!({})).header("x-a", "1")).await);
    assert!(!allowed(&p, Req::get("/").auth("i/s", json!({}))).await);
    assert!(!allowed(&p, Req::get("/").header("x-a", "1")).await);
    assert!(
        !allowed(
            &p,
            Req::get("/")
                .auth("i/s", json!({}))
                .header("x-a", "1")
                .method(http::Method::PUT)
        )
        .await
    );
}

#[tokio::test]
async fn audit_never_decides() {
    let audit = policy("audit", AuthzAction::Audit, vec![AuthzRule::default()]);
    assert!(allowed(std::slice::from_ref(&audit), Req::get("/")).await);
    let allow_none = policy("none", AuthzAction::Allow, vec![]);
    assert!(!allowed(&[audit, allow_none], Req::get("/")).await);
}

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

#[tokio::test]
async fn workload_selection_by_namespace_and_labels() {
    let mut labels = Labels::new();
    labels.insert("app".into(), "service1".into());
    let mut selected = policy("sel", AuthzAction::Allow, vec![]);
    selected
        .selector
        .match_labels
        .insert("app".into(), "service1".into());
    let mut other = policy("other", AuthzAction::Allow, vec![]);
    other
        .selector
        .match_labels
        .insert("app".into(), "service2".into());
    let mut elsewhere = policy("ns", AuthzAction::Allow, vec![]);
    elsewhere.origin.namespace = "prod".into();
    let mut root = policy("root", AuthzAction::Deny, vec![]);
    root.origin.namespace = ROOT_NAMESPACE.into();
    let all = [selected, other, elsewhere, root];
    let engine = AuthzEngine::for_workload(&all, "default", &labels).unwrap_or_default();
    let names: Vec<_> = engine.policies().collect();
    assert_eq!(
        names,
        vec![
            (AuthzAction::Deny, "istio-system/root"),
            (AuthzAction::Allow, "default/sel")
        ]
    );
}

#[tokio::test]
async fn policies_swap_without_rebuilding_the_service() {
    let cell = Arc::new(arc_swap::ArcSwap::from_pointee(AuthzEngine::allow_all()));
    let (inner, _) = counting();
    let mut svc = tower::Layer::layer(&AuthorizationLayer::shared(cell.clone()), inner);
    assert!(svc.ready().await.is_ok_and(|_| true));
    assert!(svc.call(Req::get("/").0).await.is_ok());
    cell.store(Arc::new(
        AuthzEngine::new([&policy("none", AuthzAction::Allow, vec![])]).unwrap_or_default(),
    ));
    let res = svc.ready().await;
    assert!(res.is_ok());
    assert!(svc.call(Req::get("/").0).await.is_err());
}

#[test]
fn hand_built_policies_with_bad_values_are_refused() {
    let bad = policy(
        "bad",
        AuthzAction::Allow,
        vec![when(ConditionKey::SourceIp, &["nope"], &[])],
    );
    assert!(AuthzEngine::new([&bad]).is_err());
    let mut custom = policy("c", AuthzAction::Custom, vec![]);
    custom.provider = None;
    assert!(AuthzEngine::new([&custom]).is_err());
}

mod claims_and_templates;
mod dry_run;
