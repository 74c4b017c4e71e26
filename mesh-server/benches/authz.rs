//! Authorization cost per request: a workload with 50 ALLOW rules (the match is the last one),
//! evaluated directly and through the layer.

use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use mesh_core::policy::{
    AuthzAction, AuthzPolicy, AuthzRule, Condition, ConditionKey, Operation, Origin, Source,
};
use mesh_server::RemoteAddr;
use mesh_server::authz::{AuthorizationLayer, AuthzEngine};
use mesh_server::context::Principal;
use tower::{Layer, ServiceExt};

fn policies() -> Vec<AuthzPolicy> {
    let rules = (0..50)
        .map(|i| AuthzRule {
            from: vec![Source {
                request_principals: vec![format!("https://issuer/{i}*")],
                ..Source::default()
            }],
            to: vec![Operation {
                methods: vec!["GET".into(), "POST".into()],
                paths: vec![format!("/svc{i}/*")],
                ..Operation::default()
            }],
            when: vec![Condition {
                key: ConditionKey::Header("x-tenant".into()),
                values: vec!["acme".into()],
                not_values: vec![],
            }],
        })
        .collect();
    let deny = AuthzPolicy {
        origin: Origin {
            name: "deny".into(),
            namespace: "default".into(),
            ..Origin::default()
        },
        selector: Default::default(),
        action: AuthzAction::Deny,
        provider: None,
        rules: vec![AuthzRule {
            from: vec![Source {
                ip_blocks: vec!["10.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))],
                ..Source::default()
            }],
            ..AuthzRule::default()
        }],
        dry_run: false,
    };
    let allow = AuthzPolicy {
        origin: Origin {
            name: "allow".into(),
            namespace: "default".into(),
            ..Origin::default()
        },
        selector: Default::default(),
        action: AuthzAction::Allow,
        provider: None,
        rules,
        dry_run: false,
    };
    vec![deny, allow]
}

fn request(path: &str) -> Request<()> {
    let mut req = Request::get(path)
        .header("x-tenant", "acme")
        .header("host", "service1")
        .body(())
        .unwrap_or_default();
    req.extensions_mut()
        .insert(RemoteAddr(SocketAddr::from(([127, 0, 0, 1], 40000))));
    req.extensions_mut().insert(Principal::from_claims(
        serde_json::json!({"iss": "https://issuer", "sub": "49-alice"}),
    ));
    req
}

fn bench(c: &mut Criterion) {
    let engine = AuthzEngine::new(&policies()).unwrap_or_else(|e| panic!("{e}"));
    let hit = request("/svc49/items");
    let miss = request("/nowhere");
    assert!(engine.allows(&hit, 0));
    assert!(!engine.allows(&miss, 0));
    let mut g = c.benchmark_group("authz");
    g.bench_function("evaluate_50_rules_last_matches", |b| {
        b.iter(|| black_box(engine.allows(black_box(&hit), 0)))
    });
    g.bench_function("evaluate_50_rules_none_matches", |b| {
        b.iter(|| black_box(engine.allows(black_box(&miss), 0)))
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let inner =
        tower::service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
    let svc = AuthorizationLayer::new(engine.clone()).layer(inner);
    g.bench_function("layer_50_rules_allowed", |b| {
        b.to_async(&rt).iter(|| {
            let svc = svc.clone();
            async move {
                let mut req = Request::get("/svc49/items")
                    .header("x-tenant", "acme")
                    .body(())
                    .unwrap_or_default();
                req.extensions_mut()
                    .insert(RemoteAddr(SocketAddr::from(([127, 0, 0, 1], 40000))));
                req.extensions_mut().insert(Principal::from_claims(
                    serde_json::json!({"iss": "https://issuer", "sub": "49-alice"}),
                ));
                black_box(svc.oneshot(req).await.is_ok())
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
