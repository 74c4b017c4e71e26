use super::*;
use crate::compile::NoLines;
use crate::diag::{Diagnostic, Severity};
use crate::policy::Origin;
use crate::policy::StringMatch;
use crate::spec::security::LegacyPolicySpec;

fn origin(kind: &str) -> Origin {
    Origin {
        kind: kind.into(),
        name: "p".into(),
        namespace: "default".into(),
        file: "f.yaml".into(),
        line: 1,
    }
}

fn ra(yaml: &str) -> (Option<AuthnPolicy>, Vec<Diagnostic>) {
    let spec: RequestAuthenticationSpec = yaml_serde::from_str(yaml).expect("test yaml parses");
    let mut diags = Vec::new();
    let lines = NoLines(1);
    let mut cx = Cx::new(origin("RequestAuthentication"), &lines, &mut diags);
    let out = compile(&spec, &mut cx);
    (out, diags)
}

fn legacy(yaml: &str) -> (Option<Vec<AuthnPolicy>>, Vec<Diagnostic>) {
    let (out, diags) = legacy_all(yaml);
    (out.map(|c| c.authentication), diags)
}

fn legacy_all(
    yaml: &str,
) -> (
    Option<crate::compile::legacy_policy::LegacyCompiled>,
    Vec<Diagnostic>,
) {
    let spec: LegacyPolicySpec = yaml_serde::from_str(yaml).expect("test yaml parses");
    let mut diags = Vec::new();
    let lines = NoLines(1);
    let mut cx = Cx::new(origin("Policy"), &lines, &mut diags);
    let out = crate::compile::legacy_policy::compile(&spec, &mut cx);
    (out, diags)
}

fn errors(d: &[Diagnostic]) -> Vec<String> {
    d.iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.message.clone())
        .collect()
}

const JWKS: &str = r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"k"}]}"#;

#[test]
fn full_rule_compiles() {
    let (p, d) = ra(r#"
selector: { matchLabels: { app: service1 } }
jwtRules:
  - issuer: https://issuer.example
    audiences: [a, b]
    jwksUri: https://issuer.example/jwks.json
    fromHeaders: [{ name: X-Jwt, prefix: "Bearer " }]
    fromParams: [tok]
    fromCookies: [session]
    outputPayloadToHeader: x-payload
    outputClaimToHeaders: [{ header: X-Sub, claim: sub }]
    forwardOriginalToken: true
    timeout: 1.5s
"#);
    assert!(errors(&d).is_empty(), "{d:?}");
    let p = p.expect("compiles");
    assert_eq!(
        p.selector.match_labels.get("app").map(String::as_str),
        Some("service1")
    );
    assert!(!p.require_token);
    let r = &p.rules[0];
    assert_eq!(r.issuer, "https://issuer.example");
    assert_eq!(r.audiences, ["a", "b"]);
    assert_eq!(
        r.jwks,
        JwksSource::Uri("https://issuer.example/jwks.json".into())
    );
    assert_eq!(r.from_headers, [("x-jwt".to_owned(), "Bearer ".to_owned())]);
    assert_eq!(r.from_params, ["tok"]);
    assert_eq!(r.from_cookies, ["session"]);
    assert_eq!(r.output_payload_to_header.as_deref(), Some("x-payload"));
    assert_eq!(
        r.output_claim_to_headers,
        [("x-sub".to_owned(), "sub".to_owned())]
    );
    assert!(r.forward_original_token);
    assert_eq!(r.timeout, Duration::from_millis(1500));
}

#[test]
fn defaults_apply() {
    let (p, d) = ra(&format!("jwtRules: [{{ issuer: i, jwks: '{JWKS}' }}]"));
    assert!(errors(&d).is_empty(), "{d:?}");
    let p = p.expect("compiles");
    assert!(p.selector.match_labels.is_empty());
    assert_eq!(p.rules[0].timeout, Duration::from_secs(5));
    assert!(matches!(p.rules[0].jwks, JwksSource::Inline(_)));
}

#[test]
fn rule_errors_name_the_field() {
    let cases: &[(&str, &str)] = &[
        (
            "jwtRules: [{ jwksUri: 'https://a/j' }]",
            "spec.jwtRules[0].issuer: is required",
        ),
        (
            "jwtRules: [{ issuer: i, jwksUri: '{YOUR_JWT_URI}' }]",
            "spec.jwtRules[0].jwksUri: \"{YOUR_JWT_URI}\" is not an http(s) url",
        ),
        (
            "jwtRules: [{ issuer: i, jwksUri: 'ftp://a/j' }]",
            "spec.jwtRules[0].jwksUri: \"ftp://a/j\" is not an http(s) url",
        ),
        (
            "jwtRules: [{ issuer: i, jwksUri: 'https://a/j', jwks: '{}' }]",
            "spec.jwtRules[0].jwks: cannot be set together with jwksUri",
        ),
        (
            "jwtRules: [{ issuer: i, jwks: 'not json' }]",
            "spec.jwtRules[0].jwks: is not valid json",
        ),
        (
            "jwtRules: [{ issuer: i, jwks: '{\"keys\": []}' }]",
            "spec.jwtRules[0].jwks: has no keys",
        ),
        (
            "jwtRules: [{ issuer: i }]",
            "spec.jwtRules[0].jwksUri: is required",
        ),
        (
            "jwtRules: [{ issuer: i, jwksUri: 'https://a/j', timeout: 5 }]",
            "spec.jwtRules[0].timeout: \"5\" is not a duration",
        ),
        (
            "jwtRules: [{ issuer: i, jwksUri: 'https://a/j', timeout: -1s }]",
            "spec.jwtRules[0].timeout:",
        ),
        (
            "jwtRules: [{ issuer: i, jwksUri: 'https://a/j', fromHeaders: [{ name: 'bad header' }] }]",
            "spec.jwtRules[0].fromHeaders[0].name:",
        ),
        (
            "jwtRules: [{ issuer: i, jwksUri: 'https://a/j', outputClaimToHeaders: [{ header: x }] }]",
            "spec.jwtRules[0].outputClaimToHeaders[0].claim: is required",
        ),
        (
            "targetRefs: [{ kind: Gateway, name: gw, group: gateway.networking.k8s.io }]",
            "spec.targetRefs[0].kind:",
        ),
        (
            "selector: { matchLabels: { a: b } }\ntargetRef: { kind: Service, name: s }",
            "spec.selector: cannot be set together",
        ),
    ];
    for (yaml, want) in cases {
        let (p, d) = ra(yaml);
        assert!(p.is_none(), "{yaml} should fail");
        let errs = errors(&d);
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "{yaml}: wanted {want}, got {errs:?}"
        );
    }
}

#[test]
fn unknown_field_is_refused() {
    let r: Result<RequestAuthenticationSpec, _> =
        yaml_serde::from_str("jwtRules: [{ issuer: i, bogus: 1 }]");
    assert!(r.is_err());
}

#[test]
fn service_target_ref_selects_app() {
    let (p, d) = ra("targetRef: { kind: Service, group: '', name: reviews }\njwtRules: []");
    assert!(errors(&d).is_empty(), "{d:?}");
    let p = p.expect("compiles");
    assert_eq!(
        p.selector.match_labels.get("app").map(String::as_str),
        Some("reviews")
    );
}

#[test]
fn duration_syntax() {
    assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
    for bad in ["", "s", "1", "1.s", ".5s", "1x", "0s", "1e3s", "-1s"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

/// The seed article's Policy (seed/manifests/03-auth-policy.yaml), which must load.
const SEED_POLICY: &str = r#"
targets:
  - name: service1
  - name: service2
  - name: service3
  - name: service4
  - name: service5
origins:
  - jwt:
      issuer: "{YOUR_DOMAIN}"
      jwksUri: "{YOUR_JWT_URI}"
principalBinding: USE_ORIGIN
"#;

#[test]
fn seed_policy_loads_with_placeholder_warnings() {
    let (p, d) = legacy(SEED_POLICY);
    assert!(errors(&d).is_empty(), "{d:?}");
    let warnings: Vec<_> = d
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .collect();
    assert!(warnings.iter().any(|w| {
        w.message
            .starts_with("spec.origins[0].jwt.jwksUri: \"{YOUR_JWT_URI}\" is a placeholder")
    }));
    let p = p.expect("loads");
    assert_eq!(p.len(), 5);
    for (i, pol) in p.iter().enumerate() {
        let app = format!("service{}", i + 1);
        assert_eq!(pol.selector.match_labels.get("app"), Some(&app));
        assert!(pol.require_token);
        assert_eq!(pol.rules.len(), 1);
        assert_eq!(pol.rules[0].issuer, "{YOUR_DOMAIN}");
        assert_eq!(pol.rules[0].jwks, JwksSource::Uri("{YOUR_JWT_URI}".into()));
        assert!(pol.trigger_rules.is_empty());
    }
}

#[test]
fn legacy_translation() {
    let (p, d) = legacy(
        r#"
origins:
  - jwt:
      issuer: https://issuer.example
      audiences: [svc]
      jwksUri: https://issuer.example/jwks
      jwtHeaders: [X-Goog-Iap-Jwt-Assertion]
      jwtParams: [token]
      triggerRules:
        - excludedPaths: [{ exact: /health }, { suffix: .png }]
          includedPaths: [{ prefix: /api }, { regex: "/v[0-9]+/.*" }]
originIsOptional: true
"#,
    );
    assert!(errors(&d).is_empty(), "{d:?}");
    let p = p.expect("compiles");
    assert_eq!(p.len(), 1);
    let pol = &p[0];
    assert!(pol.selector.match_labels.is_empty());
    assert!(!pol.require_token);
    assert_eq!(
        pol.rules[0].from_headers,
        [("x-goog-iap-jwt-assertion".to_owned(), String::new())]
    );
    assert_eq!(pol.rules[0].from_params, ["token"]);
    let t = &pol.trigger_rules[0];
    assert_eq!(t.excluded_paths[0], StringMatch::Exact("/health".into()));
    assert!(t.excluded_paths[1].matches("/img/a.png", false));
    assert!(!t.excluded_paths[1].matches("/img/apng", false));
    assert_eq!(t.included_paths[0], StringMatch::Prefix("/api".into()));
    assert!(t.included_paths[1].matches("/v2/x", false));
    assert!(
        p.iter()
            .all(|a| a.rules.iter().all(|r| r.forward_original_token)),
        "the legacy Policy keeps the token for forwarding"
    );
}

#[test]
fn legacy_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "peers: [{ jwt: { issuer: i } }]\norigins: [{ jwt: { issuer: i, jwksUri: 'https://a/j' } }]",
            "spec.peers[0]: only `mtls`",
        ),
        (
            "peers: [{ mtls: { mode: LOOSE } }]",
            "spec.peers[0].mtls.mode:",
        ),
        (
            "principalBinding: USE_PEER",
            "spec.principalBinding: USE_PEER is not supported",
        ),
        ("principalBinding: BOTH", "spec.principalBinding:"),
        (
            "targets: [{ name: a, ports: [{ number: 80 }] }]",
            "spec.targets[0].ports:",
        ),
        (
            "targets: [{ ports: [] }]",
            "spec.targets[0].name: is required",
        ),
        (
            "origins: [{ jwt: { jwksUri: 'https://a/j' } }]",
            "spec.origins[0].jwt.issuer: is required",
        ),
        (
            "origins: [{ jwt: { issuer: i, jwksUri: 'not a url' } }]",
            "spec.origins[0].jwt.jwksUri: \"not a url\" is not an http(s) url",
        ),
        ("origins: [{}]", "spec.origins[0].jwt: is required"),
        (
            "origins: [{ jwt: { issuer: i, jwksUri: 'https://a/j', triggerRules: [{ includedPaths: [{ exact: /a, prefix: /b }] }] } }]",
            "spec.origins[0].jwt.triggerRules[0].includedPaths[0]: must set exactly one",
        ),
        (
            "origins: [{ jwt: { issuer: i, jwksUri: 'https://a/j', triggerRules: [{ includedPaths: [{ regex: '(' }] }] } }]",
            "spec.origins[0].jwt.triggerRules[0].includedPaths[0].regex:",
        ),
        (
            "origins: [{ jwt: { issuer: i, jwksUri: 'https://a/j' } }, { jwt: { issuer: j, jwksUri: 'https://a/j', triggerRules: [{ includedPaths: [{ exact: /a }] }] } }]",
            "spec.origins[1].jwt.triggerRules:",
        ),
    ];
    for (yaml, want) in cases {
        let (p, d) = legacy(yaml);
        assert!(p.is_none(), "{yaml} should fail");
        let errs = errors(&d);
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "{yaml}: wanted {want}, got {errs:?}"
        );
    }
}

#[test]
fn legacy_peers_mean_strict_for_the_targets() {
    use crate::policy::MtlsMode;
    let (p, d) =
        legacy_all("targets: [{ name: service1 }, { name: service2 }]\npeers: [{ mtls: {} }]");
    assert!(errors(&d).is_empty(), "{d:?}");
    let p = p.expect("compiles");
    assert!(p.authentication.is_empty());
    assert_eq!(p.peers.len(), 2);
    assert!(p.peers.iter().all(|x| x.mode == MtlsMode::Strict));
    assert_eq!(p.peers[1].selector.match_labels["app"], "service2");
    assert!(d.is_empty(), "no 'authenticates nothing' warning: {d:?}");

    let (p, _) = legacy_all("peers: [{ mtls: { mode: PERMISSIVE } }]");
    let p = p.expect("compiles");
    assert_eq!(p.peers.len(), 1);
    assert!(p.peers[0].selector.match_labels.is_empty());
    assert_eq!(p.peers[0].mode, MtlsMode::Permissive);

    let (p, _) = legacy_all("peers: [{ mtls: null }]\npeerIsOptional: true");
    assert_eq!(p.expect("compiles").peers[0].mode, MtlsMode::Permissive);
}

#[test]
fn issuer_alone_means_openid_discovery() {
    let (p, d) = ra(r#"
jwtRules:
  - issuer: https://dev-123.us.auth0.com/
    spaceDelimitedClaims: [custom_scope, provider.login.scope]
"#);
    assert!(errors(&d).is_empty(), "{d:?}");
    let rule = &p.expect("compiles").rules[0];
    assert_eq!(
        rule.jwks,
        JwksSource::Discovery("https://dev-123.us.auth0.com/".into())
    );
    assert_eq!(
        rule.space_delimited_claims,
        ["custom_scope", "provider.login.scope"]
    );
    // an issuer that is not a URL cannot be discovered
    let (p, d) = ra("jwtRules: [{ issuer: testing@secure.istio.io }]");
    assert!(p.is_none());
    assert!(
        errors(&d)[0].contains("its keys cannot be found through OpenID discovery"),
        "{d:?}"
    );
    let (_, d) = ra("jwtRules: [{ issuer: https://a.example, spaceDelimitedClaims: [''] }]");
    assert!(
        errors(&d)[0].starts_with("spec.jwtRules[0].spaceDelimitedClaims[0]: must not be empty"),
        "{d:?}"
    );
}
