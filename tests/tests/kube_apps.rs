//! The example apps in `--kube` mode against the test API server, each on its Pod's loopback IP
//! (port 8080), configured only through the API: routing through the gateway, the 90/10 split,
//! a canary moved with no failed request, a Pod relabelled between subsets, an endpoint not
//! ready, an invalid object isolated, readiness before the first sync and on 403.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_tests::kube::{AppPod, Cluster, SERVICE1, SERVICE2_V1, SERVICE2_V2, SERVICE3};
use serde_json::json;

const NS: &str = "default";

/// The article's chain behind the gateway: the Gateway in `default` applies to the gateway Pod
/// in `istio-system` by its selector; service2 knows its version from its Pod's label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_routes_the_article_chain_from_the_api_server() {
    let c = Cluster::start(81).await;
    c.article(NS);
    c.article_gateway(NS);
    let [_s3, _s2, s1] = c.start_ready(NS, [SERVICE3, SERVICE2_V2, SERVICE1]).await;
    let gw = c.start_gateway().await;
    c.ready(&gw).await;
    // only the v2 Pod runs: the slice's v1 address refuses, so route to v2 by subset
    c.subsets(NS);
    c.split(NS, 0, 100);
    let a = c
        .until(
            gw.addr,
            "/service1/hello",
            "chain through the gateway",
            |a| a.status == 200,
        )
        .await;
    let body = a.json();
    assert_eq!(body["service"], "service1", "{body}");
    assert_eq!(body["path"], "/service1/hello", "{body}");
    assert_eq!(body["upstream"]["service"], "service2", "{body}");
    assert_eq!(
        body["upstream"]["version"], "v2",
        "service2's version comes from its Pod label: {body}"
    );
    assert_eq!(
        body["upstream"]["upstream"]["service"], "service3",
        "{body}"
    );
    // the Deployment's name is the workload in metrics
    let metrics = c.get(s1.admin, "/metrics").await.body;
    assert!(
        metrics.contains("destination_workload=\"service1\""),
        "{metrics}"
    );
    // a path no route matches at the gateway
    assert_eq!(c.get(gw.addr, "/nowhere").await.status, 404);
}

/// A 90/10 split created through the API, then a canary moved 90/10 → 50/50 → 0/100 through the
/// API while requests flow: none fails, and the last weights win.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_and_canary_through_the_api_with_no_failed_request() {
    let c = Cluster::start(82).await;
    c.article(NS);
    let [_s3, _v1, _v2, s1] = c
        .start_ready(NS, [SERVICE3, SERVICE2_V1, SERVICE2_V2, SERVICE1])
        .await;
    c.subsets(NS);
    c.split(NS, 90, 10);
    // the split applies once the watch delivers it: wait for a v2 answer... then count
    c.config_until(s1.admin, |dump| dump.contains("\"weight\":10"))
        .await;
    let (mut n1, mut n2) = (0, 0);
    for _ in 0..300 {
        let a = c.get(s1.addr, "/split").await;
        assert_eq!(a.status, 200, "{}", a.body);
        match a.upstream_version().as_deref() {
            Some("v1") => n1 += 1,
            Some("v2") => n2 += 1,
            other => panic!("no version: {other:?} {}", a.body),
        }
    }
    assert!(
        n2 > 5 && n2 < 70 && n1 > 200,
        "90/10 split: v1 {n1}, v2 {n2}"
    );

    // the canary, moved while requests flow
    let failures = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let (failures, stop, addr) = (failures.clone(), stop.clone(), s1.addr);
        let c2 = c.http();
        tokio::spawn(async move {
            let mut sent = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let a = c2.get(addr, "/canary").await;
                if a.status != 200 {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    eprintln!("failed during the canary: {} {}", a.status, a.body);
                }
                sent += 1;
            }
            sent
        })
    };
    for (w1, w2) in [(50, 50), (0, 100)] {
        c.split(NS, w1, w2);
        let needle = format!("\"weight\":{w2}");
        c.config_until(s1.admin, |dump| dump.contains(&needle))
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    let sent = traffic.await.unwrap();
    assert!(sent > 0);
    assert_eq!(
        failures.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "failed requests while the canary moved ({sent} sent)"
    );
    for _ in 0..20 {
        let a = c.get(s1.addr, "/after").await;
        assert_eq!(a.upstream_version().as_deref(), Some("v2"), "{}", a.body);
    }
}

/// A Pod relabelled from v2 to v1 joins subset v1; an endpoint not ready leaves it; a host with
/// no ready endpoint answers 503 `UH`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subsets_follow_pod_labels_and_endpoint_readiness() {
    let c = Cluster::start(83).await;
    c.article(NS);
    let [_s3, _v1, v2, s1] = c
        .start_ready(NS, [SERVICE3, SERVICE2_V1, SERVICE2_V2, SERVICE1])
        .await;
    c.subsets(NS);
    c.split(NS, 100, 0);
    c.config_until(s1.admin, |dump| dump.contains("\"weight\":100"))
        .await;
    // service1 can have the split before the subsets and endpoints have reached every app
    // (each watches the API server on its own): wait for the first answer from v1
    c.until(s1.addr, "/v1-only", "subset v1 in use", |a| {
        a.upstream_version().as_deref() == Some("v1")
    })
    .await;
    for _ in 0..20 {
        let a = c.get(s1.addr, "/v1-only").await;
        assert_eq!(a.upstream_version().as_deref(), Some("v1"), "{}", a.body);
    }
    // relabel the v2 Pod as v1: subset v1 now holds both (the app still says v2 of itself)
    c.pod(
        NS,
        "service2-v2-a",
        "service2-v2",
        json!({"app": "service2", "version": "v1"}),
        13,
    );
    c.until(
        s1.addr,
        "/relabelled",
        "the relabelled Pod in subset v1",
        |a| a.upstream_version().as_deref() == Some("v2"),
    )
    .await;
    // the v1 Pod's endpoint not ready: only the relabelled Pod answers
    c.slice(
        NS,
        "service2",
        &[("service2-v1-a", 12, false), ("service2-v2-a", 13, true)],
    );
    c.until(s1.addr, "/not-ready", "endpoint not ready left out", |a| {
        a.upstream_version().as_deref() == Some("v2")
    })
    .await;
    for _ in 0..20 {
        let a = c.get(s1.addr, "/not-ready").await;
        assert_eq!(a.upstream_version().as_deref(), Some("v2"), "{}", a.body);
    }
    // service3 with no ready endpoint: service2 gets 503 UH and answers 502
    c.slice(NS, "service3", &[("service3-a", 14, false)]);
    let a = c
        .until(s1.addr, "/no-service3", "no healthy upstream", |a| {
            a.json()["upstream_status"] == 502 || a.status == 502
        })
        .await;
    assert_eq!(a.status, 502, "{}", a.body);
    let metrics = c.get(v2.admin, "/metrics").await.body;
    assert!(
        metrics.lines().any(|l| l.contains("istio_requests_total")
            && l.contains("reporter=\"source\"")
            && l.contains("response_code=\"503\"")
            && l.contains("response_flags=\"UH\"")),
        "{metrics}"
    );
}

/// An invalid object is refused alone and listed in `/config_dump` with its namespace, name,
/// field and message; the other objects apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_object_is_isolated_and_shown_in_config_dump() {
    let c = Cluster::start(84).await;
    c.article(NS);
    let [_s3, _v1, s1] = c.start_ready(NS, [SERVICE3, SERVICE2_V1, SERVICE1]).await;
    c.subsets(NS);
    c.split(NS, 100, 0);
    // another team's typo: weights that do not total 100, and a bad timeout
    c.apply(
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "broken", "namespace": "team-b"},
        "spec": {"hosts": ["service9"], "http": [{"timeout": "ten seconds", "route": [
            {"destination": {"host": "service9"}, "weight": 60}]}]}}),
    );
    let dump = c.config_until(s1.admin, |d| d.contains("\"broken\"")).await;
    let refused = &dump["kubernetes"]["refused"];
    let entry = refused
        .as_array()
        .and_then(|r| r.iter().find(|o| o["name"] == "broken"))
        .unwrap_or_else(|| panic!("not refused: {dump}"));
    assert_eq!(entry["namespace"], "team-b", "{entry}");
    assert_eq!(entry["kind"], "VirtualService", "{entry}");
    let errors = entry["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(
            |e| e["field"].as_str().is_some_and(|f| f.contains("timeout"))
                && !e["message"].as_str().unwrap_or("").is_empty()
        ),
        "{entry}"
    );
    // everything else still applies, once every app has it (service1 can have the broken
    // object before service2 has the subsets: each app watches the API server on its own)
    let a = c
        .until(s1.addr, "/still-fine", "the other objects apply", |a| {
            a.status == 200
        })
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.upstream_version().as_deref(), Some("v1"));
}

/// Before every watch synced the listen port answers 503 and `/healthz` says why; a 403 from the
/// API server is shown as not ready with the reason; once access is granted the app serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_before_the_first_sync_and_on_403() {
    let c = Cluster::start(85).await;
    c.article(NS);
    c.server.fail(403, "virtualservices", None);
    let s3 = c.start_service(NS, "service3-a", "service3", 14).await;
    let health = c
        .until(s3.admin, "/healthz", "403 shown", |a| {
            a.body.contains("403")
        })
        .await;
    assert_eq!(health.status, 503, "{}", health.body);
    assert!(health.body.contains("not ready"), "{}", health.body);
    assert!(health.body.contains("VirtualService"), "{}", health.body);
    let served = c.get(s3.addr, "/early").await;
    assert_ne!(served.status, 200, "served before sync: {}", served.body);
    c.server.clear_faults();
    c.ready(&s3).await;
    let a = c.get(s3.addr, "/later").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["service"], "service3");
}

/// Watches resume after a dropped stream and relist after 410 Gone: changes made meanwhile
/// apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_resume_and_relist() {
    let c = Cluster::start(86).await;
    c.article(NS);
    let [_s3, _v1, _v2, s1] = c
        .start_ready(NS, [SERVICE3, SERVICE2_V1, SERVICE2_V2, SERVICE1])
        .await;
    c.subsets(NS);
    c.split(NS, 100, 0);
    c.config_until(s1.admin, |d| d.contains("\"weight\":100"))
        .await;
    c.server.drop_watches();
    c.split(NS, 0, 100);
    c.until(s1.addr, "/resumed", "change after a dropped watch", |a| {
        a.upstream_version().as_deref() == Some("v2")
    })
    .await;
    // history compacted, then the stream dropped: the watch resumes into 410 and relists
    c.server.compact();
    c.split(NS, 100, 0);
    c.server.compact();
    c.server.drop_watches();
    c.until(s1.addr, "/relisted", "change after 410", |a| {
        a.upstream_version().as_deref() == Some("v1")
    })
    .await;
    for _ in 0..10 {
        let a = c.get(s1.addr, "/relisted").await;
        assert_eq!(a.upstream_version().as_deref(), Some("v1"), "{}", a.body);
    }
}

/// Two namespaces with the same service names: each service1 reaches its own namespace's
/// service2 by the short name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_namespaces_with_the_same_service_names() {
    let c = Cluster::start(87).await;
    c.article("blue");
    // the green copy at other pod IPs (n + 20)
    for svc in ["service1", "service2", "service3"] {
        c.service("green", svc);
    }
    c.pod(
        "green",
        "service1-g",
        "service1",
        json!({"app": "service1", "version": "v1"}),
        31,
    );
    c.pod(
        "green",
        "service2-g",
        "service2-v2",
        json!({"app": "service2", "version": "v2"}),
        33,
    );
    c.pod(
        "green",
        "service3-g",
        "service3",
        json!({"app": "service3", "version": "v1"}),
        34,
    );
    c.slice("green", "service1", &[("service1-g", 31, true)]);
    c.slice("green", "service2", &[("service2-g", 33, true)]);
    c.slice("green", "service3", &[("service3-g", 34, true)]);
    let green_pod = |app: &'static str, pod: &'static str, n: u8| AppPod { pod, app, n };
    let blue_apps = c
        .start_ready("blue", [SERVICE3, SERVICE2_V1, SERVICE1])
        .await;
    let green_apps = c
        .start_ready(
            "green",
            [
                green_pod("service3", "service3-g", 34),
                green_pod("service2", "service2-g", 33),
                green_pod("service1", "service1-g", 31),
            ],
        )
        .await;
    // blue's slice also lists its v2 address, where nothing listens: route blue to v1
    c.slice("blue", "service2", &[("service2-v1-a", 12, true)]);
    let blue = c
        .until(blue_apps[2].addr, "/blue", "blue chain", |a| {
            a.status == 200
        })
        .await;
    assert_eq!(
        blue.upstream_version().as_deref(),
        Some("v1"),
        "{}",
        blue.body
    );
    let green = c
        .until(green_apps[2].addr, "/green", "green chain", |a| {
            a.status == 200
        })
        .await;
    assert_eq!(
        green.upstream_version().as_deref(),
        Some("v2"),
        "{}",
        green.body
    );
    for _ in 0..10 {
        assert_eq!(
            c.get(blue_apps[2].addr, "/blue")
                .await
                .upstream_version()
                .as_deref(),
            Some("v1")
        );
        assert_eq!(
            c.get(green_apps[2].addr, "/green")
                .await
                .upstream_version()
                .as_deref(),
            Some("v2")
        );
    }
}
