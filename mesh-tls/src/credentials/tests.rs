#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::testing::{KeyFormat, Leaf, LeafSpec, TestCa};

const ID: &str = "spiffe://cluster.local/ns/default/sa/service1";

fn load(leaf: &Leaf) -> Result<Credentials, CredentialError> {
    Credentials::from_pem(
        leaf.chain_pem.as_bytes(),
        leaf.key_pem.as_bytes(),
        leaf.root_pem.as_bytes(),
    )
}

#[test]
fn a_good_set_exposes_identity_serial_and_expiry() {
    let ca = TestCa::new("mesh");
    for format in [KeyFormat::Pkcs8, KeyFormat::Sec1, KeyFormat::Rsa] {
        let leaf = ca.leaf(&LeafSpec::spiffe(ID).serial(0x2a).key_format(format));
        let creds = load(&leaf).unwrap_or_else(|err| panic!("{format:?}: {err}"));
        assert_eq!(creds.identity().to_string(), ID);
        assert_eq!(creds.serial(), "2a");
        assert_eq!(creds.chain().len(), 2);
        assert_eq!(creds.root_certs().len(), 1);
        let late_2088 = UNIX_EPOCH + std::time::Duration::from_secs(3_750_000_000);
        assert!(creds.not_after() > late_2088, "{:?}", creds.not_after());
        assert!(creds.not_before() < SystemTime::now());
    }
    let sec1 = ca.leaf(&LeafSpec::spiffe(ID).key_format(KeyFormat::Sec1));
    assert!(sec1.key_pem.starts_with("-----BEGIN EC PRIVATE KEY-----"));
}

#[test]
fn garbage_pem_is_an_error_not_a_panic() {
    let ca = TestCa::new("mesh");
    let leaf = ca.leaf(&LeafSpec::spiffe(ID));
    let chain = leaf.chain_pem.as_bytes();
    let key = leaf.key_pem.as_bytes();
    let root = leaf.root_pem.as_bytes();
    let half = &chain[..chain.len() / 2];
    let bad_base64 = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    let not_der = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();

    type Case<'a> = (&'a [u8], &'a [u8], &'a [u8], &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            b"",
            key,
            root,
            "certificate chain: no PEM CERTIFICATE block",
        ),
        (
            b"hello",
            key,
            root,
            "certificate chain: no PEM CERTIFICATE block",
        ),
        (half, key, root, "certificate chain: bad PEM"),
        (bad_base64, key, root, "certificate chain: bad PEM"),
        (not_der, key, root, "certificate chain: the leaf"),
        (&binary, key, root, "certificate chain"),
        (chain, b"", root, "private key: no PEM"),
        (chain, &key[..key.len() / 2], root, "private key: bad PEM"),
        (chain, chain, root, "private key: no PEM"),
        (
            chain,
            key,
            b"",
            "root certificates: no PEM CERTIFICATE block",
        ),
        (chain, key, not_der, "root certificates"),
        (chain, key, &binary, "root certificates"),
    ];
    for (chain, key, root, want) in cases {
        let err = Credentials::from_pem(chain, key, root).unwrap_err();
        assert!(
            err.to_string().starts_with(want),
            "want {want:?}, got {err}"
        );
    }
}

#[test]
fn a_key_that_is_not_the_leafs_is_refused() {
    let ca = TestCa::new("mesh");
    let leaf = ca.leaf(&LeafSpec::spiffe(ID));
    let other = ca.leaf(&LeafSpec::spiffe(ID));
    let err = Credentials::from_pem(
        leaf.chain_pem.as_bytes(),
        other.key_pem.as_bytes(),
        leaf.root_pem.as_bytes(),
    )
    .unwrap_err();
    assert_eq!(err, CredentialError::KeyMismatch);
}

#[test]
fn the_leaf_needs_exactly_one_spiffe_uri() {
    let ca = TestCa::new("mesh");
    let mut dns_only = LeafSpec::spiffe(ID);
    dns_only.uris.clear();
    dns_only.dns.push("service1.default.svc".to_owned());
    let err = load(&ca.leaf(&dns_only)).unwrap_err();
    assert_eq!(
        err,
        CredentialError::Identity(CertIdentityError::NoSpiffeId)
    );

    let mut two = LeafSpec::spiffe(ID);
    two.uris
        .push("spiffe://cluster.local/ns/default/sa/other".to_owned());
    let err = load(&ca.leaf(&two)).unwrap_err();
    assert_eq!(
        err,
        CredentialError::Identity(CertIdentityError::SeveralUris(2))
    );

    let not_istio = LeafSpec::spiffe("spiffe://cluster.local/workload/service1");
    let err = load(&ca.leaf(&not_istio)).unwrap_err();
    assert!(
        matches!(
            err,
            CredentialError::Identity(CertIdentityError::Identity(_))
        ),
        "{err}"
    );
}

#[test]
fn validity_is_checked() {
    let ca = TestCa::new("mesh");
    let expired = ca.leaf(
        &LeafSpec::spiffe(ID)
            .validity((2020, 1, 1), (2021, 1, 1))
            .serial(7),
    );
    let err = load(&expired).unwrap_err();
    assert!(
        matches!(err, CredentialError::Expired { ref serial, .. } if serial == "7"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the leaf certificate (serial 7) has expired"
    );

    let future = ca.leaf(&LeafSpec::spiffe(ID).validity((2080, 1, 1), (2090, 1, 1)));
    assert!(matches!(
        load(&future),
        Err(CredentialError::NotYetValid { .. })
    ));

    // The same expired set was fine while it was valid.
    let in_2020 = UNIX_EPOCH + std::time::Duration::from_secs(1_590_000_000);
    let creds = Credentials::from_pem_at(
        expired.chain_pem.as_bytes(),
        expired.key_pem.as_bytes(),
        expired.root_pem.as_bytes(),
        in_2020,
    );
    assert!(creds.is_ok(), "{creds:?}");
}

#[test]
fn the_chain_must_verify_to_the_roots() {
    let ca = TestCa::new("mesh");
    let foreign = TestCa::new("foreign");
    let leaf = ca.leaf(&LeafSpec::spiffe(ID));

    // Another CA's root.
    let err = Credentials::from_pem(
        leaf.chain_pem.as_bytes(),
        leaf.key_pem.as_bytes(),
        foreign.root_pem().as_bytes(),
    )
    .unwrap_err();
    assert!(matches!(err, CredentialError::Chain(_)), "{err}");

    // The intermediate left out of the chain.
    let leaf_only: String = leaf
        .chain_pem
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap()
        .to_owned();
    let err = Credentials::from_pem(
        leaf_only.as_bytes(),
        leaf.key_pem.as_bytes(),
        leaf.root_pem.as_bytes(),
    )
    .unwrap_err();
    assert!(matches!(err, CredentialError::Chain(_)), "{err}");

    // Several roots (a root rotation in progress): any one that verifies will do.
    let roots = format!("{}{}", foreign.root_pem(), leaf.root_pem);
    let creds = Credentials::from_pem(
        leaf.chain_pem.as_bytes(),
        leaf.key_pem.as_bytes(),
        roots.as_bytes(),
    )
    .unwrap();
    assert_eq!(creds.root_certs().len(), 2);
}

#[test]
fn debug_does_not_print_the_key() {
    let ca = TestCa::new("mesh");
    let creds = load(&ca.leaf(&LeafSpec::spiffe(ID))).unwrap();
    let text = format!("{creds:?}");
    assert!(text.contains(ID), "{text}");
    assert!(!text.to_lowercase().contains("key:"), "{text}");
}
