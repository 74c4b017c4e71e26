#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn policy(
    namespace: &str,
    name: &str,
    selector: &[(&str, &str)],
    mode: MtlsMode,
) -> PeerAuthnPolicy {
    PeerAuthnPolicy {
        origin: Origin {
            kind: "PeerAuthentication".into(),
            name: name.into(),
            namespace: namespace.into(),
            ..Origin::default()
        },
        selector: WorkloadSelector {
            match_labels: selector
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        },
        mode,
        port_level: BTreeMap::new(),
    }
}

fn labels(app: &str) -> Labels {
    [("app".to_owned(), app.to_owned())].into_iter().collect()
}

fn resolve(policies: &[PeerAuthnPolicy], namespace: &str, app: &str) -> EffectiveMtls {
    effective_mtls(policies, ROOT_NAMESPACE, namespace, &labels(app))
}

#[test]
fn no_policy_is_permissive() {
    let effective = resolve(&[], "default", "service1");
    assert_eq!(effective, EffectiveMtls::default());
    assert_eq!(effective.for_port(8080), PeerMtls::Permissive);
}

#[test]
fn workload_beats_namespace_beats_mesh() {
    let mesh = policy(ROOT_NAMESPACE, "default", &[], MtlsMode::Strict);
    let namespace = policy("default", "ns", &[], MtlsMode::Permissive);
    let workload = policy("default", "w", &[("app", "service1")], MtlsMode::Disable);
    let all = [mesh.clone(), namespace.clone(), workload.clone()];
    assert_eq!(resolve(&all, "default", "service1").mode, PeerMtls::Disable);
    assert_eq!(
        resolve(&all, "default", "service2").mode,
        PeerMtls::Permissive
    );
    assert_eq!(resolve(&all, "other", "service1").mode, PeerMtls::Strict);
    let effective = resolve(&all, "default", "service1");
    assert_eq!(
        effective.applied,
        ["default/w", "default/ns", "istio-system/default"]
    );
}

#[test]
fn unset_inherits_from_the_level_above() {
    let mesh = policy(ROOT_NAMESPACE, "default", &[], MtlsMode::Strict);
    let namespace = policy("default", "ns", &[], MtlsMode::Unset);
    let workload = policy("default", "w", &[("app", "service1")], MtlsMode::Unset);
    let all = [mesh, namespace, workload];
    assert_eq!(resolve(&all, "default", "service1").mode, PeerMtls::Strict);
    let only_unset = [policy("default", "ns", &[], MtlsMode::Unset)];
    assert_eq!(
        resolve(&only_unset, "default", "x").mode,
        PeerMtls::Permissive
    );
}

#[test]
fn selector_policies_are_namespace_scoped() {
    // A root-namespace policy with a selector is not mesh-wide.
    let root_selected = policy(
        ROOT_NAMESPACE,
        "s",
        &[("app", "service1")],
        MtlsMode::Strict,
    );
    assert_eq!(
        resolve(&[root_selected], "default", "service1").mode,
        PeerMtls::Permissive
    );
    let elsewhere = policy("other", "w", &[("app", "service1")], MtlsMode::Strict);
    assert_eq!(
        resolve(&[elsewhere], "default", "service1").mode,
        PeerMtls::Permissive
    );
}

#[test]
fn port_level_overrides_and_inherits() {
    let namespace = policy("default", "ns", &[], MtlsMode::Strict);
    let mut workload = policy("default", "w", &[("app", "service1")], MtlsMode::Unset);
    workload.port_level.insert(8080, MtlsMode::Disable);
    workload.port_level.insert(9090, MtlsMode::Unset);
    let effective = resolve(&[namespace, workload], "default", "service1");
    assert_eq!(effective.mode, PeerMtls::Strict);
    assert_eq!(effective.for_port(8080), PeerMtls::Disable);
    assert_eq!(effective.for_port(9090), PeerMtls::Strict);
    assert_eq!(effective.for_port(7070), PeerMtls::Strict);
}

#[test]
fn several_at_one_level_take_the_first_by_name() {
    let b = policy("default", "b", &[], MtlsMode::Strict);
    let a = policy("default", "a", &[], MtlsMode::Disable);
    let effective = resolve(&[b, a], "default", "service1");
    assert_eq!(effective.mode, PeerMtls::Disable);
    assert_eq!(effective.applied, ["default/a"]);
}
