#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::testing::TestApiServer;

fn b64(text: &str) -> String {
    // Standard base64, written out here to need no extra dependency in the test.
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn secret(name: &str, data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String(b64(v))))
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": "istio-system"}, "data": data})
}

#[tokio::test]
async fn reads_tls_and_generic_keys_and_the_separate_ca_secret() {
    let server = TestApiServer::start().await.unwrap();
    server
        .apply(secret("shop", &[("tls.crt", "CHAIN"), ("tls.key", "KEY")]))
        .unwrap();
    server
        .apply(secret("shop-cacert", &[("ca.crt", "ROOTS")]))
        .unwrap();
    server
        .apply(secret(
            "generic",
            &[("cert", "C"), ("key", "K"), ("cacert", "R")],
        ))
        .unwrap();
    server.apply(secret("broken", &[("tls.crt", "C")])).unwrap();
    let client = server.client().unwrap();

    let shop = read_tls_secret(client.clone(), "istio-system", "shop")
        .await
        .unwrap();
    assert_eq!(shop.cert_chain, b"CHAIN");
    assert_eq!(shop.private_key, b"KEY");
    assert_eq!(shop.ca_certificates.as_deref(), Some(&b"ROOTS"[..]));
    let generic = read_tls_secret(client.clone(), "istio-system", "generic")
        .await
        .unwrap();
    assert_eq!(generic.ca_certificates.as_deref(), Some(&b"R"[..]));

    let err = read_tls_secret(client.clone(), "istio-system", "broken")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no `tls.key`"), "{err}");
    let err = read_tls_secret(client, "istio-system", "absent")
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Api { .. }), "{err}");
}

#[tokio::test]
async fn a_watch_follows_updates_and_keeps_the_last_good_value() {
    let server = TestApiServer::start().await.unwrap();
    server
        .apply(secret("shop", &[("tls.crt", "ONE"), ("tls.key", "KEY")]))
        .unwrap();
    let watch = watch_tls_secret(server.client().unwrap(), "istio-system", "shop");
    let rx = watch.subscribe();
    let wait_for = |want: &'static [u8]| {
        let mut rx = rx.clone();
        async move {
            tokio::time::timeout(
                Duration::from_secs(20),
                rx.wait_for(|v| v.as_ref().is_some_and(|s| s.cert_chain == want)),
            )
            .await
            .expect("the watch delivers the value")
            .unwrap();
        }
    };
    wait_for(b"ONE").await;
    server.apply(secret("shop", &[("tls.crt", "BAD")])).unwrap();
    server
        .apply(secret("shop", &[("tls.crt", "TWO"), ("tls.key", "KEY")]))
        .unwrap();
    wait_for(b"TWO").await;
    // A Secret that lost its key was refused on the way: the good value is current.
    assert_eq!(watch.current().unwrap().cert_chain, b"TWO");
}

#[tokio::test]
async fn a_watch_takes_the_ca_from_the_cacert_secret_and_reports_a_deletion() {
    let server = TestApiServer::start().await.unwrap();
    server
        .apply(secret("api", &[("tls.crt", "CHAIN"), ("tls.key", "KEY")]))
        .unwrap();
    let watch = watch_tls_secret(server.client().unwrap(), "istio-system", "api");
    let mut rx = watch.subscribe();
    server
        .apply(secret("api-cacert", &[("ca.crt", "ROOTS")]))
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        rx.wait_for(|v| {
            v.as_ref()
                .is_some_and(|s| s.ca_certificates.as_deref() == Some(&b"ROOTS"[..]))
        }),
    )
    .await
    .expect("the CA Secret is merged in")
    .unwrap();
    assert!(watch.error().is_none());
    server
        .delete("v1", "Secret", "istio-system", "api")
        .unwrap();
    let start = std::time::Instant::now();
    while !watch.error().is_some_and(|e| e.contains("deleted")) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no deletion reported"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(watch.current().unwrap().cert_chain, b"CHAIN");
}
