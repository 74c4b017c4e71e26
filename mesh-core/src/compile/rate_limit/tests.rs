use super::*;
use crate::compile::NoLines;
use crate::diag::{Diagnostic, Severity};
use crate::policy::Origin;

fn run(yaml: &str) -> (Option<RateLimitPolicy>, Vec<Diagnostic>) {
    let spec: HttpLocalRateLimitPolicySpec = match yaml_serde::from_str(yaml) {
        Ok(s) => s,
        Err(e) => panic!("bad test yaml: {e}"),
    };
    let mut diags = Vec::new();
    let origin = Origin {
        kind: "HTTPLocalRateLimitPolicy".into(),
        name: "rl".into(),
        ..Origin::default()
    };
    let lines = NoLines(1);
    let mut cx = Cx::new(origin, &lines, &mut diags);
    let out = compile(&spec, &mut cx);
    (out, diags)
}

fn errors(yaml: &str) -> Vec<String> {
    let (out, diags) = run(yaml);
    assert!(out.is_none());
    diags
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.message)
        .collect()
}

#[test]
fn full_policy_compiles() {
    let (out, diags) = run(r#"
targetRef: {group: policy.linkerd.io, kind: Server, name: service1}
total: {requestsPerSecond: 100}
identity: {requestsPerSecond: 20}
overrides:
- requestsPerSecond: 50
  clientRefs: [{kind: ServiceAccount, namespace: default, name: gateway}]
"#);
    assert!(diags.is_empty(), "{diags:?}");
    let p = out.unwrap_or_else(|| panic!("no policy"));
    assert_eq!(p.target, "service1");
    assert_eq!(p.total_rps, Some(100));
    assert_eq!(p.identity_rps, Some(20));
    assert_eq!(
        p.overrides,
        vec![RateLimitOverride {
            rps: 50,
            clients: vec!["gateway".into()]
        }]
    );
}

#[test]
fn limits_are_checked() {
    let errs = errors("targetRef: {kind: Server, name: a}\ntotal: {requestsPerSecond: 0}");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.total.requestsPerSecond")),
        "{errs:?}"
    );
    let errs = errors(
        "targetRef: {kind: Server, name: a}\ntotal: {requestsPerSecond: 5}\nidentity: {requestsPerSecond: 6}",
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.identity.requestsPerSecond")),
        "{errs:?}"
    );
    let errs = errors(
        "targetRef: {kind: Server, name: a}\ntotal: {requestsPerSecond: 5}\noverrides: [{requestsPerSecond: 9, clientRefs: [{kind: ServiceAccount, name: x}]}]",
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.overrides[0].requestsPerSecond")),
        "{errs:?}"
    );
}

#[test]
fn target_and_client_refs_are_checked() {
    assert!(
        errors("total: {requestsPerSecond: 5}")
            .iter()
            .any(|e| e.starts_with("spec.targetRef"))
    );
    assert!(
        errors("targetRef: {kind: Pod, name: a}")
            .iter()
            .any(|e| e.contains("Pod"))
    );
    let errs = errors(
        "targetRef: {kind: Server, name: a}\noverrides: [{requestsPerSecond: 1, clientRefs: [{kind: User, name: x}]}]",
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.overrides[0].clientRefs[0].kind")),
        "{errs:?}"
    );
}

#[test]
fn a_policy_without_limits_warns() {
    let (out, diags) = run("targetRef: {kind: Server, name: a}");
    assert!(out.is_some());
    assert!(diags.iter().any(|d| d.severity == Severity::Warning));
}
