#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::compile::NoLines;
use crate::diag::{Diagnostic, Severity};
use crate::policy::{Origin, PeerMtls, ROOT_NAMESPACE, effective_mtls};

fn pa(namespace: &str, yaml: &str) -> (Option<PeerAuthnPolicy>, Vec<String>) {
    let spec: PeerAuthenticationSpec = yaml_serde::from_str(yaml).expect("test yaml parses");
    let mut diags: Vec<Diagnostic> = Vec::new();
    let lines = NoLines(1);
    let origin = Origin {
        kind: "PeerAuthentication".into(),
        name: "p".into(),
        namespace: namespace.into(),
        file: "f.yaml".into(),
        line: 1,
    };
    let mut cx = Cx::new(origin, &lines, &mut diags);
    let out = compile(&spec, &mut cx);
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.message.clone())
        .collect();
    (out, errors)
}

#[test]
fn istio_examples_compile() {
    let (mesh, errors) = pa(ROOT_NAMESPACE, "mtls:\n  mode: STRICT\n");
    assert!(errors.is_empty(), "{errors:?}");
    let mesh = mesh.unwrap();
    assert_eq!(mesh.mode, MtlsMode::Strict);
    assert!(mesh.selector.match_labels.is_empty());

    let yaml = "selector:\n  matchLabels:\n    app: finance\nmtls:\n  mode: STRICT\nportLevelMtls:\n  8080:\n    mode: DISABLE\n  \"9090\":\n    mode: UNSET\n";
    let (workload, errors) = pa("foo", yaml);
    assert!(errors.is_empty(), "{errors:?}");
    let workload = workload.unwrap();
    assert_eq!(workload.port_level[&8080], MtlsMode::Disable);
    assert_eq!(workload.port_level[&9090], MtlsMode::Unset);

    let labels = [("app".to_owned(), "finance".to_owned())]
        .into_iter()
        .collect();
    let effective = effective_mtls(&[mesh, workload], ROOT_NAMESPACE, "foo", &labels);
    assert_eq!(effective.for_port(8080), PeerMtls::Disable);
    assert_eq!(effective.for_port(9090), PeerMtls::Strict);
}

#[test]
fn an_empty_spec_is_unset() {
    let (policy, errors) = pa("default", "{}");
    assert!(errors.is_empty());
    assert_eq!(policy.unwrap().mode, MtlsMode::Unset);
}

#[test]
fn bad_input_names_the_field() {
    let cases = [
        (
            "mtls:\n  mode: strict\n",
            "spec.mtls.mode: unknown mode `strict`",
        ),
        (
            "portLevelMtls:\n  8080:\n    mode: DISABLE\n",
            "spec.portLevelMtls: a mesh-wide or namespace-wide policy",
        ),
        (
            "selector:\n  matchLabels:\n    app: a\nportLevelMtls: {}\n",
            "spec.portLevelMtls: if set, must have at least one port",
        ),
        (
            "selector:\n  matchLabels:\n    app: a\nportLevelMtls:\n  0:\n    mode: STRICT\n",
            "spec.portLevelMtls.0: port `0` must be in range",
        ),
        (
            "selector:\n  matchLabels:\n    app: a\nportLevelMtls:\n  70000:\n    mode: STRICT\n",
            "spec.portLevelMtls.70000: port `70000`",
        ),
        (
            "selector:\n  matchLabels:\n    app: a\nportLevelMtls:\n  8080: ~\n",
            "spec.portLevelMtls.8080: must not be null",
        ),
        (
            "selector:\n  matchLabels:\n    app: a\nportLevelMtls:\n  8080:\n    mode: OFF\n",
            "spec.portLevelMtls.8080.mode: unknown mode `OFF`",
        ),
        (
            "selector:\n  matchLabels:\n    app: \"*\"\n",
            "spec.selector.matchLabels.app: wildcards",
        ),
    ];
    for (yaml, want) in cases {
        let (policy, errors) = pa("default", yaml);
        assert!(policy.is_none(), "{yaml}");
        assert!(
            errors.iter().any(|e| e.starts_with(want)),
            "{yaml}: want {want:?}, got {errors:?}"
        );
    }
}

#[test]
fn unknown_fields_are_refused() {
    let spec =
        yaml_serde::from_str::<PeerAuthenticationSpec>("mtls:\n  mode: STRICT\n  other: 1\n");
    assert!(spec.is_err());
    let spec = yaml_serde::from_str::<PeerAuthenticationSpec>("targetRef: {}\n");
    assert!(spec.is_err());
}
