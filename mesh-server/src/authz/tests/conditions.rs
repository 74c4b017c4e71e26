//! `when` conditions: on JWT claims (nested, lists) and on request attributes.

use super::*;

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
