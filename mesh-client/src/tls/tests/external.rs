//! DestinationRule SIMPLE/MUTUAL to servers outside the mesh: `subjectAltNames` in place of the
//! server name, `insecureSkipVerify`, `clientCertificate`/`privateKey` with MUTUAL.

use super::*;

/// A DestinationRule for service2 with `tls: {tls}`.
fn tls_rule(tls: &str) -> String {
    rule(&format!("    tls: {tls}"))
}

#[tokio::test]
async fn subject_alt_names_replace_the_server_name_check() {
    let ca = TestCa::new("db");
    let addr = serve_external(&ca, &["db.internal"], None).await;
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("ca.pem");
    std::fs::write(&roots, ca.root_pem()).unwrap();
    let r = roots.display();
    // The host `service2` is not in the certificate: without subjectAltNames, refused.
    let c = clusters(
        config(
            addr,
            false,
            &tls_rule(&format!("{{mode: SIMPLE, caCertificates: {r}}}")),
        ),
        None,
    );
    refused(&c).await;
    // One of subjectAltNames is: served, the server name not checked.
    let c = clusters(
        config(
            addr,
            false,
            &tls_rule(&format!(
                "{{mode: SIMPLE, caCertificates: {r}, subjectAltNames: [other.internal, db.internal]}}"
            )),
        ),
        None,
    );
    assert_eq!(text(get(&c).await.unwrap()).await, "external");
    // None is: refused, naming what the certificate holds.
    let c = clusters(
        config(
            addr,
            false,
            &tls_rule(&format!(
                "{{mode: SIMPLE, caCertificates: {r}, subjectAltNames: [other.internal]}}"
            )),
        ),
        None,
    );
    let body = refused(&c).await;
    assert!(body.contains("DNS:db.internal"), "{body}");
    // The right name from another CA: refused (the chain is still verified).
    let other = TestCa::new("other");
    let addr = serve_external(&other, &["db.internal"], None).await;
    let c = clusters(
        config(
            addr,
            false,
            &tls_rule(&format!(
                "{{mode: SIMPLE, caCertificates: {r}, subjectAltNames: [db.internal]}}"
            )),
        ),
        None,
    );
    refused(&c).await;
}

#[tokio::test]
async fn insecure_skip_verify_accepts_any_server_certificate() {
    let ca = TestCa::new("self-signed-ish");
    let addr = serve_external(&ca, &["nothing.like.the.host"], None).await;
    let c = clusters(
        config(
            addr,
            false,
            &tls_rule("{mode: SIMPLE, insecureSkipVerify: true}"),
        ),
        None,
    );
    assert_eq!(text(get(&c).await.unwrap()).await, "external");
    // Without it the same server is refused (system roots do not know the test CA).
    let c = clusters(config(addr, false, &tls_rule("{mode: SIMPLE}")), None);
    refused(&c).await;
}

#[tokio::test]
async fn mutual_presents_the_client_certificate_and_checks_subject_alt_names() {
    let server_ca = TestCa::new("server");
    let client_ca = TestCa::new("client");
    let addr = serve_external(&server_ca, &["db.internal"], Some(&client_ca)).await;
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    std::fs::write(p("ca.pem"), server_ca.root_pem()).unwrap();
    let client = client_ca.leaf(&LeafSpec::spiffe(SERVICE1));
    std::fs::write(p("client.pem"), &client.chain_pem).unwrap();
    std::fs::write(p("client.key"), &client.key_pem).unwrap();
    let mutual = |sans: &str| {
        tls_rule(&format!(
            "{{mode: MUTUAL, caCertificates: {}, clientCertificate: {}, privateKey: {}, subjectAltNames: [{sans}]}}",
            p("ca.pem").display(),
            p("client.pem").display(),
            p("client.key").display()
        ))
    };
    let c = clusters(config(addr, false, &mutual("db.internal")), None);
    assert_eq!(text(get(&c).await.unwrap()).await, "external");
    let c = clusters(config(addr, false, &mutual("db.other")), None);
    refused(&c).await;
    // SIMPLE (no client certificate) to the same server: the server refuses.
    let c = clusters(
        config(
            addr,
            false,
            &tls_rule(&format!(
                "{{mode: SIMPLE, caCertificates: {}, subjectAltNames: [db.internal]}}",
                p("ca.pem").display()
            )),
        ),
        None,
    );
    refused(&c).await;
}
