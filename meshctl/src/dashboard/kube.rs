//! `--kube`: the routes panel from the Kubernetes API server, as the apps in `--kube` mode read
//! it (mesh-kube's [`KubeConfigSource`]: Istio's custom resources, each object validated alone).

use mesh_core::policy::MeshConfig;
use mesh_core::watch::ConfigStore;
use mesh_kube::{ConfigOptions, KubeConfigSource, Readiness};

use super::routes::{self, RouteView};

/// The watches of the config kinds, started once; dropping it stops them.
pub(super) struct KubeRoutes {
    store: ConfigStore,
    readiness: Readiness,
    _source: KubeConfigSource,
}

impl KubeRoutes {
    /// Connects as kubectl does (the pod's service account, else `$KUBECONFIG`) and starts the
    /// watches; the error says why it could not connect.
    pub(super) async fn start() -> Result<Self, String> {
        let client = mesh_kube::connect().await.map_err(|e| e.to_string())?;
        let store = ConfigStore::new(MeshConfig::default());
        let readiness = Readiness::new();
        let source = KubeConfigSource::start(
            client,
            store.clone(),
            readiness.clone(),
            ConfigOptions::default(),
        );
        Ok(Self {
            store,
            readiness,
            _source: source,
        })
    }

    /// The routes of the config in force, or why there is none yet.
    pub(super) fn routes(&self) -> Result<Vec<RouteView>, String> {
        let status = self.readiness.status();
        if !status.is_ready() {
            return Err(format!("kubernetes: {status}"));
        }
        Ok(routes::from_config(&self.store.snapshot()))
    }
}
