#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::discovery::ApiResource;
use serde_json::json;

use super::*;

/// Safety bound against a hang; never an assertion on how long things take.
const BOUND: Duration = Duration::from_secs(20);

fn pod(name: &str, version: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "service2", "version": version}},
        "spec": {"containers": [{"name": "app", "image": "x"}]},
        "status": {"podIP": "127.0.0.2"}
    })
}

#[tokio::test]
async fn kube_rs_lists_with_selectors_pages_and_conflicts() {
    let server = TestApiServer::start().await.unwrap();
    let rv1 = server.apply(pod("a", "v1")).unwrap();
    let rv2 = server.apply(pod("b", "v2")).unwrap();
    assert!(rv2 > rv1, "one counter for every write");
    server.apply(pod("c", "v1")).unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client().unwrap(), "default");

    let v1 = pods
        .list(&ListParams::default().labels("version=v1"))
        .await
        .unwrap();
    let names: Vec<_> = v1
        .items
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["a", "c"]);
    let set = pods
        .list(&ListParams::default().labels("version in (v2),app"))
        .await
        .unwrap();
    assert_eq!(set.items.len(), 1);

    let page = pods.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page.items.len(), 2);
    let token = page.metadata.continue_.clone().unwrap();
    let rest = pods
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.metadata.continue_.is_none());

    // a stale resourceVersion is a conflict
    let mut a = pods.get("a").await.unwrap();
    server.apply(pod("a", "v3")).unwrap();
    a.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("x".into(), "y".into());
    let err = pods
        .replace("a", &PostParams::default(), &a)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err:?}"
    );

    // merge patch, then delete
    let patch = json!({"metadata": {"labels": {"version": "v9"}}});
    let patched = pods
        .patch("a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["version"], "v9");
    pods.delete("a", &Default::default()).await.unwrap();
    let err = pods.get("a").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );
}

#[tokio::test]
async fn watches_resume_bookmark_and_expire() {
    let server = TestApiServer::start_with(TestServerOptions {
        history: 3,
        bookmark_every: Duration::from_millis(20),
        token: Some("secret".into()),
    })
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client().unwrap(), "default");
    let start = server.apply(pod("a", "v1")).unwrap();
    server.apply(pod("b", "v1")).unwrap();
    // relabelled out of the selector: the watch sees it deleted
    server.apply(pod("a", "v2")).unwrap();

    let params = WatchParams::default().labels("version=v1");
    let stream = pods.watch(&params, &start.to_string()).await.unwrap();
    let events: Vec<_> = tokio::time::timeout(BOUND, stream.take(3).try_collect::<Vec<_>>())
        .await
        .unwrap()
        .unwrap();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(p) => format!("ADDED {}", p.metadata.name.clone().unwrap()),
            WatchEvent::Deleted(p) => format!("DELETED {}", p.metadata.name.clone().unwrap()),
            WatchEvent::Bookmark(_) => "BOOKMARK".into(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["ADDED b", "DELETED a", "BOOKMARK"]);

    // beyond the history: a 410 ERROR event
    for v in ["v3", "v4", "v5"] {
        server.apply(pod("b", v)).unwrap();
    }
    let mut stream = pods
        .watch(&params, &start.to_string())
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(BOUND, stream.next()).await.unwrap() {
        Some(Ok(WatchEvent::Error(e))) => {
            assert_eq!(e.code, 410);
            assert!(
                e.message.contains("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected a 410 error event, got {other:?}"),
    }

    // a dropped watch ends the stream
    let mut stream = pods
        .watch(
            &WatchParams::default(),
            &server.resource_version().to_string(),
        )
        .await
        .unwrap()
        .boxed();
    server.drop_watches();
    let ended = tokio::time::timeout(BOUND, async {
        while let Some(e) = stream.next().await {
            assert!(matches!(e, Ok(WatchEvent::Bookmark(_))), "{e:?}");
        }
    })
    .await;
    assert!(ended.is_ok());

    // the token is required
    let anonymous =
        kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let err = Api::<Pod>::namespaced(anonymous, "default")
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 401),
        "{err:?}"
    );
}

#[tokio::test]
async fn injected_failures_and_custom_resources() {
    let server = TestApiServer::start().await.unwrap();
    for t in mesh_types() {
        server.register(t);
    }
    let client = server.client().unwrap();
    let gvk = kube::core::GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService");
    let resource = ApiResource::from_gvk(&gvk);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    server.fail(403, "virtualservices", Some(1));
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 403 && s.reason == "Forbidden"),
        "{err:?}"
    );
    assert!(
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    server.fail(500, "virtualservices", None);
    assert!(api.list(&ListParams::default()).await.is_err());
    assert!(api.list(&ListParams::default()).await.is_err());
    server.clear_faults();

    // v1 and v1beta1 read the same objects
    server
        .apply(
            json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "r", "namespace": "default"}, "spec": {"hosts": ["x"]}}),
        )
        .unwrap();
    let listed = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        listed.items[0].types.as_ref().unwrap().api_version,
        "networking.istio.io/v1"
    );

    // discovery finds the registered kinds; an unregistered one is gone
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    assert!(discovery.has_group("networking.istio.io"));
    assert!(discovery.has_group("policy.linkerd.io"));
    server.unregister("policy.linkerd.io", "httplocalratelimitpolicies");
    let discovery = kube::Discovery::new(client).run().await.unwrap();
    assert!(!discovery.has_group("policy.linkerd.io"));

    // a hanging server answers nothing until released
    server.hang(true);
    let pending =
        tokio::time::timeout(Duration::from_millis(200), api.list(&ListParams::default())).await;
    assert!(pending.is_err(), "a hanging server must not answer");
    server.hang(false);
    assert!(api.list(&ListParams::default()).await.is_ok());
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", kubeconfig.parent().unwrap())
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// kubectl against the test server: apply (client-side and server-side), get, label, delete;
/// each observed through kube-rs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drives_the_server() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl is not installed (apt-get install -y kubectl); test skipped");
        return;
    }
    let server = TestApiServer::start().await.unwrap();
    for t in mesh_types() {
        server.register(t);
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let manifest = dir.path().join("vs.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: service2\nspec:\n  hosts: [service2]\n  http:\n  - route:\n    - destination:\n        host: service2\n        subset: v1\n",
    )
    .unwrap();
    let gvk = kube::core::GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService");
    let api: Api<DynamicObject> = Api::namespaced_with(
        server.client().unwrap(),
        "default",
        &ApiResource::from_gvk(&gvk),
    );
    let kc = kubeconfig.clone();
    let run = move |args: Vec<String>| {
        let kc = kc.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                kubectl(&kc, &args)
            })
            .await
            .unwrap()
        }
    };
    let m = manifest.display().to_string();
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();

    let (ok, out) = run(s(&["apply", "--validate=false", "-f", &m])).await;
    assert!(ok, "kubectl apply: {out}");
    let vs = api.get("service2").await.unwrap();
    assert_eq!(
        vs.data["spec"]["http"][0]["route"][0]["destination"]["subset"],
        "v1"
    );

    // a changed manifest applied again (client-side apply patches the object)
    std::fs::write(
        &manifest,
        std::fs::read_to_string(&manifest)
            .unwrap()
            .replace("subset: v1", "subset: v2"),
    )
    .unwrap();
    let (ok, out) = run(s(&["apply", "--validate=false", "-f", &m])).await;
    assert!(ok, "kubectl apply (update): {out}");
    let vs = api.get("service2").await.unwrap();
    assert_eq!(
        vs.data["spec"]["http"][0]["route"][0]["destination"]["subset"],
        "v2"
    );

    // server-side apply
    std::fs::write(
        &manifest,
        std::fs::read_to_string(&manifest)
            .unwrap()
            .replace("subset: v2", "subset: v3"),
    )
    .unwrap();
    let (ok, out) = run(s(&["apply", "--server-side", "--validate=false", "-f", &m])).await;
    assert!(ok, "kubectl apply --server-side: {out}");
    let vs = api.get("service2").await.unwrap();
    assert_eq!(
        vs.data["spec"]["http"][0]["route"][0]["destination"]["subset"],
        "v3"
    );

    let (ok, out) = run(s(&["get", "virtualservices", "-o", "name"])).await;
    assert!(
        ok && out.contains("virtualservice.networking.istio.io/service2"),
        "kubectl get: {out}"
    );
    let (ok, out) = run(s(&[
        "get",
        "vs",
        "service2",
        "-o",
        "jsonpath={.spec.hosts[0]}",
    ]))
    .await;
    assert!(
        ok && out.trim() == "service2",
        "kubectl get -o jsonpath: {out}"
    );

    let (ok, out) = run(s(&["label", "vs", "service2", "team=a"])).await;
    assert!(ok, "kubectl label: {out}");
    let vs = api.get("service2").await.unwrap();
    assert_eq!(vs.metadata.labels.unwrap()["team"], "a");
    let (ok, out) = run(s(&["get", "vs", "-l", "team in (a,b)", "-o", "name"])).await;
    assert!(ok && out.contains("service2"), "kubectl get -l: {out}");

    let (ok, out) = run(s(&["delete", "-f", &m])).await;
    assert!(ok, "kubectl delete: {out}");
    let err = api.get("service2").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );
}
