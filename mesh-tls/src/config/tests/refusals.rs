//! Peers the mesh refuses: bad client certificates at the server, bad servers at the client.

use super::*;

/// Certificates every mesh peer refuses in place of `id`'s: what each is, the certificate, and
/// a word of the refusal.
fn bad_leaves(ca: &TestCa, id: &str, dns: &str) -> Vec<(&'static str, Leaf, &'static str)> {
    let foreign = id.replacen("cluster.local", "foreign.td", 1);
    let mut no_spiffe = LeafSpec::spiffe(id);
    no_spiffe.uris.clear();
    no_spiffe.dns.push(dns.to_owned());
    vec![
        (
            "foreign trust domain",
            ca.leaf(&LeafSpec::spiffe(&foreign)),
            "not in the mesh's trust domains",
        ),
        (
            "expired",
            ca.leaf(&LeafSpec::spiffe(id).validity((2020, 1, 1), (2021, 1, 1))),
            "expired",
        ),
        ("no SPIFFE ID", ca.leaf(&no_spiffe), "no URI SAN"),
        (
            "another CA",
            TestCa::new("other").leaf(&LeafSpec::spiffe(id)),
            "unknownissuer",
        ),
    ]
}

#[tokio::test]
async fn the_server_refuses_bad_client_certificates() {
    let ca = TestCa::new("mesh");
    let server = mesh(&ca, SERVICE2)
        .server_config(ClientAuth::Required)
        .unwrap();
    let (addr, mut accepted) = serve(server).await;
    let cases = bad_leaves(&ca, SERVICE1, "service1.default.svc");
    for (what, leaf, why) in cases {
        let client = raw_client(Some(&leaf));
        assert!(
            call(addr, client, "service2").await.is_err(),
            "{what}: the client got through"
        );
        let err = accepted.recv().await.unwrap().unwrap_err();
        assert!(
            err.to_lowercase().contains(&why.to_lowercase()),
            "{what}: {err}"
        );
    }
    // STRICT: no certificate at all.
    assert!(call(addr, raw_client(None), "service2").await.is_err());
    let err = accepted.recv().await.unwrap().unwrap_err();
    assert!(
        err.contains("NoCertificatesPresented") || err.contains("certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn the_client_refuses_bad_servers() {
    let ca = TestCa::new("mesh");
    let client = mesh(&ca, SERVICE1);
    let mut cases = bad_leaves(&ca, SERVICE2, "service2");
    cases.push((
        "wrong identity",
        ca.leaf(&LeafSpec::spiffe(
            "spiffe://cluster.local/ns/default/sa/service3",
        )),
        "is not the expected spiffe://cluster.local/ns/default/sa/service2",
    ));
    for (what, leaf, why) in cases {
        let (addr, _accepted) = serve(raw_server(&leaf)).await;
        let config = client
            .client_config(expect(&[SERVICE2]), UpstreamProtocol::Auto)
            .unwrap();
        let err = call(addr, config, "service2").await.unwrap_err();
        assert!(
            err.to_lowercase().contains(&why.to_lowercase()),
            "{what}: {err}"
        );
    }
    // Without an expected identity, any workload of the mesh is accepted.
    let (addr, _accepted) = serve(raw_server(&ca.leaf(&LeafSpec::spiffe(SERVICE2)))).await;
    let config = client
        .client_config(ExpectedServer::AnyInMesh, UpstreamProtocol::Auto)
        .unwrap();
    call(addr, config, "service2").await.unwrap();
}
