//! The app's own Pod: who it is (labels, service account, workload name), found through the
//! downward API's `POD_NAME` and `POD_NAMESPACE`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

/// What the app knows about itself from its Pod object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workload {
    /// The Pod's name.
    pub pod: String,
    /// The Pod's namespace.
    pub namespace: String,
    /// The Pod's labels (`app`, `version`, `istio: ingressgateway`...).
    pub labels: BTreeMap<String, String>,
    /// `spec.serviceAccountName` (`default` when unset, as Kubernetes fills it).
    pub service_account: String,
    /// The owning Deployment's name (from the ReplicaSet that owns the Pod), else the owner's
    /// name, else the Pod's: Istio's `workload` label.
    pub workload: String,
    /// `status.podIP`, when assigned.
    pub ip: Option<String>,
}

/// Why the app's own Pod could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// `POD_NAME` or `POD_NAMESPACE` is not set (the downward API is not configured).
    #[error("{0} is not set (give the pod its name and namespace through the downward API)")]
    MissingEnv(&'static str),
    /// The API server did not give the Pod.
    #[error("reading pod {namespace}/{name}: {source}")]
    Api {
        /// The Pod's namespace.
        namespace: String,
        /// The Pod's name.
        name: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },
}

impl Workload {
    /// Reads the Pod named by `POD_NAME` in `POD_NAMESPACE`.
    pub async fn from_env(client: kube::Client) -> Result<Self, WorkloadError> {
        let name = std::env::var("POD_NAME").map_err(|_| WorkloadError::MissingEnv("POD_NAME"))?;
        let namespace = std::env::var("POD_NAMESPACE")
            .map_err(|_| WorkloadError::MissingEnv("POD_NAMESPACE"))?;
        Self::read(client, &namespace, &name).await
    }

    /// Reads Pod `namespace/name`.
    pub async fn read(
        client: kube::Client,
        namespace: &str,
        name: &str,
    ) -> Result<Self, WorkloadError> {
        let pod = Api::<Pod>::namespaced(client, namespace)
            .get(name)
            .await
            .map_err(|source| WorkloadError::Api {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                source,
            })?;
        Ok(Self::of(&pod))
    }

    /// What `pod` says.
    pub fn of(pod: &Pod) -> Self {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let owner = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .or_else(|| pod.metadata.owner_references.iter().flatten().next());
        let workload = match owner {
            // a Deployment's ReplicaSet is `<deployment>-<pod-template-hash>`
            Some(o) if o.kind == "ReplicaSet" => match labels.get("pod-template-hash") {
                Some(hash) => o
                    .name
                    .strip_suffix(&format!("-{hash}"))
                    .unwrap_or(&o.name)
                    .to_owned(),
                None => o.name.clone(),
            },
            Some(o) => o.name.clone(),
            None => name.clone(),
        };
        Self {
            pod: name,
            namespace: pod
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            service_account: pod
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".into()),
            ip: pod.status.as_ref().and_then(|s| s.pod_ip.clone()),
            workload,
            labels,
        }
    }
}

#[cfg(test)]
mod tests;
