//! The kinds and fields mutual TLS reads: PeerAuthentication, the legacy Policy's `peers`,
//! ServiceEntry `location` and endpoint `serviceAccount`, with the tlsMode label on the
//! registry's endpoints.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failed expectation is the test failing

use mesh_core::load::load_str;
use mesh_core::policy::{Labels, PeerMtls, ROOT_NAMESPACE, effective_mtls};
use mesh_core::registry::Registry;

const MESH: &str = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec:
  mtls: { mode: STRICT }
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: { name: service3, namespace: default }
spec:
  selector: { matchLabels: { app: service3 } }
  mtls: { mode: PERMISSIVE }
  portLevelMtls:
    9090: { mode: DISABLE }
---
apiVersion: authentication.istio.io/v1alpha1
kind: Policy
metadata: { name: legacy, namespace: other }
spec:
  targets: [{ name: service1 }]
  peers: [{ mtls: {} }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: service2, namespace: prod }
spec:
  hosts: [service2]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints:
  - address: 127.0.0.1
    ports: { http: 8082 }
    serviceAccount: service2
    labels: { security.istio.io/tlsMode: istio }
  - address: 127.0.0.2
    ports: { http: 8082 }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: external, namespace: prod }
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 443, name: https, protocol: HTTPS }]
  endpoints:
  - address: 127.0.0.3
    labels: { security.istio.io/tlsMode: istio }
"#;

fn app(name: &str) -> Labels {
    Labels::from([("app".to_owned(), name.to_owned())])
}

#[test]
fn peer_authentication_is_read_and_resolved() {
    let config = load_str("mtls.yaml", MESH).unwrap().config;
    assert_eq!(config.peer_authentication.len(), 3);
    let pa = &config.peer_authentication;
    let service1 = effective_mtls(pa, ROOT_NAMESPACE, "default", &app("service1"));
    assert_eq!(service1.mode, PeerMtls::Strict, "mesh-wide STRICT");
    let service3 = effective_mtls(pa, ROOT_NAMESPACE, "default", &app("service3"));
    assert_eq!(service3.for_port(8083), PeerMtls::Permissive);
    assert_eq!(service3.for_port(9090), PeerMtls::Disable);
    let legacy = effective_mtls(pa, "none", "other", &app("service1"));
    assert_eq!(legacy.mode, PeerMtls::Strict, "legacy peers: [mtls]");
    assert_eq!(legacy.applied, ["other/legacy"]);
}

#[test]
fn endpoints_carry_service_account_location_and_tls_mode() {
    let config = load_str("mtls.yaml", MESH).unwrap().config;
    let registry = Registry::from_config(&config);
    let eps = registry
        .endpoints("service2.prod.svc.cluster.local", Some(80))
        .unwrap();
    let labelled = eps.iter().find(|e| e.addr.port() == 8082 && e.auto_mtls());
    let sa = labelled.unwrap().service_account.as_ref().unwrap();
    assert_eq!(
        sa.spiffe_id("cluster.local"),
        "spiffe://cluster.local/ns/prod/sa/service2"
    );
    assert_eq!(eps.iter().filter(|e| e.auto_mtls()).count(), 1);
    let external = registry.endpoints("api.example.com", Some(443)).unwrap();
    assert!(!external[0].mesh_internal);
    assert!(!external[0].auto_mtls(), "MESH_EXTERNAL: no auto-mTLS");
}

#[test]
fn bad_values_are_refused() {
    for (text, want) in [
        (
            MESH.replace("serviceAccount: service2", "serviceAccount: ns/sa"),
            "is not a service account name",
        ),
        (
            MESH.replace("mode: PERMISSIVE", "mode: OPEN"),
            "unknown mode `OPEN`",
        ),
    ] {
        let err = load_str("mtls.yaml", &text).err().unwrap().to_string();
        assert!(err.contains(want), "wanted {want}: {err}");
    }
}
