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
