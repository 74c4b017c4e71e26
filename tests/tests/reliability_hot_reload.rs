//! Reliability: hot reload under load.
//!
//! 50 config changes (weights and routes) while traffic flows. What it proves: zero failed
//! requests, and every request is served entirely by one config (the one before or after a
//! change), never a mix: each config `k` both routes to a backend chosen by `k` and stamps the
//! response with `x-config: k`, so a request that took its route from one snapshot and its
//! destination or headers from another would show a backend that config `k` does not route to.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod reliability;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reliability::{Backend, config, get, mesh, service_entry};

const CHANGES: usize = 50;

/// Config `k`: `/a...` goes to subset v1 when `k` is even and v2 when odd; every other path to
/// the other subset, as a single destination (even `k`) or a 0/100 weighted split (odd `k`). Both
/// routes stamp `x-config: k`, so each answer says which config served it.
fn config_k(registry: &str, k: usize) -> String {
    let (a_subset, other_subset) = if k.is_multiple_of(2) {
        ("v1", "v2")
    } else {
        ("v2", "v1")
    };
    // Weighted form on odd configs (a 0/100 split), single destination on even: both kinds of
    // change are exercised.
    let other = if k.is_multiple_of(2) {
        format!("    - destination: {{host: svc, subset: {other_subset}}}\n")
    } else {
        format!(
            "    - destination: {{host: svc, subset: {a_subset}}}\n      weight: 0\n    - destination: {{host: svc, subset: {other_subset}}}\n      weight: 100\n"
        )
    };
    format!(
        r#"{registry}apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: svc}}
spec:
  host: svc
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: svc}}
spec:
  hosts: [svc]
  http:
  - match: [{{uri: {{prefix: /a}}}}]
    headers: {{response: {{set: {{x-config: "{k}"}}}}}}
    route:
    - destination: {{host: svc, subset: {a_subset}}}
  - headers: {{response: {{set: {{x-config: "{k}"}}}}}}
    route:
{other}"#
    )
}

/// Which backend config `k` must send `path` to.
fn expected_backend(k: usize, path: &str) -> &'static str {
    let a_is_v1 = k.is_multiple_of(2);
    match (path.starts_with("/a"), a_is_v1) {
        (true, true) | (false, false) => "v1",
        _ => "v2",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reloads_under_load_lose_nothing_and_never_mix() {
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let registry = service_entry("svc", &[(v1.addr, "v1"), (v2.addr, "v2")]);
    let (client, store, _registry) = mesh(&config_k(&registry, 0));
    let client = Arc::new(client);
    let stop = Arc::new(AtomicBool::new(false));

    let mut workers = tokio::task::JoinSet::new();
    for w in 0..4 {
        let (client, stop) = (client.clone(), stop.clone());
        workers.spawn(async move {
            let mut answers = Vec::new();
            let mut i = 0usize;
            // Bounded: stops when the reloads are done, or after 20 000 requests at most.
            while !stop.load(Ordering::SeqCst) && i < 20_000 {
                let path = if (i + w).is_multiple_of(2) {
                    "/a/x"
                } else {
                    "/b/y"
                };
                answers.push((path, get(&client, &format!("http://svc{path}")).await));
                i += 1;
            }
            answers
        });
    }

    for k in 1..=CHANGES {
        store.store(config(&config_k(&registry, k)));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);

    let mut answers = Vec::new();
    while let Some(joined) = workers.join_next().await {
        answers.extend(joined.unwrap());
    }
    assert!(
        answers.len() >= 100,
        "too little traffic flowed during the reloads: {}",
        answers.len()
    );
    let mut seen_configs = std::collections::BTreeSet::new();
    for (path, answer) in &answers {
        assert_eq!(
            answer.status, 200,
            "a request failed during reloads: {path} {answer:?}"
        );
        let k: usize = answer
            .headers
            .get("x-config")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("answer without x-config: {answer:?}"));
        assert!(k <= CHANGES);
        assert_eq!(
            answer.backend,
            expected_backend(k, path),
            "config {k} was mixed with another: {path} went to {}",
            answer.backend
        );
        seen_configs.insert(k);
    }
    // Traffic really crossed many reloads, not just the first and the last config.
    assert!(
        seen_configs.len() >= 10,
        "only configs {seen_configs:?} served traffic"
    );
}
