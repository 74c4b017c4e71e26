//! `deploy/` proven, not just written: every manifest applied with real `kubectl` to the test API
//! server, then the apps started from what kubectl wrote (as the Deployment and EndpointSlice
//! controllers would: a Pod per Deployment from its template, a slice per Service from its
//! selector), and the article's requests through the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use mesh_kube::testing::ResourceType;
use mesh_tests::kube::{Cluster, POD_PORT};
use serde_json::{Value, json};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn list(kubeconfig: &Path, resource: &str) -> Vec<Value> {
    let (ok, text) = kubectl(kubeconfig, &["get", resource, "-A", "-o", "json"]);
    assert!(ok, "kubectl get {resource}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    v["items"].as_array().cloned().unwrap_or_default()
}

fn cluster_scoped(group: &str, kind: &str) -> ResourceType {
    ResourceType {
        namespaced: false,
        ..ResourceType::namespaced(group, &["v1"], kind)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_deploy_manifest_applies_and_the_apps_run_from_it() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl is not installed (apt-get install -y kubectl); test skipped");
        return;
    }
    let c = Cluster::start(88).await;
    // what a cluster serves beside the mesh's kinds: Deployments and RBAC
    c.server
        .register(ResourceType::namespaced("apps", &["v1"], "Deployment"));
    c.server.register(ResourceType::namespaced(
        "rbac.authorization.k8s.io",
        &["v1"],
        "Role",
    ));
    c.server.register(ResourceType::namespaced(
        "rbac.authorization.k8s.io",
        &["v1"],
        "RoleBinding",
    ));
    c.server
        .register(cluster_scoped("rbac.authorization.k8s.io", "ClusterRole"));
    c.server.register(cluster_scoped(
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
    ));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    c.server.write_kubeconfig(&kubeconfig).unwrap();
    let deploy = deploy_dir();
    for sub in ["kubernetes", "istio"] {
        let path = deploy.join(sub);
        let (ok, text) = kubectl(
            &kubeconfig,
            &["apply", "--validate=false", "-f", path.to_str().unwrap()],
        );
        assert!(ok, "kubectl apply -f deploy/{sub}: {text}");
    }

    // RBAC: list/watch (and get) only, never a write
    for role in list(&kubeconfig, "clusterroles.rbac.authorization.k8s.io")
        .into_iter()
        .chain(list(&kubeconfig, "roles.rbac.authorization.k8s.io"))
    {
        for rule in role["rules"].as_array().unwrap() {
            for verb in rule["verbs"].as_array().unwrap() {
                assert!(
                    ["get", "list", "watch"].contains(&verb.as_str().unwrap()),
                    "{role}"
                );
            }
            if rule["resources"].to_string().contains("secrets") {
                // The gateway watches its credentialName Secrets by name for rotation, in its
                // own namespace only (a Role, never a ClusterRole), as Istio's gateways do.
                assert_eq!(
                    rule["verbs"],
                    json!(["get", "list", "watch"]),
                    "secrets: read only"
                );
                assert_eq!(
                    role["metadata"]["namespace"], "istio-system",
                    "secrets: the gateway's namespace only: {role}"
                );
            }
        }
    }

    // the Deployment controller: one Pod per Deployment, from its template
    let mut apps = Vec::new();
    for (i, d) in list(&kubeconfig, "deployments.apps").iter().enumerate() {
        let ns = d["metadata"]["namespace"].as_str().unwrap().to_owned();
        let name = d["metadata"]["name"].as_str().unwrap().to_owned();
        let template = &d["spec"]["template"];
        let container = &template["spec"]["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(args.contains(&"--kube"), "{name}: {args:?}");
        let env = container["env"].to_string();
        for (var, path) in [
            ("POD_NAME", "metadata.name"),
            ("POD_NAMESPACE", "metadata.namespace"),
        ] {
            assert!(
                env.contains(var) && env.contains(path),
                "{name}: {var} from the downward API: {env}"
            );
        }
        assert_eq!(
            container["readinessProbe"]["httpGet"]["path"], "/healthz",
            "{name}"
        );
        let binary = container["command"][0].as_str().unwrap().to_owned();
        let n = 40 + u8::try_from(i).unwrap();
        let pod = format!("{name}-5d9c7-x{i}");
        let mut labels = template["metadata"]["labels"].clone();
        labels["pod-template-hash"] = json!("5d9c7");
        c.apply(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "namespace": ns, "labels": labels,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": format!("{name}-5d9c7"), "uid": format!("rs-{name}"), "controller": true}]},
            "spec": template["spec"],
            "status": {"podIP": c.ip(n).to_string(), "phase": "Running"}}));
        apps.push((ns, pod, binary, n, labels));
    }
    assert_eq!(
        apps.len(),
        5,
        "service1, service2-v1, service2-v2, service3, gateway"
    );

    // the EndpointSlice controller: a slice per Service, its Pods by the selector
    for s in list(&kubeconfig, "services") {
        let ns = s["metadata"]["namespace"].as_str().unwrap();
        let name = s["metadata"]["name"].as_str().unwrap();
        let selector = s["spec"]["selector"].as_object().unwrap();
        let endpoints: Vec<Value> = apps
            .iter()
            .filter(|(pns, _, _, _, labels)| {
                pns == ns && selector.iter().all(|(k, v)| &labels[k] == v)
            })
            .map(|(_, pod, _, n, _)| json!({"addresses": [c.ip(*n).to_string()],
                "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": pod, "namespace": ns}}))
            .collect();
        assert!(!endpoints.is_empty(), "Service {ns}/{name} selects no Pod");
        let port = &s["spec"]["ports"][0];
        c.apply(
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{name}-x"), "namespace": ns,
                "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [{"name": port["name"], "port": POD_PORT, "protocol": "TCP"}],
            "endpoints": endpoints}),
        );
    }

    // the kubelet: each container's binary in --kube mode, as its Pod
    let mut started = Vec::new();
    for (ns, pod, binary, n, _) in &apps {
        let app = if binary == "gateway" {
            c.start_gateway_pod(ns, pod, *n).await
        } else {
            c.start_service(ns, pod, binary, *n).await
        };
        started.push((binary.clone(), app));
    }
    for (_, app) in &started {
        c.ready(app).await;
    }
    let gateway = &started.iter().find(|(b, _)| b == "gateway").unwrap().1;
    let a = c
        .until(gateway.addr, "/service1/hello", "the chain", |a| {
            a.status == 200
        })
        .await;
    let body = a.json();
    assert_eq!(
        body["upstream"]["upstream"]["service"], "service3",
        "{body}"
    );
    // the article's 90/10 split (deploy/istio/06) of service1's calls to service2 (a mesh
    // VirtualService: the gateway's own route to /service2 is not split, as in Istio)
    let (mut v1, mut v2) = (0, 0);
    for _ in 0..200 {
        let a = c.get(gateway.addr, "/service1/split").await;
        assert_eq!(a.status, 200, "{}", a.body);
        match a.upstream_version().as_deref() {
            Some("v1") => v1 += 1,
            Some("v2") => v2 += 1,
            _ => panic!("{}", a.body),
        }
    }
    assert!(v2 > 0 && v2 < 60 && v1 > 140, "90/10: v1 {v1}, v2 {v2}");
}
