use super::*;
use crate::compile::NoLines;
use crate::diag::{Diagnostic, Severity};
use crate::policy::Origin;

fn run(yaml: &str) -> (Option<AuthzPolicy>, Vec<Diagnostic>) {
    let spec: AuthorizationPolicySpec = match yaml_serde::from_str(yaml) {
        Ok(s) => s,
        Err(e) => panic!("bad test yaml: {e}"),
    };
    let mut diags = Vec::new();
    let origin = Origin {
        kind: "AuthorizationPolicy".into(),
        name: "p".into(),
        namespace: "foo".into(),
        ..Origin::default()
    };
    let lines = NoLines(1);
    let mut cx = Cx::new(origin, &lines, &mut diags);
    let out = compile(&spec, &mut cx);
    (out, diags)
}

fn errors(yaml: &str) -> Vec<String> {
    let (out, diags) = run(yaml);
    let errs: Vec<String> = diags
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.message)
        .collect();
    assert!(
        out.is_none() || errs.is_empty(),
        "a policy with errors must not compile"
    );
    errs
}

fn ok(yaml: &str) -> AuthzPolicy {
    let (out, diags) = run(yaml);
    assert!(
        diags.iter().all(|d| d.severity != Severity::Error),
        "unexpected errors: {diags:?}"
    );
    out.unwrap_or_else(|| panic!("policy did not compile"))
}

#[test]
fn full_policy_compiles() {
    let p = ok(r#"
selector: {matchLabels: {app: httpbin, version: v1}}
action: DENY
rules:
- from:
  - source: {principals: ["cluster.local/ns/default/sa/sleep"], notNamespaces: ["prod"]}
  - source: {ipBlocks: ["10.0.0.0/8", "192.168.1.1"], notRemoteIpBlocks: ["::1"]}
  to:
  - operation: {methods: ["GET"], paths: ["/info*", "*.html"], ports: ["8080", 9090], hosts: ["Example.COM"]}
  when:
  - key: request.auth.claims[groups]
    values: ["admin"]
  - key: request.auth.claims[realm][roles]
    notValues: ["guest"]
  - key: request.headers[X-Tenant]
    values: ["a*"]
  - key: destination.port
    values: ["8080"]
"#);
    assert_eq!(p.action, AuthzAction::Deny);
    assert_eq!(
        p.selector.match_labels.get("app").map(String::as_str),
        Some("httpbin")
    );
    let rule = &p.rules[0];
    assert_eq!(rule.from.len(), 2);
    assert_eq!(rule.from[1].ip_blocks.len(), 2);
    assert_eq!(rule.from[1].ip_blocks[1].to_string(), "192.168.1.1/32");
    assert_eq!(rule.to[0].ports, vec![8080, 9090]);
    assert_eq!(rule.to[0].hosts, vec!["example.com".to_string()]);
    assert_eq!(rule.when[0].key, ConditionKey::Claim(vec!["groups".into()]));
    assert_eq!(
        rule.when[1].key,
        ConditionKey::Claim(vec!["realm".into(), "roles".into()])
    );
    assert_eq!(rule.when[2].key, ConditionKey::Header("x-tenant".into()));
    assert_eq!(rule.when[3].key, ConditionKey::DestinationPort);
}

#[test]
fn rules_absent_and_one_empty_rule_differ() {
    assert!(ok("action: ALLOW").rules.is_empty());
    assert_eq!(ok("rules: [{}]").rules, vec![AuthzRule::default()]);
    assert_eq!(ok("{}").action, AuthzAction::Allow);
}

#[test]
fn unknown_action_is_named() {
    let errs = errors("action: PERMIT");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].contains("spec.action") && errs[0].contains("PERMIT"),
        "{errs:?}"
    );
}

#[test]
fn custom_needs_a_provider_and_others_refuse_one() {
    assert!(
        errors("action: CUSTOM")
            .iter()
            .any(|e| e.contains("spec.provider.name"))
    );
    assert_eq!(
        ok("action: CUSTOM\nprovider: {name: ext}\nrules: [{}]")
            .provider
            .as_deref(),
        Some("ext")
    );
    assert!(
        errors("action: DENY\nprovider: {name: ext}")
            .iter()
            .any(|e| e.contains("spec.provider"))
    );
}

#[test]
fn target_refs_are_unsupported() {
    let errs = errors("targetRefs: [{kind: Gateway, name: gw}]");
    assert!(
        errs.iter()
            .any(|e| e.contains("spec.targetRefs") && e.contains("not supported")),
        "{errs:?}"
    );
    assert!(
        errors("targetRef: {kind: Service, name: a}")
            .iter()
            .any(|e| e.contains("spec.targetRef:"))
    );
}

#[test]
fn bad_cidr_port_and_wildcard_are_reported_with_their_path() {
    let errs = errors(
        r#"
rules:
- from: [{source: {ipBlocks: ["10.0.0.0/33"]}}]
  to: [{operation: {ports: ["0", "http"], paths: ["/a*b*"]}}]
"#,
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.rules[0].from[0].source.ipBlocks[0]")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.rules[0].to[0].operation.ports[0]")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.rules[0].to[0].operation.ports[1]")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.rules[0].to[0].operation.paths[0]")),
        "{errs:?}"
    );
}

#[test]
fn condition_keys() {
    let cases = [
        (
            "request.auth.principal",
            Some(ConditionKey::RequestPrincipal),
        ),
        ("request.auth.audiences", Some(ConditionKey::Audiences)),
        ("request.auth.presenter", Some(ConditionKey::Presenter)),
        ("source.ip", None),
        ("remote.ip", None),
        ("source.namespace", Some(ConditionKey::SourceNamespace)),
        ("source.principal", Some(ConditionKey::SourcePrincipal)),
        ("connection.sni", Some(ConditionKey::ConnectionSni)),
    ];
    for (key, expected) in cases {
        let value = if expected.is_none() { "10.0.0.1" } else { "x" };
        let p = ok(&format!(
            "rules: [{{when: [{{key: {key}, values: [\"{value}\"]}}]}}]"
        ));
        if let Some(k) = expected {
            assert_eq!(p.rules[0].when[0].key, k);
        }
    }
    let unknown = errors("rules: [{when: [{key: request.body, values: [x]}]}]");
    assert!(
        unknown
            .iter()
            .any(|e| e.contains("spec.rules[0].when[0].key") && e.contains("request.body"))
    );
    let experimental =
        errors(r#"rules: [{when: [{key: "experimental.envoy.filters.x[y]", values: [x]}]}]"#);
    assert!(
        experimental.iter().any(|e| e.contains("not supported")),
        "{experimental:?}"
    );
    for bad in [
        "request.auth.claims",
        "request.auth.claims[]",
        "request.auth.claims[a",
        "request.headers[a][b]",
    ] {
        let errs = errors(&format!(
            "rules: [{{when: [{{key: \"{bad}\", values: [x]}}]}}]"
        ));
        assert!(errs.iter().any(|e| e.contains(".key")), "{bad}: {errs:?}");
    }
    assert!(
        errors("rules: [{when: [{key: source.ip, values: [nope]}]}]")
            .iter()
            .any(|e| e.contains("values[0]"))
    );
    assert!(
        errors("rules: [{when: [{key: source.namespace}]}]")
            .iter()
            .any(|e| e.contains("notValues"))
    );
}

#[test]
fn empty_lists_and_empty_sources_are_refused() {
    assert!(
        errors("rules: [{from: []}]")
            .iter()
            .any(|e| e.starts_with("spec.rules[0].from"))
    );
    assert!(
        errors("rules: [{from: [{}]}]")
            .iter()
            .any(|e| e.contains("source: is required"))
    );
    assert!(
        errors("rules: [{from: [{source: {}}]}]")
            .iter()
            .any(|e| e.contains("must not be empty"))
    );
    assert!(
        errors("rules: [{to: [{operation: {}}]}]")
            .iter()
            .any(|e| e.contains("must not be empty"))
    );
}

#[test]
fn service_accounts_become_principals() {
    let p = ok(
        "rules: [{from: [{source: {serviceAccounts: [sleep, other/web], notServiceAccounts: [bad]}}]}]",
    );
    let s = &p.rules[0].from[0];
    assert_eq!(
        s.principals,
        vec![
            "cluster.local/ns/foo/sa/sleep",
            "cluster.local/ns/other/sa/web"
        ]
    );
    assert_eq!(s.not_principals, vec!["cluster.local/ns/foo/sa/bad"]);
    let errs = errors("rules: [{from: [{source: {serviceAccounts: [a], principals: [b]}}]}]");
    assert!(
        errs.iter().any(|e| e.contains("serviceAccounts")),
        "{errs:?}"
    );
}

#[test]
fn path_templates_follow_istio_rules() {
    for ok in ["/foo/{*}", "/foo/{**}/", "/foo/{*}/bar/{**}", "/{**}"] {
        assert!(check_template(ok).is_ok(), "{ok}");
    }
    for (bad, why) in [
        (
            "/*/baz/{*}",
            "`*` is not allowed in a path template outside",
        ),
        (
            "/**/baz/{*}",
            "`*` is not allowed in a path template outside",
        ),
        ("/{**}/foo/{*}", "`{**}` must be the last operator"),
        ("/foo/{*}.txt", "must be exactly `{*}` or `{**}`"),
        ("/foo/{name}", "must be exactly `{*}` or `{**}`"),
        ("foo/{*}", "must start with `/`"),
    ] {
        let err = check_template(bad).expect_err(bad);
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn pseudo_header_keys() {
    assert!(matches!(
        parse_key("request.headers[:method]"),
        Ok(ConditionKey::Header(h)) if h == ":method"
    ));
    assert!(matches!(
        parse_key("request.headers[:path]"),
        Ok(ConditionKey::Header(h)) if h == ":path"
    ));
    match parse_key("request.headers[:status]") {
        Err(KeyError::Bad(m)) => assert!(m.contains("is not a pseudo-header"), "{m}"),
        _ => panic!(":status must be refused"),
    }
}
