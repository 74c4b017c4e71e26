//! Istio's mesh config (ConfigMap `istio-system/istio`, MeshConfig in `data.mesh`): the settings
//! the mesh reads from it, and what it says about the rest.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failed expectation is the test failing

use mesh_core::load::load_str;
use mesh_core::normalize::PathNormalization;

const ISTIO_CONFIG_MAP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: istio
  namespace: istio-system
data:
  mesh: |-
    accessLogFile: /dev/stdout
    enableTracing: true
    pathNormalization:
      normalization: DECODE_AND_MERGE_SLASHES
  meshNetworks: 'networks: {}'
"#;

#[test]
fn path_normalization_is_read_from_istios_config_map() {
    let loaded = load_str("mesh.yaml", ISTIO_CONFIG_MAP).unwrap();
    assert_eq!(
        loaded.config.mesh.path_normalization,
        PathNormalization::DecodeAndMergeSlashes
    );
    // The fields the mesh does not use are named, not silently dropped.
    let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.message.clone()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("accessLogFile, enableTracing")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("data.meshNetworks") || w.contains("reads `data.mesh`")),
        "{warnings:?}"
    );
}

#[test]
fn without_a_mesh_config_the_level_is_istios_default_base() {
    let loaded = load_str("empty.yaml", "").unwrap();
    assert_eq!(
        loaded.config.mesh.path_normalization,
        PathNormalization::Base
    );
}

#[test]
fn other_config_maps_are_skipped_with_a_warning() {
    let text = ISTIO_CONFIG_MAP.replace("name: istio\n", "name: app-settings\n");
    let loaded = load_str("other.yaml", &text).unwrap();
    assert_eq!(
        loaded.config.mesh.path_normalization,
        PathNormalization::Base
    );
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.message.contains("is not mesh configuration")),
        "{:?}",
        loaded.warnings
    );
}

const DRY_RUN: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: trial
  namespace: default
  annotations:
    istio.io/dry-run: "VALUE"
    sidecar.istio.io/inject: "false"
    kubectl.kubernetes.io/last-applied-configuration: "{}"
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/private"]}}]}]
"#;

#[test]
fn the_dry_run_annotation_marks_the_policy_and_other_istio_annotations_are_named() {
    let loaded = load_str("trial.yaml", &DRY_RUN.replace("VALUE", "true")).unwrap();
    assert!(loaded.config.authorization[0].dry_run);
    let warnings: Vec<&str> = loaded.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("`sidecar.istio.io/inject` is not implemented")),
        "{warnings:?}"
    );
    assert!(
        !warnings.iter().any(|w| w.contains("kubectl")),
        "{warnings:?}"
    );

    let loaded = load_str("trial.yaml", &DRY_RUN.replace("VALUE", "false")).unwrap();
    assert!(!loaded.config.authorization[0].dry_run);

    let err = load_str("trial.yaml", &DRY_RUN.replace("VALUE", "maybe")).unwrap_err();
    assert!(
        err.to_string().contains("`maybe` is not `true` or `false`"),
        "{err}"
    );
}

#[test]
fn a_dry_run_custom_policy_is_never_enforced() {
    let text = DRY_RUN
        .replace("VALUE", "true")
        .replace("action: DENY", "action: CUSTOM\n  provider: {name: ext}");
    let loaded = load_str("trial.yaml", &text).unwrap();
    assert!(loaded.config.authorization.is_empty());
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.message.contains("not supported for CUSTOM")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn trust_domain_and_aliases_are_read_and_checked() {
    let text = ISTIO_CONFIG_MAP.replace(
        "    enableTracing: true\n",
        "    enableTracing: true\n    trustDomain: new-td\n    trustDomainAliases: [old-td, Old-TD, cluster.local]\n",
    );
    let loaded = load_str("mesh.yaml", &text).unwrap();
    assert_eq!(loaded.config.mesh.trust_domain.as_deref(), Some("new-td"));
    assert_eq!(
        loaded.config.mesh.trust_domain_aliases,
        vec!["old-td".to_owned(), "cluster.local".to_owned()]
    );
    let bad = ISTIO_CONFIG_MAP.replace(
        "    enableTracing: true\n",
        "    trustDomainAliases: ['bad td/x']\n",
    );
    let err = load_str("mesh.yaml", &bad).unwrap_err().to_string();
    assert!(err.contains("trustDomainAliases[0]"), "{err}");
}
