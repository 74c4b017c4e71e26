//! Everything an app needs in `--kube` mode, started together: the config store filled from
//! custom resources, a registry of the ServiceEntries and Kubernetes Services its calls reach,
//! and one readiness for all their watches.

use std::sync::Arc;

use mesh_core::policy::{Labels, MeshConfig};
use mesh_core::registry::{DnsOptions, Following, Registry, StaticDiscovery};
use mesh_core::watch::ConfigStore;
use tokio::task::JoinHandle;

use crate::config::{ConfigOptions, ConfigReport, KubeConfigSource};
use crate::discovery::{KubeDiscovery, MergedDiscovery};
use crate::status::Readiness;

/// Options of [`KubeMesh::start`].
#[derive(Clone, Debug, Default)]
pub struct KubeMeshOptions {
    /// The app's namespace (short hosts resolve in it); `default` when empty.
    pub namespace: String,
    /// The hosts the app calls (`service2`, or FQDNs); endpoints are watched for these and for
    /// every host their routes reach.
    pub calls: Vec<String>,
    /// The app's Pod labels ([`crate::Workload::labels`]): a gateway also watches the
    /// destinations of the VirtualServices bound to the Gateways whose selector they match.
    pub labels: Labels,
    /// Config options (namespace narrowing, kinds, missing-CRD retry).
    pub config: ConfigOptions,
    /// How ServiceEntries with DNS resolution are resolved.
    pub dns: DnsOptions,
}

/// The mesh's view of the cluster; dropping it stops every watch.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = mesh_kube::connect().await?;
/// let mesh = mesh_kube::KubeMesh::start(client, mesh_kube::KubeMeshOptions {
///     namespace: "default".into(),
///     calls: vec!["service2".into()],
///     ..Default::default()
/// });
/// mesh.readiness().wait_ready().await; // serve nothing before this
/// let config = mesh.store().snapshot();
/// let endpoints = mesh.registry().endpoints("service2.default.svc.cluster.local", Some(80));
/// # drop((config, endpoints)); Ok(()) }
/// ```
#[derive(Debug)]
pub struct KubeMesh {
    store: ConfigStore,
    registry: Arc<Registry>,
    readiness: Readiness,
    config: KubeConfigSource,
    discovery: Arc<KubeDiscovery>,
    _static: StaticDiscovery,
    _merged: MergedDiscovery,
    _following: Following,
    hosts: JoinHandle<()>,
}

impl Drop for KubeMesh {
    fn drop(&mut self) {
        self.hosts.abort();
    }
}

impl KubeMesh {
    /// Starts the config watches, the endpoint watches of the hosts reached, and the registry.
    /// Needs a Tokio runtime.
    pub fn start(client: kube::Client, options: KubeMeshOptions) -> Self {
        let namespace = if options.namespace.is_empty() {
            "default".to_owned()
        } else {
            options.namespace.clone()
        };
        let readiness = Readiness::new();
        let store = ConfigStore::new(MeshConfig::default());
        let config = KubeConfigSource::start(
            client.clone(),
            store.clone(),
            readiness.clone(),
            options.config.clone(),
        );
        let discovery = Arc::new(KubeDiscovery::new(client, readiness.clone()));
        let hosts = discovery.follow_config(
            &store,
            &namespace,
            options.calls.clone(),
            options.labels.clone(),
        );
        let statics = StaticDiscovery::from_store(&store, options.dns.clone());
        let merged = MergedDiscovery::new(&[&statics, &*discovery]);
        let registry = Arc::new(Registry::new());
        let following = registry.follow(&merged);
        Self {
            store,
            registry,
            readiness,
            config,
            discovery,
            _static: statics,
            _merged: merged,
            _following: following,
            hosts,
        }
    }

    /// The config in force (generation 1, empty, until every config watch synced).
    pub fn store(&self) -> &ConfigStore {
        &self.store
    }

    /// Endpoints of the ServiceEntries and of the Kubernetes Services reached.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Ready once every watch synced; "not ready: <reason>" otherwise.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// The last compilation: refused objects with their fields and messages, warnings.
    pub fn report(&self) -> Arc<ConfigReport> {
        self.config.report()
    }

    /// The Kubernetes discovery source (services with identities and tlsMode).
    pub fn discovery(&self) -> &Arc<KubeDiscovery> {
        &self.discovery
    }
}

#[cfg(test)]
mod tests;
