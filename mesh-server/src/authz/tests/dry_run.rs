//! `istio.io/dry-run` policies: evaluated in shadow beside the real decision, never enforced.

use super::*;

fn paths(p: &[&str]) -> Operation {
    Operation {
        paths: strings(p),
        ..Operation::default()
    }
}

fn dry_run(mut p: AuthzPolicy) -> AuthzPolicy {
    p.dry_run = true;
    p
}

#[test]
fn dry_run_policies_never_decide_but_their_shadow_result_is_reported() {
    let deny = dry_run(policy(
        "trial-deny",
        AuthzAction::Deny,
        vec![to(paths(&["/private"]))],
    ));
    let allow = dry_run(policy(
        "trial-allow",
        AuthzAction::Allow,
        vec![to(paths(&["/public"]))],
    ));
    let engine = AuthzEngine::new([&deny, &allow]).unwrap();
    assert!(
        !engine.is_empty(),
        "dry-run policies must still be evaluated"
    );
    for path in ["/private", "/public", "/other"] {
        assert!(
            engine.allows(&Req::get(path).0, 0),
            "{path} must not be enforced"
        );
    }
    let req = Req::get("/private").0;
    let verdict = engine.evaluate(&RequestAttrs::new(&req, 0));
    let [deny_shadow, allow_shadow] = verdict.shadow;
    let deny_shadow = deny_shadow.unwrap();
    assert_eq!(deny_shadow.action, AuthzAction::Deny);
    assert!(!deny_shadow.allowed);
    assert_eq!(deny_shadow.policy.as_deref(), Some("default/trial-deny"));
    let allow_shadow = allow_shadow.unwrap();
    assert!(!allow_shadow.allowed, "no dry-run ALLOW matched /private");
    assert_eq!(allow_shadow.policy, None);

    let req = Req::get("/public").0;
    let [d, a] = engine.evaluate(&RequestAttrs::new(&req, 0)).shadow;
    assert!(d.unwrap().allowed);
    assert_eq!(a.unwrap().policy.as_deref(), Some("default/trial-allow"));
}

#[test]
fn a_dry_run_policy_beside_an_enforced_one_changes_nothing() {
    let enforced = policy("real", AuthzAction::Deny, vec![to(paths(&["/admin/*"]))]);
    let trial = dry_run(policy("trial", AuthzAction::Deny, vec![to(paths(&["/*"]))]));
    let engine = AuthzEngine::new([&enforced, &trial]).unwrap();
    assert!(!engine.allows(&Req::get("/admin/x").0, 0));
    assert!(engine.allows(&Req::get("/x").0, 0));
    // Without dry-run policies, no shadow work is done.
    let plain = AuthzEngine::new([&enforced]).unwrap();
    let req = Req::get("/x").0;
    assert_eq!(
        plain.evaluate(&RequestAttrs::new(&req, 0)).shadow,
        [None, None]
    );
}
