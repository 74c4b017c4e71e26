use crate::load::load_str;
use crate::policy::ServerTlsMode;

fn gateway(servers: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: default}}\nspec:\n  selector: {{istio: ingressgateway}}\n  servers:\n{servers}"
    )
}

fn errors(servers: &str) -> String {
    match load_str("gw.yaml", &gateway(servers)) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn simple_mutual_and_redirect_compile() {
    let yaml = gateway(
        "  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ['*']
    tls: {httpsRedirect: true}
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [shop.example.com]
    tls: {mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem, minProtocolVersion: TLSV1_3}
  - port: {number: 443, name: mtls, protocol: HTTPS}
    hosts: [api.example.com]
    tls: {mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem}
  - port: {number: 8443, name: kube, protocol: HTTPS}
    hosts: ['*']
    tls: {mode: SIMPLE, credentialName: shop-cert}
",
    );
    let config = load_str("gw.yaml", &yaml).unwrap().config;
    let servers = &config.gateways[0].servers;
    let redirect = servers[0].tls.as_ref().unwrap();
    assert!(redirect.https_redirect && redirect.mode.is_none());
    let simple = servers[1].tls.as_ref().unwrap();
    assert_eq!(simple.mode, Some(ServerTlsMode::Simple));
    assert!(simple.tls13_only);
    assert_eq!(
        simple.private_key.as_deref(),
        Some(std::path::Path::new("/k.pem"))
    );
    let mutual = servers[2].tls.as_ref().unwrap();
    assert_eq!(mutual.mode, Some(ServerTlsMode::Mutual));
    assert!(mutual.ca_certificates.is_some());
    assert_eq!(
        servers[3].tls.as_ref().unwrap().credential_name.as_deref(),
        Some("shop-cert")
    );
}

#[test]
fn bad_blocks_name_the_field() {
    let e = errors(
        "  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: {mode: SIMPLE, serverCertificate: /c.pem}
",
    );
    assert!(
        e.contains("spec.servers[0].tls.privateKey: is required"),
        "{e}"
    );
    let e = errors(
        "  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: {mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}
",
    );
    assert!(e.contains("spec.servers[0].tls.caCertificates"), "{e}");
    let e = errors(
        "  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: {mode: PASSTHROUGH}
",
    );
    assert!(
        e.contains("`PASSTHROUGH` is not supported by this mesh"),
        "{e}"
    );
    let e = errors(
        "  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
",
    );
    assert!(
        e.contains("spec.servers[0].tls: an HTTPS server needs"),
        "{e}"
    );
    let e = errors(
        "  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: {mode: SIMPLE, credentialName: c, cipherSuites: [X]}
",
    );
    assert!(
        e.contains("tls.cipherSuites: is not supported by this mesh"),
        "{e}"
    );
}
