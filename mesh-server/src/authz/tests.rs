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

/// One ALLOW policy whose one rule is `to: [op]`.
fn allow_to(op: Operation) -> [AuthzPolicy; 1] {
    [policy("to", AuthzAction::Allow, vec![to(op)])]
}

/// One ALLOW policy whose one rule is `from: [src]`.
fn allow_from(src: Source) -> [AuthzPolicy; 1] {
    [policy("from", AuthzAction::Allow, vec![from(src)])]
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
async fn audit_never_decides() {
    let audit = policy("audit", AuthzAction::Audit, vec![AuthzRule::default()]);
    assert!(allowed(std::slice::from_ref(&audit), Req::get("/")).await);
    let allow_none = policy("none", AuthzAction::Allow, vec![]);
    assert!(!allowed(&[audit, allow_none], Req::get("/")).await);
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
mod conditions;
mod custom;
mod dry_run;
mod operations;
mod sources;
