//! Space-delimited claims (`scope`, `permission` and a rule's `spaceDelimitedClaims`, matched
//! word by word) and path templates (`{*}`, `{**}`).

use super::*;

fn with_claims(extra: &[&str]) -> Req {
    let claims = json!({
        "iss": "https://issuer", "sub": "alice",
        "scope": "read write",
        "custom_scope": "billing:read billing:write",
        "provider": {"login": {"scope": "openid email"}},
        "plain": "a b",
    });
    let mut req = Req::get("/");
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    req.0
        .extensions_mut()
        .insert(Principal::with_space_delimited_claims(claims, extra));
    req
}

fn claim_is(key: &[&str], value: &str) -> [AuthzPolicy; 1] {
    [policy(
        "c",
        AuthzAction::Allow,
        vec![when(ConditionKey::Claim(strings(key)), &[value], &[])],
    )]
}

#[tokio::test]
async fn scope_is_always_matched_word_by_word() {
    assert!(allowed(&claim_is(&["scope"], "write"), with_claims(&[])).await);
    assert!(allowed(&claim_is(&["scope"], "read write"), with_claims(&[])).await);
    assert!(!allowed(&claim_is(&["scope"], "admin"), with_claims(&[])).await);
    // any other claim is one string unless the rule names it
    assert!(!allowed(&claim_is(&["plain"], "a"), with_claims(&[])).await);
    assert!(
        !allowed(
            &claim_is(&["custom_scope"], "billing:write"),
            with_claims(&[])
        )
        .await
    );
}

#[tokio::test]
async fn space_delimited_claims_of_the_rule_are_split_including_nested_ones() {
    let names = ["custom_scope", "provider.login.scope"];
    assert!(
        allowed(
            &claim_is(&["custom_scope"], "billing:write"),
            with_claims(&names)
        )
        .await
    );
    assert!(
        allowed(
            &claim_is(&["provider", "login", "scope"], "email"),
            with_claims(&names)
        )
        .await
    );
    assert!(!allowed(&claim_is(&["plain"], "b"), with_claims(&names)).await);
}

#[tokio::test]
async fn path_templates_in_policies() {
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
    let one = allow(&["/users/{*}/orders"]);
    assert!(allowed(&one, Req::get("/users/42/orders?page=2")).await);
    assert!(!allowed(&one, Req::get("/users/42/7/orders")).await);
    let rest = allow(&["/static/{**}"]);
    assert!(allowed(&rest, Req::get("/static/css/site.css")).await);
    assert!(!allowed(&rest, Req::get("/other/css")).await);
}

#[tokio::test]
async fn when_keys_on_pseudo_headers_read_the_request_line() {
    let key = |name: &str| ConditionKey::Header(name.to_owned());
    let c = |name: &str, v: &str| {
        [policy(
            "c",
            AuthzAction::Allow,
            vec![when(key(name), &[v], &[])],
        )]
    };
    assert!(
        allowed(
            &c(":method", "POST"),
            Req::get("/").method(http::Method::POST)
        )
        .await
    );
    assert!(!allowed(&c(":method", "POST"), Req::get("/")).await);
    assert!(allowed(&c(":path", "/a?x=1"), Req::get("/a?x=1")).await);
    assert!(allowed(&c(":path", "/a*"), Req::get("/a?x=1")).await);
    assert!(allowed(&c(":authority", "Example.com:8080"), Req::get("/")).await);
    assert!(allowed(&c(":scheme", "http"), Req::get("/")).await);
}
