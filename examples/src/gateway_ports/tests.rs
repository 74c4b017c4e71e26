use std::path::Path;

use mesh_core::policy::GatewayPolicy;
use mesh_tls::testing::{LeafSpec, TestCa};

use super::*;

fn gateway(dir: &Path) -> GatewayPolicy {
    let d = dir.display();
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: web}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: ['*']
  - port: {{number: 443, name: https, protocol: HTTPS}}
    hosts: [shop.example.com]
    tls: {{mode: SIMPLE, serverCertificate: {d}/shop.pem, privateKey: {d}/shop.key}}
"
    );
    let loaded = mesh_core::load::load_str("gw.yaml", &yaml).unwrap();
    loaded.config.gateways[0].clone()
}

fn write_leaf(ca: &TestCa, dir: &Path, serial: u64) -> mesh_tls::testing::Leaf {
    let mut spec = LeafSpec::spiffe("spiffe://cluster.local/ns/default/sa/gateway").serial(serial);
    spec.uris.clear();
    spec.dns = vec!["shop.example.com".to_owned()];
    let leaf = ca.leaf(&spec);
    std::fs::write(dir.join("shop.pem"), &leaf.chain_pem).unwrap();
    std::fs::write(dir.join("shop.key"), &leaf.key_pem).unwrap();
    leaf
}

fn serials(slot: &PortSlot) -> Option<Vec<String>> {
    match &*slot.mode() {
        PortMode::Tls(tls) => Some(
            tls.servers()
                .iter()
                .map(|s| s.serial().unwrap_or_default().to_owned())
                .collect(),
        ),
        _ => None,
    }
}

fn set_over(gateway: GatewayPolicy) -> GatewayTlsSet {
    GatewayTlsSet::new(Box::new(move || Some(gateway.clone())), None)
}

#[test]
fn replaced_files_apply_and_bad_ones_keep_the_last_good_set() {
    let ca = TestCa::new("gw");
    let dir = tempfile::tempdir().unwrap();
    write_leaf(&ca, dir.path(), 0x11);
    let set = set_over(gateway(dir.path()));
    let addr = SocketAddr::from(([127, 0, 0, 1], 8443));
    let https = set.add(PortKey::Number(443), addr);
    let http = set.add(PortKey::First, addr);
    assert!(set.refresh().is_empty());
    assert_eq!(serials(&https), Some(vec!["11".to_owned()]));
    assert!(matches!(*http.mode(), PortMode::Plain));

    // A new certificate whose key has not arrived yet: refused, the last good set stays.
    let next = write_leaf(&ca, dir.path(), 0x22);
    let other = write_leaf(&ca, tempfile::tempdir().unwrap().path(), 0x33);
    std::fs::write(dir.path().join("shop.key"), &other.key_pem).unwrap();
    let errors = set.refresh();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("spec.servers[1].tls"), "{errors:?}");
    assert_eq!(serials(&https), Some(vec!["11".to_owned()]));
    let view = set.view();
    assert_eq!(view["listeners"][0]["last_good_kept"], true, "{view}");
    assert!(view["listeners"][0]["error"].is_string(), "{view}");

    // The key arrives: the new set is in force and the error is gone.
    std::fs::write(dir.path().join("shop.key"), &next.key_pem).unwrap();
    assert!(set.refresh().is_empty());
    assert_eq!(serials(&https), Some(vec!["22".to_owned()]));
    assert!(set.view()["listeners"][0]["error"].is_null());

    // Half-written and garbage files: refused, kept.
    std::fs::write(dir.path().join("shop.pem"), &next.chain_pem[..40]).unwrap();
    assert_eq!(set.refresh().len(), 1);
    std::fs::write(dir.path().join("shop.pem"), "garbage").unwrap();
    assert_eq!(set.refresh().len(), 1);
    std::fs::remove_file(dir.path().join("shop.pem")).unwrap();
    assert_eq!(set.refresh().len(), 1);
    assert_eq!(serials(&https), Some(vec!["22".to_owned()]));
}

#[test]
fn a_port_whose_certificate_never_built_refuses_connections() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shop.pem"), "garbage").unwrap();
    std::fs::write(dir.path().join("shop.key"), "garbage").unwrap();
    let set = set_over(gateway(dir.path()));
    let https = set.add(PortKey::Number(443), SocketAddr::from(([127, 0, 0, 1], 1)));
    assert_eq!(set.refresh().len(), 1);
    assert!(matches!(*https.mode(), PortMode::Refused(_)));
    assert_eq!(set.view()["listeners"][0]["mode"], "refused");
}

#[test]
fn without_a_gateway_a_listener_serves_plaintext() {
    let set = GatewayTlsSet::new(Box::new(|| None), None);
    let slot = set.add(PortKey::First, SocketAddr::from(([127, 0, 0, 1], 1)));
    assert!(set.refresh().is_empty());
    assert!(matches!(*slot.mode(), PortMode::Plain));
}
