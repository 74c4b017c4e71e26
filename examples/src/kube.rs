//! `--kube`: the apps with their mesh config and endpoints from the Kubernetes API server.
//!
//! The app finds the API server as kubectl does ([`mesh_kube::connect`]) and itself through the
//! downward API's `POD_NAME` and `POD_NAMESPACE`: its `app` and `version` labels, its other
//! labels (`istio: ingressgateway` for the gateway) and its Deployment's name (the workload name
//! in metrics) come from its own Pod object. [`mesh_kube::KubeMesh`] then watches Istio's custom
//! resources and the Services, EndpointSlices and Pods of the hosts its routes reach.
//!
//! Until every watch completed its first sync the listen port answers 503 and `/healthz` says
//! why (`not ready: ...`, a 401/403 from the API server included); `/config_dump` lists the
//! objects refused, with namespace, name, field and message, under `kubernetes.refused`.

mod credentials;
mod gateway;
mod service;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::IntoResponse;
use http::StatusCode;
use mesh_kube::{KubeMesh, KubeMeshOptions, Readiness};
use mesh_server::admin::{ConfigView, mesh_config_view};
use serde_json::{Value, json};

use crate::admin::Ready;
use crate::mesh::{MeshRuntime, StartError, Workload};

pub use credentials::SecretCredentials;
pub use gateway::{selected_gateway, start_kube_gateway, start_kube_gateway_ports};
pub use service::start_kube_service;

/// Where an app in `--kube` mode finds the API server and its own Pod.
#[derive(Clone)]
pub struct KubeTarget {
    /// A client of the API server.
    pub client: kube::Client,
    /// The app's Pod namespace (`POD_NAMESPACE`).
    pub namespace: String,
    /// The app's Pod name (`POD_NAME`).
    pub pod: String,
}

impl std::fmt::Debug for KubeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeTarget")
            .field("namespace", &self.namespace)
            .field("pod", &self.pod)
            .finish_non_exhaustive()
    }
}

impl KubeTarget {
    /// The API server as kubectl finds it (the pod's service account, else `$KUBECONFIG`) and
    /// the Pod named by `POD_NAME` in `POD_NAMESPACE`.
    pub async fn from_env() -> Result<Self, StartError> {
        let var = |name: &'static str| {
            std::env::var(name).map_err(|_| {
                StartError::Kube(format!(
                    "{name} is not set (give the pod its name and namespace through the downward API)"
                ))
            })
        };
        let pod = var("POD_NAME")?;
        let namespace = var("POD_NAMESPACE")?;
        let client = mesh_kube::connect()
            .await
            .map_err(|e| StartError::Kube(e.to_string()))?;
        Ok(Self {
            client,
            namespace,
            pod,
        })
    }
}

/// What [`start_runtime`] gives an app: the mesh runtime over the cluster, and who it is.
pub struct KubeRuntime {
    /// Config and endpoints from the cluster, as a folder app's runtime.
    pub runtime: MeshRuntime,
    /// The watches (readiness, refused objects).
    pub kube: Arc<KubeMesh>,
    /// The app as its Pod describes it.
    pub workload: Workload,
}

/// Reads the app's own Pod and starts the watches: `app` and `version` default to the given
/// values when the Pod has no such label; `calls` are the hosts the app calls (short names in
/// its namespace).
pub async fn start_runtime(
    target: &KubeTarget,
    app: &str,
    version: &str,
    calls: Vec<String>,
    certs: Option<&Path>,
) -> Result<KubeRuntime, StartError> {
    let pod = mesh_kube::Workload::read(target.client.clone(), &target.namespace, &target.pod)
        .await
        .map_err(|e| StartError::Kube(e.to_string()))?;
    let mut workload = Workload::new(
        pod.labels.get("app").map_or(app, String::as_str),
        pod.labels.get("version").map_or(version, String::as_str),
    )
    .in_namespace(&pod.namespace);
    workload.deployment = Some(pod.workload.clone());
    workload.extra_labels = pod.labels.clone();
    let kube = Arc::new(KubeMesh::start(
        target.client.clone(),
        KubeMeshOptions {
            namespace: pod.namespace.clone(),
            calls,
            labels: pod.labels.clone(),
            ..Default::default()
        },
    ));
    let runtime = MeshRuntime::from_sources(
        Path::new("kubernetes"),
        kube.store().clone(),
        kube.registry().clone(),
        Box::new(kube.clone()),
        certs,
    )?;
    tracing::info!(pod = %target.pod, namespace = %pod.namespace, app = %workload.app,
        version = %workload.version, workload = %pod.workload, service_account = %pod.service_account,
        "kubernetes: watching the API server");
    Ok(KubeRuntime {
        runtime,
        kube,
        workload,
    })
}

/// A flag set once every watch completed its first sync (and never cleared: after that the last
/// known objects stay in force while a watch retries); `ready` is set with it.
pub fn synced_flag(readiness: &Readiness, ready: &Ready) -> Arc<AtomicBool> {
    let synced = Arc::new(AtomicBool::new(false));
    let (flag, readiness, ready) = (synced.clone(), readiness.clone(), ready.clone());
    tokio::spawn(async move {
        readiness.wait_ready().await;
        flag.store(true, Ordering::Release);
        ready.set(true);
        tracing::info!("kubernetes: every watch synced, serving");
    });
    synced
}

/// `router` answering 503 (`not ready: <reason>`) until `synced`: before the first sync there
/// is no config, and a window without AuthorizationPolicies must never serve.
pub fn gate(router: Router, synced: Arc<AtomicBool>, readiness: Readiness) -> Router {
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let open = synced.load(Ordering::Acquire);
            let readiness = readiness.clone();
            async move {
                if open {
                    next.run(req).await
                } else {
                    let reason = readiness.status().to_string();
                    (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response()
                }
            }
        },
    ))
}

/// The admin router of an app in `--kube` mode: `/healthz` not ready with the watches' reason
/// (then `inbound`'s, STRICT without a certificate); `/config_dump` with the refused objects.
pub fn admin(
    runtime: &MeshRuntime,
    kube: &Arc<KubeMesh>,
    ready: &Ready,
    inbound: Option<(mesh_server::server::InboundTls, u16)>,
) -> Router {
    admin_with_view(runtime, kube, ready, inbound, None)
}

/// [`admin`] whose `/config_dump` also has section `extra.0` (e.g. the gateway's `gateway_tls`).
pub fn admin_with_view(
    runtime: &MeshRuntime,
    kube: &Arc<KubeMesh>,
    ready: &Ready,
    inbound: Option<(mesh_server::server::InboundTls, u16)>,
    extra: Option<(&'static str, crate::mesh::ExtraView)>,
) -> Router {
    let store = runtime.store().clone();
    let report_of = kube.clone();
    let certs = runtime
        .workload_tls()
        .dir()
        .is_some()
        .then(|| runtime.workload_tls().clone());
    let view: ConfigView = Arc::new(move || {
        let report = report_of.report();
        let last = json!({
            "generation": report.generation,
            "applied": report.refused.is_empty(),
            "errors": report.refused.iter().flat_map(|r| r.errors.iter().map(move |e|
                format!("{}/{} {}: {}: {}", r.namespace, r.name, r.kind, e.field, e.message))).collect::<Vec<_>>(),
            "warnings": report.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        let mut view = mesh_config_view(&store.snapshot(), store.generation(), Some(last));
        if let Some(map) = view.as_object_mut() {
            map.insert("kubernetes".to_owned(), kubernetes_view(&report_of));
            if let Some(certs) = &certs {
                map.insert("certificates".to_owned(), certs.view());
            }
            if let Some((name, section)) = &extra {
                map.insert((*name).to_owned(), section());
            }
        }
        view
    });
    let readiness = kube.readiness().clone();
    let health = Arc::new(move || {
        let status = readiness.status();
        if !status.is_ready() {
            return Some(status.to_string());
        }
        inbound
            .as_ref()
            .and_then(|(tls, port)| tls.unready_reason(*port))
    });
    mesh_server::admin::router_with_health(runtime.metrics().clone(), ready.flag(), view, health)
}

/// The `kubernetes` section of `/config_dump`: readiness, refused objects, watched hosts.
pub fn kubernetes_view(kube: &KubeMesh) -> Value {
    let report = kube.report();
    let status = kube.readiness().status();
    json!({
        "ready": status.is_ready(),
        "status": status.to_string(),
        "missing": status.missing(),
        "applied": report.applied,
        "refused": report.refused.iter().map(|r| json!({
            "kind": r.kind,
            "namespace": r.namespace,
            "name": r.name,
            "last_good_kept": r.last_good_kept,
            "errors": r.errors.iter().map(|e| json!({"field": e.field, "message": e.message})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "warnings": report.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "watched_hosts": kube.discovery().watched(),
    })
}
