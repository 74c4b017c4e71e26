//! Who an app is, as the mesh sees it.

use std::path::PathBuf;

use mesh_core::policy::Labels;

/// Who an app is: the `app` and `version` labels the mesh selects policies and subsets by, and
/// its namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// The `app` label (`service1`, `gateway`...).
    pub app: String,
    /// The `version` label.
    pub version: String,
    /// The namespace (`default` unless `--namespace` says otherwise).
    pub namespace: String,
    /// Its name in metrics when it is not `<app>-<version>`: in Kubernetes, the owning
    /// Deployment's name (`--kube`).
    pub deployment: Option<String>,
    /// Labels beyond `app` and `version` (in Kubernetes its Pod's, e.g. `istio: ingressgateway`).
    pub extra_labels: Labels,
}

/// An app's identity flags: `--certs DIR` and `--namespace NS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The workload certificate folder (Istio's file layout), if any.
    pub certs: Option<PathBuf>,
    /// The namespace.
    pub namespace: String,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            certs: None,
            namespace: "default".to_owned(),
        }
    }
}

impl Workload {
    /// A workload named `app` at `version`, in `default`.
    pub fn new(app: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            app: app.into(),
            version: version.into(),
            namespace: "default".to_owned(),
            deployment: None,
            extra_labels: Labels::new(),
        }
    }

    /// The workload's name, as a Deployment of it would be named: `<app>-<version>`
    /// (`service2-v1`) unless [`Workload::deployment`] names it, what the
    /// `source_workload`/`destination_workload` labels say.
    pub fn name(&self) -> String {
        match &self.deployment {
            Some(name) => name.clone(),
            None => mesh_telemetry::labels::workload_name(&self.labels(), &self.app).into_owned(),
        }
    }

    /// The same workload in `namespace`.
    pub fn in_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Its labels: `app`, `version` and [`Workload::extra_labels`].
    pub fn labels(&self) -> Labels {
        let mut labels = self.extra_labels.clone();
        labels.insert("app".to_owned(), self.app.clone());
        labels.insert("version".to_owned(), self.version.clone());
        labels
    }
}
