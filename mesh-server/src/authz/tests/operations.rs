//! `to` operations: paths, hosts, methods and ports, and a rule whose fields must all match.

use super::*;

#[tokio::test]
async fn paths_exact_prefix_suffix_and_any() {
    let allow = |paths: &[&str]| {
        allow_to(Operation {
            paths: strings(paths),
            ..Default::default()
        })
    };
    assert!(allowed(&allow(&["/exact"]), Req::get("/exact?q=1")).await);
    assert!(!allowed(&allow(&["/exact"]), Req::get("/exact/more")).await);
    assert!(allowed(&allow(&["/api/*"]), Req::get("/api/users")).await);
    assert!(!allowed(&allow(&["/api/*"]), Req::get("/apix")).await);
    assert!(allowed(&allow(&["*.html"]), Req::get("/index.html")).await);
    assert!(allowed(&allow(&["*"]), Req::get("/anything")).await);
    let not = allow_to(Operation {
        not_paths: strings(&["/private*"]),
        ..Default::default()
    });
    assert!(allowed(&not, Req::get("/public")).await);
    assert!(!allowed(&not, Req::get("/private/x")).await);
}

#[tokio::test]
async fn hosts_are_case_insensitive_with_wildcards_and_ports() {
    let op = |hosts: &[&str], not_hosts: &[&str]| {
        allow_to(Operation {
            hosts: strings(hosts),
            not_hosts: strings(not_hosts),
            ..Default::default()
        })
    };
    assert!(allowed(&op(&["example.COM"], &[]), Req::get("/")).await);
    assert!(allowed(&op(&["*.com"], &[]), Req::get("/")).await);
    assert!(allowed(&op(&["example.com:8080"], &[]), Req::get("/")).await);
    assert!(!allowed(&op(&["other.com"], &[]), Req::get("/")).await);
    assert!(!allowed(&op(&[], &["EXAMPLE.*"]), Req::get("/")).await);
}

#[tokio::test]
async fn methods_and_ports() {
    let cases = [
        (
            Operation {
                not_methods: strings(&["GET"]),
                ..Default::default()
            },
            false,
        ),
        (
            Operation {
                ports: vec![8080],
                ..Default::default()
            },
            true,
        ),
        (
            Operation {
                ports: vec![9090],
                ..Default::default()
            },
            false,
        ),
        (
            Operation {
                not_ports: vec![8080],
                ..Default::default()
            },
            false,
        ),
    ];
    for (op, allow) in cases {
        let what = format!("{op:?}");
        assert_eq!(allowed(&allow_to(op), Req::get("/")).await, allow, "{what}");
    }
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
