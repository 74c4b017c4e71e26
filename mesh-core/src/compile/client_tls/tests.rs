#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::diag::Severity;
use crate::policy::{ClientTlsMode, MeshConfig};

fn load(tls: &str) -> Result<MeshConfig, Vec<String>> {
    let text = format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: d\nspec:\n  host: service2\n  trafficPolicy:\n    tls:\n{tls}\n    portLevelSettings:\n    - port: {{ number: 80 }}\n      tls: {{ mode: SIMPLE, sni: port.example }}\n  subsets:\n  - name: v1\n    labels: {{ version: v1 }}\n    trafficPolicy:\n      tls: {{ mode: DISABLE }}\n"
    );
    crate::load::load_str("dr.yaml", &text)
        .map(|l| l.config)
        .map_err(|e| {
            e.errors
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(|d| d.to_string())
                .collect()
        })
}

#[test]
fn every_level_compiles_and_merges() {
    let config = load(
        "      mode: ISTIO_MUTUAL\n      sni: service2.default.svc.cluster.local\n      subjectAltNames: [spiffe://cluster.local/ns/default/sa/service2]",
    )
    .unwrap();
    let dr = &config.destinations["service2"];
    let top = dr.policy_for(None, None).tls.as_ref().unwrap();
    assert_eq!(top.mode, ClientTlsMode::IstioMutual);
    assert_eq!(
        top.sni.as_deref(),
        Some("service2.default.svc.cluster.local")
    );
    assert_eq!(
        top.subject_alt_names,
        ["spiffe://cluster.local/ns/default/sa/service2"]
    );
    let port = dr.policy_for(None, Some(80)).tls.as_ref().unwrap();
    assert_eq!(port.mode, ClientTlsMode::Simple);
    assert_eq!(port.sni.as_deref(), Some("port.example"));
    let subset = dr.policy_for(Some("v1"), Some(80)).tls.as_ref().unwrap();
    assert_eq!(subset.mode, ClientTlsMode::Disable);
}

#[test]
fn mutual_with_files() {
    let config = load(
        "      mode: MUTUAL\n      clientCertificate: /etc/certs/cert.pem\n      privateKey: /etc/certs/key.pem\n      caCertificates: /etc/certs/ca.pem",
    )
    .unwrap();
    let tls = config.destinations["service2"]
        .policy_for(None, None)
        .tls
        .clone()
        .unwrap();
    assert_eq!(tls.mode, ClientTlsMode::Mutual);
    assert_eq!(
        tls.private_key.unwrap().to_str(),
        Some("/etc/certs/key.pem")
    );
}

#[test]
fn istio_rules_are_checked() {
    let cases = [
        (
            "      mode: MUTUAL",
            "clientCertificate: is required with mode MUTUAL",
        ),
        ("      mode: LOOSE", "unknown mode `LOOSE`"),
        (
            "      mode: ISTIO_MUTUAL\n      privateKey: /k.pem",
            "privateKey: must not be set with ISTIO_MUTUAL",
        ),
        (
            "      mode: SIMPLE\n      sni: 'a b'",
            "is not a server name",
        ),
        (
            "      mode: SIMPLE\n      credentialName: c",
            "credentialName",
        ),
    ];
    for (tls, want) in cases {
        let errors = load(tls).expect_err(tls);
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "{tls}: wanted {want}, got {errors:?}"
        );
    }
}
