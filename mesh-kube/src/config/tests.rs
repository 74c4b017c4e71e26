#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mesh_core::policy::MeshConfig;
use mesh_core::watch::ConfigStore;
use serde_json::{Value, json};

use super::*;
use crate::test_util::{self, BOUND};
use crate::testing::{ResourceType, TestApiServer, mesh_types};

fn vs(name: &str, host: &str) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"hosts": [host], "http": [{"route": [{"destination": {"host": host}}]}]}
    })
}

async fn server() -> TestApiServer {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("mesh_kube=debug")
        .try_init();
    let server = TestApiServer::start().await.unwrap();
    for t in mesh_types() {
        server.register(t);
    }
    server
}

fn start(server: &TestApiServer) -> (ConfigStore, Readiness, KubeConfigSource) {
    let store = ConfigStore::new(MeshConfig::default());
    let readiness = Readiness::new();
    let options = ConfigOptions {
        missing_retry: Duration::from_millis(100),
        ..ConfigOptions::default()
    };
    let source = KubeConfigSource::start(
        server.client().unwrap(),
        store.clone(),
        readiness.clone(),
        options,
    );
    (store, readiness, source)
}

/// Waits until the config in force satisfies `f`.
async fn until(store: &ConfigStore, f: impl Fn(&MeshConfig) -> bool) {
    let mut rx = store.subscribe();
    tokio::time::timeout(BOUND, async {
        while !f(&store.load()) {
            rx.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| {
        let c = store.load();
        panic!(
            "the config never got there: generation {}, {:?}",
            store.generation(),
            names(&c)
        )
    });
}

fn names(config: &MeshConfig) -> Vec<String> {
    config
        .virtual_services
        .iter()
        .map(|v| v.origin.name.clone())
        .collect()
}

#[tokio::test]
async fn list_then_watch_applies_changes() {
    let server = server().await;
    server.apply(vs("a", "service2")).unwrap();
    let (store, readiness, source) = start(&server);
    test_util::ready(&readiness).await;
    until(&store, |c| names(c) == ["a"]).await;
    assert_eq!(store.load().virtual_services[0].origin.file, "default/a");

    server.apply(vs("b", "service3")).unwrap();
    until(&store, |c| names(c) == ["a", "b"]).await;
    server
        .delete("networking.istio.io/v1", "VirtualService", "default", "a")
        .unwrap();
    until(&store, |c| names(c) == ["b"]).await;
    // the report follows the store (which is stored on the blocking pool)
    let report = test_util::until(source.subscribe(), |r| r.generation == store.generation()).await;
    assert!(report.refused.is_empty());
}

#[tokio::test]
async fn an_invalid_object_is_refused_alone_and_its_last_good_version_kept() {
    let server = server().await;
    server.apply(vs("a", "service2")).unwrap();
    let (store, readiness, source) = start(&server);
    test_util::ready(&readiness).await;
    until(&store, |c| names(c) == ["a"]).await;

    let mut bad = vs("a", "service2");
    bad["spec"]["http"][0]["timeout"] = "banana".into();
    server.apply(bad).unwrap();
    let mut new_bad = vs("c", "service4");
    new_bad["spec"]["http"][0]["route"][0]["destination"] = json!({"hots": "x"});
    server.apply(new_bad).unwrap();
    server.apply(vs("b", "service3")).unwrap();
    until(&store, |c| names(c) == ["a", "b"]).await;
    let report = test_util::until(source.subscribe(), |r| {
        r.refused.len() == 2 && r.generation == store.generation()
    })
    .await;
    // the last good version of `a` is in force: no timeout
    assert!(store.load().virtual_services[0].http[0].timeout.is_none());
    let a = &report.refused[0];
    assert_eq!(
        (a.namespace.as_str(), a.name.as_str(), a.last_good_kept),
        ("default", "a", true)
    );
    assert_eq!(a.errors[0].field, "spec.http[0].timeout");
    let c = &report.refused[1];
    assert_eq!((c.name.as_str(), c.last_good_kept), ("c", false));
    assert_eq!(c.errors[0].field, "spec.http[0].route[0].destination");
    assert!(
        c.errors[0].message.contains("did you mean `host`"),
        "{:?}",
        c.errors
    );
    assert!(
        readiness.is_ready(),
        "a refused object does not make the app unready"
    );
}

#[tokio::test]
async fn v1beta1_is_read_where_v1_is_not_served_and_a_missing_crd_is_retried() {
    let server = TestApiServer::start().await.unwrap();
    for t in mesh_types() {
        if t.group == "security.istio.io" {
            server.register(ResourceType {
                versions: vec!["v1beta1".into()],
                ..t
            });
        } else if t.group != "policy.linkerd.io" {
            server.register(t);
        }
    }
    server
        .apply(
            json!({"apiVersion": "security.istio.io/v1beta1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "deny", "namespace": "default"},
            "spec": {"action": "DENY", "rules": [{}]}}),
        )
        .unwrap();
    let (store, readiness, _source) = start(&server);
    test_util::ready(&readiness).await;
    until(&store, |c| c.authorization.len() == 1).await;
    let status = readiness.status();
    let missing = status.missing();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].starts_with("policy.linkerd.io HTTPLocalRateLimitPolicy: no CRD"),
        "{missing:?}"
    );

    // the CRD is installed later: found on the next look
    server.register(ResourceType::namespaced(
        "policy.linkerd.io",
        &["v1alpha1"],
        "HTTPLocalRateLimitPolicy",
    ));
    server
        .apply(json!({"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "HTTPLocalRateLimitPolicy",
            "metadata": {"name": "rl", "namespace": "default"},
            "spec": {"targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": "service1"},
                     "total": {"requestsPerSecond": 10}}}))
        .unwrap();
    until(&store, |c| c.rate_limits.len() == 1).await;
    assert!(readiness.status().missing().is_empty());
}

#[tokio::test]
async fn not_ready_before_the_first_sync_and_while_forbidden() {
    let server = server().await;
    server.apply(vs("a", "service2")).unwrap();
    server.fail(403, "virtualservices", None);
    let (store, readiness, _source) = start(&server);
    let status = test_util::until(readiness.subscribe(), |s| {
        s.watches
            .values()
            .any(|p| matches!(p, WatchPhase::Failing { .. }))
    })
    .await;
    assert!(!status.is_ready());
    let text = status.to_string();
    assert!(text.starts_with("not ready: "), "{text}");
    assert!(
        text.contains("networking.istio.io VirtualService: 403 Forbidden"),
        "{text}"
    );
    // nothing stored: never an empty mesh presented as the cluster's
    assert_eq!(store.generation(), 1);

    server.clear_faults();
    test_util::ready(&readiness).await;
    until(&store, |c| names(c) == ["a"]).await;
}

#[tokio::test]
async fn a_dropped_watch_resumes_without_a_relist() {
    let server = server().await;
    server.apply(vs("a", "service2")).unwrap();
    let (store, readiness, _source) = start(&server);
    test_util::ready(&readiness).await;
    until(&store, |c| names(c) == ["a"]).await;
    let lists = |s: &TestApiServer| {
        s.requests()
            .iter()
            .filter(|r| {
                r.starts_with("GET /apis/networking.istio.io/v1/virtualservices")
                    && !r.contains("watch=true")
            })
            .count()
    };
    let before = lists(&server);
    server.drop_watches();
    server.apply(vs("b", "service3")).unwrap();
    until(&store, |c| names(c) == ["a", "b"]).await;
    assert_eq!(
        lists(&server),
        before,
        "resumed from its resourceVersion, not relisted"
    );
}

#[tokio::test]
async fn after_410_a_relist_applies_the_deletions_of_the_gap() {
    let server = server().await;
    server.apply(vs("a", "service2")).unwrap();
    server.apply(vs("b", "service3")).unwrap();
    let (store, readiness, _source) = start(&server);
    test_util::ready(&readiness).await;
    until(&store, |c| names(c) == ["a", "b"]).await;

    // the watch is cut while the server answers nothing; meanwhile `a` goes, `c` comes and the
    // history is compacted: the resumed watch gets 410 and the watcher lists again
    server.hang(true);
    server.drop_watches();
    server
        .delete("networking.istio.io/v1", "VirtualService", "default", "a")
        .unwrap();
    server.apply(vs("c", "service4")).unwrap();
    server.compact();
    server.hang(false);
    until(&store, |c| names(c) == ["b", "c"]).await;
}

#[tokio::test]
async fn a_hanging_api_server_is_not_ready_until_it_answers() {
    let server = server().await;
    server.apply(vs("a", "service2")).unwrap();
    server.hang(true);
    let (store, readiness, _source) = start(&server);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = readiness.status();
    assert!(!status.is_ready());
    assert!(
        status
            .to_string()
            .contains("networking.istio.io VirtualService: waiting for the first sync"),
        "{status}"
    );
    assert_eq!(store.generation(), 1);
    server.hang(false);
    test_util::ready(&readiness).await;
    until(&store, |c| names(c) == ["a"]).await;
}

/// What `kubectl apply`, `kubectl label` and `kubectl delete` write reaches the config store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_changes_reach_the_config_store() {
    if std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_err()
    {
        eprintln!("kubectl is not installed (apt-get install -y kubectl); test skipped");
        return;
    }
    let server = server().await;
    let (store, readiness, source) = start(&server);
    test_util::ready(&readiness).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let manifest = dir.path().join("mesh.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: service2\nspec:\n  host: service2\n  subsets:\n  - name: v1\n    labels: {version: v1}\n  - name: v2\n    labels: {version: v2}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: service2\nspec:\n  hosts: [service2]\n  http:\n  - route:\n    - destination: {host: service2, subset: v1}\n      weight: 90\n    - destination: {host: service2, subset: v2}\n      weight: 10\n",
    )
    .unwrap();
    let kubectl = |args: Vec<String>| {
        let kubeconfig = kubeconfig.clone();
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new("kubectl")
                .env("KUBECONFIG", &kubeconfig)
                .env("HOME", kubeconfig.parent().unwrap())
                .args(&args)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "kubectl {args:?}: {text}");
        })
    };
    let m = manifest.display().to_string();
    kubectl(vec![
        "apply".into(),
        "--validate=false".into(),
        "-f".into(),
        m.clone(),
    ])
    .await
    .unwrap();
    until(&store, |c| {
        names(c) == ["service2"] && c.destinations.len() == 1
    })
    .await;
    kubectl(vec![
        "label".into(),
        "dr".into(),
        "service2".into(),
        "team=a".into(),
    ])
    .await
    .unwrap();
    kubectl(vec!["delete".into(), "-f".into(), m])
        .await
        .unwrap();
    until(&store, |c| {
        c.virtual_services.is_empty() && c.destinations.is_empty()
    })
    .await;
    assert!(source.report().refused.is_empty());
}

/// Access revoked after the first sync: not ready with the reason, the last known objects stay;
/// access back: ready again though nothing changed.
#[tokio::test]
async fn a_403_after_the_sync_is_not_ready_and_recovers_without_a_change() {
    let server = server().await;
    server.apply(vs("a", "service2")).unwrap();
    let (store, readiness, _source) = start(&server);
    test_util::ready(&readiness).await;
    until(&store, |c| names(c) == ["a"]).await;
    server.fail(403, "virtualservices", None);
    server.drop_watches();
    let text = test_util::says(&readiness, "403").await;
    assert!(
        text.contains("networking.istio.io VirtualService: 403 Forbidden"),
        "{text}"
    );
    assert_eq!(names(&store.load()), ["a"], "the last known objects stay");
    server.clear_faults();
    test_util::ready(&readiness).await;
    assert_eq!(names(&store.load()), ["a"]);
}

/// Istio's mesh config is one ConfigMap: only it is watched, not every ConfigMap.
#[tokio::test]
async fn only_the_mesh_config_map_is_watched() {
    let server = server().await;
    for (ns, name) in [("istio-system", "istio"), ("default", "other")] {
        server
            .apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns}, "data": {"mesh": "{}"}}))
            .unwrap();
    }
    let (_store, readiness, _source) = start(&server);
    test_util::ready(&readiness).await;
    assert_eq!(
        readiness
            .status()
            .watches
            .get("ConfigMap istio-system/istio"),
        Some(&WatchPhase::Synced)
    );
    let requests = server.requests();
    let config_maps: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("configmaps"))
        .collect();
    assert!(!config_maps.is_empty());
    assert!(
        config_maps.iter().all(|r| r
            .starts_with("GET /api/v1/namespaces/istio-system/configmaps?")
            && r.contains("fieldSelector=metadata.name%3Distio")),
        "{config_maps:#?}"
    );
}

#[tokio::test]
async fn the_store_and_its_prepare_hooks_run_off_the_runtime_threads() {
    let server = server().await;
    server.apply(vs("a", "service2")).unwrap();
    let (store, readiness, _source) = start(&server);
    // a current-thread runtime: a hook run by a task would run on this thread
    let here = std::thread::current().id();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook: mesh_core::watch::PrepareHook = {
        let seen = Arc::clone(&seen);
        Arc::new(move |_: &Arc<MeshConfig>| {
            seen.lock().unwrap().push(std::thread::current().id());
        })
    };
    store.on_prepare(&hook);
    test_util::ready(&readiness).await;
    until(&store, |c| names(c) == ["a"]).await;
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|t| *t != here), "{seen:?} vs {here:?}");
}
